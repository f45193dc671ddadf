"""The whole site as one zip, for moving out (issue 23, "a full-site export of every module").

Contract — ``export_site(site, target, user=SYSTEM_USER, progress=None) -> Summary``:

- ``modules/<module>.csv``: one per module of the registry, every record that is not
  deleted, in id order. The header row is the fields' **names** (``account_id``, not
  "Account"), so CRBM's own importer maps every column with no manual step. Every stored
  field but the bookkeeping ``deleted`` and ``version``; values as stored: dropdowns and
  multiselects as their values (``a, b``), checkboxes ``true``/``false``, dates and times
  ISO 8601 (UTC), numbers as numbers. A related field (a record's or a user's id) is
  followed by ``<field>__name``: the name of what it points to, for an importer that
  resolves by name. A file or image field holds the file's path inside the zip (below),
  empty when the file is gone from the store.
- ``files/<module>/<record id>/<field>/<file name>``: the file of each file and image
  field, copied from the site's file store (``core/web/uploads.py``) in chunks.
- ``links/<link table>.csv``: each many-to-many relationship's pairs of ids; ``tables/
  <table>.csv``: the tables module features keep beside their module (a quote's line
  items), every column as stored.
- ``users.csv``: the users (id, user name, name, email, admin, active, ...) — never a
  password hash or anything else that signs someone in; ``reports_to_id__name`` too.
- ``manifest.json``: the CRBM version, when, and how many rows each file holds.

Every CSV goes through ``core.web.csv_export.writer``: a text cell a spreadsheet would run as
a formula (``=``, ``+``, ``-``, ``@``...) gets a leading ``'``, which the importer takes off
again (``csv_export.read_cells``); numbers are never escaped. Records are read through the
record service in keyset batches of ``BATCH`` (as ``user``, with the export action's
access: everything, for an administrator) and written straight into the zip entry, so
memory stays flat however big the site: nothing but the current batch and, per module, the
list of its files is held.

``progress(module_name, done, total)`` is called as each module's batches are written (the
CLI's progress bars).
"""
from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from core import __version__
from core.kernel import database
from core.kernel.records import SYSTEM_USER, Query
from core.web import csv_export, uploads

BATCH = 500
NOT_EXPORTED = ("deleted", "version")  # bookkeeping, not data
# users.csv: what a user *is*, allow-listed (a column a plugin adds to crbm_users — say a
# second factor's secret — stays out unless it is named here)
USER_COLUMNS = ("id", "username", "display_name", "email", "is_admin", "active",
                "auth_source", "can_assign_access", "reports_to_id", "department",
                "created_at", "modified_at", "last_login_at")

Progress = Callable[[str, int, int], None]


@dataclass
class Summary:
    """What the zip holds: rows per module, link table and feature table; users; files."""

    modules: dict[str, int] = field(default_factory=dict)
    links: dict[str, int] = field(default_factory=dict)
    tables: dict[str, int] = field(default_factory=dict)
    users: int = 0
    files: int = 0
    missing_files: int = 0

    def to_json(self) -> dict:
        return {"modules": self.modules, "links": self.links, "tables": self.tables,
                "users": self.users, "files": self.files, "missing_files": self.missing_files}


def text(value) -> object:
    """One value as the CSV holds it (numbers stay numbers: csv_export leaves them alone)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if csv_export.is_number(value):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _is_file(f) -> bool:
    return f.type.widget == "file"  # file and image fields (and a plugin's file type)


def module_columns(module) -> tuple[list, list[str]]:
    """(the fields exported, the header: names, each link followed by ``<name>__name``)."""
    fields = [f for f in module.fields.values() if f.stored and f.name not in NOT_EXPORTED]
    header = []
    for f in fields:
        header.append(f.name)
        if f.type.is_link:
            header.append(f"{f.name}__name")
    return fields, header


def _entry(zf: zipfile.ZipFile, name: str):
    """A text stream into a new zip entry (one entry open at a time)."""
    return io.TextIOWrapper(zf.open(name, "w", force_zip64=True), encoding="utf-8",
                            newline="")


def _batches(site, module, user, names: list[str]):
    """The module's records in id order, BATCH at a time (keyset: no row twice)."""
    query = Query(fields=names, labels=True, sort="id", limit=BATCH)
    while True:
        batch = site.records.list(module.name, user, query, action="export")
        if batch:
            yield batch
        if len(batch) < BATCH:
            return
        query.after = {"id": batch[-1]["id"]}


