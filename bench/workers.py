"""Benchmark: the accounts list and an account's detail served by `crbm serve --workers 2`,
SQLite against PostgreSQL (or MariaDB), over real HTTP; then each worker's memory.

    .venv/bin/python bench/workers.py --database-url URL [--accounts N] [--quick]
                                      [--workers W] [--clients C] [--seconds S] [--rounds R]

Two sites of N accounts (100,000) and as many contacts, made like bench/scale.py's
(``RecordService.create_many``, 5,000 a batch; one account with records in the 10 modules
its detail page lists): one on SQLite in a temp dir, one in the empty database --database-url
names (its tables are dropped afterwards). Each is served by ``crbm serve --workers W`` (2)
in its own process group, on a free 127.0.0.1 port, both up at once: what a deployment runs
(the scheduler included). C (4) client threads, an httpx.Client each, signed in as an
administrator, ask for the same page for S seconds (2) — the list (``/m/accounts``, its
first page) and the detail of the account with related records — the two servers taking
turns, R (8) rounds, the order flipped each round, so a busy machine weighs on both alike.

Printed per database and page: requests/s, p50/p95 ms and the CPU per request (user +
system, /proc/<pid>/stat: steadier than rates on a shared machine) of the worker processes
and, on a local PostgreSQL, of the server processes serving them (found by the
application_name the bench adds to the URL; MariaDB's are threads of one server process, not
measured); then the ratio of the other database to SQLite, throughput (aim >= 0.8 at 2
workers) and CPU, and each worker's memory when it started and after the run: VmRSS split
into anonymous and file-backed pages (shared libraries, SQLite's memory-mapped database file)
and VmHWM, its peak (aim: <= 135 MB; the peak includes signing in, argon2's 64 MB).

--quick: 10,000 accounts, 6 rounds of 1 second.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import sqlalchemy as sa
from common import BATCH, backend_name, progress  # bench/common.py, beside this file
from scale import PASSWORD, USERNAME, build_to, new_bench, related_records  # bench/scale.py

from core.kernel.site import Site, create_site

ROOT = Path(__file__).resolve().parent.parent
APP_NAME = "crbm-bench-workers"  # PostgreSQL's application_name of the served site's connections
TICK = os.sysconf("SC_CLK_TCK")


def build(folder: Path, database_url: str | None, accounts: int, seed: int) -> tuple[Site, str]:
    """A site of ``accounts`` accounts + contacts; returns it and the related account's id."""
    if database_url and sa.make_url(database_url).get_backend_name() == "postgresql":
        database_url = sa.make_url(database_url).update_query_dict(
            {"application_name": APP_NAME}).render_as_string(hide_password=False)
    site = Site(create_site(folder, database_url))
    if sa.inspect(site.engine).get_table_names():
        sys.exit(f"{site.database_url} is not empty: give the benchmark a database of its own")
    site.sync_schema()
    bench = new_bench(site, seed)
    detail = related_records(bench)
    build_to(bench, accounts)
    return site, detail


