"""Soak: the scaled deployment of docs/deployment.md under a mixed load, Studio and pack
changes made while it runs — 0 errors, 0 lost writes, every worker up to date at once.

    .venv/bin/python bench/soak.py [--database-url URL] [--minutes M] [--clients C]
                                   [--web-workers W] [--job-workers J] [--accounts N]

Issue 24's acceptance point, on PostgreSQL: `crbm serve --workers W --no-jobs` (4) and J (2)
`crbm worker` processes, each in its own process group, on a site of N (3,000) accounts
and as many contacts (bench/scale.py's build) in the database --database-url names
(default postgresql+psycopg://postgres@127.0.0.1/crbm_soak: created if missing and then
dropped again; an existing one must be empty and is emptied afterwards).

For M minutes (10) C (8) client threads, each an httpx.Client signed in through the login
form and holding an OAuth access token of the same administrator, send a weighted mix
(MIX): the accounts list and its page 2, an account's page and its edit form (web UI), an
account read, created or updated through the REST API (an update is the read's ETag sent
back as If-Match). Each client updates only its own accounts (those it created and its
share of the built ones), so the last write it recorded for an account is what the
database must hold. Every save writes a webhook delivery (a subscription to the accounts
made before the run); the job workers' scheduler sends them every second to a receiver in
this process: the background work, checked end to end.

Each request carries its own ``X-Request-ID``; the access log (``<site>/logs/crbm.log``,
one JSON line per request with the serving process's ``pid``) says which worker served
it. Mid-run, through the running site:
- at 1/3 the administrator adds a text field (FIELD) to accounts in the Studio and places
  it on the edit layout (its Layout Editor's form): PostgreSQL runs an ALTER TABLE under
  the load. Every API read started after the add must return the field, every edit form
  requested after the layout save must show it — on every worker pid, the first request
  included — and writes include it from then on. Fresh connections probe the edit form
  until every web worker has answered one.
- at 2/3 another process runs `crbm pack install` with a shipped pack (PACK, a theme: a
  personality pack would replace the site's customizations, the Studio field among them);
  fresh connections then probe the Preferences page until every web worker has offered
  the new theme, each from its first request.

Then: every write recorded is read back from the database with the value written; every
delivery was delivered, signed, and carried the values written; every job queued during
the run is done (none failed); the log holds no ERROR line. Printed: requests/s, p50/p95 per
kind, the requests each worker pid served, the jobs by kind, and PASS or FAIL with every
problem (a failed request with its request id); the exit status is 1 on FAIL.
tests/jobs/test_scaled_site.py runs the same harness (``populate``, ``Deployment``,
``soak``) for ~25 s with 2 web workers and 1 job worker.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import hmac
import html
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

import httpx
import sqlalchemy as sa
from common import bench_site, progress  # bench/common.py, beside this file
from scale import build_to, new_bench  # bench/scale.py
from workers import ROOT, Server, login, stop_group  # bench/workers.py

from core.apps.oauth import oauth
from core.apps.packs.pack_archive import build as build_pack
from core.apps.webhooks import webhooks
from core.kernel.site import Site

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1/crbm_soak"
FIELD, FIELD_LABEL = "soak_note", "Soak note"  # the Studio field added mid-run
FIELD_INPUT = f'name="{FIELD}"'  # the field's input on the edit form
PACK, PACK_SIGN = "theme_nocturne", '<option value="theme_nocturne"'  # on /preferences
MIX = {"list": 20, "list page 2": 8, "detail": 16, "edit form": 10, "api read": 8,
       "create": 14, "update": 24}  # an update is an "api read" (its ETag) and a PATCH
TIMEOUT = 120.0  # seconds a request may take: a slow answer is not an error, none is
RECONNECT = 40  # requests on one connection: new ones spread the load over the workers
PROBE_SECONDS = 90.0  # to reach every worker with a fresh connection
DRAIN_SECONDS = 120.0  # for the deliveries and jobs queued during the run to finish


# -- the site -------------------------------------------------------------------------------

def ensure_database(url: str) -> bool:
    """Create the PostgreSQL database ``url`` names if it is missing; whether it was."""
    url_ = sa.make_url(url)
    if url_.get_backend_name() != "postgresql":
        sys.exit(f"{url}: the soak runs on PostgreSQL (procrastinate's job workers)")
    admin = sa.create_engine(url_.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                            {"name": url_.database}).first():
                return False
            quote = conn.dialect.identifier_preparer.quote
            conn.exec_driver_sql(f"CREATE DATABASE {quote(url_.database)}")
            return True
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    """Drop the database ``ensure_database`` made (its connections closed by force)."""
    url_ = sa.make_url(url)
    admin = sa.create_engine(url_.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            quote = conn.dialect.identifier_preparer.quote
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote(url_.database)} WITH (FORCE)")
    finally:
        admin.dispose()


@dataclass
class Fixture:
    """What the load needs from the built site."""
    token: str  # the administrator's access token
    ids: list[str]  # the accounts built before the run
    pack_zip: Path


class Receiver:
    """The webhook endpoint: a threaded HTTP server on a free loopback port keeping each
    delivery's body by its id (a retry sends the same one), its signature checked."""

    def __init__(self):
        self.bodies: dict[str, dict] = {}
        self.unsigned: list[str] = []  # delivery ids whose signature did not match
        self.secret = b""
        receiver = self

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sent = self.headers.get("X-CRBM-Signature", "")
                mac = hmac.new(receiver.secret, body, hashlib.sha256).hexdigest()
                delivery = json.loads(body)
                if not hmac.compare_digest(sent, f"sha256={mac}"):
                    receiver.unsigned.append(delivery["id"])
                receiver.bodies[delivery["id"]] = delivery
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def populate(site: Site, accounts: int, seed: int, receiver: Receiver, seconds: float,
             folder: Path) -> Fixture:
    """The administrator (bench/scale.py's), ``accounts`` accounts and contacts, no API rate
    limit (the clients are one user), webhooks sent every second to ``receiver``, an access
    token outliving the run, and the pack zip built into ``folder``."""
    bench = new_bench(site, seed)
    build_to(bench, accounts)
    for key, value in (("api_rate_limit_user", 10**9), ("api_rate_limit_client", 10**9),
                       ("webhooks_interval_seconds", 1)):
        site.set_setting(key, value)
    hook = webhooks.subscribe(site, bench.user, receiver.url, "accounts", ["created", "updated"])
    receiver.secret = hook["secret"].encode()
    token = oauth.issue_access_token(site, bench.user.id, client_id="soak",
                                     lifetime=int(seconds) + 3600)["access_token"]
    accounts_ = site.tables.tables["accounts"]
    with site.engine.connect() as conn:
        ids = list(conn.execute(sa.select(accounts_.c.id).order_by(accounts_.c.id)).scalars())
    return Fixture(token, ids, build_pack(ROOT / "personality_packs" / PACK, folder))


