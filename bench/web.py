"""Benchmark: the Accounts list page over real HTTP, against a bare Starlette + Core page.

    .venv/bin/python bench/web.py [--rows N] [--requests R] [--clients C] [--database-url URL]

ours: GET /m/accounts?size=50&sort=name from ``core.web.app.create_app(site)``, signed in once.
bare: one Starlette route, no middleware, whose sync endpoint (thread pool, like ours) runs
the same SELECT in SQLAlchemy Core on the same engine (list columns, assigned user's name,
not deleted, by name regardless of case, id, 50 rows) and renders a plain autoescaped Jinja2 <table>.
Each is served by uvicorn (one worker, same settings) in its own subprocess on a free
127.0.0.1 port; both must show the same 50 accounts in order. C client threads (own
httpx.Client each, per server) send W warm-up and then R measured requests to each, in
--rounds turns (ours, bare, ours, bare...), so that a machine whose load changes during
the run weighs on both sides alike; a side's rate is its requests over its own turns' time.
SQLite in a temp dir unless --database-url names an empty database (tables dropped after).

--theme-templates: the site's theme is a pack carrying templates (the kernel's own
base.html), so every page of ours renders in the pack sandbox (core/web/sandbox.py): what
the sandbox costs, against the same bare page.
"""
from __future__ import annotations

import argparse
import html
import multiprocessing
import os
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import sqlalchemy as sa
import uvicorn
from jinja2 import Environment
from records import demo_rows, progress  # bench/records.py, beside this file
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from core.apps.packs.pack_archive import build
from core.kernel.database import CaseFolded  # lists sort names regardless of case
from core.kernel.site import Site, create_site
from core.kernel.users import create_user
from core.web.app import create_app

PATH = "/m/accounts?size=50&sort=name"
USERNAME, PASSWORD = "bench", "bench-password-123"
BATCH = 5_000
NAME_LINK = re.compile(r'<a href="/m/accounts/([0-9a-f-]{36})">([^<]*)</a>')
BARE_TEMPLATE = """<!doctype html><title>Accounts</title><table>
{% for r in rows %}<tr><td><a href="/m/accounts/{{ r.id }}">{{ r.name }}</a></td>
{%- for c in columns[1:] %}<td>{{ r[c] if r[c] is not none else "" }}</td>{% endfor %}</tr>
{% endfor %}</table>"""


def bare_app(site: Site) -> Starlette:
    """The same rows with nothing else: what the list page costs at the very least."""
    accounts = site.tables.tables["accounts"]
    users = site.tables.tables["crbm_users"].alias("lbl_assigned_user_id")
    columns = list(site.registry.module("accounts").layouts["list"]["columns"])
    shown = [c + "__label" if c == "assigned_user_id" else c for c in columns]
    template = Environment(autoescape=True).from_string(BARE_TEMPLATE)

    def accounts_list(request):  # sync, so Starlette runs it in the thread pool too
        stmt = (sa.select(accounts.c.id, *(accounts.c[c] for c in columns),
                          sa.func.coalesce(users.c.display_name, users.c.username)
                          .label("assigned_user_id__label"))
                .select_from(accounts.outerjoin(users, users.c.id == accounts.c.assigned_user_id))
                .where(accounts.c.deleted.is_(False))
                .order_by(CaseFolded(accounts.c.name), accounts.c.id).limit(50))
        with site.engine.connect() as conn:
            rows = [dict(row) for row in conn.execute(stmt).mappings()]
        return HTMLResponse(template.render(rows=rows, columns=shown))

    return Starlette(routes=[Route("/m/accounts", accounts_list)])


def install_template_theme(site: Site, scratch: Path) -> None:
    """A theme pack whose base.html is the kernel's, made the site's theme: every page then
    renders in the pack sandbox."""
    folder = scratch / "bench_theme"
    (folder / "templates").mkdir(parents=True)
    (folder / "pack.yaml").write_text("name: bench_theme\nkind: theme\nversion: '1.0'\n"
                                      "title: Bench\nprovides: {theme: {label: Bench}}\n")
    kernel = Path(__file__).resolve().parent.parent / "core" / "web" / "templates"
    (folder / "templates" / "base.html").write_text((kernel / "base.html").read_text())
    site.packs.install(build(folder, scratch).read_bytes(), None, "bench_theme.zip")
    site.set_setting("theme", "bench_theme")


def serve(kind: str, folder: str, port: int) -> None:
    """Subprocess body: one app, one uvicorn worker, until terminated."""
    site = Site(Path(folder))
    app = create_app(site) if kind == "ours" else bare_app(site)
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, log_level="warning")


def start_server(kind: str, folder: Path) -> tuple[multiprocessing.Process, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = multiprocessing.get_context("spawn").Process(target=serve, args=(kind, str(folder), port))
    proc.start()
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline and proc.is_alive():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    sys.exit(f"the {kind} server did not start")


def login(base: str) -> httpx.Cookies:
    with httpx.Client(base_url=base, http2=False) as client:
        token = re.search(r'name="_csrf" value="([^"]+)"', client.get("/login").text).group(1)
        reply = client.post("/login", data={"_csrf": token, "username": USERNAME,
                                             "password": PASSWORD})
        if reply.status_code != 303 or reply.headers["location"] != "/":
            sys.exit(f"login failed: {reply.status_code}")
        return client.cookies


def page_accounts(base: str, cookies) -> list[tuple[str, str]]:
    """(id, name) of the accounts the page links to, in order."""
    with httpx.Client(base_url=base, cookies=cookies, http2=False) as client:
        reply = client.get(PATH)
    reply.raise_for_status()
    if "data-theme-failed" in reply.text:  # the sandbox refused the page: not what we measure
        sys.exit("the theme's page fell back to the kernel's look")
    return [(i, html.unescape(name)) for i, name in NAME_LINK.findall(reply.text)]


def server_cpu(pid: int) -> float:
    """Seconds of CPU a process has used (user + system), from /proc: unlike its rate, what
    a request costs the server hardly changes with what else the machine runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Side:
    """One server under test: C clients (kept across turns), and what its turns measured."""

    def __init__(self, base: str, cookies, clients: int, seen: list[tuple[str, str]], pid: int):
        self.seen = seen  # the accounts its page shows
        self.pid = pid  # the server's process: its CPU time is read around each turn
        self.cpu = 0.0
        self.clients = [httpx.Client(base_url=base, cookies=cookies, http2=False, timeout=10)
                        for _ in range(clients)]
        self.latencies: list[float] = []
        self.elapsed = 0.0

    def turn(self, requests: int, time_limit: float, measured: bool = True) -> None:
        """``requests`` shared by the clients, all starting together."""
        start = [0.0]
        count = len(self.clients)
        ready = threading.Barrier(count, action=lambda: start.__setitem__(0, time.perf_counter()))
        latencies: list[float] = []

        def client(i: int) -> None:
            http = self.clients[i]
            ready.wait()
            for _ in range(requests // count + (i < requests % count)):
                if time.perf_counter() > start[0] + time_limit:
                    return
                t0 = time.perf_counter()
                reply = http.get(PATH)
                latencies.append(time.perf_counter() - t0)
                if reply.status_code != 200:
                    raise RuntimeError(f"{http.base_url}{PATH} answered {reply.status_code}")

        cpu = server_cpu(self.pid)
        with ThreadPoolExecutor(count) as pool:
            list(pool.map(client, range(count)))
        if measured:
            self.elapsed += time.perf_counter() - start[0]
            self.cpu += server_cpu(self.pid) - cpu
            self.latencies += latencies

    def figures(self) -> tuple[float, float, float, int, float]:
        """requests/s, p50 ms, p95 ms, requests done, server CPU ms per request."""
        done = len(self.latencies)
        cuts = statistics.quantiles(self.latencies, n=100)
        return done / self.elapsed, cuts[49] * 1000, cuts[94] * 1000, done, \
            self.cpu / done * 1000

    def close(self) -> None:
        for http in self.clients:
            http.close()


def measure(sides: dict[str, Side], args) -> dict[str, tuple]:
    """W warm-up requests per side, then R measured ones each in ``--rounds`` turns, the
    sides taking turns; a side stops at ``--time-limit`` seconds of its own turns."""
    for side in sides.values():
        side.turn(args.warmup, args.time_limit, measured=False)
    for round_ in range(args.rounds):
        share = args.requests // args.rounds + (round_ < args.requests % args.rounds)
        for side in sides.values():
            side.turn(share, max(0.0, args.time_limit - side.elapsed))
    return {kind: side.figures() for kind, side in sides.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="accounts to create (100,000)")
    parser.add_argument("--requests", type=int, default=500, help="measured requests per app (500)")
    parser.add_argument("--warmup", type=int, default=50, help="warm-up requests per app (50)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads (4)")
    parser.add_argument("--rounds", type=int, default=10, help="turns per side (10)")
    parser.add_argument("--time-limit", type=float, default=120, help="seconds per app at most (120)")
    parser.add_argument("--database-url", help="an empty PostgreSQL/MariaDB database "
                        "(default: SQLite in a temp dir)")
    parser.add_argument("--seed", type=int, default=1, help="demo data seed (1)")
    parser.add_argument("--theme-templates", action="store_true",
                        help="serve ours with a theme pack carrying templates (sandboxed)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="crbm-bench-") as tmp:
        folder = create_site(Path(tmp) / "site", args.database_url)
        site = Site(folder)
        if sa.inspect(site.engine).get_table_names():
            sys.exit(f"{site.database_url} is not empty: give the benchmark a database of its own")
        try:
            progress("creating schema")
            site.sync_schema()
            user = create_user(site, USERNAME, PASSWORD, is_admin=True, must_change_password=False)
            progress(f"creating {args.rows:,} demo accounts, {BATCH:,} per create_many")
            rows = demo_rows(args.rows, user.id, args.seed)
            for start in range(0, len(rows), BATCH):
                site.records.create_many("accounts", rows[start:start + BATCH], user)
            if args.theme_templates:
                install_template_theme(site, Path(tmp))
            servers, sides = [], {}
            try:
                for kind in ("ours", "bare"):
                    progress(f"{kind}: starting uvicorn")
                    proc, base = start_server(kind, folder)
                    servers.append(proc)
                    cookies = login(base) if kind == "ours" else None
                    seen = page_accounts(base, cookies)
                    if len(seen) != 50 or (sides and seen != sides["ours"].seen):
                        sys.exit(f"{kind}: not the same 50 accounts in the same order as ours")
                    sides[kind] = Side(base, cookies, args.clients, seen, proc.pid)
                progress(f"{args.warmup} warm-up + {args.requests} requests per side, "
                         f"{args.clients} clients, {args.rounds} turns each")
                results = measure(sides, args)
            finally:
                for side in sides.values():
                    side.close()
                for proc in servers:
                    proc.terminate()
                    proc.join()
        finally:
            if args.database_url:  # leave the server database as we found it
                site.tables.drop_all(site.engine, checkfirst=True)
            site.close()

    dialect = site.engine.dialect
    backend = "mariadb" if getattr(dialect, "is_mariadb", False) else dialect.name
    theme = ", theme with templates (sandboxed)" if args.theme_templates else ""
    print(f"CRBM bench/web.py — accounts list, 50 of {args.rows:,} rows sorted by name, {backend}, "
          f"{args.requests} requests by {args.clients} clients in {args.rounds} turns{theme}")
    for kind, label in (("ours", "/m/accounts"), ("bare", "Starlette + Core")):
        rate, p50, p95, done, cpu = results[kind]
        short = f"   (only {done} in {args.time_limit:g} s)" if done < args.requests else ""
        print(f"{kind}  {label:<18} {rate:>6,.0f} req/s   p50 {p50:5.1f} ms   p95 {p95:5.1f} ms"
              f"   server CPU {cpu:5.2f} ms/request{short}")
    ratio = results["ours"][0] / results["bare"][0]
    print(f"ratio ours/bare {ratio:.2f} (aim >= 0.6); server CPU per request bare/ours "
          f"{results['bare'][4] / results['ours'][4]:.2f}")


if __name__ == "__main__":
    main()
