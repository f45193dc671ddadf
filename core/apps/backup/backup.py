"""Making a backup: the database as of one moment, the site folder's files, one archive.

Contract — ``make_backup(site, folder=None, files="all", recipient=None, keep=None,
progress=None) -> Path``:

- The database is read in one snapshot (``snapshot.read_snapshot``) while the site keeps
  serving: every table of the site's schema, then every other table the database holds
  (a disabled plugin's kept data), with its columns described (``snapshot.describe``) so
  a restore can make it again on any database.
- ``files`` (``FILE_SCOPES``): ``none`` — the database and the site's keys (``site.yaml``:
  without its secret key the encrypted settings and signed tokens in the database cannot
  be read); ``config`` — also the packs and every other folder of the site but uploaded
  files; ``all`` — also the uploaded files (``files/``) and import uploads. Never the
  database's own files, the job queue, the backups folder, or a restore's leftovers.
- Written as ``<name>.partial`` and renamed when whole: a backup killed midway leaves no
  archive that looks finished. The partial is locked (``flock``) while its backup runs —
  the kernel lets go when the process ends, however it ends — so a partial nobody holds
  is a killed backup's: ``partials(folder)`` tells those from the ones being written (the
  Backups page lists them), and the next backup removes them, says so (``report``: a line
  each, and the log) and lists them in its manifest's ``interrupted_before``. A backup
  still running elsewhere (a scheduled one, a ``crbm backup``) is left alone.
- ``recipient`` (an age public key, ``age1...``): the archive is encrypted to it
  (``<name>.zip.age``); only the private key, which is never on the server, opens it.
- ``keep``: afterwards only the ``keep`` newest backups in ``folder`` are kept.
- ``stamp`` (a scheduled run's due time) names the archive; if that archive is there
  already, it is returned as it is: a retried run makes no second backup.

``pause_for_tests(step)`` is a test seam, inert unless ``CRBM_TEST_PAUSE_AT`` names the step:
a test kills the process at that exact point (tests/apps/backup/test_killed.py).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from core import __version__
from core.apps.backup import archive as archives
from core.apps.backup import snapshot
from core.kernel.errors import CrbmError

try:
    import fcntl  # the partials' locks (POSIX); elsewhere every partial counts as killed
except ImportError:  # pragma: no cover - Windows
    fcntl = None

log = logging.getLogger(__name__)

FILE_SCOPES = ("none", "config", "all")
PREFIX = "crbm-backup-"
DATA_FOLDERS = ("files", "imports")  # what users uploaded: only in scope "all"
CONFIG = "site.yaml"
Progress = Callable[[str, int, int], None]
PAUSE = "CRBM_TEST_PAUSE_AT"


class BackupError(CrbmError):
    """A backup that cannot be made: the message says why."""


def default_folder(site) -> Path:
    return site.folder / "backups"


def make_backup(site, folder: Path | None = None, files: str = "all",
                recipient: str | None = None, keep: int | None = None,
                progress: Progress | None = None, stamp: dt.datetime | None = None,
                report: Callable[[str], None] | None = None) -> Path:
    if files not in FILE_SCOPES:
        raise BackupError(f"files must be one of {', '.join(FILE_SCOPES)}, not {files!r}")
    age_recipient = check_recipient(recipient) if recipient else None
    folder = Path(folder or default_folder(site))
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{PREFIX}{(stamp or dt.datetime.now(dt.UTC)):%Y%m%d-%H%M%S-%f}.zip"
    for made in (final, final.with_name(final.name + ".age")):
        if stamp is not None and made.exists():
            return made  # this due time's backup, made by a run that failed after it
    removed_partials = _remove_partials(folder)
    for name in removed_partials:
        line = f"Removed {name}, left by an interrupted backup"
        log.warning("%s (in %s)", line, folder)
        if report:
            report(line)
    partial = final.with_name(final.name + ".partial")
    written = [partial]  # the partials, and their locks
    locks = [_claimed(partial)]
    try:
        writer = archives.ArchiveWriter(partial)
        tables = _write_database(site, writer, progress)
        for relative, source in site_files(site, files, exclude=folder):
            writer.add_file(archives.SITE + relative, source)
        writer.close(_manifest(site, files, tables, removed_partials))
        if age_recipient is not None:
            encrypted = final.with_name(final.name + ".age.partial")
            written.append(encrypted)
            locks.append(_claimed(encrypted))
            import pyrage
            pyrage.encrypt_file(str(partial), str(encrypted), [age_recipient])
            partial.unlink()
            partial, final = encrypted, final.with_name(final.name + ".age")
        os.replace(partial, final)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    finally:
        for fd in locks:
            if fd is not None:
                os.close(fd)
    if keep:
        prune(folder, keep)
    return final


def check_recipient(text: str):
    import pyrage
    try:
        return pyrage.x25519.Recipient.from_str(text.strip())
    except pyrage.RecipientError as exc:
        raise BackupError(f"{text.strip()[:20]}... is not an age public key (age1...): "
                          f"{exc}") from None


def _write_database(site, writer: archives.ArchiveWriter, progress: Progress | None
                    ) -> list[dict]:
    tables, others = backed_up_tables(site), other_tables(site)
    done = []
    with snapshot.read_snapshot(site.engine) as conn:
        reflected = sa.MetaData()
        for name in others:
            tables.append(sa.Table(name, reflected, autoload_with=conn))
        for index, table in enumerate(tables):
            with writer.member(f"{archives.DATABASE}{table.name}.jsonl") as out:
                rows = snapshot.dump_table(conn, table, out)
            entry = {"name": table.name, "rows": rows}
            if table.name in others:
                entry["columns"] = snapshot.describe(table)
            done.append(entry)
            if progress:
                progress(table.name, index + 1, len(tables))
            if index == 0:
                pause_for_tests("backup-dump")  # a table is in the partial; the rest to come
    return done


def pause_for_tests(step: str) -> None:
    """Test seam: with ``CRBM_TEST_PAUSE_AT=<step>`` in the environment, say ``paused at
    <step>`` on standard error and wait for a line on standard input, so that a test can
    kill the process exactly there. Unset (always, outside tests): nothing."""
    if os.environ.get(PAUSE) == step:
        print(f"paused at {step}", file=sys.stderr, flush=True)
        sys.stdin.readline()


def backed_up_tables(site) -> list[sa.Table]:
    """The site schema's tables the database holds, in the order they load (a table
    before those that refer to it)."""
    present = set(sa.inspect(site.engine).get_table_names())
    return [t for t in site.tables.sorted_tables if t.name in present]


def other_tables(site) -> list[str]:
    """Tables in the database that the site's schema does not define: a disabled plugin's.
    Not a job queue's (its jobs belong to the running site), nor the indexes kept beside a
    module's table, named ``<table>__<index>`` (full-text search's: core/apps/search), which
    the schema sync after a restore builds again from the restored rows."""
    known = set(site.tables.tables)
    return sorted(n for n in sa.inspect(site.engine).get_table_names()
                  if n not in known and "__" not in n
                  and not n.startswith(("alembic", "procrastinate")))


def site_files(site, scope: str, exclude: Path | None = None):
    """(relative path, path) of the site folder's files ``scope`` takes, sorted."""
    root = site.folder
    skipped = {_database_file(site), "jobs.db", "jobs.db-wal", "jobs.db-shm", "backups",
               "restore-journal.json"}
    skipped |= {f"{name}-wal" for name in skipped if name} | \
        {f"{name}-shm" for name in skipped if name}
    exclude = exclude.resolve() if exclude else None
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        top = relative.parts[0]
        if top in skipped or top.startswith(".") or not path.is_file() or path.is_symlink():
            continue
        if exclude is not None and path.resolve().is_relative_to(exclude):
            continue
        if top == CONFIG and len(relative.parts) == 1 or scope == "config" and top not in DATA_FOLDERS or scope == "all":
            found.append((relative.as_posix(), path))
    return found


