"""Benchmark: the duplicate check a create makes (core.apps.duplicates.find_duplicates)
against a large Contacts module, beside one indexed lookup of a contact by email, in the
same run, on the same data.

    .venv/bin/python bench/duplicates.py [--contacts N] [--checks R] [--database-url URL]

N demo contacts (100,000; two per account, as the demo data makes them) are written through
the record service's batch path, which keeps their duplicate keys. Then, R times each and
interleaved, an administrator checks a new contact that has: the email of an existing one
(in other case), the phone of one written another way, a name like one at the same account
(fuzzy), and nothing in common with anyone (the miss a typical create is). Printed: each
check's median in ms and its ratio to the baseline — a plain indexed SELECT of a contact's
id by email in SQLAlchemy Core. The aim: every check under 20 ms, flat as N grows (a few
index lookups and rapidfuzz over one account's names, never a scan).

SQLite in a temp dir unless --database-url names an empty database (tables dropped after).
"""
from __future__ import annotations

import argparse
import random
import time

import sqlalchemy as sa
from common import (  # bench/common.py, beside this file
    BATCH,
    backend_name,
    bench_site,
    create_in_batches,
    demo_rows,
    interleaved,
    median_ms,
    progress,
    site_arguments,
)

from core.apps.duplicates import find_duplicates
from core.apps.duplicates import keys as duplicate_keys
from core.kernel.records import Query
from core.kernel.users import create_user
from plugins.accounts.plugin import build_pools
from plugins.contacts.plugin import ACCOUNT_FIELDS, contact_row

BASELINE = "baseline: SELECT id by email"


def checks(site, admin, rng: random.Random) -> dict[str, dict]:
    """The new contacts checked, built from existing ones so a hit is a hit at every size."""
    sample = site.records.list("contacts", admin, Query(
        fields=["first_name", "last_name", "email1", "phone_work", "account_id"],
        sort="-created_at", limit=500))
    with_email = next(c for c in sample if c["email1"])
    with_phone = next(c for c in sample if (c["phone_work"] or "").startswith("+1 ")
                      and "x" not in c["phone_work"])
    at_account = next(c for c in sample if c["account_id"] and len(c["first_name"] or "") > 3)
    digits = "".join(ch for ch in with_phone["phone_work"][3:] if ch.isdigit())
    return {
        "same email": {"first_name": "Someone", "last_name": "Else",
                       "email1": with_email["email1"].upper()},
        "same phone": {"first_name": "Someone", "last_name": "Else",
                       "phone_work": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}",
                       "primary_address_country": "United States"},
        "similar name, same account": {"first_name": at_account["first_name"][:-1],
                                       "last_name": at_account["last_name"],
                                       "account_id": at_account["account_id"]},
        "no duplicate": {"first_name": "Zebulon", "last_name": "Quaxley",
                         "email1": f"zq{rng.randrange(10**9)}@nowhere.example",
                         "phone_work": "+1 907 555 0199", "account_id": at_account["account_id"]},
    }


def build(site, admin, n: int, seed: int, rng: random.Random) -> dict:
    """N demo contacts (two per account, the accounts written first) through the batch
    path, duplicate keys kept on the way; what writing them took. bench/pipeline.py
    builds its contacts (and the accounts its opportunities hang on) with this too."""
    accounts = n // 2
    progress(f"creating {accounts:,} accounts and {n:,} contacts, {BATCH:,} per batch")
    create_in_batches(site, "accounts", demo_rows(accounts, admin.id, seed), admin)
    companies = site.records.list("accounts", admin, Query(fields=ACCOUNT_FIELDS, limit=None))
    pools = build_pools(rng, scale=min(1000, max(200, n // 40)))
    t0 = time.perf_counter()
    rows = [contact_row(rng, pools, companies[i // 2], admin.id) for i in range(n)]
    create_in_batches(site, "contacts", rows, admin)
    written = time.perf_counter() - t0
    # what keeping the keys adds to a batch write: the last batch's keys made again
    # (one DELETE and one executemany INSERT), rolled back
    last = site.records.list("contacts", admin, Query(limit=BATCH, sort="-created_at"))
    with site.engine.connect() as conn, conn.begin() as tx:
        t1 = time.perf_counter()
        duplicate_keys.refresh(site, site.registry.module("contacts"), last, conn)
        upkeep = (time.perf_counter() - t1) / len(last) * 1000
        tx.rollback()
    if site.engine.dialect.name == "postgresql":
        with site.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE contacts")
            conn.exec_driver_sql(f"ANALYZE {duplicate_keys.TABLE}")
    with site.engine.connect() as conn:
        key_rows = conn.execute(sa.select(sa.func.count()).select_from(
            site.tables.tables[duplicate_keys.TABLE])).scalar()
    return {"contacts": n, "accounts": accounts, "written": written, "upkeep": upkeep,
            "rekeyed": len(last), "key_rows": key_rows}


def measure(site, admin, rng: random.Random, rounds: int, warmup: int):
    """Each check's times (the baseline's first) and answers, the checks taking turns."""
    contacts = site.tables.tables["contacts"]
    new = checks(site, admin, rng)
    email = new["same email"]["email1"].lower()

    def baseline():
        with site.engine.connect() as conn:
            return conn.execute(sa.select(contacts.c.id).where(
                contacts.c.email1 == email, contacts.c.deleted.is_(False)).limit(10)).all()

    calls = {BASELINE: baseline}
    calls |= {label: (lambda values=values: find_duplicates(site, "contacts", values, admin))
              for label, values in new.items()}
    progress(f"duplicate checks: {rounds} of each kind, interleaved")
    return interleaved(calls, rounds, warmup)


def report(built: dict, times: dict, answers: dict) -> list[str]:
    """The printed lines: the write's cost, then each check's median and ratio."""
    lines = [(f"writing the contacts: {built['written']:.1f} s through create_many, keys kept "
              f"on the way ({built['key_rows']:,} key rows); keeping them costs "
              f"{built['upkeep'] * 1000:.0f} µs a record (a batch of {built['rekeyed']:,} "
              f"keyed again)")]
    base = median_ms(times[BASELINE])
    for label, seconds in times.items():
        ms = median_ms(seconds)
        found = answers[label]
        said = f"{len(found)} row(s)" if label == BASELINE else \
            f"{len(found)} found" + (f" ({', '.join(found[0].reasons)})" if found else "")
        lines.append(f"{label:<30} {ms:8.2f} ms  ratio {ms / base:7.2f}  {said}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000, help="contacts (100,000)")
    parser.add_argument("--checks", type=int, default=200, help="measured checks of each kind (200)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up checks of each kind (20)")
    site_arguments(parser)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with bench_site(args.database_url) as site:
        progress("creating schema")
        site.sync_schema()
        admin = create_user(site, "bench-admin", "bench-password-123", is_admin=True)
        built = build(site, admin, args.contacts, args.seed, rng)
        times, answers = measure(site, admin, rng, args.checks, args.warmup)

    print(f"CRBM bench/duplicates.py — duplicate check on create, {args.contacts:,} contacts "
          f"({built['accounts']:,} accounts), {backend_name(site)}, median of {args.checks} "
          f"checks each")
    print("\n".join(report(built, times, answers)))


if __name__ == "__main__":
    main()
