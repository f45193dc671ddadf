"""What the benchmarks share: a site to measure on, demo accounts, signing in, timing.

Imported as ``from common import ...`` (a bench runs as ``python bench/<x>.py``, so this
folder is on ``sys.path``). Nothing here measures on its own: each bench decides what it
times and prints; these are the steps they all take the same way.
"""
from __future__ import annotations

import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from faker import Faker

from core.kernel.fields import search_key  # quick search's keys, which the service writes too
from core.kernel.records import now
from core.kernel.site import Site, create_site
from plugins.accounts.plugin import account_row, build_pools

BATCH = 5_000  # rows per create_many, as imports and demo data write
# a row of the Accounts list page: the link of its first cell
ROW_LINK = re.compile(r'<td data-label="[^"]*"><a href="/m/accounts/([0-9a-f-]{36})">')
# tables a bench makes beside the site's (twin_table): dropped with them (bench_site)
TWINS = sa.MetaData()


def progress(message: str) -> None:
    print(f".. {message}", file=sys.stderr, flush=True)


# -- the site ---------------------------------------------------------------------------------

def site_arguments(parser) -> None:
    """--database-url and --seed, as the benches that build demo data take them."""
    parser.add_argument("--database-url", help="an empty PostgreSQL/MariaDB database "
                        "(default: SQLite in a temp dir)")
    parser.add_argument("--seed", type=int, default=1, help="demo data seed (1)")


@contextmanager
def bench_site(database_url: str | None) -> Iterator[Site]:
    """A new site: SQLite in a temp dir, or the database ``database_url`` names, which must
    be empty (the bench stops otherwise) and is left empty again: the site's tables and the
    bench's twin tables are dropped at the end. The caller makes the schema."""
    with tempfile.TemporaryDirectory(prefix="crbm-bench-") as tmp:
        site = Site(create_site(Path(tmp) / "site", database_url))
        if sa.inspect(site.engine).get_table_names():
            sys.exit(f"{site.database_url} is not empty: give the benchmark a database of its own")
        try:
            yield site
        finally:
            if database_url:  # leave the server database as we found it
                TWINS.drop_all(site.engine, checkfirst=True)
                site.tables.drop_all(site.engine, checkfirst=True)
                if site.engine.dialect.name == "postgresql":
                    # the job queue's schema too (procrastinate: tables, types, functions),
                    # which sync_schema applies on PostgreSQL; as bench/jobs.py does
                    with site.engine.begin() as conn:
                        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
                        conn.exec_driver_sql("CREATE SCHEMA public")
            site.close()


def backend_name(site: Site) -> str:
    """sqlite, postgresql or mariadb, as the benches print it."""
    dialect = site.engine.dialect
    return "mariadb" if getattr(dialect, "is_mariadb", False) else dialect.name


def twin_table(table: sa.Table, name: str) -> sa.Table:
    """An identical table under another name (indexes renamed, they are schema-wide), for
    the raw side of a comparison; bench_site drops it."""
    return sa.Table(name, TWINS, *(c._copy() for c in table.columns),
                    *(sa.Index(i.name.replace(table.name, name, 1), *(c.name for c in i.columns),
                               unique=i.unique) for i in table.indexes))


# -- demo accounts ----------------------------------------------------------------------------

def demo_rows(n: int, user_id: str, seed: int) -> list[dict]:
    """Realistic accounts from the accounts plugin's demo helpers (none a member of another)."""
    rng = random.Random(seed)
    pools = build_pools(rng, scale=min(1000, max(200, n // 20)))
    fake = Faker()
    fake.seed_instance(seed)
    descriptions = [fake.catch_phrase() + "." for _ in range(200)]
    return [account_row(rng, pools, descriptions, user_id) for _ in range(n)]


def create_in_batches(site: Site, module: str, rows: list[dict], user,
                      batch: int = BATCH) -> list[str]:
    """``site.records.create_many`` of ``rows``, ``batch`` at a time: the new ids."""
    ids: list[str] = []
    for start in range(0, len(rows), batch):
        ids += site.records.create_many(module, rows[start:start + batch], user)
    return ids


def raw_records(site: Site, rows: list[dict], user_id: str) -> list[dict]:
    """Every column the service writes for each account: normalized values, defaults,
    stamps — what a raw insert must write to hold the same rows."""
    module = site.registry.module("accounts")
    columns = [c.name for c in site.tables.tables["accounts"].columns]
    stamp = now()
    out = []
    for row in rows:
        record = dict.fromkeys(columns)
        record["email_opt_out"] = False  # the checkbox default
        for name, value in row.items():
            f = module.fields[name]
            record[name] = f.type.normalize(value, f.spec)
        record.update(id=str(uuid.uuid4()), created_at=stamp, created_by=user_id,
                      modified_at=stamp, modified_by=user_id, deleted=False, version=1)
        record.update({f"_sk_{n}": search_key(record[n]) for n in module.search_fields})
        out.append(record)
    return out


# -- requests ---------------------------------------------------------------------------------

def sign_in(client, username: str, password: str) -> None:
    """Sign ``client`` (Starlette's TestClient on the app) in through the login form."""
    token = re.search(r'name="_csrf" value="([^"]+)"', client.get("/login").text).group(1)
    reply = client.post("/login", data={"_csrf": token, "username": username,
                                        "password": password}, follow_redirects=False)
    if reply.status_code != 303:
        sys.exit(f"{username}: sign-in failed ({reply.status_code})")


class Statements:
    """SQL statements run on an engine (any thread) since the last reset, and how many of
    them write; their text too when ``keep`` is set."""

    def __init__(self, engine: sa.Engine, keep: bool = False):
        self.total = self.writes = 0
        self.texts: list[str] | None = [] if keep else None
        sa.event.listen(engine, "before_cursor_execute", self.seen)

    def seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.total += 1
        if statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            self.writes += 1
        if self.texts is not None:
            self.texts.append(statement)

    def reset(self) -> tuple[int, int]:
        """(statements, writes) since the last reset; counting starts again."""
        counts, self.total, self.writes = (self.total, self.writes), 0, 0
        if self.texts is not None:
            self.texts = []
        return counts


# -- timing -----------------------------------------------------------------------------------

def interleaved(calls: Mapping[str, Callable[[], Any]], rounds: int,
                warmup: int = 0) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Each call's seconds over ``rounds`` rounds, the calls taking turns in each round so
    that all see the same machine (``warmup`` rounds first, not kept); and each call's
    last answer."""
    times: dict[str, list[float]] = {label: [] for label in calls}
    answers: dict[str, Any] = {}
    for round_ in range(warmup + rounds):
        for label, call in calls.items():
            t0 = time.perf_counter()
            answer = call()
            if round_ >= warmup:
                times[label].append(time.perf_counter() - t0)
            answers[label] = answer
    return times, answers


def median_ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000