def crbm(folder: Path, *args: str) -> list[str]:
    """The command line of ``crbm --site folder args``, as workers.Server starts it."""
    return [sys.executable, "-c", "from cli import main; main()", "--site", str(folder), *args]


class Deployment:
    """``crbm serve --workers W --no-jobs`` and J ``crbm worker`` processes on the site in
    ``folder``, each in its own process group; all stopped on leaving, even on failure."""

    def __init__(self, folder: Path, web: int, jobs: int):
        self.folder, self.web, self.jobs = folder, web, jobs
        self.server: Server | None = None
        self.job_workers: list[subprocess.Popen] = []

    def __enter__(self) -> Self:
        try:
            self.server = Server(self.folder, self.web, "--no-jobs")
            self.web_pids = self.server.workers()
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            for _ in range(self.jobs):
                self.job_workers.append(subprocess.Popen(
                    crbm(self.folder, "worker"), cwd=ROOT, env=env, start_new_session=True,
                    stdout=subprocess.DEVNULL))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.job_workers:
            stop_group(proc)
        if self.server is not None:
            self.server.stop()

    @property
    def base(self) -> str:
        return self.server.base

    def problems(self) -> list[str]:
        """Processes that died or were replaced during the run."""
        out = []
        if self.server.proc.poll() is not None:
            out.append(f"crbm serve exited ({self.server.proc.returncode})")
        elif sorted(self.server.workers()) != sorted(self.web_pids):
            out.append(f"web workers changed: {sorted(self.web_pids)} -> "
                       f"{sorted(self.server.workers())}")
        out += [f"crbm worker {p.pid} exited ({p.returncode})" for p in self.job_workers
                if p.poll() is not None]
        return out


