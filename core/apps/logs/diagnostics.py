"""The diagnostic bundle (1CRM's Diagnostic Tool, implementation guide §7.2.4): one zip an
administrator downloads and sends to whoever supports the site, holding what they would
ask for first and nothing they should not see.

Members:

- ``versions.json`` — CRBM, Python, the OS, the database server, the plugins and packs
  with their versions, and the libraries CRBM runs on;
- ``config.json`` — site.yaml and the site settings with every secret **redacted**: a
  value whose key names a secret (``SECRET_WORDS``), any sealed value, and the database
  URL's password;
- ``schema.txt`` — ``crbm db check``'s answer (what sync would change);
- ``scheduler.json`` and ``jobs.json`` — each scheduled task's last run, and the jobs by
  status with the last failures' messages;
- ``log.jsonl`` — the end of the site's log file (``LOG_LINES`` lines).

Made in memory from reads only (a few MB at most): downloading it changes nothing.
"""
from __future__ import annotations

import datetime as dt
import importlib.metadata
import io
import json
import platform
import sys
import zipfile

import sqlalchemy as sa

from core import __version__
from core.apps.logs import setup, system_log
from core.kernel import crypto
from core.kernel.errors import N_

SECRET_WORDS = ("secret", "password", "passwd", "token", "key", "private", "credential")
REDACTED = "[redacted]"
# (member, what it holds): shown on the Diagnostics page before downloading
MEMBERS = (("versions.json", N_("CRBM, Python, the database server, plugins, packs and "
                                "libraries, with their versions")),
           ("config.json", N_("site.yaml and the site settings, every password, key and "
                              "token replaced by [redacted]")),
           ("schema.txt", N_("The database schema check: what a sync would change")),
           ("scheduler.json", N_("Each scheduled task's last run and result")),
           ("jobs.json", N_("Background jobs by status, and the last failures")),
           ("log.jsonl", N_("The end of the system log")))
LOG_LINES = 5000
LIBRARIES = ("sqlalchemy", "alembic", "starlette", "uvicorn", "jinja2", "pluggy", "pyyaml",
             "jsonschema", "procrastinate", "huey", "psycopg", "pymysql", "argon2-cffi",
             "cryptography", "babel", "fpdf2", "ldap3", "httpx", "authlib")


def redact(value, key: str = ""):
    """``value`` with every secret in it replaced by REDACTED, recursively."""
    if any(word in key.lower() for word in SECRET_WORDS) and value not in (None, "", {}, []):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, key) for v in value]
    if crypto.is_sealed(value):
        return REDACTED
    if isinstance(value, str) and "://" in value and "@" in value:  # a URL with a login
        try:
            return sa.engine.make_url(value).render_as_string(hide_password=True)
        except sa.exc.ArgumentError:  # not a database URL: may hold a login, say nothing
            return REDACTED
    return value


def _versions(site) -> dict:
    libraries = {}
    for name in LIBRARIES:
        try:
            libraries[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    packs = getattr(site, "packs", None)
    return {
        "crbm": __version__, "python": sys.version.split()[0],
        "platform": platform.platform(),
        "database": {"dialect": site.engine.dialect.name,
                     "driver": site.engine.dialect.driver,
                     "server": ".".join(map(str, site.engine.dialect.server_version_info
                                            or ()))},
        "plugins": [{"name": p.name, "version": p.version, "source": p.source}
                    for p in site.plugins],
        "packs": [{"name": p.name, "kind": p.kind, "version": p.version, "status": p.status}
                  for p in (packs.installed() if packs is not None else [])],
        "libraries": libraries,
    }


def _jobs(site) -> dict:
    from core import jobs
    table = jobs._table(site)
    with site.engine.connect() as conn:
        counts = dict(conn.execute(sa.select(table.c.status, sa.func.count())
                                   .group_by(table.c.status)).all())
        failed = conn.execute(
            sa.select(table.c.name, table.c.updated_at, table.c.attempts, table.c.message)
            .where(table.c.status == "failed").order_by(table.c.updated_at.desc())
            .limit(20)).mappings().all()
    return {"by_status": counts, "last_failed": [dict(row) for row in failed]}


def _scheduler(site) -> list:
    from core.jobs import scheduler
    return [{"name": s.name, "schedule": s.schedule, "enabled": s.enabled,
             "next_due": s.next_due, "last_start": s.last_start,
             "last_status": s.last_status, "last_result": s.last_result,
             "plugin_missing": s.task is None} for s in scheduler.states(site)]


def _schema(site) -> str:
    diff = site.check_schema()
    if diff.in_sync:
        return "The database matches the metadata.\n"
    return "".join(f"pending: {line}\n" for line in diff.pending) + \
        "".join(f"held back (destructive): {line}\n" for line in diff.destructive)


def bundle(site) -> tuple[str, bytes]:
    """(the file name, the zip's bytes). A part that cannot be read says why in its member
    instead of failing the whole bundle: it is for when something is wrong."""
    def attempt(make):
        try:
            return make()
        except Exception as exc:  # noqa: BLE001 - the bundle is for a broken site too
            return {"error": f"{type(exc).__name__}: {exc}"}

    config = {"site.yaml": redact(dict(site.config)),
              "settings": attempt(lambda: redact(dict(site.settings)))}
    members = {
        "versions.json": attempt(lambda: _versions(site)),
        "config.json": config,
        "scheduler.json": attempt(lambda: _scheduler(site)),
        "jobs.json": attempt(lambda: _jobs(site)),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, value in members.items():
            archive.writestr(name, json.dumps(value, indent=2, default=str,
                                              ensure_ascii=False))
        schema = attempt(lambda: _schema(site))
        archive.writestr("schema.txt", schema if isinstance(schema, str) else schema["error"])
        lines = system_log.tail_lines(setup.log_file(site))[-LOG_LINES:]
        archive.writestr("log.jsonl", "".join(f"{line}\n" for line in lines))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"crbm-diagnostics-{stamp}.zip", buffer.getvalue()
