"""Benchmark: the mail client's inbox list page (plugins/emails/client.py, ``GET /email``)
against the raw query it is built on, in the same run, on the same data.

    PYTHONPATH=<a CRBM tree> .venv/bin/python bench/mail_list.py [--emails N]
        [--requests R] [--database-url URL]

The reader "mia" is an ordinary user (the default role) with N emails (100,000) in her
Inbox over two years, a third unread, from 2,000 senders, and a few hundred in her other
folders. Three requests, each timed (median of R, in-process TestClient, interleaved with
its raw twin so both see the same machine):

- first page: ``/email`` — the folders with their unread counts, the newest 50;
- a deep page: Next from page 1 twenty times (a keyset cursor, ``core/web/paging.py``);
- search: ``/email?q=<a sender's name>``.

The raw side is the list's query alone: one SELECT of the list's columns for the folder (and
the sender's search key), newest first, 50 rows, no access predicate, no page. Ratio =
page / raw: what access control, the folders and their counts, paging, the template and HTTP
cost on top. SQLite in a temp dir unless --database-url names an empty database (analyzed
after the bulk load, as autovacuum or InnoDB soon would: the first plans otherwise take a
100,000-row folder for a few rows).
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import sys
import uuid

import sqlalchemy as sa
from common import (  # bench/common.py, beside this file
    Statements,
    backend_name,
    bench_site,
    interleaved,
    median_ms,
    progress,
    sign_in,
    site_arguments,
)
from starlette.testclient import TestClient

from core.kernel.fields import search_key
from core.kernel.records import now
from core.kernel.users import create_user
from core.web.app import create_app
from plugins.emails import client as mail_client
from plugins.emails import folders

PASSWORD = "bench-password-123"
BATCH = 5_000
SUBJECTS = ("Question about your proposal", "Invoice", "Meeting next week", "Renewal",
            "Thank you", "Order confirmation", "Support request", "Re: our call")


def build(site, args):
    mia = create_user(site, "mia", PASSWORD)
    with site.engine.begin() as conn:
        box = folders.ensure_personal(site, conn, mia.id)
        folders.ensure_group(site, conn)
    rng = random.Random(args.seed)
    senders = [(f"Sender{i:04d} Person", f"sender{i:04d}@example{i % 50}.com")
               for i in range(2_000)]
    module = site.registry.module("emails")
    table = site.records.table(module)
    columns = {c.name for c in table.columns}
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    stamp = now()
    total = args.emails + 300
    progress(f"writing {total:,} emails (raw inserts, as the service would store them)")

    def row(i: int, folder: str) -> dict:
        name, address = senders[i % len(senders)]  # each sender about as often
        record = dict.fromkeys(columns)
        sender = f"{name} <{address}>"  # as parse_addresses writes it
        record.update(
            id=str(uuid.uuid4()), name=f"{rng.choice(SUBJECTS)} #{i}", from_address=sender,
            to_addresses="mia@crbm.example", direction="inbound", status="received",
            folder_id=folder, is_read=rng.random() > .33, assigned_user_id=mia.id,
            date_sent=start + dt.timedelta(minutes=rng.randrange(2 * 365 * 24 * 60)),
            created_at=stamp, created_by=mia.id, modified_at=stamp, modified_by=mia.id,
            deleted=False, version=1, send_attempts=0, open_count=0)
        record.update({f"_sk_{n}": search_key(record[n]) for n in module.search_fields})
        return record

    with site.engine.begin() as conn:
        rows = [row(i, box["inbox"]) for i in range(args.emails)] + \
            [row(i, box[rng.choice(("sent", "trash"))]) for i in range(300)]
        for at in range(0, len(rows), BATCH):
            conn.execute(table.insert(), rows[at:at + BATCH])
    dialect = site.engine.dialect.name
    if dialect != "sqlite":  # statistics as autovacuum / InnoDB would soon have them
        with site.engine.begin() as conn:
            conn.exec_driver_sql(f"ANALYZE {'TABLE ' if dialect != 'postgresql' else ''}emails")
    return mia, box, senders


def raw(site, folder_id: str, search: str | None = None):
    """The list's query alone (module docstring)."""
    table = site.records.table(site.registry.module("emails"))
    cols = [table.c[n] for n in mail_client.LIST_FIELDS]
    where = [table.c.folder_id == folder_id, table.c.deleted.is_(False)]
    if search:
        key = search_key(search)
        where.append(sa.or_(*(sa.and_(table.c[f"_sk_{n}"] >= key,
                                      table.c[f"_sk_{n}"] < key + "\U0010ffff")
                              for n in ("name", "from_address"))))
    with site.engine.connect() as conn:
        return len(conn.execute(sa.select(*cols).where(*where)
                                .order_by(table.c.date_sent.desc(), table.c.id.desc())
                                .limit(mail_client.PAGE_SIZE)).all())


NEXT = re.compile(r'href="([^"]+)" rel="next"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=100_000, help="emails in the Inbox (100,000)")
    parser.add_argument("--requests", type=int, default=30, help="measured requests each (30)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up requests each (3)")
    site_arguments(parser)
    args = parser.parse_args()

    with bench_site(args.database_url) as site:
        progress("creating schema")
        site.sync_schema()
        _, box, senders = build(site, args)
        client = TestClient(create_app(site)).__enter__()
        sign_in(client, "mia", PASSWORD)
        deep = "/email"
        for _ in range(20):
            deep = NEXT.search(client.get(deep).text)[1].replace("&amp;", "&")
        who = senders[7][0].split()[0].lower()
        counted = Statements(site.engine)
        cases = {"first page": ("/email", None), "page 21 (cursor)": (deep, None),
                 f"search {who!r}": (f"/email?q={who}", who)}
        results = {}
        for label, (url, search) in cases.items():
            def page(url=url):
                reply = client.get(url)
                reply.raise_for_status()
                return reply.text.count('class="message-row')
            counted.reset()
            shown = page()
            statements, _ = counted.reset()
            progress(f"measuring {label}: {args.requests} requests each, interleaved")
            times, answers = interleaved({"page": page, "raw": lambda s=search: raw(
                site, box["inbox"], s)}, args.requests, args.warmup)
            results[label] = (median_ms(times["page"]), median_ms(times["raw"]), shown,
                              answers["raw"], statements)
        client.__exit__(None, None, None)
        backend = backend_name(site)

    print(f"CRBM bench/mail_list.py — the inbox list page vs the raw list query, {backend}, "
          f"{args.emails:,} emails in the Inbox, median of {args.requests} requests each")
    for label, (ms, raw_ms, shown, raw_rows, statements) in results.items():
        print(f"{label:<18} page {ms:7.2f} ms ({shown} rows, {statements} statements)   "
              f"raw {raw_ms:7.2f} ms ({raw_rows} rows)   ratio {ms / raw_ms:.2f}")


if __name__ == "__main__":
    sys.exit(main())