# -- requests --------------------------------------------------------------------------------

@dataclass(slots=True)
class Sample:
    kind: str
    rid: str  # the X-Request-ID we sent
    start: float  # time.monotonic()
    seconds: float
    status: int | None  # None: no answer (a transport error)
    problem: str | None  # unexpected status or no answer
    seen: bool | None = None  # the change looked for is on the answer (None: not looked)


@dataclass
class Log:
    """One client's requests and the writes it believes succeeded."""
    name: str
    samples: list[Sample] = field(default_factory=list)
    writes: dict[str, dict] = field(default_factory=dict)  # id -> the last values written
    uncertain: set[str] = field(default_factory=set)  # a write failed: its outcome unknown
    events: list[tuple[str, str, dict]] = field(default_factory=list)  # (id, event, values)
    crash: str | None = None
    n: int = 0

    def ask(self, http: httpx.Client, kind: str, method: str, path: str, expect: int,
            look: Callable[[httpx.Response], bool] | None = None,
            **kwargs) -> httpx.Response | None:
        """One request, recorded; the answer if it has the ``expect``ed status."""
        self.n += 1
        rid = f"{self.name}-{self.n}"
        headers = {**kwargs.pop("headers", {}), "X-Request-ID": rid}
        t0 = time.monotonic()
        try:
            reply = http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            self.samples.append(Sample(kind, rid, t0, time.monotonic() - t0, None,
                                       f"{method} {path}: {type(exc).__name__} {exc}"))
            return None
        seconds = time.monotonic() - t0
        problem = None if reply.status_code == expect else \
            f"{method} {path}: {reply.status_code} {reply.text[:300]!r}"
        seen = look(reply) if look is not None and problem is None else None
        self.samples.append(Sample(kind, rid, t0, seconds, reply.status_code, problem, seen))
        return None if problem else reply


@dataclass
class Load:
    """What the clients share: where, who, the stop signal and the field's arrival."""
    base: str
    token: str
    ids: list[str]
    clients: int
    seed: int
    stop: threading.Event = field(default_factory=threading.Event)
    field_ready: threading.Event = field(default_factory=threading.Event)


def has_field(reply: httpx.Response) -> bool:
    return FIELD in reply.json()


def client(load: Load, index: int, log: Log) -> None:
    """Client ``index``'s loop until ``load.stop``: the weighted mix, writes recorded."""
    rng = random.Random(load.seed * 1000 + index)
    mine = load.ids[index::load.clients]  # the built accounts only this client updates
    api = {"Authorization": f"Bearer {load.token}"}
    kinds, weights = list(MIX), list(MIX.values())
    http = None
    try:
        cookies = login(load.base)
        while not load.stop.is_set():
            if log.n % RECONNECT == 0:
                if http is not None:
                    http.close()
                http = httpx.Client(base_url=load.base, cookies=cookies, timeout=TIMEOUT)
            kind = rng.choices(kinds, weights)[0]
            some = rng.choice(load.ids)
            if kind == "list":
                log.ask(http, kind, "GET", "/m/accounts", 200)
            elif kind == "list page 2":
                log.ask(http, kind, "GET", "/m/accounts?page=2", 200)
            elif kind == "detail":
                log.ask(http, kind, "GET", f"/m/accounts/{some}", 200)
            elif kind == "edit form":
                log.ask(http, kind, "GET", f"/m/accounts/{some}/edit", 200,
                        lambda r: FIELD_INPUT in r.text)
            elif kind == "api read":
                log.ask(http, kind, "GET", f"/api/v1/accounts/{some}", 200, has_field,
                        headers=api)
            else:
                unique = f"{index}-{log.n}"
                values = {"employees": (index + 1) * 10_000_000 + log.n}  # none the demo has
                if load.field_ready.is_set():
                    values[FIELD] = f"note {unique}"
                if kind == "create":
                    values["name"] = f"Soak {rng.getrandbits(48):012x} {unique}"
                    reply = log.ask(http, kind, "POST", "/api/v1/accounts", 201,
                                    json=values, headers=api)
                    if reply is not None:
                        record_id = reply.json()["id"]
                        mine.append(record_id)
                        log.writes[record_id] = dict(values)
                        log.events.append((record_id, "created", values))
                    continue
                target = rng.choice(mine)
                read = log.ask(http, "api read", "GET", f"/api/v1/accounts/{target}", 200,
                               has_field, headers=api)
                if read is None:
                    continue
                reply = log.ask(http, kind, "PATCH", f"/api/v1/accounts/{target}", 200,
                                json=values, headers={**api, "If-Match": read.headers["ETag"]})
                if reply is None:
                    log.uncertain.add(target)
                else:
                    log.writes.setdefault(target, {}).update(values)
                    log.events.append((target, "updated", values))
    except (Exception, SystemExit):  # noqa: BLE001  reported, never a silent thread
        log.crash = traceback.format_exc()
    finally:
        if http is not None:
            http.close()


