"""The Studio: administrators reshape the metadata in the browser (implementation guide 7.5).

Everything here edits the site's customization layer (``core.kernel.customizations``): overlay
documents on the modules and dropdown lists that plugins and packs define, or whole new
modules. A change goes through one path, ``_apply``:

    candidate layer -> build the registry it gives (the same JSON Schemas and cross-checks
    as shipped metadata; a problem refuses the change, nothing written) -> schema sync
    (new tables and columns) -> one transaction: the layer rows, defaults filled into
    existing records, calculated fields the change adds or changes computed for existing
    records, the audit row, the metadata epoch -> reload.

If anything after the check fails, the tables and columns the sync created are dropped
and the old registry stays. The epoch makes every other worker rebuild its registry on
its next request. Removing a Studio field or module keeps its column or table (and a
"removed" row to restore it from) unless the administrator purges, which exports the data
to a zip first, as pack purges do.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa

from core.apps.field_types import formula
from core.kernel import customizations, database, i18n
from core.kernel.customizations import Item
from core.kernel.errors import N_, CrbmError, MetadataError
from core.kernel.registry import (
    DROPDOWNS_SCHEMA,
    SYSTEM_FIELDS,
    ModuleDef,
    Registry,
    build_registry,
    default_label,
)

# The 21 custom field types of the guide (7.5.2), in its order, with their English names.
FIELD_TYPES: list[tuple[str, str]] = [
    ("text", N_("Text")), ("textarea", N_("Text Area")), ("integer", N_("Integer")),
    ("decimal", N_("Decimal")), ("percentage", N_("Percentage")), ("checkbox", N_("Checkbox")),
    ("email", N_("Email")), ("phone", N_("Phone Number")), ("item_number", N_("Item Number")),
    ("dropdown", N_("Dropdown")), ("status", N_("Status")),
    ("multiselect", N_("Multiselect List")), ("date", N_("Date")),
    ("datetime", N_("Date & Time")), ("url", N_("Web Link")), ("html", N_("HTML")),
    ("calculated", N_("Calculated")), ("related", N_("Related Record")),
    ("related_value", N_("Value From Related Record")), ("currency", N_("Currency")),
    ("name", N_("Name")),
]
LAYOUT_VIEWS = ("detail", "edit", "quick_create", "list", "filters")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Words that make awkward or invalid column and URL names on one database or another.
RESERVED = frozenset(["add", "all", "alter", "and", "any", "as", "asc", "between", "by",
    "case", "check", "column", "constraint", "create", "cross", "current", "default", "delete",
    "desc", "distinct", "drop", "else", "end", "exists", "false", "fetch", "for", "foreign",
    "from", "full", "grant", "group", "having", "in", "index", "inner", "insert", "interval",
    "into", "is", "join", "key", "left", "like", "limit", "not", "null", "offset", "on", "or",
    "order", "outer", "primary", "references", "right", "rows", "select", "set", "table",
    "then", "to", "true", "union", "unique", "update", "user", "using", "values", "when",
    "where", "with"]) | frozenset(SYSTEM_FIELDS) | {"assigned_user_id"}
# "new" is the Studio's own page for creating a module (/admin/studio/modules/new); the
# others are the REST API's fixed paths (/api/v1/webhooks, /api/v1/notifications,
# /api/v1/docs) and the segments after a record (.../line_items, .../actions), which
# relationships are named after.
RESERVED_MODULES = frozenset({"new", "webhooks", "notifications", "docs", "bulk", "actions",
                              "line_items"})
# Kernel objects that are not modules but share their names: user fields point at "users"
# (the API's x-crbm-related), and teams and roles are what access control is made of.
KERNEL_NAMES = frozenset({"users", "teams", "roles"})
MODULE_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")


def module_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a new module, or None: the one rule for modules made in the
    Studio and modules a pack brings (``core.apps.packs.pack_archive.module_problems``)."""
    if not MODULE_NAME.fullmatch(name or ""):
        return ("must start with a lowercase letter, then lowercase letters, digits or "
                "underscores (at most 41 characters)")
    if name.startswith("crbm_"):
        return f"{name!r} is reserved: names starting with crbm_ are the kernel's tables"
    if name in RESERVED:
        return f"{name!r} is reserved: an SQL word or a system field's name"
    if name in RESERVED_MODULES:
        return f"{name!r} is reserved: a fixed path of the web pages or the API"
    if name in KERNEL_NAMES:
        return f"{name!r} is reserved: the kernel's {name} are not a module"
    return None
FORBIDDEN_IN_VALUES = '"<>&'
# The colours an option may have (its ``color``: a badge in lists, a board column's colour),
# in the schema's order (metadata/schema/dropdowns.json), with the names the editor shows.
COLOR_NAMES = {"gray": N_("Gray"), "blue": N_("Blue"), "teal": N_("Teal"),
               "green": N_("Green"), "amber": N_("Amber"), "orange": N_("Orange"),
               "red": N_("Red"), "purple": N_("Purple"), "pink": N_("Pink")}
OPTION_COLORS: list[tuple[str, str]] = [
    (color, COLOR_NAMES[color]) for lists in DROPDOWNS_SCHEMA["patternProperties"].values()
    for color in lists["items"]["properties"]["color"]["enum"]]


