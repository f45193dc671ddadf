"""How much storage the site uses, by category (1CRM's Storage Utilization, guide §7.2.7).

Contract: ``measure(site) -> StorageFigures``, every figure in bytes, read now:

- ``total``, ``used``, ``available``: the file system holding the site folder
  (``shutil.disk_usage``; ``available`` is what a process may still write).
- ``database``: SQLite, the database file with its ``-wal`` and ``-shm``; PostgreSQL,
  ``pg_database_size`` of the current database; MariaDB/MySQL, the data and index length
  of the current schema's tables (information_schema: InnoDB's estimate).
- The file store (``<site>/files/<key>/<name>``, ``core.web.uploads``) split by what points
  at each file: ``attachments`` (the columns plugins name through ``crbm_file_references``:
  emails' and notes' attachments, knowledge-base images), ``images`` (image fields of any
  module), ``uploads`` (the rest: file fields, documents, files nothing points at).
  One SELECT per referencing column, never one per record.
- ``imports`` (``<site>/imports``), ``backups`` (the backup settings' local folder) and
  ``reports`` (``<site>/reports``: saved report runs; None while there is no such folder).

Folders are walked with ``os.scandir`` without following links; a missing folder, or a
file removed during the walk, counts 0 — measuring never fails on a busy site.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import sqlalchemy as sa

CATEGORIES = ("database", "attachments", "images", "uploads", "imports", "backups",
              "reports")


@dataclass(frozen=True)
class StorageFigures:
    total: int
    used: int
    available: int
    database: int
    attachments: int
    images: int
    uploads: int
    imports: int
    backups: int
    reports: int | None
    measured_at: dt.datetime

    def to_dict(self) -> dict:
        return {**asdict(self), "measured_at": self.measured_at.isoformat()}

    @classmethod
    def from_dict(cls, stored) -> StorageFigures | None:
        """The figures as ``to_dict`` stored them; None for nothing or something else."""
        try:
            values = {f.name: stored[f.name] for f in fields(cls)}
            values["measured_at"] = dt.datetime.fromisoformat(values["measured_at"])
            return cls(**values)
        except (TypeError, KeyError, ValueError):
            return None

    @property
    def percent_used(self) -> float:
        return 100 * self.used / self.total if self.total else 0.0


def measure(site) -> StorageFigures:
    disk = shutil.disk_usage(site.folder)
    from core.apps.maintenance.tools import store_of, stored_files
    store = {key: size for key, size, _ in stored_files(store_of(site))}
    attachment_keys, image_keys = _referenced(site)
    split = {"attachments": 0, "images": 0, "uploads": 0}
    for key, size in store.items():
        category = ("attachments" if key in attachment_keys else
                    "images" if key in image_keys else "uploads")
        split[category] += size
    reports = site.folder / "reports"
    return StorageFigures(
        total=disk.total, used=disk.used, available=disk.free, database=database_size(site),
        imports=folder_size(site.folder / "imports"), backups=folder_size(_backups(site)),
        reports=folder_size(reports) if reports.is_dir() else None,
        measured_at=dt.datetime.now(dt.UTC).replace(microsecond=0), **split)


def database_size(site) -> int:
    engine = site.engine
    dialect = engine.dialect.name
    if dialect == "sqlite":
        path = engine.url.database or ""
        return sum(_size(Path(path + suffix)) for suffix in ("", "-wal", "-shm")) \
            if path and path != ":memory:" else 0
    with engine.connect() as conn:
        if dialect == "postgresql":
            return int(conn.execute(sa.text(
                "SELECT pg_database_size(current_database())")).scalar_one())
        return int(conn.execute(sa.text(  # MariaDB / MySQL
            "SELECT COALESCE(SUM(data_length + index_length), 0) FROM "
            "information_schema.tables WHERE table_schema = DATABASE()")).scalar_one())


def _referenced(site) -> tuple[set[str], set[str]]:
    """(keys of attachments, keys of images): one SELECT DISTINCT per column."""
    from core.apps.maintenance.tools import field_columns, named_columns
    columns = [("attachment", column) for column in named_columns(site)]
    columns += [("image", column) for f, column in field_columns(site)
                if (f.type.accept or "").startswith("image/")]
    found: dict[str, set[str]] = {"attachment": set(), "image": set()}
    with site.engine.connect() as conn:
        for kind, column in columns:
            found[kind].update(conn.execute(
                sa.select(column).where(column.isnot(None)).distinct()).scalars())
    return found["attachment"], found["image"]


def _backups(site) -> Path:
    from core.apps.backup.scheduled import settings_of
    return settings_of(site).folder


def _walk(folder: Path, prefix: str = "") -> Iterator[tuple[str, int]]:
    """(path relative to ``folder`` with "/", size) of every file below it."""
    try:
        with os.scandir(folder) as entries:
            for entry in list(entries):
                try:
                    if entry.is_dir(follow_symlinks=False):
                        yield from _walk(Path(entry.path), f"{prefix}{entry.name}/")
                    elif entry.is_file(follow_symlinks=False):
                        yield f"{prefix}{entry.name}", entry.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    continue  # removed while we looked
    except (FileNotFoundError, NotADirectoryError):
        return


def folder_size(folder: Path) -> int:
    return sum(size for _name, size in _walk(folder))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