# -- which worker served what ------------------------------------------------------------------

class AccessLog:
    """Request id -> (pid, status) from the site's log file, read as it grows (a rotation,
    crbm.log renamed crbm.log.1, is followed); and its ERROR lines."""

    def __init__(self, path: Path):
        self.path = path
        self.inode: int | None = None
        self.offset = 0
        self.rest = b""
        self.pids: dict[str, int] = {}
        self.errors: list[dict] = []
        self.warnings = 0

    def read(self) -> None:
        try:
            inode = self.path.stat().st_ino
        except FileNotFoundError:
            return
        if self.inode is not None and inode != self.inode:  # rotated: finish the old file
            for old in sorted(self.path.parent.glob(self.path.name + ".*")):
                if old.stat().st_ino == self.inode:
                    self._consume(old)
                    break
            self.offset, self.rest = 0, b""
        self.inode = inode
        self._consume(self.path)

    def _consume(self, path: Path) -> None:
        with path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        *lines, self.rest = (self.rest + data).split(b"\n")
        for line in lines:
            entry = json.loads(line)
            if entry["logger"] == "crbm.access" and "request_id" in entry:
                self.pids[entry["request_id"]] = entry["pid"]
            elif entry["level"] in ("ERROR", "CRITICAL"):
                self.errors.append(entry)
            elif entry["level"] == "WARNING":
                self.warnings += 1


def probe(deployment: Deployment, cookies, access: AccessLog, log: Log, kind: str, path: str,
          look: Callable[[httpx.Response], bool]) -> set[int]:
    """GET ``path`` on a new connection each time until every web worker has answered
    one (or PROBE_SECONDS passed): the pids reached."""
    deadline = time.monotonic() + PROBE_SECONDS
    mine: list[str] = []
    reached: set[int] = set()
    while time.monotonic() < deadline and not set(deployment.web_pids) <= reached:
        with httpx.Client(base_url=deployment.base, cookies=cookies, timeout=TIMEOUT) as http:
            log.ask(http, kind, "GET", path, 200, look, headers={"Connection": "close"})
        mine.append(log.samples[-1].rid)
        access.read()
        reached = {access.pids[rid] for rid in mine if rid in access.pids}
    return reached


def form_csrf(page: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', page).group(1)


def add_field(http: httpx.Client, log: Log) -> tuple[float | None, float | None]:
    """The administrator adds FIELD to accounts in the Studio, then (Layout Editor) puts it
    on the edit layout as a section of its own: when each answered (None: it failed)."""
    new = "/admin/studio/modules/accounts/fields/new"
    page = log.ask(http, "studio", "GET", new, 200)
    if page is None or log.ask(http, "studio add", "POST", new, 303, data={
            "_csrf": form_csrf(page.text), "type": "text", "name": FIELD,
            "label": FIELD_LABEL}) is None:
        return None, None
    added = time.monotonic()
    edit = "/admin/studio/modules/accounts/layouts/edit"
    editor = log.ask(http, "studio", "GET", edit, 200)
    if editor is None:
        return added, None
    layout = json.loads(html.unescape(
        re.search(r'name="layout" value="([^"]*)"', editor.text).group(1)))
    layout.append({"label": FIELD_LABEL, "rows": [[FIELD, None]]})
    placed = log.ask(http, "studio layout", "POST", edit, 303,
                     data={"_csrf": form_csrf(editor.text), "layout": json.dumps(layout)})
    return added, None if placed is None else time.monotonic()


def install_pack(folder: Path, pack_zip: Path) -> tuple[int, str]:
    """``crbm pack install`` in a process of its own: (exit status, output)."""
    done = subprocess.run(crbm(folder, "pack", "install", str(pack_zip)), check=False, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=600)
    return done.returncode, (done.stdout + done.stderr).strip()


# -- the run ---------------------------------------------------------------------------------

@dataclass
class Report:
    """What a run found; ``failures`` empty means PASS."""
    seconds: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)  # request id -> worker pid
    web_pids: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # failed requests, with their ids
    lost: list[str] = field(default_factory=list)  # writes not found as written
    unseen: list[str] = field(default_factory=list)  # answers without the change
    unreached: list[str] = field(default_factory=list)  # workers a probe never reached
    field_pids: dict[int, bool] = field(default_factory=dict)  # first edit form after
    pack_pids: dict[int, bool] = field(default_factory=dict)  # first preferences after
    failures: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # the other figures, printed
    writes: int = 0
    jobs: Counter = field(default_factory=Counter)  # (name, status) -> jobs

    @property
    def passed(self) -> bool:
        return not self.failures