class Server:
    """``crbm serve --workers W [options]`` on a free port, in its own process group."""

    def __init__(self, folder: Path, workers: int, *options: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from cli import main; main()", "--site", str(folder),
             "serve", "--workers", str(workers), "--port", str(self.port), *options],
            cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
        deadline = time.perf_counter() + 120
        while time.perf_counter() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(self.base + "/health", timeout=1).status_code == 200 \
                        and len(self.workers()) == workers:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        sys.exit(f"crbm serve --site {folder} did not start")

    def workers(self) -> list[int]:
        """The worker processes: the children uvicorn spawned (not multiprocessing's helpers)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [int(pid) for pid in children
                if "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_text()]

    def cpu(self) -> float:
        """Seconds of CPU (user + system) the workers have used."""
        return cpu_of(self.workers())

    def memory(self) -> list[str]:
        lines = []
        for pid in self.workers():
            status = dict(line.split(":", 1) for line in
                          Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
            mb = lambda key, status=status: int(status[key].split()[0]) / 1024  # kB
            lines.append(f"RSS {mb('VmRSS'):.0f} MB (anon {mb('RssAnon'):.0f}, file "
                         f"{mb('RssFile'):.0f}), peak {mb('VmHWM'):.0f} MB, "
                         f"{status['Threads'].strip()} threads")
        return lines

    def stop(self) -> None:
        stop_group(self.proc)


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group ``proc`` leads (started with ``start_new_session``), its
    children included; SIGKILL after 30 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def cpu_of(pids) -> float:
    """Seconds of CPU (user + system) these processes have used (0 for one gone)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def server_processes(site: Site) -> Callable[[], list[int]]:
    """The PostgreSQL server processes serving the site's workers (a local server), found by
    the application_name the bench gives its connections; none on another database."""
    if site.engine.dialect.name != "postgresql":
        return list
    engine = sa.create_engine(site.engine.url, poolclass=sa.pool.NullPool)
    query = sa.text("SELECT pid FROM pg_stat_activity WHERE application_name = :name")

    def pids() -> list[int]:
        with engine.connect() as conn:
            return list(conn.execute(query, {"name": APP_NAME}).scalars())
    return pids


def login(base: str) -> httpx.Cookies:
    with httpx.Client(base_url=base) as client:
        token = re.search(r'name="_csrf" value="([^"]+)"', client.get("/login").text).group(1)
        reply = client.post("/login", data={"_csrf": token, "username": USERNAME,
                                             "password": PASSWORD})
        if reply.status_code != 303:
            sys.exit(f"{base}: sign-in failed ({reply.status_code})")
        return client.cookies


class Tally:
    def __init__(self):
        self.times: list[float] = []  # seconds per request
        self.elapsed = self.cpu = self.db_cpu = 0.0

    def rate(self) -> float:
        return len(self.times) / self.elapsed

    def line(self, database_measured: bool) -> str:
        cuts = statistics.quantiles(self.times, n=100)
        per = lambda seconds: seconds / len(self.times) * 1000
        return f"{self.rate():7,.0f} req/s   p50 {cuts[49] * 1000:6.1f} ms   p95 " \
            f"{cuts[94] * 1000:6.1f} ms   cpu ms/req: workers {per(self.cpu):5.2f}  database " + \
            (f"{per(self.db_cpu):5.2f}  both {per(self.cpu + self.db_cpu):5.2f}"
             if database_measured else "    -  (not measured)")

    def total_cpu(self) -> float:
        return (self.cpu + self.db_cpu) / len(self.times)


