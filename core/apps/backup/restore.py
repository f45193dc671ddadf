"""Restoring a backup: into a new site, or in place of a site, all or nothing.

Contract — ``restore(archive_path, folder, *, database_url=None, replace=False,
identity=None, progress=None) -> Restored``:

1. **Checked first** (alone: ``inspect``). The archive is decrypted if it is an age file
   (``identity``: the private key's file, or its text), then checked whole (``archive.open_archive``: manifest, every
   member's checksum, not made by a newer CRBM), and every plugin it was made with must
   be installed here (the missing are named). Nothing has been touched yet.
2. **Built aside.** A staging site is made in ``<folder>/.restore-<stamp>/``: the archive's
   keys (``site.yaml``: the secret key, so signed sessions, OAuth tokens and encrypted
   settings stay valid) with a *new* database — the one ``database_url`` names (it must be
   empty), else a new SQLite file, or on PostgreSQL/MariaDB a new database beside the
   site's (``<name>_r<stamp>``). The registry is rebuilt from the restored tables (kernel
   tables first: Studio customizations, packs, disabled plugins), the schema synced, then
   every other table loaded, each by its columns' types (a SQLite backup loads into
   PostgreSQL and back). Auto-numbered keys continue after the loaded rows.
3. **Switched in.** ``restore-journal.json`` lists the moves; then each part the archive
   holds (packs, uploaded files, the database file) is moved aside into
   ``.before-restore-<stamp>/`` and the staged one moved in, ``site.yaml`` last — the one
   file that says which database is the site's — and ``core.site_restart.MARKER`` written,
   so the processes still running on the previous site stop serving it. The previous
   database is never dropped: ``Restored.previous_database`` names it.

**Killed** (kill -9, a crash, a power cut), a restore is never left half-done, and what it
left is reported. ``finish_interrupted(folder)`` — run by every ``crbm`` command that opens
the site (``cli.open_site``, ``crbm serve`` and ``crbm worker`` too) and by every restore —
deals with it, and returns a line saying what it did, which the commands print:

- killed before the journal, the site is as it was; its staging folder, and the server
  database it had made, are removed (one that cannot be dropped yet is kept, and tried
  again the next time);
- killed during the moves, the journal's moves are completed (each once): the site is
  wholly the restored one.

A restore holds a lock on the site folder (``flock`` on the folder itself) from its checks
to its last move; the kernel lets go of it when the process ends, however it ends. So a
restore still running is told from a killed one: ``finish_interrupted`` leaves a running
restore's staging alone (waiting only while it switches, which takes a moment), and a
second restore into the same folder is refused.

Replacing a site needs ``replace=True`` (the CLI's confirmation); a new site needs an empty
or missing folder (a killed restore's leftovers aside). The steps ``restore-load`` (a table
loaded, its transaction open), ``restore-switch`` (the journal written, nothing moved) and
``restore-aside:<part>`` (that part of the old site moved aside, the new one not yet in)
are points a test can stop the process at (``backup.pause_for_tests``).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
import yaml

from core import site_restart
from core.apps.backup import archive as archives
from core.apps.backup import snapshot
from core.apps.backup.backup import CONFIG, DATA_FOLDERS, pause_for_tests
from core.kernel import database, plugins
from core.kernel.errors import CrbmError

try:
    import fcntl  # the restore lock (POSIX); elsewhere a running restore is not told apart
except ImportError:  # pragma: no cover - Windows
    fcntl = None

log = logging.getLogger(__name__)

JOURNAL = "restore-journal.json"
STAGING = ".restore-"
PREVIOUS = ".before-restore-"
REGISTRY_TABLES = ("crbm_settings", "crbm_customizations", "crbm_metadata_epoch", "crbm_packs",
                   "crbm_pack_objects")
LEFTOVER = "restore-database.json"  # in a staging folder: the new server database to drop
Progress = Callable[[str, int, int], None]


class RestoreError(CrbmError):
    """A restore refused or failed: the site is as it was; the message says why."""


@dataclass
class Restored:
    folder: Path
    database_url: str  # the site's database now (password hidden)
    tables: int = 0
    rows: int = 0
    files: int = 0
    previous: Path | None = None  # what was moved aside
    previous_database: str | None = None  # a server database kept (not dropped)
    left_out: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)  # leftovers of an interrupted restore


def restore(archive_path: Path, folder: Path, *, database_url: str | None = None,
            replace: bool = False, identity: Path | str | None = None,
            progress: Progress | None = None, extra_plugins=()) -> Restored:
    """(See the module's contract. ``extra_plugins``: plugin modules the site runs with
    besides the installed ones, as ``Site`` takes them.)"""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    lock = _lock(folder, wait=False)
    if lock is None:
        raise RestoreError(f"another restore into {folder} is running")
    try:
        return _restore(archive_path, folder, database_url, replace, identity, progress,
                        extra_plugins)
    finally:
        os.close(lock)


def _restore(archive_path, folder: Path, database_url, replace, identity, progress,
             extra_plugins) -> Restored:
    cleaned = _complete_switch(folder) + _remove_staging_leftovers(folder)
    existing = (folder / CONFIG).is_file()
    if existing and not replace:
        raise RestoreError(f"{folder} holds a site: confirm replacing it (crbm restore "
                           "--replace); the current one is kept aside")
    if not existing and any(folder.iterdir()):
        raise RestoreError(f"{folder} is not empty and holds no site: restore into an empty "
                           "folder, or into a site with --replace")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    staging = folder / f"{STAGING}{stamp}"
    staging.mkdir()
    created_database = None
    try:
        path = _decrypted(Path(archive_path), identity, staging)
        archive = archives.open_archive(path)
        try:
            _check_plugins(archive.manifest, extra_plugins)
            config = _archived_config(archive)
            current = yaml.safe_load((folder / CONFIG).read_text()) if existing else {}
            target_url, created_database = _new_database(
                database_url, current.get("database_url"), staging, stamp)
            if created_database:  # (its URL may hold the database password)
                (staging / LEFTOVER).touch(mode=0o600)
                (staging / LEFTOVER).write_text(json.dumps({"url": created_database}))
            config["database_url"] = target_url
            (staging / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
            (staging / CONFIG).chmod(0o600)
            parts = _stage_files(archive, folder, staging, existing)
            result = _load_database(archive, staging, progress, extra_plugins)
            result.files = len([n for n in archive.site_files() if n != CONFIG])
        finally:
            archive.close()
        if path.parent == staging:
            path.unlink()
        (staging / LEFTOVER).unlink(missing_ok=True)
        final_url = _final_url(target_url, staging, folder)
        config["database_url"] = final_url
        (staging / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
        previous = folder / f"{PREVIOUS}{stamp}"
        moves = [*parts, *_database_files(target_url, staging), CONFIG]
        _write_journal(folder, staging, previous, moves)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created_database:
            _drop_database(created_database)
        if not existing:  # a new site that did not come to be: leave the folder empty
            for leftover in folder.iterdir():
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
        raise
    pause_for_tests("restore-switch")  # (from here on, the journal's moves are done)
    _complete_switch(folder, interrupted=False)
    result.folder, result.cleaned = folder, cleaned
    result.database_url = sa.make_url(final_url).render_as_string(hide_password=True)
    if existing:
        result.previous = previous if previous.exists() else None
        old = sa.make_url(current["database_url"])
        moved_aside = old.get_backend_name() == "sqlite" and \
            Path(old.database or "").resolve() == folder / "crbm.db"
        if not moved_aside:  # a server's database, or a file outside the folder: as it was
            result.previous_database = old.render_as_string(hide_password=True)
    return result


# -- checks -----------------------------------------------------------------------------

def _decrypted(path: Path, identity: Path | str | None, staging: Path) -> Path:
    if not path.is_file():
        raise RestoreError(f"{path}: no such file")
    with open(path, "rb") as head:
        encrypted = head.read(21) == b"age-encryption.org/v1"
    if not encrypted:
        return path
    if identity is None:
        raise RestoreError(f"{path.name} is encrypted: give the private key's file "
                           "(--identity)")
    import pyrage
    named = "the key given" if isinstance(identity, str) else Path(identity).name
    try:
        text = identity if isinstance(identity, str) else Path(identity).read_text()
        key = pyrage.x25519.Identity.from_str(_secret_key_line(text))
    except (OSError, pyrage.IdentityError) as exc:
        raise RestoreError(f"{named}: not an age private key ({exc})") from None
    plain = staging / "backup.zip"
    try:
        pyrage.decrypt_file(str(path), str(plain), [key])
    except pyrage.DecryptError as exc:
        raise RestoreError(f"{path.name} cannot be decrypted with {named}: {exc}") from None
    return plain


def _secret_key_line(identity: str) -> str:
    """The key of an age identity (``age-keygen``'s file: comments, then the key)."""
    for line in identity.splitlines():
        if line.strip().startswith("AGE-SECRET-KEY-"):
            return line.strip()
    raise OSError("no AGE-SECRET-KEY- line")


def inspect(archive_path: Path, *, identity: Path | str | None = None,
            extra_plugins=()) -> dict:
    """Check a backup as a restore would first (decrypted, every checksum, the version,
    the plugins it needs) and return its manifest; nothing is restored. Raises
    RestoreError or ArchiveError saying what is wrong."""
    with tempfile.TemporaryDirectory(prefix="crbm-inspect-") as scratch:
        path = _decrypted(Path(archive_path), identity, Path(scratch))
        archive = archives.open_archive(path)
        try:
            _check_plugins(archive.manifest, extra_plugins)
            _archived_config(archive)
            return archive.manifest
        finally:
            archive.close()


def _check_plugins(manifest: dict, extra_plugins) -> None:
    here = {c.name for c in plugins.discover(extra_plugins)}
    missing = sorted(set(manifest["plugins"]) - here)
    if missing:
        raise RestoreError("the backup was made with plugins this installation lacks: "
                           f"{', '.join(missing)} (install them, then restore again)")


def _archived_config(archive: archives.Archive) -> dict:
    if CONFIG not in archive.site_files():
        raise RestoreError(f"the archive holds no {CONFIG} (the site's keys)")
    with archive.zip.open(archives.SITE + CONFIG) as member:
        config = yaml.safe_load(member.read()) or {}
    if not isinstance(config, dict) or not config.get("secret_key"):
        raise RestoreError(f"{archives.SITE}{CONFIG}: no secret_key")
    return config


# -- the new database -------------------------------------------------------------------

def _new_database(given: str | None, current: str | None, staging: Path, stamp: str
                  ) -> tuple[str, str | None]:
    """(URL to restore into, URL of a server database this restore created or None)."""
    if given:
        engine = database.engine_for(given)
        try:
            tables = sa.inspect(engine).get_table_names()
        except sa.exc.SQLAlchemyError as exc:
            raise RestoreError(f"cannot open {sa.make_url(given).render_as_string()}: "
                               f"{exc.orig if hasattr(exc, 'orig') else exc}") from None
        finally:
            engine.dispose()
        if tables:
            raise RestoreError(f"{sa.make_url(given).render_as_string()} is not empty: "
                               "restore into an empty database")
        return given, None
    if current is None or sa.make_url(current).get_backend_name() == "sqlite":
        return f"sqlite:///{staging / 'crbm.db'}", None
    url = sa.make_url(current)
    name = f"{url.database}_r{stamp}"[:63]
    engine = database.engine_for(current)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            quoted = conn.dialect.identifier_preparer.quote(name)
            conn.exec_driver_sql(f"CREATE DATABASE {quoted}" + (
                " CHARACTER SET utf8mb4" if engine.dialect.name != "postgresql" else ""))
    finally:
        engine.dispose()
    created = url.set(database=name).render_as_string(hide_password=False)
    return created, created


def _drop_database(url: str) -> str | None:
    """Drop a database a restore made; None, or why it could not be dropped. Only ever one
    whose restore is over (failed, or killed: the lock says so), so on PostgreSQL the
    sessions a killed restore left open, which the server has not noticed yet, are ended."""
    url_obj = sa.make_url(url)
    postgresql = url_obj.get_backend_name() == "postgresql"
    server = url_obj.set(database="postgres" if postgresql else "")
    engine = database.engine_for(server.render_as_string(hide_password=False))
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            quoted = conn.dialect.identifier_preparer.quote(url_obj.database)
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}"
                                 + (" WITH (FORCE)" if postgresql else ""))
        return None
    except sa.exc.SQLAlchemyError as exc:
        return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    finally:
        engine.dispose()


def _final_url(url: str, staging: Path, folder: Path) -> str:
    """A database file made in the staging folder ends up in the site folder."""
    if url == f"sqlite:///{staging / 'crbm.db'}":
        return f"sqlite:///{folder / 'crbm.db'}"
    return url


def _database_files(url: str, staging: Path) -> list[str]:
    return ["crbm.db"] if url == f"sqlite:///{staging / 'crbm.db'}" else []


# -- loading ----------------------------------------------------------------------------

def _load_database(archive: archives.Archive, staging: Path, progress: Progress | None,
                   extra_plugins) -> Restored:
    from core.kernel.site import Site
    site = Site(staging, extra_plugins=list(extra_plugins))
    try:
        site.sync_schema()
        wanted = {t["name"] for t in archive.tables}
        # what the registry is built from, so that the schema synced next is the backed-up
        # site's (its Studio fields, its packs' modules, without its disabled plugins)
        _load(site, archive, [n for n in REGISTRY_TABLES if n in wanted], None)
        site.reload()
        site.sync_schema()
        # then every table — those again too: the sync's hooks may have written in them
        names = [t.name for t in site.tables.sorted_tables if t.name in wanted]
        described = _make_described(site, archive, set(names))

        def loading(name, done, total):
            if progress:
                progress(name, done, total)
            if done == 1:
                pause_for_tests("restore-load")  # (inside the load's transaction)

        done = _load(site, archive, names + [t.name for t in described], loading, described)
        with site.engine.begin() as conn:
            for name in names:
                snapshot.reset_sequences(conn, site.tables.tables[name])
        with site.engine.begin() as conn:  # before the hooks below query what was loaded
            snapshot.analyze(conn, [site.tables.tables[n] for n in names] + described)
        site.after_sync()  # what the sync's hooks derive from rows: full-text indexes...
        diff = site.check_schema()
        if not diff.in_sync:
            raise RestoreError(f"the restored database does not match the site's schema: {diff}")
        return Restored(staging, "", tables=len(names) + len(described), rows=done,
                        left_out=sorted(wanted - set(names) - {t.name for t in described}))
    except snapshot.SnapshotError as exc:
        raise RestoreError(str(exc)) from None
    finally:
        site.close()


def _make_described(site, archive: archives.Archive, known: set[str]) -> list[sa.Table]:
    """The archive's tables this site's schema does not define (a plugin disabled there),
    made from their described columns."""
    metadata = sa.MetaData()
    tables = [snapshot.described_table(t["name"], t["columns"], metadata)
              for t in archive.tables if "columns" in t and t["name"] not in known]
    metadata.create_all(site.engine)
    return tables


def _load(site, archive: archives.Archive, names: list[str], progress: Progress | None,
          described: list[sa.Table] = ()) -> int:
    """Empty the tables (those referring to others first), then fill them, in one
    transaction."""
    rows = 0
    by_name = {**site.tables.tables, **{t.name: t for t in described}}
    with site.engine.begin() as conn:
        for name in reversed(names):
            conn.execute(by_name[name].delete())
        for index, name in enumerate(names):
            rows += snapshot.load_table(conn, by_name[name], archive.lines(name))
            if progress:
                progress(name, index + 1, len(names))
    return rows


# -- files and the switch ---------------------------------------------------------------

def _stage_files(archive: archives.Archive, folder: Path, staging: Path, existing: bool
                 ) -> list[str]:
    """Put the archive's site files in the staging folder; returns the top-level names
    the switch replaces. A part the archive's scope leaves out is the site's own (copied
    for the staging site to boot with, not replaced)."""
    scope = archive.manifest.get("files", "all")
    names = {relative.split("/")[0] for relative in archive.site_files()} - {CONFIG}
    if scope != "none":
        names.add("packs")
    if scope == "all":
        names.update(DATA_FOLDERS)
    for relative in archive.site_files():
        if relative != CONFIG:
            archive.extract_site_file(relative, staging / relative)
    if existing and "packs" not in names and (folder / "packs").is_dir():
        shutil.copytree(folder / "packs", staging / "packs")  # to boot with only
    for name in ("files", "packs"):
        (staging / name).mkdir(exist_ok=True)
    return sorted(names)


def _write_journal(folder: Path, staging: Path, previous: Path, moves: list[str]) -> None:
    journal = folder / JOURNAL
    temporary = journal.with_suffix(".tmp")
    with open(temporary, "w") as out:
        json.dump({"staging": staging.name, "previous": previous.name, "moves": moves}, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, journal)


def _lock(folder: Path, wait: bool) -> int | None:
    """The site folder's restore lock (see the module's docstring): its descriptor, to
    close when done; None if another process holds it and ``wait`` is false."""
    fd = os.open(folder, os.O_RDONLY)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
    return fd


def finish_interrupted(folder: Path) -> list[str]:
    """Deal with what a killed restore left in ``folder`` (see the module's docstring):
    complete its switch, or remove what it had staged. Returns a line per thing done, for
    the caller to report (each is logged as a warning too); nothing when nothing was
    left, or when what is there belongs to a restore still running."""
    folder = Path(folder)
    journal = (folder / JOURNAL).is_file()
    if not journal and not any(folder.glob(f"{STAGING}*")):
        return []
    lock = _lock(folder, wait=journal)  # a running switch takes a moment: waited for
    if lock is None:
        return []  # a restore is building its site aside: its staging folder is its own
    try:
        return _complete_switch(folder) + _remove_staging_leftovers(folder)
    finally:
        os.close(lock)


def _complete_switch(folder: Path, interrupted: bool = True) -> list[str]:
    """Complete the moves of a restore's journal (each one once: a move already made is
    not made again), then remove the journal and the staging folder. (The lock held.)"""
    journal = Path(folder) / JOURNAL
    if not journal.is_file():
        return []
    plan = json.loads(journal.read_text())
    staging, previous = folder / plan["staging"], folder / plan["previous"]
    previous.mkdir(exist_ok=True)
    for name in plan["moves"]:
        staged = staging / name
        if not staged.exists():
            continue  # moved in already
        live = folder / name
        if live.exists():
            os.replace(live, previous / name)
        for suffix in ("-wal", "-shm"):  # a SQLite file's log goes with it
            if (folder / f"{name}{suffix}").exists():
                os.replace(folder / f"{name}{suffix}", previous / f"{name}{suffix}")
        pause_for_tests(f"restore-aside:{name}")
        os.replace(staged, live)
    journal.unlink()
    # the processes still running on the previous site stop serving it (core.site_restart)
    (folder / site_restart.MARKER).write_text(dt.datetime.now(dt.UTC).isoformat() + "\n")
    shutil.rmtree(staging, ignore_errors=True)
    if not any(previous.iterdir()):
        previous.rmdir()
    kept = f"; the previous site's files are kept in {previous.name}" \
        if previous.exists() else ""
    if not interrupted:  # this restore's own switch: nothing to report
        return []
    return [_said(f"A restore was interrupted while it switched the site in: completed the "
                  f"restore from {JOURNAL}, the site is the restored one{kept}")]


def _remove_staging_leftovers(folder: Path) -> list[str]:
    """Staging folders of restores killed before their switch (no journal): removed,
    with the server database each had made. (The lock held.)"""
    cleaned = []
    for staging in sorted(folder.glob(f"{STAGING}*")):
        leftover, dropped = staging / LEFTOVER, ""
        if leftover.is_file():
            url = sa.make_url(json.loads(leftover.read_text())["url"])
            problem = _drop_database(url.render_as_string(hide_password=False))
            if problem:  # kept, to try again: never a database left behind unsaid
                cleaned.append(_said(
                    f"A restore was interrupted before it switched the site in: the site "
                    f"is as it was, but the database it had made, {url.database}, could not "
                    f"be dropped ({problem}); {staging.name} is kept to try again"))
                continue
            dropped = f" and the database it had made, {url.database}"
        shutil.rmtree(staging, ignore_errors=True)
        cleaned.append(_said(f"A restore was interrupted before it switched the site in: "
                             f"the site is as it was; removed {staging.name}{dropped}"))
    return cleaned


def _said(line: str) -> str:
    log.warning("%s", line)
    return line