def soak(deployment: Deployment, site: Site, fixture: Fixture, receiver: Receiver,
         seconds: float, clients: int, seed: int = 1) -> Report:
    """The load for ``seconds`` from ``clients`` threads, the Studio field at 1/3, the pack
    at 2/3; then the checks."""
    report = Report(web_pids=list(deployment.web_pids))
    load = Load(deployment.base, fixture.token, fixture.ids, clients, seed)
    logs = [Log(f"soak{i}") for i in range(clients)]
    admin, probes = Log("admin"), Log("probe")
    access = AccessLog(site.folder / "logs" / "crbm.log")
    started_wall = dt.datetime.now(dt.UTC)
    threads = [threading.Thread(target=client, args=(load, i, logs[i]), daemon=True)
               for i in range(clients)]
    t0 = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        marks = changes(deployment, site, fixture, load, access, admin, probes, report,
                        t0, seconds)
    finally:  # the clients stop whatever happened
        load.stop.set()
        for thread in threads:
            thread.join(TIMEOUT + 30)
    report.seconds = time.monotonic() - t0
    ended_wall = dt.datetime.now(dt.UTC)
    progress(f"{report.seconds:.0f} s: load stopped; waiting for deliveries and jobs")
    report.failures += deployment.problems()
    drained = drain(site, ended_wall)
    access.read()
    judge(report, site, logs, admin, probes, access, marks, drained, started_wall, ended_wall,
          receiver)
    report.failures += [f"client {log.name} crashed:\n{log.crash}" for log in logs if log.crash]
    return report


def changes(deployment: Deployment, site: Site, fixture: Fixture, load: Load,
            access: AccessLog, admin: Log, probes: Log, report: Report, t0: float,
            seconds: float) -> dict[str, float | None]:
    """While the clients run: the Studio field at 1/3 and the pack at 2/3, each followed by
    probes of every web worker; returns when each change was made (monotonic)."""
    cookies = login(deployment.base)
    marks: dict[str, float | None] = {}
    with httpx.Client(base_url=deployment.base, cookies=cookies, timeout=TIMEOUT) as http:
        load.stop.wait(max(0.0, t0 + seconds / 3 - time.monotonic()))
        progress(f"{time.monotonic() - t0:.0f} s: Studio: adding {FIELD} to accounts")
        marks["added"], marks["placed"] = add_field(http, admin)
        if marks["added"] is not None:
            load.field_ready.set()
        if marks["placed"] is not None:
            reached = probe(deployment, cookies, access, probes, "probe edit form",
                            f"/m/accounts/{fixture.ids[0]}/edit", lambda r: FIELD_INPUT in r.text)
            report.unreached += [f"edit form: pid {p}" for p in
                                 sorted(set(deployment.web_pids) - reached)]
        else:
            report.failures.append(f"the Studio did not add and place {FIELD}: "
                                   + "; ".join(s.problem for s in admin.samples if s.problem))
    load.stop.wait(max(0.0, t0 + 2 * seconds / 3 - time.monotonic()))
    progress(f"{time.monotonic() - t0:.0f} s: crbm pack install {fixture.pack_zip.name}")
    code, output = install_pack(site.folder, fixture.pack_zip)
    marks["pack"] = time.monotonic()
    if code:
        report.failures.append(f"crbm pack install exited {code}: {output[-1000:]}")
    else:
        reached = probe(deployment, cookies, access, probes, "probe preferences",
                        "/preferences", lambda r: PACK_SIGN in r.text)
        report.unreached += [f"preferences: pid {p}" for p in
                             sorted(set(deployment.web_pids) - reached)]
    load.stop.wait(max(0.0, t0 + seconds - time.monotonic()))
    return marks


