"""Benchmark: fetching mail — messages filed per second from a local IMAP server, against
just downloading them.

    .venv/bin/python bench/mail.py [--messages N] [--database-url URL]

A private Dovecot (plugins/emails/tests/imap_server.py: Debian's dovecot-imapd, on free
ports of 127.0.0.1) gets N messages (5,000) in its inbox: realistic ones, text and HTML
(multipart/alternative), one in ten with a small PDF attached, about 3 KB each. Then, in
the same process against the same server:

- download: an imapclient session selects the inbox and fetches every message
  (BODY.PEEK[], 100 per FETCH, as the fetcher does) — the floor: no parsing, no database;
- fetch and file: ``plugins.emails.fetch.fetch_mailbox`` on a mail account of those N
  messages (batch size N): parse, one ``create_many`` of emails per 100, attachments,
  folder state — everything the scheduled job does.

Printed: messages per second of each and the ratio (download / fetch and file: how many
times slower filing is than downloading alone). SQLite in a temp dir unless
--database-url names an empty database (its tables dropped after).
"""
from __future__ import annotations

import argparse
import sys
import time
from email.message import EmailMessage

from common import bench_site, progress

from core.kernel.users import create_user
from plugins.emails import fetch, settings
from plugins.emails.tests.imap_server import HOST, PASSWORD, USER, Dovecot

PDF = b"%PDF-1.4\n" + b"0" * 2000 + b"\n%%EOF\n"
WORDS = ["quote", "licences", "renewal", "invoice", "meeting", "support", "contract", "delivery", "order", "price", "discount", "project", "timeline", "proposal", "feedback"]


def sample(n: int) -> bytes:
    m = EmailMessage()
    m["From"] = f"Customer {n % 97} <customer{n % 97}@example.org>"
    m["To"] = USER
    m["Cc"] = "sales@example.com" if n % 3 == 0 else "team@example.com"
    m["Subject"] = f"{WORDS[n % len(WORDS)].title()} request #{n}"
    m["Date"] = f"Mon, 01 Dec 2025 {n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d} +0000"
    m["Message-ID"] = f"<bench-{n}@example.org>"
    if n % 2:
        m["In-Reply-To"] = f"<bench-{n - 1}@example.org>"
    text = "\n".join(" ".join(WORDS[(n + i + j) % len(WORDS)] for j in range(12))
                     for i in range(12))
    m.set_content(f"Hello,\n\n{text}\n\nRegards")
    m.add_alternative(f"<p>Hello,</p><p>{text.replace(chr(10), '<br>')}</p><p>Regards</p>",
                      subtype="html")
    if n % 10 == 0:
        m.add_attachment(PDF, maintype="application", subtype="pdf", filename=f"doc-{n}.pdf")
    return m.as_bytes()


def fill(server: Dovecot, n: int) -> None:
    with server.client() as imap:
        for at in range(0, n, 500):
            imap.multiappend("INBOX", [sample(i) for i in range(at, min(n, at + 500))])


def download(server: Dovecot, n: int) -> float:
    start = time.perf_counter()
    with server.client() as imap:
        imap.select_folder("INBOX", readonly=True)
        uids = sorted(imap.search("ALL"))
        got = 0
        for at in range(0, len(uids), fetch.CHUNK):
            got += len(imap.fetch(uids[at:at + fetch.CHUNK], [b"BODY.PEEK[]"]))
    assert got == n, (got, n)
    return n / (time.perf_counter() - start)


def file_all(site, server: Dovecot, n: int) -> float:
    owner = create_user(site, "bench-owner", "bench-password-123")
    site.set_setting(settings.SETTING, {"fetch_batch": min(n, 5000)})
    account = site.records.create("mail_accounts", {
        "name": "Bench", "email_address": USER, "protocol": "imap", "host": HOST,
        "port": server.imap, "security": "none", "certificate_validation": "none",
        "username": USER, "password": PASSWORD, "folders": "INBOX", "batch_size": n}, owner)
    start = time.perf_counter()
    result = fetch.fetch_mailbox(site, "mail_accounts", account["id"])
    elapsed = time.perf_counter() - start
    if result.filed != n or result.problems:
        sys.exit(f"filed {result.filed} of {n}: {'; '.join(result.problems)}")
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    server = Dovecot.start()
    try:
        progress(f"putting {args.messages} messages in the inbox")
        fill(server, args.messages)
        with bench_site(args.database_url) as site:
            site.sync_schema()
            progress("downloading them with imapclient")
            floor = download(server, args.messages)
            progress("fetching and filing them")
            filed = file_all(site, server, args.messages)
    finally:
        server.stop()
    print(f"\n{args.messages} messages, {site.engine.dialect.name}")
    print(f"{'download only (imapclient)':34} {floor:8.0f} messages/s")
    print(f"{'fetch and file (emails.fetch)':34} {filed:8.0f} messages/s")
    print(f"{'ratio download / file':34} {floor / filed:8.1f}")


if __name__ == "__main__":
    main()