class StudioError(CrbmError):
    """A change the Studio refuses; nothing was changed."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(map(str, problems)))


@dataclass(frozen=True)
class Problem:
    where: str  # a field of the form, or the JSON path in the definition
    reason: str
    position: int | None = None  # formulas: 0-based offset of the error

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}" if self.where else self.reason


@dataclass
class Change:
    summary: str
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModuleSummary:
    name: str
    label: str
    label_singular: str
    tab_group: str
    custom: bool
    hidden: bool
    removable: bool
    original_label: str  # as plugins and packs define it, before the Studio renamed it


@dataclass(frozen=True)
class FieldInfo:
    name: str
    type: str
    label: str
    spec: dict
    custom: bool
    system: bool
    removable: bool


@dataclass(frozen=True)
class DropdownSummary:
    name: str
    modified: bool
    protected: bool
    size: int


@dataclass(frozen=True)
class LogEntry:
    at: dt.datetime
    user: str
    action: str
    target: str
    detail: str


@dataclass(frozen=True)
class RemovedItem:
    id: str
    kind: str
    module: str
    name: str
    removed_at: dt.datetime
    by: str | None
    purgeable: bool = False


def refuse(where: str, reason: str, position: int | None = None) -> StudioError:
    return StudioError([Problem(where, reason, position)])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Studio:
    def __init__(self, site):
        self.site = site

    # -- the layers ------------------------------------------------------------------------

    @property
    def registry(self) -> Registry:
        return self.site.registry

    def _items(self) -> dict[tuple[str, str], Item]:
        return {i.key: i for i in customizations.read(self.site.engine)}

    @property
    def _base(self) -> Registry:
        """The registry without the site layer: what "custom" and "default" are measured
        against. Rebuilt when the registry is (packs change the base)."""
        cached = self.__dict__.get("_base_cache")
        if cached is None or cached[0] is not self.registry:
            base = build_registry(self.site.layers(customizations=[]),
                                  self.site.provided("crbm_field_types"),
                                  self.site.provided("crbm_module_features"))
            cached = self.__dict__["_base_cache"] = (self.registry, base)
        return cached[1]

    def _overlay(self, items: dict, module: str) -> dict:
        """A copy of the site's overlay on ``module`` (``{"name": module}`` if none)."""
        item = items.get(("module", module))
        return copy.deepcopy(item.body) if item else {"name": module}

    def _module(self, name: str) -> ModuleDef:
        module = self.registry.modules.get(name)
        if module is None:
            raise refuse("module", f"no module named {name!r}")
        return module

    # -- applying a change -----------------------------------------------------------------

    def _apply(self, user, action: str, target: str, detail: str,
               items: list[Item] = (), removed: list[tuple[str, str]] = (),
               backfill: list[tuple[str, str]] = (), trash: dict | None = None,
               trash_done: str | None = None, warnings: list[str] = ()) -> Change:
        """Check, sync, write and reload, all or nothing (see the module docstring)."""
        site = self.site
        current = self._items()
        for key in removed:
            current.pop(key, None)
        for item in items:
            current[item.key] = item
        candidate = list(current.values())
        try:
            registry = build_registry(site.layers(customizations=candidate),
                                      site.provided("crbm_field_types"),
                                      site.provided("crbm_module_features"))
        except MetadataError as exc:
            raise StudioError([Problem(p.path, p.reason) for p in exc.problems]) from None
        before = site.state()
        created_tables: list[str] = []
        added_columns: list[tuple[str, str]] = []
        try:
            # the tables and columns first, the registry after: this process's other
            # requests use the site's registry meanwhile, and one swapped in before its
            # ALTER TABLE (waiting for its lock under load) selects a column not there yet.
            # (_schema: the tables reload builds next, made once and cached for it)
            tables = site._schema(registry)
            diff = database.sync(site.engine, registry, metadata=tables,
                                 only=database.changed_tables(before[1], tables))
            created_tables, added_columns = diff.created_tables, diff.added_columns
            site.reload(customizations=candidate)
            with site.engine.begin() as conn:
                customizations.write(conn, site.tables.tables["crbm_customizations"],
                                     list(items), list(removed), getattr(user, "id", None))
                for module, name in backfill:
                    self._fill_default(conn, module, name)
                warnings = [*warnings, *self._recalculate(conn, before[0])]
                if trash is not None:
                    conn.execute(site.tables.tables["crbm_studio_removed"].insert().values(
                        id=str(uuid.uuid4()), removed_at=_now(),
                        removed_by=getattr(user, "id", None), **trash))
                if trash_done is not None:
                    table = site.tables.tables["crbm_studio_removed"]
                    conn.execute(table.delete().where(table.c.id == trash_done))
                self._log(conn, user, action, target, detail)
        except Exception as exc:  # whatever failed, the site goes back as it was
            database.drop(site.engine, created_tables, added_columns)
            site.restore(before)
            raise refuse("", f"the change could not be applied: {_one_line(exc)}") from exc
        site.after_sync()
        site.reload()
        return Change(detail, list(warnings))

    def save_items(self, user, items: list[Item], removed: list[tuple[str, str]] = ()) -> Change:
        """Whole overlay documents, as written (what the pages above build for the admin;
        scripts and tests may hand them over directly)."""
        names = ", ".join(f"{i.kind} {i.name}" for i in items) or "nothing"
        return self._apply(user, "save customizations", names[:130], f"saved {names}",
                           items=list(items), removed=list(removed))

    def _log(self, conn, user, action: str, target: str, detail: str) -> None:
        conn.execute(self.site.tables.tables["crbm_studio_log"].insert().values(
            at=_now(), user_id=getattr(user, "id", None),
            username=getattr(user, "username", None) or "command line",
            action=action, target=target[:130], detail=detail))

    def _recalculate(self, conn, old: Registry) -> list[str]:
        """Calculated fields this change adds, or whose formula or format it changes, get
        their values in every existing record, in the change's transaction (warnings for
        records a formula fails for). Measured on 100,000 records (2 shared cores): about
        4 s on SQLite, 10 s on PostgreSQL, 12 s on MariaDB — long for one transaction but
        short enough not to need a background job, which CRBM does not have yet."""
        warnings = []
        for module in self.registry.modules.values():
            before = old.modules.get(module.name)
            names = [f.name for f in module.fields.values() if f.type.computed
                     and not _same_formula(before.fields.get(f.name) if before else None, f)]
            if not names:
                continue
            done = self.site.records.recalculate(module.name, names, connection=conn)
            if done.failed:
                warnings.append(
                    f"{done.failed} existing record{'s' if done.failed > 1 else ''} could "
                    f"not be calculated ({done.problem}); "
                    f"{'they are' if done.failed > 1 else 'it is'} left blank")
        return warnings

    def _fill_default(self, conn, module_name: str, field_name: str) -> None:
        """A field made required gets its default in every record that has no value, in
        one statement (existing records stay valid)."""
        module = self.registry.module(module_name)
        f = module.fields[field_name]
        value = f.type.normalize(f.spec["default"], f.spec)
        table = self.site.tables.tables[module.table]
        conn.execute(table.update().where(table.c[field_name].is_(None))
                     .values({field_name: value}))

    # -- modules ---------------------------------------------------------------------------

    def modules(self) -> list[ModuleSummary]:
        base = self._base.modules
        return [ModuleSummary(m.name, m.label, m.label_singular, m.tab_group,
                              custom=m.name not in base, hidden=bool(m.definition.get("hidden")),
                              removable=m.name not in base,
                              original_label=base[m.name].label if m.name in base
                              else i18n.label(m.definition["label"]))
                for m in sorted(self.registry.modules.values(), key=lambda m: m.label.lower())]

    def module_settings(self, name: str) -> dict:
        module = self._module(name)
        d = module.definition
        features = module.features
        return {"label": d["label"], "label_singular": d.get("label_singular", d["label"]),
                "tab_group": d.get("tab_group", ""), "icon": d.get("icon", ""),
                "access_level": d.get("access_level", "editable"),
                "features": {"assignable": bool(features.get("assignable")),
                             "team_owned": bool(features.get("team_owned")),
                             "audited": bool(features.get("audited")),
                             "importable": bool(features.get("importable")),
                             "sequence_prefix": (features.get("sequence") or {}).get("prefix")
                             if features.get("sequence") else None}}

    def create_module(self, user, name: str, label: str, label_singular: str | None = None,
                      tab_group: str | None = None, icon: str | None = None,
                      access_level: str = "editable", features: dict | None = None) -> Change:
        problems = []
        if reason := module_name_problem(name):
            problems.append(Problem("name", reason))
        elif name in self.registry.modules:
            problems.append(Problem("name", f"a module named {name!r} exists already"))
        elif owner := self._owned_by_pack(name):
            problems.append(Problem("name", f"{name!r} belongs to the pack {owner!r}"))
        if not (label or "").strip():
            problems.append(Problem("label", "a label is required"))
        if problems:
            raise StudioError(problems)
        body: dict = {"name": name, "label": label.strip(),
                      "label_singular": (label_singular or "").strip() or label.strip(),
                      "fields": {"name": {"type": "name", "label": "Name", "required": True}}}
        settings = self._settings_body(tab_group, icon, access_level, features or {}, body)
        body["fields"].update(settings.pop("fields", {}))
        body.update(settings)
        self._drop_nulls_for_custom(body, name)
        return self._apply(user, "create module", name, f"created module {name}",
                           items=[Item("module", name, body)])

    def update_module(self, user, name: str, **settings) -> Change:
        module = self._module(name)
        items = self._items()
        overlay = self._overlay(items, name)
        current = self.module_settings(name)
        current.update({k: v for k, v in settings.items() if k != "features"})
        features = {**current["features"], **(settings.get("features") or {})}
        if not (current["label"] or "").strip():
            raise refuse("label", "a label is required")
        overlay["label"] = current["label"].strip()
        overlay["label_singular"] = (current["label_singular"] or "").strip() or overlay["label"]
        changes = self._settings_body(current["tab_group"], current["icon"],
                                      current["access_level"], features, module.definition)
        for key in ("tab_group", "icon", "access_level"):
            overlay[key] = changes.get(key)  # None removes the key
        overlay["features"] = {**overlay.get("features", {}), **changes["features"]}
        if "number" in changes.get("fields", {}):
            overlay.setdefault("fields", {})["number"] = changes["fields"]["number"]
        self._drop_nulls_for_custom(overlay, name)
        return self._apply(user, "edit module", name, f"changed the settings of {name}",
                           items=[Item("module", name, overlay)])

    def _settings_body(self, tab_group, icon, access_level, features: dict, definition) -> dict:
        if access_level not in ("editable", "fixed"):
            raise refuse("access_level", "must be editable or fixed")
        out: dict = {"tab_group": (tab_group or "").strip() or None,
                     "icon": (icon or "").strip() or None,
                     "access_level": access_level if access_level == "fixed" else None}
        flags = {k: True if features.get(k) else None
                 for k in ("assignable", "team_owned", "audited", "importable")}
        prefix = features.get("sequence_prefix")
        if prefix is not None and prefix is not False:
            number = next((n for n, s in definition.get("fields", {}).items()
                           if s.get("type") == "item_number"), None)
            if number is None:
                number = "number"
                out["fields"] = {"number": {"type": "item_number", "label": "Number",
                                            "read_only": True}}
            flags["sequence"] = {"field": number, "prefix": str(prefix)}
        else:
            flags["sequence"] = None  # numbering off (the number field and its values stay)
        out["features"] = flags
        return out

    def _drop_nulls_for_custom(self, body: dict, name: str) -> None:
        """A Studio-made module is whole in the site layer: a ``null`` there means "absent"."""
        if name in self.registry.modules and name in self._base.modules:
            return
        for key in [k for k, v in body.items() if v is None]:
            del body[key]
        features = body.get("features", {})
        for key in [k for k, v in features.items() if v is None]:
            del features[key]

    def _owned_by_pack(self, name: str) -> str | None:
        table = database.kernel_table("crbm_pack_objects")
        with self.site.engine.connect() as conn:
            return conn.execute(sa.select(table.c.pack).where(
                table.c.kind.in_(["module", "table"]), table.c.name == name)).scalar()

    def remove_module(self, user, name: str, purge: bool = False) -> Change:
        module = self._module(name)
        if name in self._base.modules:
            raise refuse("module", f"{name!r} is not a Studio module; packs and plugins "
                         "remove their own modules")
        items = self._items()
        others = self._detach(items, lambda m, rel: rel.get("module") == name,
                              lambda m, spec: spec.get("module") == name or
                              name in spec.get("modules", []), skip=name)
        tables = [module.table] + [module.link_table(r) for r, rel in module.relationships.items()
                                   if rel["kind"] == "many_to_many"]
        body = {"module": items[("module", name)].body,
                "others": {m: old for m, (old, _) in others.items()}}
        detail = f"removed module {name}" + (" and purged its data" if purge else
                                             " (its table and data are kept)")
        change = self._apply(
            user, "remove module", name, detail, removed=[("module", name)],
            items=[Item("module", m, new) for m, (_, new) in others.items()],
            trash=None if purge else {"kind": "module", "module": name, "name": name,
                                      "body": json.dumps(body)})
        if purge:
            self._purge(f"studio_{name}", tables, [], forget=[name])
        return change

    def _detach(self, items: dict, rel_goes, field_goes, skip: str) -> dict:
        """What other modules' site overlays lose with a removed field or module: the
        relationships and related fields (``rel_goes(module, rel)``, ``field_goes(module,
        spec)``) that point to it, and their places in layouts. Returns {module: (overlay
        before, overlay after)}; the "before" goes into the removed row, so a restore brings
        them back."""
        others = {}
        for (kind, module), item in items.items():
            if kind != "module" or module == skip:
                continue
            rels = [r for r, v in item.body.get("relationships", {}).items()
                    if v and rel_goes(module, v)]
            fields = [f for f, v in item.body.get("fields", {}).items()
                      if v and v.get("type") == "related" and field_goes(module, v)]
            if rels or fields:
                body = copy.deepcopy(item.body)
                for r in rels:
                    body["relationships"].pop(r)
                for f in fields:
                    body["fields"].pop(f)
                self._scrub_layouts(body, module, set(rels), set(fields))
                others[module] = (item.body, body)
        return others

    def _reattach(self, items: dict, others: dict) -> list[Item]:
        """The overlays that put back what ``_detach`` took (for modules still here)."""
        out = []
        for other, old in others.items():
            if other not in self.registry.modules:
                continue
            overlay = self._overlay(items, other)
            for key in ("relationships", "fields"):
                for k, v in old.get(key, {}).items():
                    overlay.setdefault(key, {}).setdefault(k, v)
            subpanels = old.get("layouts", {}).get("subpanels")
            if subpanels:
                overlay.setdefault("layouts", {})["subpanels"] = subpanels
            out.append(Item("module", other, overlay))
        return out

    # -- fields ----------------------------------------------------------------------------

    def fields(self, module_name: str) -> list[FieldInfo]:
        module = self._module(module_name)
        base = self._base.modules.get(module_name)
        out = []
        for f in module.fields.values():
            if f.group:
                continue
            custom = base is None and not f.system or (base is not None and
                                                         f.name not in base.fields)
            out.append(FieldInfo(f.name, f.type.name, f.label, dict(f.spec), custom,
                                 f.system, removable=custom and f.name != module.name_field))
        return out

    def save_field(self, user, module_name: str, name: str, spec: dict, new: bool = False) -> Change:
        module = self._module(module_name)
        spec = {k: v for k, v in (spec or {}).items() if v is not None and v != ""}
        problems: list[Problem] = []
        warnings: list[str] = []
        if new:
            problems += self._name_problems(module, name, spec)
        elif name not in module.fields or module.fields[name].system or module.fields[name].group:
            raise refuse("name", f"module {module_name!r} has no editable field {name!r}")
        else:
            spec["type"] = module.fields[name].type.name  # the type of a field never changes
        ftype = spec.get("type")
        if ftype not in dict(FIELD_TYPES) and (new or ftype not in self.registry.field_types):
            problems.append(Problem("type", f"unknown field type {ftype!r}"))
        kind = self.registry.field_types.get(ftype)
        derived = kind is not None and kind.derived
        if kind is not None and kind.computed:
            problems += [Problem("formula", p.reason, p.position)
                         for p in self.check_formula(module_name, spec.get("formula", ""),
                                                     exclude=name)]
        if derived:
            spec.pop("required", None)
            spec.pop("default", None)
        if problems:
            raise StudioError(problems)
        if spec.get("required") and "default" not in spec and not derived:
            warnings.append("required without a default: every new record must fill it in, "
                            "and records that exist stay empty until edited")
        items = self._items()
        overlay = self._overlay(items, module_name)
        base = self._base.modules.get(module_name)
        base_spec = base.definition["fields"].get(name) if base else None
        fields = overlay.setdefault("fields", {})
        if base_spec is None:
            fields[name] = spec  # a custom field: the site layer holds it whole
        else:  # a standard field: only what differs, so later upgrades of the rest show
            diff = {k: v for k, v in spec.items() if base_spec.get(k) != v}
            diff.update({k: None for k in base_spec if k not in spec and k != "type"})
            fields[name] = diff or None
            if not diff:
                fields.pop(name)
        backfill = []
        if spec.get("required") and "default" in spec:
            old = module.fields.get(name)
            if new or not old or not old.required or old.spec.get("default") != spec["default"]:
                backfill = [(module_name, name)]
        changed = [Item("module", module_name, overlay)]
        target = self.registry.modules.get(spec.get("module", ""))
        if new and kind is not None and kind.is_link and target is not None \
                and target.name != module_name:
            # the guide's rule: a related field makes a one-to-many relationship, with its
            # subpanel on the module it points to
            changed.append(self._one_side(items, target, module, name, None, True)[0])
        verb = "added" if new else "changed"
        return self._apply(user, "add field" if new else "edit field", f"{module_name}.{name}",
                           f"{verb} field {name} ({ftype}) of {module_name}",
                           items=changed, backfill=backfill, warnings=warnings)

    def _one_side(self, items: dict, one: ModuleDef, many: ModuleDef, field_name: str,
                  label: str | None, subpanel: bool) -> tuple[Item, str]:
        """The overlay giving ``one`` a one-to-many relationship (and subpanel) to the
        records of ``many`` whose ``field_name`` points at it."""
        rel_name = self._free_relationship(one, many.name, field_name)
        overlay = self._overlay(items, one.name)
        overlay.setdefault("relationships", {})[rel_name] = {
            "kind": "one_to_many", "module": many.name, "field": field_name,
            **({"label": label.strip()} if (label or "").strip() else {})}
        self._show_subpanel(overlay, one, rel_name, subpanel)
        return Item("module", one.name, overlay), rel_name

    def _name_problems(self, module: ModuleDef, name: str, spec: dict) -> list[Problem]:
        if not name or not NAME.fullmatch(name) or len(name) > 60:
            return [Problem("name", "must start with a lowercase letter, then lowercase "
                            "letters, digits or underscores (at most 60 characters)")]
        if name in RESERVED or name.startswith("crbm_"):
            return [Problem("name", f"{name!r} is reserved")]
        if name in module.fields or name in module._groups:
            return [Problem("name", f"module {module.name!r} already has a field {name!r}")]
        ftype = self.registry.field_types.get(spec.get("type", ""))
        if ftype is not None:
            for sub, _ in ftype.expand(name, spec)[1:]:
                if sub in module.fields:
                    return [Problem("name", f"{name!r} would also make {sub!r}, which "
                                    f"module {module.name!r} already has")]
        return []

    def remove_field(self, user, module_name: str, name: str, purge: bool = False) -> Change:
        module = self._module(module_name)
        info = next((f for f in self.fields(module_name) if f.name == name), None)
        if info is None or not info.removable:
            raise refuse("name", f"{name!r} is not a custom field of {module_name!r}; standard "
                         "fields can be hidden from the layouts but not removed")
        items = self._items()
        overlay = self._overlay(items, module_name)
        spec = overlay["fields"].pop(name)
        self._scrub_layouts(overlay, module_name, set(), {name})
        # the one-to-many relationships this related field makes on other modules go too
        others = self._detach(items, lambda m, rel: rel.get("module") == module_name and
                              rel.get("field") == name, lambda m, spec: False, skip=module_name)
        columns = [(module.table, f.name) for f in module.expand(name) if f.stored]
        detail = f"removed field {name} of {module_name}" + (
            " and purged its data" if purge else " (its column and data are kept)")
        change = self._apply(
            user, "remove field", f"{module_name}.{name}", detail,
            items=[Item("module", module_name, overlay),
                   *(Item("module", m, new) for m, (_, new) in others.items())],
            trash=None if purge else {"kind": "field", "module": module_name, "name": name,
                                      "body": json.dumps({"spec": spec, "others": {
                                          m: old for m, (old, _) in others.items()}})})
        if purge:
            self._purge(f"studio_{module_name}_{name}", [], columns)
        return change

    def _scrub_layouts(self, overlay: dict, module_name: str, relationships: set[str],
                       fields: set[str]) -> None:
        """Take removed fields and relationships out of every layout of the module, writing
        the merged layouts that mention them into the overlay."""
        module = self.registry.modules[module_name]
        layouts = copy.deepcopy(module.definition.get("layouts", {}))
        changed = {}
        for view in ("detail", "edit"):
            if any(n in fields for s in layouts.get(view, []) for r in s["rows"] for n in r):
                changed[view] = [{**s, "rows": [[None if n in fields else n for n in r]
                                                for r in s["rows"]]} for s in layouts[view]]
        for view in ("quick_create", "filters"):
            if any(n in fields for n in layouts.get(view, [])):
                changed[view] = [n for n in layouts[view] if n not in fields]
        listing = layouts.get("list", {})
        if any(n in fields for n in listing.get("columns", []) + listing.get("search", [])) \
                or listing.get("sort", "").lstrip("-") in fields:
            new = dict(listing)
            new["columns"] = [n for n in listing.get("columns", []) if n not in fields] or None
            new["search"] = [n for n in listing.get("search", []) if n not in fields] or None
            if new.get("sort", "").lstrip("-") in fields:
                new["sort"] = None
            changed["list"] = {k: v for k, v in new.items() if v is not None} or None
        if any(r in relationships for r in layouts.get("subpanels", [])):
            changed["subpanels"] = [r for r in layouts["subpanels"] if r not in relationships]
        columns = layouts.get("subpanel_columns", {})
        if any(r in relationships for r in columns):
            changed["subpanel_columns"] = {r: None for r in columns if r in relationships}
        if changed:
            overlay.setdefault("layouts", {}).update(changed)
            if module_name not in self._base.modules:
                overlay["layouts"] = {k: v for k, v in overlay["layouts"].items()
                                      if v is not None}

    def _purge(self, name: str, tables: list[str], columns: list[tuple[str, str]],
               forget: list[str] = ()) -> None:
        """Export the data to a zip (as a pack purge does), then drop it."""
        self.site.packs._export_data(name, "removed", tables, columns)
        if forget:
            with self.site.engine.begin() as conn:
                self.site.packs._forget_modules(conn, list(forget))
        database.drop(self.site.engine, tables, columns)

    def removed(self) -> list[RemovedItem]:
        table = self.site.tables.tables["crbm_studio_removed"]
        users = self.site.tables.tables["crbm_users"]
        with self.site.engine.connect() as conn:
            rows = conn.execute(sa.select(table, users.c.username)
                                .outerjoin(users, users.c.id == table.c.removed_by)
                                .order_by(table.c.removed_at.desc())).all()
        return [RemovedItem(r.id, r.kind, r.module, r.name, r.removed_at, r.username)
                for r in rows]

    def restore(self, user, removed_id: str) -> Change:
        """Put a removed field or module back; its data was kept, so it returns too."""
        table = self.site.tables.tables["crbm_studio_removed"]
        with self.site.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.id == removed_id)).first()
        if row is None:
            raise refuse("", "nothing removed with that id")
        body = json.loads(row.body)
        items = self._items()
        if row.kind == "field":
            if row.module not in self.registry.modules:
                raise refuse("module", f"restore the module {row.module!r} first")
            if row.name in self.registry.modules[row.module].fields:
                raise refuse("name", f"module {row.module!r} has a field {row.name!r} again")
            overlay = self._overlay(items, row.module)
            overlay.setdefault("fields", {})[row.name] = body["spec"]
            new_items = [Item("module", row.module, overlay)]
        else:
            if row.name in self.registry.modules:
                raise refuse("name", f"a module named {row.name!r} exists again")
            new_items = [Item("module", row.name, body["module"])]
        new_items += self._reattach(items, body.get("others", {}))
        return self._apply(user, f"restore {row.kind}", f"{row.module}.{row.name}"
                           if row.kind == "field" else row.name,
                           f"restored {row.kind} {row.name}", items=new_items, trash_done=row.id)

    # -- formulas --------------------------------------------------------------------------

    def formula_help(self, module_name: str) -> dict:
        module = self._module(module_name)
        return {"functions": [{"name": f.name, "arity": f.arity(),
                               "example": formula.EXAMPLES.get(f.name, "")}
                              for f in formula.FUNCTIONS.values()],
                "fields": [f.name for f in module.fields.values()
                           if f.stored and f.name not in ("id", "deleted", "version")]}

    def check_formula(self, module_name: str, text: str, exclude: str | None = None) -> list[Problem]:
        """Every problem of a formula, with the 0-based position where it is."""
        module = self._module(module_name)
        if not (text or "").strip():
            return [Problem("formula", "a calculated field needs a formula", 0)]
        try:
            parsed = formula.parse(text)
        except formula.FormulaError as exc:
            return [Problem("formula", str(exc), exc.position)]
        known = set(module.fields) - {exclude}
        problems = []
        for name in sorted(parsed.fields - known):
            match = re.search(rf"(?<![A-Za-z0-9_\"]){re.escape(name)}(?![A-Za-z0-9_])", text)
            position = match.start() if match else 0
            line = text.count("\n", 0, position) + 1
            column = position - (text.rfind("\n", 0, position) + 1) + 1
            problems.append(Problem("formula", f"unknown field {name!r} at line {line}, "
                                    f"column {column}", position))
        return problems

    # -- relationships ---------------------------------------------------------------------

    def relationships(self, module_name: str) -> list[dict]:
        module = self._module(module_name)
        base = self._base.modules.get(module_name)
        shown = module.definition.get("layouts", {}).get("subpanels")
        out = []
        for name, rel in module.definition.get("relationships", {}).items():
            out.append({"name": name, "kind": rel["kind"], "module": rel["module"],
                        "field": rel.get("field"), "label": rel.get("label") or
                        self.registry.modules[rel["module"]].label,
                        "subpanel": name in shown if shown is not None else True,
                        "custom": base is None or name not in base.relationships})
        # the many-to-one side: this module's related fields that another module's
        # one-to-many relationship (its subpanel) goes through
        custom_fields = {f.name for f in self.fields(module_name) if f.custom}
        for other in self.registry.modules.values():
            for rel_name, rel in other.definition.get("relationships", {}).items():
                if rel["kind"] == "one_to_many" and rel["module"] == module_name:
                    out.append({"name": rel["field"], "kind": "many_to_one",
                                "module": other.name, "field": rel["field"],
                                "label": rel.get("label") or module.label, "subpanel": False,
                                "custom": rel["field"] in custom_fields,
                                "other_relationship": rel_name})
        return out

    def add_relationship(self, user, module_name: str, kind: str, other_name: str,
                         field_name: str | None = None, label: str | None = None,
                         subpanel: bool = True) -> Change:
        module, other = self._module(module_name), self.registry.modules.get(other_name)
        if other is None:
            raise refuse("module", f"no module named {other_name!r}")
        if kind == "one_to_many":  # the mirror of many_to_one, seen from the "one" side
            module, other = other, module
            kind = "many_to_one"
        items = self._items()
        if kind == "many_to_one":
            field_name = field_name or re.sub(r"[^a-z0-9_]", "_",
                                              other.definition.get("label_singular",
                                                                   other.name).lower()) + "_id"
            spec = {"type": "related", "module": other.name, "label": other.definition.get(
                "label_singular", other.definition["label"]), "indexed": True}
            problems = self._name_problems(module, field_name, spec)
            if problems:
                raise StudioError([Problem("field_name", p.reason) for p in problems])
            many = self._overlay(items, module.name)
            many.setdefault("fields", {})[field_name] = spec
            one, rel_name = self._one_side(items, other, module, field_name, label, subpanel)
            changed = [Item("module", module.name, many), one]
            detail = (f"related {module.name}.{field_name} to {other.name} "
                      f"(subpanel {rel_name} on {other.name})")
        elif kind == "many_to_many":
            link = "_".join(sorted([module.name, other.name])) + "_links"
            if any(r.get("kind") == "many_to_many" and r.get("module") == other.name
                   for r in module.relationships.values()):
                raise refuse("module", f"{module.name!r} and {other.name!r} are already related "
                             "many-to-many")
            this = self._overlay(items, module.name)
            a = self._free_relationship(module, other.name)
            this.setdefault("relationships", {})[a] = {
                "kind": "many_to_many", "module": other.name, "link_table": link,
                **({"label": label.strip()} if (label or "").strip() else {})}
            self._show_subpanel(this, module, a, subpanel)
            changed = [Item("module", module.name, this)]
            if other.name != module.name:
                that = self._overlay(items, other.name)
                b = self._free_relationship(other, module.name)
                that.setdefault("relationships", {})[b] = {
                    "kind": "many_to_many", "module": module.name, "link_table": link}
                self._show_subpanel(that, other, b, subpanel)
                changed.append(Item("module", other.name, that))
            detail = f"related {module.name} and {other.name} many-to-many ({link})"
        else:
            raise refuse("kind", "must be many_to_one, one_to_many or many_to_many")
        return self._apply(user, "add relationship", module.name, detail, items=changed)

    def _free_relationship(self, module: ModuleDef, wanted: str, suffix: str = "") -> str:
        name = wanted
        if name in module.relationships and suffix:
            name = f"{wanted}_{suffix.removesuffix('_id')}"
        n = 2
        while name in module.relationships:
            name, n = f"{wanted}_{n}", n + 1
        return name

    def _show_subpanel(self, overlay: dict, module: ModuleDef, rel_name: str, shown: bool) -> None:
        current = module.definition.get("layouts", {}).get("subpanels")
        if current is None and shown:
            return  # no list: every relationship has its subpanel
        if current is None:
            current = list(module.relationships)
        wanted = [r for r in current if r != rel_name] + ([rel_name] if shown else [])
        overlay.setdefault("layouts", {})["subpanels"] = wanted

    def remove_relationship(self, user, module_name: str, name: str) -> Change:
        self._module(module_name)
        rel = next((r for r in self.relationships(module_name) if r["name"] == name), None)
        if rel is None or not rel["custom"]:
            raise refuse("relationship", f"{name!r} is not a Studio relationship of "
                         f"{module_name!r}")
        if rel["kind"] == "many_to_one":  # the related field is the relationship (and data)
            return self.remove_field(user, module_name, name)
        items = self._items()
        changed = []
        this = self._overlay(items, module_name)
        this["relationships"].pop(name)
        self._scrub_layouts(this, module_name, {name}, set())
        changed.append(Item("module", module_name, this))
        if rel["kind"] == "many_to_many" and rel["module"] != module_name:
            other = self.registry.modules[rel["module"]]
            back = [r for r, v in other.relationships.items()
                    if v["kind"] == "many_to_many" and v["module"] == module_name]
            that = self._overlay(items, other.name)
            for r in back:
                that.get("relationships", {}).pop(r, None)
            self._scrub_layouts(that, other.name, set(back), set())
            changed.append(Item("module", other.name, that))
        return self._apply(user, "remove relationship", f"{module_name}.{name}",
                           f"removed relationship {name} of {module_name} (data kept)",
                           items=changed)

    def save_subpanels(self, user, module_name: str, shown: list[str],
                       labels: dict[str, str]) -> Change:
        module = self._module(module_name)
        unknown = [r for r in list(shown) + list(labels) if r not in module.relationships]
        if unknown:
            raise refuse("subpanels", f"no relationship {unknown[0]!r}")
        overlay = self._overlay(self._items(), module_name)
        overlay.setdefault("layouts", {})["subpanels"] = list(shown)
        for name, text in labels.items():
            text = (text or "").strip()
            if text and text != module.relationships[name].get("label"):
                # whole, as a relationship overlay must name its kind and module
                overlay.setdefault("relationships", {})[name] = {
                    **module.definition["relationships"][name], "label": text}
        return self._apply(user, "edit subpanels", module_name,
                           f"subpanels of {module_name}: {', '.join(shown) or 'none'}",
                           items=[Item("module", module_name, overlay)])

    # -- layouts ---------------------------------------------------------------------------

    def layout(self, module_name: str, view: str):
        """What the pages show now (a module's defaults where it has no layout)."""
        module = self._module(module_name)
        layouts = module.definition.get("layouts", {})
        if view in ("detail", "edit"):  # as written: section names untranslated
            written = layouts.get(view) or layouts.get("detail") or layouts.get("edit")
            return copy.deepcopy(written or module.default_sections())
        if view == "quick_create":
            return list(module.quick_create_fields())
        if view == "filters":
            return list(layouts.get("filters", []))
        if view == "list":
            return list(module.list_columns())
        if view.startswith("subpanel:"):
            rel = view.split(":", 1)[1]
            if rel not in module.relationships:
                raise refuse("view", f"no relationship {rel!r}")
            other = self.registry.modules[module.relationships[rel]["module"]]
            return list(layouts.get("subpanel_columns", {}).get(rel) or other.list_columns()[:4])
        raise refuse("view", f"unknown layout {view!r}")

    def available_fields(self, module_name: str, view: str) -> list[tuple[str, str, bool]]:
        module = self._module(module_name)
        if view.startswith("subpanel:"):
            rel = view.split(":", 1)[1]
            module = self._module(self._module(module_name).relationships[rel]["module"]
                                  if rel in module.relationships else module_name)
        custom = {f.name for f in self.fields(module.name) if f.custom}
        placeable = []
        for f in module.fields.values():
            if f.group or f.name in ("id", "deleted", "version"):
                continue
            if view in ("edit", "quick_create") and f.system and f.name != "assigned_user_id":
                continue
            placeable.append((f.name, f.label, f.name in custom))
        # composites are placed by their group name (an address's parts), except as a
        # subpanel's columns, which are single fields
        for group, parts in module._groups.items():
            if group not in module.fields and parts and not view.startswith("subpanel:"):
                placeable.append((group, default_label(group), group in custom))
        return sorted(placeable, key=lambda p: (not p[2], p[1].lower()))

    def layout_customized(self, module_name: str, view: str) -> bool:
        overlay = self._items().get(("module", module_name))
        key = view.split(":", 1)[0]
        if overlay is None:
            return False
        layouts = overlay.body.get("layouts", {})
        if module_name not in self._base.modules:
            key = {"list": "list", "subpanel": "subpanel_columns"}.get(key, key)
        if key == "subpanel":
            return view.split(":", 1)[1] in layouts.get("subpanel_columns", {})
        return key in layouts

    def save_layout(self, user, module_name: str, view: str, value,
                    labels: dict[str, str] | None = None) -> Change:
        """A layout, and the labels of fields changed on it (one change: both or neither)."""
        module = self._module(module_name)
        overlay = self._overlay(self._items(), module_name)
        for name, label in (labels or {}).items():
            f = module.fields.get(name)
            if f is None or f.system or f.group or not (label or "").strip():
                raise refuse(f"labels.{name}", f"no field {name!r} to label, or an empty label")
            fields = overlay.setdefault("fields", {})
            fields[name] = {**(fields.get(name) or {}), "label": label.strip()}
        layouts = overlay.setdefault("layouts", {})
        if view in ("detail", "edit", "quick_create", "filters"):
            layouts[view] = value
        elif view == "list":
            layouts["list"] = {**module.definition.get("layouts", {}).get("list", {}),
                               "columns": value}
        elif view.startswith("subpanel:"):
            rel = view.split(":", 1)[1]
            if rel not in module.relationships:
                raise refuse("view", f"no relationship {rel!r}")
            layouts.setdefault("subpanel_columns", {})[rel] = value
        else:
            raise refuse("view", f"unknown layout {view!r}")
        relabelled = f" (labels: {', '.join(sorted(labels))})" if labels else ""
        return self._apply(user, "edit layout", f"{module_name}.{view}",
                           f"saved the {view} layout of {module_name}{relabelled}",
                           items=[Item("module", module_name, overlay)])

    def restore_layout(self, user, module_name: str, view: str) -> Change:
        self._module(module_name)
        items = self._items()
        overlay = self._overlay(items, module_name)
        layouts = overlay.get("layouts", {})
        if view.startswith("subpanel:"):
            layouts.get("subpanel_columns", {}).pop(view.split(":", 1)[1], None)
            if not layouts.get("subpanel_columns"):
                layouts.pop("subpanel_columns", None)
        else:
            layouts.pop(view, None)
        if not layouts:
            overlay.pop("layouts", None)
        return self._apply(user, "restore layout", f"{module_name}.{view}",
                           f"restored the default {view} layout of {module_name}",
                           items=[Item("module", module_name, overlay)])

    # -- dropdowns -------------------------------------------------------------------------

    def dropdowns(self) -> list[DropdownSummary]:
        modified = {name for kind, name in self._items() if kind == "dropdowns"}
        return [DropdownSummary(name, name in modified,
                                name in self.registry.protected_dropdowns, len(options))
                for name, options in sorted(self.registry.dropdowns.items())]

    def dropdown(self, name: str) -> list[dict]:
        if name not in self.registry.dropdowns:
            raise refuse("name", f"no dropdown list named {name!r}")
        return [{"value": o["value"], "label": o["label"], "labels": dict(o.get("labels", {})),
                 **({"color": o["color"]} if o.get("color") else {})}
                for o in self.registry.dropdowns[name]]

    def languages(self) -> list[tuple[str, str]]:
        return i18n.available_languages(self.site.locale_dirs)

    def save_dropdown(self, user, name: str, options: list[dict], create: bool = False) -> Change:
        if create:
            if not re.fullmatch(r"[a-z][a-z0-9_]*_dom", name or ""):
                raise refuse("name", "a list name is lowercase letters, digits and underscores, "
                             "ending in _dom")
            if name in self.registry.dropdowns:
                raise refuse("name", f"a dropdown list named {name!r} exists already")
        elif name not in self.registry.dropdowns:
            raise refuse("name", f"no dropdown list named {name!r}")
        if name in self.registry.protected_dropdowns:
            raise refuse("name", f"{name} is protected: the system relies on its values, so it "
                         "cannot be edited here")
        problems, seen, clean = [], set(), []
        if not options:
            problems.append(Problem("options", "a list needs at least one option"))
        for i, option in enumerate(options):
            value = str(option.get("value", ""))
            label = str(option.get("label", "")).strip()
            where = f"option {i + 1}"
            bad = [c for c in FORBIDDEN_IN_VALUES if c in value]
            if bad:
                problems.append(Problem(where, f"the database value {value!r} may not contain "
                                        + " ".join(bad) + ' (" < > & are allowed in display '
                                        "values only)"))
            elif not value.strip() and value != "":
                problems.append(Problem(where, "the database value is only spaces"))
            elif value in seen:
                problems.append(Problem(where, f"the database value {value!r} is there twice"))
            if len(value) > 100:
                problems.append(Problem(where, "the database value is longer than 100 characters"))
            seen.add(value)
            labels = {k: str(v).strip() for k, v in (option.get("labels") or {}).items()
                      if str(v).strip() and k != "en"}
            color = option.get("color") or None  # kept as given: an edit must not lose it
            if color is not None and color not in COLOR_NAMES:
                problems.append(Problem(where, f"{color!r} is not a color "
                                        f"(one of: {', '.join(COLOR_NAMES)})"))
            clean.append({"value": value, "label": label or value,
                          **({"labels": labels} if labels else {}),
                          **({"color": color} if color else {})})
        if problems:
            raise StudioError(problems)
        verb = "created" if create else "edited"
        return self._apply(user, "create dropdown" if create else "edit dropdown", name,
                           f"{verb} dropdown {name} ({len(clean)} options)",
                           items=[Item("dropdowns", name, {name: clean})])

    def reset_dropdown(self, user, name: str) -> Change:
        if ("dropdowns", name) not in self._items():
            raise refuse("name", f"{name} has not been modified")
        return self._apply(user, "reset dropdown", name, f"reset dropdown {name}",
                           removed=[("dropdowns", name)])

    def reset_all_dropdowns(self, user) -> Change:
        keys = [k for k in self._items() if k[0] == "dropdowns"]
        return self._apply(user, "reset dropdowns", "all",
                           f"reset {len(keys)} dropdown list(s)", removed=keys)

    # -- tabs ------------------------------------------------------------------------------

    def tabs(self) -> dict:
        modules = sorted(self.registry.modules.values(),
                         key=lambda m: m.definition.get("tab_order", 1_000_000))
        groups: dict[str, list[str]] = {}
        for m in modules:
            groups.setdefault(m.definition.get("tab_group") or "Other", []).append(m.name)
        labels = {m.name: {"en": m.definition["label"],
                           **{lang: t["label"] for lang, t in
                              m.definition.get("translations", {}).items() if "label" in t}}
                  for m in modules}
        return {"groups": list(groups.items()),
                "hidden": [m.name for m in modules if m.definition.get("hidden")],
                "labels": labels}

    def save_tabs(self, user, groups: list[tuple[str, list[str]]], hidden: list[str]) -> Change:
        placed = [m for _, names in groups for m in names]
        unknown = [m for m in placed + list(hidden) if m not in self.registry.modules]
        if unknown:
            raise refuse("modules", f"no module named {unknown[0]!r}")
        if len(set(placed)) != len(placed):
            raise refuse("modules", "a module may be in one group only")
        if any(not (g or "").strip() for g, names in groups if names):
            raise refuse("groups", "a tab group needs a name")
        items = self._items()
        changed = []
        order = 0
        for group, names in groups:
            for name in names:
                module = self.registry.modules[name]
                want = {"tab_group": group.strip(), "tab_order": order,
                        "hidden": True if name in hidden else None}
                order += 1
                have = {k: module.definition.get(k) for k in want}
                if want != have:
                    overlay = self._overlay(items, name)
                    overlay.update(want)
                    self._drop_nulls_for_custom(overlay, name)
                    changed.append(Item("module", name, overlay))
        for name in set(hidden) - set(placed):
            if not self.registry.modules[name].definition.get("hidden"):
                overlay = self._overlay(items, name)
                overlay["hidden"] = True
                changed.append(Item("module", name, overlay))
        return self._apply(user, "configure tabs", "tabs",
                           f"tab groups: {', '.join(g for g, n in groups if n)}; hidden: "
                           f"{', '.join(sorted(hidden)) or 'none'}", items=changed)

    def rename_tabs(self, user, language: str, labels: dict[str, str]) -> Change:
        items = self._items()
        changed, renamed = [], []
        for name, text in labels.items():
            module = self.registry.modules.get(name)
            if module is None:
                raise refuse("modules", f"no module named {name!r}")
            if not re.fullmatch(r"[a-z]{2,3}(_[A-Za-z0-9]{2,8})?", language or ""):
                raise refuse("language", f"not a language code: {language!r}")
            text = (text or "").strip()
            # English included: a rename is for that language's users only, so the
            # catalogs still translate the original label for everyone else
            current = module.definition.get("translations", {}).get(language, {})
            if text == current.get("label", "") or (
                    not current and text == module.definition["label"]):
                continue
            overlay = self._overlay(items, name)
            translations = overlay.setdefault("translations", {})
            own = dict(translations.get(language) or {})
            if text:
                own["label"] = text
            else:
                own.pop("label", None)
            if own:
                translations[language] = own
            else:
                translations.pop(language, None)
            if not translations:
                overlay.pop("translations")
            changed.append(Item("module", name, overlay))
            renamed.append(f"{name} = {text or '(default)'}")
        return self._apply(user, "rename tabs", language,
                           f"renamed tabs ({language}): {', '.join(renamed) or 'nothing'}",
                           items=changed)

    # -- history ---------------------------------------------------------------------------

    def history(self, limit: int = 200) -> list[LogEntry]:
        table = self.site.tables.tables["crbm_studio_log"]
        with self.site.engine.connect() as conn:
            rows = conn.execute(sa.select(table).order_by(table.c.id.desc()).limit(limit)).all()
        return [LogEntry(r.at, r.username or "", r.action, r.target, r.detail) for r in rows]


def _same_formula(old, new) -> bool:
    """Whether a calculated field computes what it did (its values still hold)."""
    return old is not None and old.type.computed and \
        (old.spec.get("formula"), old.spec.get("format")) == \
        (new.spec.get("formula"), new.spec.get("format"))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


__all__ = ["FIELD_TYPES", "Change", "Problem", "Studio", "StudioError"]