def drain(site: Site, until) -> list[str]:
    """Wait (polling, DRAIN_SECONDS at most) for the deliveries and jobs queued before
    ``until`` to finish; what is still waiting."""
    deliveries, jobs = (site.tables.tables[t] for t in ("crbm_webhook_deliveries", "crbm_jobs"))
    deadline = time.monotonic() + DRAIN_SECONDS
    while True:
        with site.engine.connect() as conn:
            waiting = conn.execute(sa.select(sa.func.count()).where(
                deliveries.c.status.in_(("pending", "sending")),
                deliveries.c.created_at <= until)).scalar()
            pending = conn.execute(sa.select(jobs.c.name, sa.func.count()).where(
                jobs.c.status == "pending", jobs.c.created_at <= until,
                jobs.c.run_at <= until).group_by(jobs.c.name)).all()
        left = ([f"{waiting} webhook deliveries"] if waiting else []) + \
            [f"{n} {name} jobs" for name, n in pending]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)  # polling, with a deadline


def judge(report: Report, site: Site, logs: list[Log], admin: Log, probes: Log,
          access: AccessLog, marks: dict, drained: list[str], started, ended,
          receiver: Receiver) -> None:
    every = [s for log in (*logs, admin, probes) for s in log.samples]
    report.samples, report.pids = every, dict(access.pids)
    report.errors = [f"{s.kind} [{s.rid}, pid {access.pids.get(s.rid)}] {s.problem}"
                     for s in every if s.problem]
    # the field: API reads from the add on, edit forms from the layout's save on
    since = {"api read": marks.get("added"), "edit form": marks.get("placed"),
             "probe edit form": marks.get("placed"), "probe preferences": marks.get("pack")}
    first: dict[str, dict[int, tuple[float, bool]]] = defaultdict(dict)
    for s in sorted(every, key=lambda s: s.start):
        after = since.get(s.kind)
        if s.seen is None or after is None or s.start < after:
            continue
        pid = access.pids.get(s.rid)
        if not s.seen:
            report.unseen.append(f"{s.kind} [{s.rid}] served by pid {pid} without the change")
        group = "pack" if s.kind == "probe preferences" else "field"
        if s.kind != "api read" and pid is not None:
            first[group].setdefault(pid, (s.start, s.seen))
    report.field_pids = {pid: seen for pid, (_, seen) in first["field"].items()}
    report.pack_pids = {pid: seen for pid, (_, seen) in first["pack"].items()}
    missing = [s.rid for s in every if s.status is not None and s.rid not in access.pids]
    if missing:
        report.failures.append(f"{len(missing)} answered requests are not in the access log, "
                               f"e.g. {missing[:5]}")
    report.lost, report.writes = lost_writes(site, logs)
    report.failures += [f"{len(report.errors)} failed requests"] if report.errors else []
    report.failures += [f"{len(report.lost)} lost writes"] if report.lost else []
    report.failures += [f"{len(report.unseen)} answers without the change"] \
        if report.unseen else []
    report.failures += [f"never reached by a probe: {', '.join(report.unreached)}"] \
        if report.unreached else []
    report.failures += [f"still waiting after {DRAIN_SECONDS:.0f} s: {', '.join(drained)}"] \
        if drained else []
    report.failures += webhook_problems(report, site, logs, started, ended, receiver)
    report.failures += job_problems(report, site, started, ended)
    report.failures += [f"log ERROR (pid {e['pid']}, {e.get('request_id')}): {e['msg']}"
                        + (f" — {exception(e['exc'])}" if e.get("exc") else "")
                        for e in access.errors]
    report.lines.append("Studio changes: " + ", ".join(
        f"{s.kind} by pid {access.pids.get(s.rid)} in {s.seconds:.1f} s"
        for s in admin.samples if s.kind != "studio"))
    report.lines.append(f"log: {len(access.errors)} errors, {access.warnings} warnings")