def drive(server: Server, database: Callable[[], list[int]], cookies, path: str, clients: int,
          seconds: float, tally: Tally, expect: str) -> None:
    """C clients ask for ``path`` until ``seconds`` have passed; adds to ``tally``."""
    times: list[float] = []
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)

    def client(_):
        with httpx.Client(base_url=server.base, cookies=cookies, timeout=30) as http:
            http.get(path)  # the connection is open before the clock starts
            ready.wait()
            mine = []
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                reply = http.get(path)
                mine.append(time.perf_counter() - t0)
                if reply.status_code != 200 or expect not in reply.text:
                    raise RuntimeError(f"{server.base}{path} answered {reply.status_code}")
            with lock:
                times.extend(mine)

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client, i) for i in range(clients)]
        cpu0, db0 = server.cpu(), {pid: cpu_of([pid]) for pid in database()}
        stop_at = time.perf_counter() + seconds + 3600  # until the barrier opens
        ready.wait()
        t0 = time.perf_counter()
        stop_at = t0 + seconds
        for future in futures:
            future.result()
        elapsed = time.perf_counter() - t0
    tally.cpu += server.cpu() - cpu0
    tally.db_cpu += sum(cpu_of([pid]) - db0.get(pid, 0) for pid in database())
    tally.elapsed += elapsed
    tally.times.extend(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True,
                        help="an empty PostgreSQL/MariaDB database, compared with SQLite")
    parser.add_argument("--accounts", type=int, default=100_000, help="accounts (100,000)")
    parser.add_argument("--quick", action="store_true", help="10,000 accounts, 6 rounds of 1 s")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (4)")
    parser.add_argument("--seconds", type=float, default=2, help="seconds per turn (2)")
    parser.add_argument("--rounds", type=int, default=8, help="turns per server and page (8)")
    parser.add_argument("--seed", type=int, default=1, help="demo data seed (1)")
    args = parser.parse_args()
    if args.quick:
        args.accounts, args.rounds, args.seconds = 10_000, 6, 1.0

    sites, servers = {}, {}
    with tempfile.TemporaryDirectory(prefix="crbm-bench-") as tmp:
        try:
            for name, url in (("sqlite", None), ("other", args.database_url)):
                progress(f"{url or 'sqlite'}: {args.accounts:,} accounts + contacts, "
                         f"{BATCH:,} per create_many")
                sites[name] = build(Path(tmp) / name, url, args.accounts, args.seed)
                sites[name][0].close()
            backends = {name: backend_name(site) for name, (site, _) in sites.items()}
            pages = {"list": ("/m/accounts", 'href="/m/accounts/'),
                     "detail": (None, "data-subpanel")}
            for name, (site, _) in sites.items():
                progress(f"{backends[name]}: crbm serve --workers {args.workers}")
                servers[name] = Server(Path(tmp) / name, args.workers)
            started = {name: server.memory() for name, server in servers.items()}
            cookies = {name: login(server.base) for name, server in servers.items()}
            databases = {name: server_processes(site) for name, (site, _) in sites.items()}
            tallies = {(name, page): Tally() for name in servers for page in pages}
            progress(f"{args.rounds} rounds of {args.seconds:g} s per server and page, "
                     f"{args.clients} clients")
            for r in range(-1, args.rounds):  # round -1 warms up and is not counted
                order = list(servers) if r % 2 else list(reversed(servers))
                for page, (path, expect) in pages.items():
                    for name in order:
                        drive(servers[name], databases[name], cookies[name],
                              path or f"/m/accounts/{sites[name][1]}", args.clients,
                              args.seconds if r >= 0 else 1,
                              tallies[name, page] if r >= 0 else Tally(), expect)
            memory = {name: server.memory() for name, server in servers.items()}
        finally:
            for server in servers.values():
                server.stop()
            if "other" in sites:  # leave the server database as we found it
                site = sites["other"][0]
                site.tables.drop_all(site.engine, checkfirst=True)
                site.close()

    other = backends["other"]
    print(f"CRBM bench/workers.py — crbm serve --workers {args.workers}, {args.accounts:,} "
          f"accounts + contacts, {args.clients} clients, {args.rounds} x {args.seconds:g} s "
          f"per page, interleaved")
    for page in pages:
        for name in servers:
            print(f"{page:<7} {backends[name]:<11} "
                  f"{tallies[name, page].line(backends[name] in ('sqlite', 'postgresql'))}")
    for page in pages:
        ratio = tallies["other", page].rate() / tallies["sqlite", page].rate()
        cpu = tallies["other", page].total_cpu() / tallies["sqlite", page].total_cpu()
        print(f"{page:<7} {other}/sqlite throughput {ratio:.2f} (aim >= 0.8), cpu per request "
              + (f"(workers + database) {cpu:.2f}" if other == "postgresql" else
                 f"(workers only) {cpu:.2f}"))
    for name in servers:
        for i, (line, start) in enumerate(zip(memory[name], started[name], strict=True)):
            print(f"worker {i + 1} {backends[name]:<11} {line}; started at "
                  f"{start.split(' (')[0].removeprefix('RSS ')}")


if __name__ == "__main__":
    main()