def _parent_names(site, user, batch: list[dict], f) -> None:
    """``<field>__label`` for a dynamic link ("Related to": any of several modules), which
    the record service does not join: one query per module the batch points into."""
    wanted: dict[str, set[str]] = {}
    for row in batch:
        target = row.get(f.spec["type_field"])
        if row.get(f.name) and target in site.registry.modules:
            wanted.setdefault(target, set()).add(row[f.name])
    names: dict[tuple[str, str], str] = {}
    for target, ids in wanted.items():
        name_field = site.registry.module(target).name_field
        if name_field is None:
            continue
        for found in site.records.list(target, user, Query(
                filters=[("id", "in", sorted(ids))], fields=["id", name_field], limit=None)):
            names[target, found["id"]] = found[name_field]
    for row in batch:
        row[f"{f.name}__label"] = names.get((row.get(f.spec["type_field"]), row.get(f.name)))


def _module(site, zf, module, user, summary: Summary, progress: Progress | None) -> None:
    fields, header = module_columns(module)
    files_dir = site.folder / "files"
    file_fields = [f for f in fields if _is_file(f)]
    parents = [f for f in fields if f.type.is_link and "type_field" in f.spec]
    total = site.records.count(module.name, user)
    copies: list[tuple[Path, str]] = []  # copied once the CSV's entry is closed
    done = 0
    if progress:
        progress(module.name, 0, total)
    with _entry(zf, f"modules/{module.name}.csv") as out:
        writer = csv_export.writer(out)
        writer.writerow(header)
        for batch in _batches(site, module, user, [f.name for f in fields]):
            for f in parents:
                _parent_names(site, user, batch, f)
            for row in batch:
                for f in file_fields:
                    path = uploads.stored_file(files_dir, row.get(f.name))
                    if path is None:
                        summary.missing_files += bool(row.get(f.name))
                        row[f.name] = None
                        continue
                    inside = f"files/{module.name}/{row['id']}/{f.name}/{path.name}"
                    copies.append((path, inside))
                    row[f.name] = inside
                cells = []
                for f in fields:
                    cells.append(text(row.get(f.name)))
                    if f.type.is_link:
                        cells.append(row.get(f"{f.name}__label") or "")
                writer.writerow(cells)
            done += len(batch)
            if progress:
                progress(module.name, done, total)
    summary.modules[module.name] = done
    for path, inside in copies:
        zf.write(path, inside)
        summary.files += 1


def _table(site, zf, table: sa.Table, entry: str, columns=None, extra=None) -> int:
    """Every row of ``table`` (``columns`` of it), streamed in BATCH-sized fetches."""
    columns = [c for c in table.c if columns is None or c.name in columns]
    stmt = sa.select(*columns)
    header = [c.name for c in columns]
    if extra is not None:  # (name, the column expression)
        stmt = stmt.add_columns(extra[1].label(extra[0]))
        header.append(extra[0])
    count = 0
    with site.engine.connect() as conn, _entry(zf, entry) as out:
        if conn.dialect.name == "postgresql":  # its reads run in autocommit, and a
            conn = conn.execution_options(isolation_level="REPEATABLE READ")  # cursor
        writer = csv_export.writer(out)  # streams only inside a transaction
        writer.writerow(header)
        with conn.begin():
            result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(
                stmt.order_by(*table.primary_key.columns))
            for rows in result.partitions(BATCH):
                for row in rows:
                    writer.writerow([text(v) for v in row])
                count += len(rows)
    return count


def feature_tables(site, module) -> list[str]:
    """The tables ``module``'s features keep for it (a quote's line items and groups)."""
    fresh = sa.MetaData()
    database.module_table(module, fresh)
    for feature, _options in site.registry.features_of(module):
        feature.tables(module, fresh)
    return sorted(name for name in fresh.tables
                  if name != module.table and name in site.tables.tables)


def link_tables(site) -> list[str]:
    names = {module.link_table(rel_name)
             for module in site.registry.modules.values()
             for rel_name, rel in module.relationships.items() if rel["kind"] == "many_to_many"}
    return sorted(name for name in names if name in site.tables.tables)


def export_site(site, target: Path | str, user=SYSTEM_USER,
                progress: Progress | None = None) -> Summary:
    """Write the zip to ``target`` (a path); see the module's docstring."""
    summary = Summary()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for name in sorted(site.registry.modules):
            _module(site, zf, site.registry.module(name), user, summary, progress)
        for name in link_tables(site):
            summary.links[name] = _table(site, zf, site.tables.tables[name],
                                         f"links/{name}.csv")
        for name in sorted({t for m in site.registry.modules.values()
                            for t in feature_tables(site, m)}):
            summary.tables[name] = _table(site, zf, site.tables.tables[name],
                                          f"tables/{name}.csv")
        users = site.tables.tables["crbm_users"]
        boss = users.alias("boss")
        name = sa.select(sa.func.coalesce(boss.c.display_name, boss.c.username)) \
            .where(boss.c.id == users.c.reports_to_id).scalar_subquery()
        summary.users = _table(site, zf, users, "users.csv", USER_COLUMNS,
                               ("reports_to_id__name", name))
        manifest = {"crbm": __version__, "format": 1,
                    "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    **summary.to_json()}
        zf.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
    return summary