def exception(trace: str) -> str:
    """A traceback's last exception line (not SQLAlchemy's SQL and links below it)."""
    lines = [line for line in trace.splitlines()
             if line and not line.startswith((" ", "(", "[", "^", "LINE", "Traceback"))]
    return lines[-1][:300] if lines else ""


def lost_writes(site: Site, logs: list[Log]) -> tuple[list[str], int]:
    """Every recorded write read back (the table reflected: the Studio added a column)."""
    expected: dict[str, dict] = {}
    for log in logs:
        for record_id, values in log.writes.items():
            if record_id not in log.uncertain:
                expected[record_id] = values
    accounts = sa.Table("accounts", sa.MetaData(), autoload_with=site.engine)
    ids, found = list(expected), {}
    with site.engine.connect() as conn:
        for start in range(0, len(ids), 1000):
            found.update((row.id, row) for row in conn.execute(
                sa.select(accounts).where(accounts.c.id.in_(ids[start:start + 1000]))))
    lost = []
    for record_id, values in expected.items():
        row = found.get(record_id)
        if row is None:
            lost.append(f"{record_id}: missing")
            continue
        wrong = {k: (v, row._mapping[k]) for k, v in values.items() if row._mapping[k] != v}
        if wrong or row.deleted:
            lost.append(f"{record_id}: written/read {wrong or 'deleted'}")
    return lost, sum(len(log.events) for log in logs)


def webhook_problems(report: Report, site: Site, logs: list[Log], started, ended,
                     receiver: Receiver) -> list[str]:
    """Every delivery of the run delivered, and every write recorded announced with the
    values written."""
    table = site.tables.tables["crbm_webhook_deliveries"]
    with site.engine.connect() as conn:
        statuses = dict(conn.execute(sa.select(table.c.status, sa.func.count()).where(
            table.c.created_at >= started, table.c.created_at <= ended)
            .group_by(table.c.status)).all())
        retried = conn.execute(sa.select(sa.func.count()).where(
            table.c.created_at >= started, table.c.attempts > 1)).scalar()
    got: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for body in list(receiver.bodies.values()):
        got[body["record_id"], body["event"]].append(body["record"])
    unannounced = [f"{record_id} {event} {values}" for log in logs
                   for record_id, event, values in log.events
                   if not any(all(r.get(k) == v for k, v in values.items())
                              for r in got[record_id, event])]
    report.lines.append(f"webhooks: {dict(statuses)} deliveries, {retried} retried, "
                        f"{len(receiver.bodies)} received")
    out = []
    if statuses.get("failed"):
        out.append(f"{statuses['failed']} webhook deliveries failed")
    if unannounced:
        out.append(f"{len(unannounced)} writes without their delivery, e.g. {unannounced[:3]}")
    if receiver.unsigned:
        out.append(f"{len(receiver.unsigned)} deliveries with a bad signature")
    return out


def job_problems(report: Report, site: Site, started, ended) -> list[str]:
    jobs, runs = site.tables.tables["crbm_jobs"], site.tables.tables["crbm_scheduler_runs"]
    with site.engine.connect() as conn:
        report.jobs = Counter({(name, status): n for name, status, n in conn.execute(
            sa.select(jobs.c.name, jobs.c.status, sa.func.count())
            .where(jobs.c.created_at >= started, jobs.c.created_at <= ended)
            .group_by(jobs.c.name, jobs.c.status)).all()})
        failed_runs = conn.execute(sa.select(runs.c.task, runs.c.result).where(
            runs.c.started >= started, runs.c.status == "failed")).all()
    failed = sum(n for (_, status), n in report.jobs.items() if status == "failed")
    return ([f"{failed} jobs failed"] if failed else []) + \
        [f"scheduled task {task} failed: {result}" for task, result in failed_runs]


# -- printing ---------------------------------------------------------------------------------

def summary(report: Report, title: str) -> list[str]:
    out = [title]
    served = [s for s in report.samples if s.status is not None]
    out.append(f"requests: {len(report.samples):,} in {report.seconds:.0f} s = "
               f"{len(report.samples) / report.seconds:,.1f}/s; writes recorded "
               f"{report.writes:,}")
    out.append(f"{'kind':<18} {'n':>7} {'p50 ms':>8} {'p95 ms':>8} {'errors':>6}")
    by_kind: dict[str, list[Sample]] = defaultdict(list)
    for s in report.samples:
        by_kind[s.kind].append(s)
    for kind, samples in by_kind.items():
        times = sorted(s.seconds * 1000 for s in samples)
        p95 = statistics.quantiles(times, n=100)[94] if len(times) > 1 else times[0]
        out.append(f"{kind:<18} {len(samples):>7,} {statistics.median(times):8.1f} "
                   f"{p95:8.1f} {sum(1 for s in samples if s.problem):>6}")
    pids = Counter(report.pids.get(s.rid) for s in served)
    out.append("requests per web worker pid: " + ", ".join(
        f"{pid} {pids.get(pid, 0):,} ({pids.get(pid, 0) / max(1, len(served)):.0%})"
        for pid in report.web_pids) + (f", unknown {pids[None]}" if pids.get(None) else ""))
    out.append(f"{FIELD} on the first edit form after the change, per pid: "
               + (", ".join(f"{p} {'yes' if v else 'NO'}" for p, v in
                            sorted(report.field_pids.items())) or "-"))
    out.append(f"{PACK} offered on the first Preferences page after the install, per pid: "
               + (", ".join(f"{p} {'yes' if v else 'NO'}" for p, v in
                            sorted(report.pack_pids.items())) or "-"))
    jobs: dict[str, Counter] = defaultdict(Counter)
    for (name, status), n in report.jobs.items():
        jobs[name][status] += n
    out.append("jobs queued during the run: " + ", ".join(
        f"{name} {dict(c)}" for name, c in sorted(jobs.items())))
    out += report.lines
    out.append(f"errors {len(report.errors)}, lost writes {len(report.lost)}, answers without "
               f"the change {len(report.unseen)}")
    for line in (report.errors + report.lost + report.unseen)[:50]:
        out.append(f"  {line}")
    out.append("PASS" if report.passed else "FAIL")
    out += [f"  - {f}" for f in report.failures]
    return out


@contextlib.contextmanager
def deployed(url: str, accounts: int, seed: int, seconds: float, web: int,
             jobs: int) -> Iterator[tuple[Deployment, Site, Fixture, Receiver]]:
    """The database (made if missing, dropped again if so), the site, the receiver and
    the processes, all undone on leaving."""
    created = ensure_database(url)
    try:
        with bench_site(url) as site, tempfile.TemporaryDirectory(prefix="crbm-soak-") as tmp:
            progress(f"{url}: {accounts:,} accounts + contacts")
            site.sync_schema()
            with Receiver() as receiver:
                fixture = populate(site, accounts, seed, receiver, seconds, Path(tmp))
                progress(f"crbm serve --workers {web} --no-jobs, {jobs} x crbm worker")
                with Deployment(site.folder, web, jobs) as deployment:
                    yield deployment, site, fixture, receiver
    finally:
        if created:
            drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL,
                        help=f"an empty PostgreSQL database, created if missing ({DEFAULT_URL})")
    parser.add_argument("--minutes", type=float, default=10, help="minutes of load (10)")
    parser.add_argument("--clients", type=int, default=8, help="client threads (8)")
    parser.add_argument("--web-workers", type=int, default=4, help="crbm serve --workers (4)")
    parser.add_argument("--job-workers", type=int, default=2, help="crbm worker processes (2)")
    parser.add_argument("--accounts", type=int, default=3000, help="accounts built (3,000)")
    parser.add_argument("--seed", type=int, default=1, help="demo data and mix seed (1)")
    args = parser.parse_args()
    seconds = args.minutes * 60
    with deployed(args.database_url, args.accounts, args.seed, seconds, args.web_workers,
                  args.job_workers) as (deployment, site, fixture, receiver):
        progress(f"{args.minutes:g} min of load from {args.clients} clients")
        report = soak(deployment, site, fixture, receiver, seconds, args.clients, args.seed)
    print("\n".join(summary(report, (
        f"CRBM bench/soak.py — PostgreSQL, crbm serve --workers {args.web_workers} --no-jobs "
        f"+ {args.job_workers} crbm worker, {args.accounts:,} accounts, {args.clients} "
        f"clients, {args.minutes:g} min; Studio field at 1/3, pack {PACK} at 2/3"))))
    sys.exit(0 if report.passed else 1)


if __name__ == "__main__":
    main()
