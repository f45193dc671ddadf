"""The four tools of Administration → Maintenance, apart from the page that runs them.

- ``check_schema`` / ``repair_schema``: what ``crbm db check`` and ``crbm db sync`` do
  (``Site.check_schema``, ``Site.sync_schema``). A repair never drops a table or a column
  (that loses data: ``crbm db sync --allow-drop`` on the server only).
- ``find_orphans`` / ``delete_orphans``: files of the file store (``<site>/files/<key
  folder>/<name>``, ``core.web.uploads``) that nothing references. A file is referenced
  when its key is the value of a file or image field of any module (soft-deleted records
  included), of a column a plugin names through ``crbm_file_references`` (attachment
  tables), or a text anywhere in the site settings (a company logo). The store is listed
  *before* the references are read, so a file saved in between is never taken for an
  orphan; a reference that cannot be read (a missing table) stops the whole run. Only
  orphans older than ``MIN_AGE`` are deleted: a file being uploaded right now is not yet
  referenced. Symbolic links are neither followed nor deleted.
- ``rebuild_caches``: every worker reloads its registry, access grants and settings (their
  epochs move), and this one forgets its translations and compiled templates.
- ``check_languages``: each enabled language pack's catalogs against the English messages
  of this CRBM (``core.i18n_tools.catalog_problems``).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

MIN_AGE = 3600  # seconds: an orphan younger than this may be an upload in progress
SHOWN = 50  # orphans named on the page
PROBLEMS_SHOWN = 20  # missing messages, and other problems, listed per catalog


# -- database schema -------------------------------------------------------------------------

@dataclass
class SchemaReport:
    pending: list[str]  # additive changes a repair makes
    destructive: list[str]  # drops a repair holds back
    applied: list[str] | None = None  # what a repair did (None: only checked)


def check_schema(site) -> SchemaReport:
    diff = site.check_schema()
    return SchemaReport(diff.pending, diff.destructive)


def repair_schema(site) -> SchemaReport:
    applied = site.sync_schema(allow_drop=False).pending
    report = check_schema(site)
    report.applied = applied
    return report


# -- orphaned uploads ------------------------------------------------------------------------

@dataclass
class Orphans:
    found: list[tuple[str, int, float]] = field(default_factory=list)  # (key, bytes, mtime)
    deleted: int = 0
    freed: int = 0

    @property
    def size(self) -> int:
        return sum(size for _, size, _ in self.found)

    def older_than(self, seconds: float) -> list[tuple[str, int, float]]:
        limit = time.time() - seconds
        return [o for o in self.found if o[2] < limit]


def store_of(site) -> Path:
    return site.folder / "files"


def stored_files(store: Path) -> list[tuple[str, int, float]]:
    """(key, size, mtime) of each regular file one level inside a key folder; links and
    anything else are left out (never followed)."""
    found = []
    if not store.is_dir():
        return found
    with os.scandir(store) as folders:
        for folder in folders:
            if not folder.is_dir(follow_symlinks=False):
                continue
            with os.scandir(folder.path) as entries:
                for entry in entries:
                    if entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        found.append((f"{folder.name}/{entry.name}", st.st_size, st.st_mtime))
    return found


def field_columns(site) -> list[tuple[object, sa.Column]]:
    """(field, column) of every stored file and image field (and a plugin's file type)."""
    tables = site.tables.tables
    return [(f, tables[module.table].c[f.name]) for module in site.registry.modules.values()
            for f in module.fields.values() if f.stored and f.type.widget == "file"]


def named_columns(site) -> list[sa.Column]:
    """The columns plugins name through ``crbm_file_references`` (attachment tables). A
    named table or column unknown here raises."""
    tables = site.tables.tables
    return [tables[table].c[column]
            for named in site.hook.crbm_file_references(site=site)
            for table, column in named or ()]


def reference_columns(site) -> list[sa.Column]:
    """Every column that holds file keys."""
    return [column for _, column in field_columns(site)] + named_columns(site)


def _strings(value) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        value = list(value.values())
    return set().union(*map(_strings, value)) if isinstance(value, list) else set()


def referenced_keys(site) -> set[str]:
    """The keys in use: one SELECT DISTINCT per column, plus the settings' strings."""
    keys = _strings(site.settings)
    with site.engine.connect() as conn:
        for column in reference_columns(site):
            keys.update(conn.execute(sa.select(column).where(column.is_not(None))
                                     .distinct()).scalars())
    return keys


def find_orphans(site) -> Orphans:
    stored = stored_files(store_of(site))  # first: a file saved after this is not looked at
    used = referenced_keys(site)
    return Orphans(sorted(o for o in stored if o[0] not in used))


def delete_orphans(site, min_age: float = MIN_AGE) -> Orphans:
    """Delete the orphans older than ``min_age`` seconds, and their key folders once empty."""
    orphans = find_orphans(site)
    store = store_of(site)
    for key, size, _ in orphans.older_than(min_age):
        path = store / key
        try:
            path.unlink()
        except FileNotFoundError:
            continue  # deleted meanwhile (another administrator)
        orphans.deleted += 1
        orphans.freed += size
        try:
            path.parent.rmdir()  # only when empty
        except OSError:
            pass
    return orphans


# -- caches ----------------------------------------------------------------------------------

def rebuild_caches(site, templates) -> None:
    """Every worker reloads at its next request: the registry (``Site.rebuild`` moves the
    metadata epoch), access grants (the access epoch) and settings (their epoch); this
    worker also forgets its catalogs and compiled templates."""
    from core.apps.admin.access_admin import bump_epoch
    from core.kernel import i18n
    with site.engine.begin() as conn:
        bump_epoch(conn, site.tables)
        site.settings_changed(conn)
    site.rebuild()
    i18n.reload_translations()
    if hasattr(templates, "clear"):
        templates.clear()


# -- language files --------------------------------------------------------------------------

@dataclass
class CatalogReport:
    pack: str  # the pack's title
    language: str
    missing: list[str]  # "missing:" and "empty:" lines
    problems: list[str]  # fuzzy, placeholders differing, unreadable


def check_languages(site) -> list[CatalogReport]:
    from core import i18n_tools
    catalogs = [(pack, po) for pack in site.packs_of_kind("language")
                for po in sorted(pack.folder.glob("locale/*/LC_MESSAGES/*.po"))]
    if not catalogs:
        return []
    english = i18n_tools.extract_catalog()  # once (seconds) for every catalog
    reports = []
    for pack, po in catalogs:
        report = CatalogReport(pack.manifest.get("title") or pack.name,
                               po.parent.parent.name, [], [])
        for problem in i18n_tools.catalog_problems(po, english):
            gap = problem.startswith(("missing:", "empty:"))
            (report.missing if gap else report.problems).append(problem)
        reports.append(report)
    return reports
