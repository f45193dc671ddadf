"""Which column goes to which field: automatic mapping, sources, saved mappings.

A mapping is a list with one entry per column of the file: the field it fills, or None
(the column is left out). ``automatic(module, header, source)`` proposes one:

1. a **source** (``sources/<name>.yaml``: SugarCRM CE 6.5, SuiteCRM 7) names their
   columns exactly, so their exports map with no manual step;
2. otherwise a header matches a field by its name (``billing_address_city``), its label
   in English or in any installed language ("Ville (adresse de facturation)"), compared
   without case, accents, spaces or punctuation — what our own CSV and full-site exports
   write, and what people type.

A **saved mapping** (``crbm_import_mappings``) is one a user kept by name for a module:
the columns by header, so a file with its columns in another order maps the same.
"""
from __future__ import annotations

import functools
import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
import yaml

from core.kernel import i18n
from core.kernel.records import now
from core.kernel.registry import sequence_field

SOURCES_DIR = Path(__file__).parent / "sources"
CUSTOM = "custom"


def fold(text: str) -> str:
    """"Billing Street", "billing_street" and "Billing-street " -> "billingstreet"."""
    text = unicodedata.normalize("NFKD", str(text)).casefold()
    return re.sub(r"[\W_]+", "", "".join(c for c in text if not unicodedata.combining(c)))


@dataclass(frozen=True)
class Source:
    """An export format another CRM writes: their columns, per our module."""
    name: str
    title: str
    modules: dict = field(default_factory=dict)  # module -> {"columns": {}, "values": {}}

    def columns(self, module: str) -> dict[str, str | None]:
        return self.modules.get(module, {}).get("columns", {})

    def values(self, module: str) -> dict[str, dict[str, str]]:
        """field -> their stored value -> ours (dropdowns whose values differ)."""
        return self.modules.get(module, {}).get("values", {}) or {}


@functools.cache
def sources() -> dict[str, Source]:
    found = {}
    for path in sorted(SOURCES_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        found[data.get("name", path.stem)] = Source(
            data.get("name", path.stem), data.get("title", path.stem), data.get("modules") or {})
    return found


def importable_fields(module) -> list:
    """The fields an import may fill: what the record service lets a write set (not the
    system's bookkeeping, computed totals, or a number the sequence gives; a field only
    forms may not change, like a contact's vCard UID, an import may), except files
    (a cell cannot carry one), and ``id`` (an import keeps the ids it is given, so files
    that link by id stay linked)."""
    number = sequence_field(module)
    numbered = number and not module.features["sequence"].get("manual")
    return [f for f in module.fields.values()
            if f.name == "id" or (f.type.writable(f.spec) and not f.spec.get("internal")
                                  and "computed_by" not in f.spec
                                  and not (numbered and f.name == number)
                                  and f.type.name not in ("file", "image")
                                  and (not f.system or f.name == "assigned_user_id"))]


def _names(site, module) -> dict[str, str]:
    """Folded name or label (every installed language) -> field name."""
    names: dict[str, str] = {}
    fields = importable_fields(module)
    languages = ["en", *[code for code, _ in i18n.available_languages(site.locale_dirs)
                         if code != "en"]]
    for language in languages:
        token = i18n.activate(i18n.translations(language, site.locale_dirs))
        try:
            for f in fields:
                names.setdefault(fold(str(f.label)), f.name)
        finally:
            i18n.deactivate(token)
    for f in fields:  # a field's own name wins over another's label
        names[fold(f.name)] = f.name
    # a field forms may not change is often a plugin's to keep (an article's version
    # number): mapped only when a source or a person says so
    return {k: v for k, v in names.items() if not module.fields[v].spec.get("read_only")}


def automatic(site, module, header: list[str], source: str = CUSTOM) -> list[str | None]:
    """A field (or None) for each header cell; no field is given twice."""
    known = sources().get(source)
    theirs = {fold(k): v for k, v in known.columns(module.name).items()} if known else {}
    names = _names(site, module)
    taken: set[str] = set()
    out: list[str | None] = []
    for title in header:
        key = fold(title)
        name = theirs[key] if key in theirs else names.get(key)
        if name is not None and (name in taken or name not in module.fields):
            name = None
        if name:
            taken.add(name)
        out.append(name)
    return out


def check(module, header: list[str], mapping: list) -> list[str | None]:
    """``mapping`` made safe: one entry per column, each a field an import may fill,
    none twice (a later repeat is dropped)."""
    allowed = {f.name for f in importable_fields(module)}
    taken: set[str] = set()
    out: list[str | None] = []
    for index in range(len(header)):
        name = mapping[index] if index < len(mapping) else None
        name = name if name in allowed and name not in taken else None
        if name:
            taken.add(name)
        out.append(name)
    return out


# -- saved mappings ------------------------------------------------------------------------

def _table(site) -> sa.Table:
    return site.tables.tables["crbm_import_mappings"]


def saved(site, module_name: str) -> list[dict]:
    t = _table(site)
    with site.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            sa.select(t).where(t.c.module == module_name).order_by(t.c.name))]


def find_saved(site, module_name: str, name: str) -> dict | None:
    return next((m for m in saved(site, module_name) if m["name"] == name), None)


def save(site, module_name: str, name: str, header: list[str], mapping: list,
         options: dict, user_id: str) -> None:
    """Keep (or replace) the mapping ``name`` of a module: columns by header."""
    t = _table(site)
    columns = {h: m for h, m in zip(header, mapping, strict=False) if h}
    with site.engine.begin() as conn:
        conn.execute(t.delete().where(t.c.module == module_name, t.c.name == name))
        conn.execute(t.insert().values(id=str(uuid.uuid4()), module=module_name, name=name,
                                       columns=columns, options=options, created_by=user_id,
                                       created_at=now()))


def apply_saved(found: dict, header: list[str]) -> list[str | None]:
    columns = found["columns"] or {}
    folded = {fold(k): v for k, v in columns.items()}
    return [columns.get(h, folded.get(fold(h))) for h in header]