def _database_file(site) -> str | None:
    url = site.engine.url
    if url.get_backend_name() == "sqlite" and url.database:
        path = Path(url.database).resolve()
        if path.parent == site.folder:
            return path.name
    return None


def schema_fingerprint(tables: list[sa.Table]) -> str:
    """A digest of the tables' names, columns and types: equal schemas, equal prints."""
    shape = [[t.name, [[c.name, type(c.type).__name__, c.nullable] for c in t.columns]]
             for t in sorted(tables, key=lambda t: t.name)]
    return hashlib.sha256(json.dumps(shape).encode()).hexdigest()[:32]


def _manifest(site, files: str, tables: list[dict], removed_partials: list[str]) -> dict:
    return {
        "format": archives.FORMAT,
        "crbm_version": __version__,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "database": site.engine.dialect.name,
        "files": files,
        "plugins": {p.name: p.version for p in site.plugins},
        "disabled_plugins": list(site.disabled_plugins),
        "packs": [{"name": p.name, "kind": p.kind, "version": p.manifest.get("version")}
                  for p in site.enabled_packs],
        "schema": schema_fingerprint(backed_up_tables(site)),
        "tables": tables,
        "interrupted_before": removed_partials,
    }


def _claimed(partial: Path) -> int | None:
    """The partial made, locked (the lock's descriptor: close it when done). Locked under a
    hidden name, then renamed: whoever finds a partial finds it locked while it is written."""
    if fcntl is None:
        return None
    hidden = partial.with_name("." + partial.name)
    fd = os.open(hidden, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.replace(hidden, partial)
    return fd


def _being_written(path: Path) -> bool:
    """Whether a backup that is running holds this partial."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True  # just renamed into its archive: not a leftover either
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # (lets go of the probe's lock too)


def partials(folder: Path) -> tuple[list[Path], list[Path]]:
    """(leftovers of backups that were killed, partials being written now) in ``folder``,
    oldest first. A hidden one is a partial killed before it got its name."""
    found = sorted([*folder.glob(f"{PREFIX}*.partial"), *folder.glob(f".{PREFIX}*.partial")],
                   key=lambda p: p.name.lstrip("."))
    running = [p for p in found if _being_written(p)]
    return [p for p in found if p not in running], running


def _remove_partials(folder: Path) -> list[str]:
    """Leftovers of backups that were killed: removed, and named in the next manifest."""
    killed, _running = partials(folder)
    for path in killed:
        path.unlink(missing_ok=True)
    return [p.name for p in killed]


def backups_in(folder: Path) -> list[Path]:
    """The finished backups in ``folder``, newest first."""
    return sorted((p for p in folder.glob(f"{PREFIX}*") if p.name.endswith((".zip", ".age"))),
                  key=lambda p: p.name, reverse=True)


def prune(folder: Path, keep: int) -> list[Path]:
    """Remove all but the ``keep`` newest backups; returns what was removed."""
    removed = backups_in(folder)[keep:]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed
