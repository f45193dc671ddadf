"""Restoring a backup: into a new site, or in place of a site, all or nothing.

Contract — ``restore(archive_path, folder, *, database_url=None, replace=False,
identity=None, progress=None) -> Restored``:

1. **Checked first.** The archive is decrypted if it is an age file (``identity``: the
   private key's file), then checked whole (``archive.open_archive``: manifest, every
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
   file that says which database is the site's. A restore killed before the journal
   leaves the site as it was (the staging folder and database are removed by the next
   restore); killed during the moves, ``finish_interrupted(folder)`` (run by every
   ``crbm`` command that opens the site) completes them. The previous database is never
   dropped: ``Restored.previous_database`` names it.

Replacing a site needs ``replace=True`` (the CLI's confirmation); a new site needs an empty
or missing folder.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
import yaml

from core.apps.backup import archive as archives
from core.apps.backup import snapshot
from core.apps.backup.backup import CONFIG, DATA_FOLDERS
from core.kernel import database, plugins
from core.kernel.errors import CrbmError

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
            replace: bool = False, identity: Path | None = None,
            progress: Progress | None = None, extra_plugins=()) -> Restored:
    """(See the module's contract. ``extra_plugins``: plugin modules the site runs with
    besides the installed ones, as ``Site`` takes them.)"""
    folder = Path(folder).resolve()
    existing = (folder / CONFIG).is_file()
    if existing and not replace:
        raise RestoreError(f"{folder} holds a site: confirm replacing it (crbm restore "
                           "--replace); the current one is kept aside")
    if not existing and folder.exists() and any(folder.iterdir()):
        raise RestoreError(f"{folder} is not empty and holds no site: restore into an empty "
                           "folder, or into a site with --replace")
    folder.mkdir(parents=True, exist_ok=True)
    cleaned = finish_interrupted(folder) + _remove_staging_leftovers(folder)
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
    finish_interrupted(folder)
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

def _decrypted(path: Path, identity: Path | None, staging: Path) -> Path:
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
    try:
        key = pyrage.x25519.Identity.from_str(_secret_key_line(Path(identity)))
    except (OSError, pyrage.IdentityError) as exc:
        raise RestoreError(f"{identity}: not an age private key ({exc})") from None
    plain = staging / "backup.zip"
    try:
        pyrage.decrypt_file(str(path), str(plain), [key])
    except pyrage.DecryptError as exc:
        raise RestoreError(f"{path.name} cannot be decrypted with {Path(identity).name}: "
                           f"{exc}") from None
    return plain


def _secret_key_line(identity: Path) -> str:
    """The key of an age identity file (``age-keygen``'s: comments, then the key)."""
    for line in identity.read_text().splitlines():
        if line.strip().startswith("AGE-SECRET-KEY-"):
            return line.strip()
    raise OSError("no AGE-SECRET-KEY- line")


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


def _drop_database(url: str) -> None:
    url_obj = sa.make_url(url)
    server = url_obj.set(database="postgres" if url_obj.get_backend_name() == "postgresql"
                         else "")
    engine = database.engine_for(server.render_as_string(hide_password=False))
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            quoted = conn.dialect.identifier_preparer.quote(url_obj.database)
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")
    except sa.exc.SQLAlchemyError:
        pass  # named in the error the restore reports; nothing else to do here
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
        done = _load(site, archive, names + [t.name for t in described], progress, described)
        with site.engine.begin() as conn:
            for name in names:
                snapshot.reset_sequences(conn, site.tables.tables[name])
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


def finish_interrupted(folder: Path) -> list[str]:
    """Complete the moves of a restore's journal (each one once: a move already made is
    not made again), then remove the journal and the staging folder. Returns what it did,
    for the caller to report."""
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
        os.replace(staged, live)
    journal.unlink()
    shutil.rmtree(staging, ignore_errors=True)
    if not any(previous.iterdir()):
        previous.rmdir()
    return [f"completed the restore recorded in {JOURNAL}"]


def _remove_staging_leftovers(folder: Path) -> list[str]:
    """Staging folders of restores killed before their switch (no journal): removed,
    with the server database each had made."""
    cleaned = []
    for staging in sorted(folder.glob(f"{STAGING}*")):
        leftover = staging / LEFTOVER
        if leftover.is_file():
            _drop_database(json.loads(leftover.read_text())["url"])
        shutil.rmtree(staging, ignore_errors=True)
        cleaned.append(f"removed {staging.name}, left by an interrupted restore")
    return cleaned
