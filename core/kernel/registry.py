"""The metadata registry: every module definition, merged, checked, and ready to use.

Layers are merged in a fixed order — plugin base, then installed packs, then the site's
own customizations (stored in the database) — and the merged result is the only thing
the rest of CRBM reads. Building is all-or-nothing: every problem in every file is
collected and raised together as one ``MetadataError``; a registry is never half-built.

A base layer holds whole definitions. Later layers hold *overlays*: partial definitions
deep-merged onto the module of the same name (mappings merge, lists replace, ``null``
removes a key), or whole new modules.
"""
from __future__ import annotations

import copy
import functools
import json
import pickle
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from core.kernel import i18n
from core.kernel.errors import N_, MetadataError, MetadataProblem, NotFoundError
from core.kernel.fields import SYSTEM_TYPES, FieldError, FieldType
from core.kernel.hooktypes import ModuleFeature

# libyaml's loader when PyYAML has it: the registry is rebuilt on every pack change
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "metadata" / "schema"

# Columns every module table has; YAML may not define them.
SYSTEM_FIELDS: dict[str, dict] = {
    "id": {"type": "id", "label": N_("ID")},
    "created_at": {"type": "datetime", "label": N_("Date created")},
    "created_by": {"type": "user", "label": N_("Created by")},
    "modified_at": {"type": "datetime", "label": N_("Date modified")},
    "modified_by": {"type": "user", "label": N_("Modified by")},
    "deleted": {"type": "checkbox", "label": N_("Deleted")},
    "version": {"type": "integer", "label": N_("Version")},
}
ASSIGNED_USER = {"type": "user", "label": N_("Assigned to"), "mass_update": True,
                 "indexed": True, "audited": True}  # logged wherever the module is audited
OPTION_TYPES = ("dropdown", "status", "multiselect")


def load_schema(name: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{name}.json").read_text())


def _overlay_schema(full: dict) -> dict:
    """The module schema with nothing required but ``name``; a field, a top-level key, a
    feature or a field's key may be ``null`` (removed from what is below)."""
    schema = copy.deepcopy(full)
    schema["required"] = ["name"]
    schema["$defs"]["field"].pop("required")
    schema["properties"]["fields"]["additionalProperties"] = {
        "anyOf": [{"$ref": "#/$defs/field"}, {"type": "null"}]}
    schema["properties"]["fields"].pop("minProperties")
    nullable = [(schema["properties"], {"name", "fields"}),
                (schema["$defs"]["features"]["properties"], set()),
                (schema["$defs"]["field"]["properties"], {"type"})]
    for properties, keep in nullable:
        for key in set(properties) - keep:
            properties[key] = {"anyOf": [properties[key], {"type": "null"}]}
    schema["properties"]["add"] = {"$ref": "#/$defs/additions"}  # overlays only
    return schema


MODULE_SCHEMA = load_schema("module")
DROPDOWNS_SCHEMA = load_schema("dropdowns")
VALIDATORS = {
    "module": jsonschema.Draft202012Validator(MODULE_SCHEMA),
    "overlay": jsonschema.Draft202012Validator(_overlay_schema(MODULE_SCHEMA)),
    "dropdowns": jsonschema.Draft202012Validator(DROPDOWNS_SCHEMA),
}


# -- the merged model ----------------------------------------------------------------------
# Labels are English in the YAML; the properties below return them in the language active
# for this request (core.kernel.i18n.label). Names, values and ``definition`` never change.

def default_label(name: str) -> str:
    """The label of a field without one: "widget_id" reads as "Widget" (the id is how it is
    stored, not what it is)."""
    return name.removesuffix("_id").replace("_", " ").capitalize()


def _per_language(cache: dict) -> dict:
    """The part of ``cache`` for the active catalog (a catalog object is the language key:
    loaded once, shared by every request in that language)."""
    catalog = i18n.active()
    found = cache.get(catalog)
    if found is None:
        if len(cache) > 32:  # catalogs reloaded many times: forget the old ones
            cache.clear()
        found = cache[catalog] = {}
    return found


@dataclass
class FieldDef:
    name: str
    type: FieldType
    spec: dict
    system: bool = False

    @property
    def label(self) -> str:
        spec = self.spec
        if "label_format" in spec:  # a composite's part, e.g. "%(label)s: city"
            whole = {"label": i18n.label(spec["label_of"])}
            try:
                return i18n.label(spec["label_format"]) % whole
            except (KeyError, ValueError, TypeError):  # a pack's catalog broke the placeholder
                return spec["label_format"] % whole
        return i18n.label(spec.get("label") or default_label(self.name))

    @property
    def required(self) -> bool:
        return bool(self.spec.get("required"))

    @property
    def group(self) -> str | None:
        """The composite field (address, currency, parent) this one was expanded from."""
        return self.spec.get("group")

    @property
    def stored(self) -> bool:
        return self.type.stored

    @property
    def audited(self) -> bool:
        return bool(self.spec.get("audited"))


@dataclass
class ModuleDef:
    name: str
    definition: dict  # the merged YAML document, as written
    fields: dict[str, FieldDef]
    sources: list[str] = field(default_factory=list)
    dropdowns: dict = field(default_factory=dict, repr=False, compare=False)  # registry.dropdowns

    def _renamed(self, key: str) -> str | None:
        """The label the Studio gave this module in the active language, if any."""
        translations = self.definition.get("translations")
        if not translations:
            return None
        language = i18n.language()  # "fr_CA", then "fr"
        own = translations.get(language) or translations.get(language.split("_")[0]) or {}
        return own.get(key)

    @property
    def label(self) -> str:
        return self._renamed("label") or i18n.label(self.definition["label"])

    @property
    def label_singular(self) -> str:
        return self._renamed("label_singular") or \
            i18n.label(self.definition.get("label_singular", self.definition["label"]))

    @property
    def tab_group(self) -> str:
        return i18n.label(self.definition.get("tab_group") or N_("Other"))

    @property
    def table(self) -> str:
        return self.definition.get("table", self.name)

    @property
    def features(self) -> dict:
        return self.definition.get("features", {})

    @property
    def relationships(self) -> dict:
        """As defined, with each ``label`` in the active language."""
        relationships = self.definition.get("relationships", {})
        if not i18n.translating():
            return relationships
        return {name: {**rel, "label": i18n.label(rel["label"])} if rel.get("label") else rel
                for name, rel in relationships.items()}

    @property
    def layouts(self) -> dict:
        """As defined, with the section titles of detail and edit in the active language
        (a shallow copy: the rows are the definition's own)."""
        layouts = self.definition.get("layouts", {})
        if not i18n.translating():
            return layouts
        layouts = dict(layouts)
        for view in ("detail", "edit"):
            if view in layouts:
                layouts[view] = [{**section, "label": i18n.label(section["label"])}
                                 if section.get("label") else section
                                 for section in layouts[view]]
        return layouts

    @cached_property
    def stored_fields(self) -> list[FieldDef]:
        return [f for f in self.fields.values() if f.stored]

    @cached_property
    def search_fields(self) -> list[str]:
        """The columns quick search looks in: the list layout's ``search`` (else the name
        field), a person's composed name standing for its text parts (first, last...)."""
        parts = [p for n in self.layouts.get("list", {}).get("search") or [self.name_field] if n in self.fields
                 for p in (None if self.fields[n].stored else self.fields[n].spec.get("parts")) or [n]]
        return [p for p in dict.fromkeys(parts) if p in self.fields and self.fields[p].stored
                and self.fields[p].type.searchable]

    @cached_property
    def default_sort(self) -> str:
        """How lists are ordered when nobody chose: the list layout's ``sort``, else by name,
        else newest first (``-`` descending, keys comma separated)."""
        return self.layouts.get("list", {}).get("sort") or self.name_field or "-created_at"

    @cached_property
    def name_field(self) -> str | None:
        return next((f.name for f in self.fields.values() if f.type.name == "name"), None)

    @cached_property
    def _groups(self) -> dict[str, list[FieldDef]]:
        groups: dict[str, list[FieldDef]] = {}
        for f in self.fields.values():
            if f.group:
                groups.setdefault(f.group, []).append(f)
        return groups

    def expand(self, name: str) -> list[FieldDef]:
        """The concrete fields behind a layout entry: a field (with its sub-fields, e.g. a
        currency's code), or a composite's group name (an address's parts)."""
        subs = self._groups.get(name, [])
        return [self.fields[name], *subs] if name in self.fields else list(subs)

    def sections(self, view: str) -> list[dict]:
        """The ``detail`` or ``edit`` layout: the view's own, else the other one, else two
        fields a row of every user field (a module without layouts)."""
        layouts = self.layouts
        return layouts.get(view) or layouts.get("detail") or layouts.get("edit") or \
            self.default_sections()

    def default_sections(self) -> list[dict]:
        """Two fields a row, every user field, composites by their group name."""
        names = list(dict.fromkeys(f.group or f.name for f in self.fields.values()
                                   if not f.system))
        return [{"label": "", "rows": [names[i:i + 2] for i in range(0, len(names), 2)]}]

    def quick_create_fields(self) -> list[str]:
        """The quick-create layout, else the required user fields."""
        return self.layouts.get("quick_create") or \
            [f.name for f in self.fields.values() if f.required and not f.system and not f.group]

    def list_columns(self) -> list[str]:
        """The list layout's columns as written (composites by name), else the name field."""
        return self.layouts.get("list", {}).get("columns") or \
            [n for n in [self.name_field] if n] or ["created_at"]

    def link_table(self, relationship: str) -> str:
        rel = self.relationships[relationship]
        return rel.get("link_table") or "_".join(sorted([self.name, rel["module"]])) + "_links"


@dataclass
class Registry:
    modules: dict[str, ModuleDef]
    dropdowns: dict[str, list[dict]]
    field_types: dict[str, FieldType]
    protected_dropdowns: frozenset[str] = frozenset()  # lists the Studio may not edit
    # module features the plugins provide (``crbm_module_features``), by name
    features: dict[str, ModuleFeature] = field(default_factory=dict)
    _translated: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def features_of(self, module: ModuleDef) -> list[tuple[ModuleFeature, dict]]:
        """The provided features ``module`` opts in to, with its options for each."""
        return [(self.features[name], options if isinstance(options, dict) else {})
                for name, options in module.features.items()
                if name in self.features and options is not None and options is not False]

    def module(self, name: str) -> ModuleDef:
        try:
            return self.modules[name]
        except KeyError:
            raise NotFoundError(f"no module named {name!r}") from None

    @cached_property
    def _option_sets(self) -> dict[str, frozenset[str]]:
        return {name: frozenset(o["value"] for o in opts) for name, opts in self.dropdowns.items()}

    def option_values(self, dom: str) -> frozenset[str]:
        return self._option_sets[dom]

    def choices(self, f: FieldDef) -> list[tuple[str, str]]:
        """(value, label) pairs a dropdown-like field offers, in list order, labels in the
        active language (translated once per language, not per row)."""
        if f.type.name == "parent_type":
            key = tuple(f.spec["allowed"])
        elif "options" in f.spec:
            key = f.spec["options"]
        else:
            return []
        cache = _per_language(self._translated).setdefault("choices", {})
        if key not in cache:
            cache[key] = [(m, self.modules[m].label_singular) for m in key] \
                if isinstance(key, tuple) else \
                [(o["value"], _option_label(o)) for o in self.dropdowns[key]]
        return cache[key]

    @cached_property
    def _references(self) -> dict[str, list[tuple[ModuleDef, FieldDef, str]]]:
        out: dict[str, list[tuple[ModuleDef, FieldDef, str]]] = {}
        for module in self.modules.values():
            for f in module.fields.values():
                if f.type.name != "related":
                    continue
                for target in f.spec.get("modules") or [f.spec["module"]]:
                    out.setdefault(target, []).append((module, f, on_delete(f)))
        return out

    def references(self, module: str) -> list[tuple[ModuleDef, FieldDef, str]]:
        """(module, related field, on_delete) of every field that points to ``module``'s
        records: what deleting one of them must look at."""
        return self._references.get(module, [])

    def option_labels(self, module: str) -> dict[str, dict[str, str]]:
        """field -> {stored value: label}, for showing a module's dropdown values."""
        cache = _per_language(self._translated).setdefault("labels", {})
        if module not in cache:
            cache[module] = {f.name: dict(self.choices(f))
                             for f in self.modules[module].fields.values()
                             if "options" in f.spec or f.type.name == "parent_type"}
        return cache[module]


def sequence_field(module: ModuleDef) -> str | None:
    """The field the module's sequence numbers records in, if it has one."""
    return (module.features.get("sequence") or {}).get("field")


def on_delete(f: FieldDef) -> str:
    """What deleting the record a related field points to does to the record holding it:
    as declared, else ``restrict`` for a required link (it cannot be emptied) and
    ``clear`` for an optional one (a contact outlives its account, unlinked)."""
    return f.spec.get("on_delete") or ("restrict" if f.required else "clear")


def _option_label(option: dict) -> str:
    """An option's display value in the active language: the Studio's own, else the catalog's."""
    own = option.get("labels")
    return (own and own.get(i18n.language())) or i18n.label(option["label"])


# -- reading layers ------------------------------------------------------------------------

@dataclass
class Document:
    source: str  # where it came from, for error messages
    kind: str  # "module" or "dropdowns"
    body: dict


@dataclass
class Layer:
    name: str  # "plugins", "packs", "site"
    documents: list[Document] = field(default_factory=list)


# Parsed files by (path, modification time, size), pickled: every Studio change or pack
# step rebuilds the registry from the same plugin files, and unpickling is many times
# faster than parsing YAML again (each caller gets its own copy to merge into).
_parsed: dict[str, tuple[tuple, bytes]] = {}


def _load_yaml(path: Path):
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _parsed.get(str(path))
    if cached is not None and cached[0] == stamp:
        return pickle.loads(cached[1])
    body = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    _parsed[str(path)] = (stamp, pickle.dumps(body))
    return body


def read_yaml_file(path: Path, kind: str, problems: list[MetadataProblem]) -> Document | None:
    try:
        body = _load_yaml(path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "$"
        reason = getattr(exc, "problem", None) or str(exc)
        problems.append(MetadataProblem(str(path), where, f"YAML syntax error: {reason}"))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(MetadataProblem(str(path), "$", f"cannot read: {exc}"))
        return None
    if not isinstance(body, dict):
        problems.append(MetadataProblem(str(path), "$", "must be a mapping"))
        return None
    return Document(str(path), kind, body)


def read_folder(folder: Path, problems: list[MetadataProblem]) -> list[Document]:
    """``modules/*.yaml`` (one module each) and ``dropdowns/*.yaml`` below ``folder``."""
    documents = []
    for kind, sub in (("dropdowns", "dropdowns"), ("module", "modules")):
        for path in sorted((folder / sub).glob("*.yaml")):
            document = read_yaml_file(path, kind, problems)
            if document:
                documents.append(document)
    return documents


def read_extensions(folder: Path, problems: list[MetadataProblem]) -> list[Document]:
    """``extends/*.yaml`` below a plugin's ``folder``: overlays on other plugins' modules
    (a plugin adding a field or a subpanel to a module it does not define)."""
    return [document for path in sorted((folder / "extends").glob("*.yaml"))
            if (document := read_yaml_file(path, "module", problems))]


# The layer of the plugins' extends/: an overlay on a module no active plugin defines is
# skipped (it extends a plugin that is disabled or not installed; `crbm validate` checks it
# against every shipped plugin instead). An overlay on an active module is checked in full.
OPTIONAL_LAYER = "plugin extensions"


def plugin_layers(folders: Iterable[Path], problems: list[MetadataProblem]) -> list[Layer]:
    """The plugins' whole definitions, then their overlays on each other's modules."""
    base, extensions = Layer("plugins"), Layer(OPTIONAL_LAYER)
    for folder in folders:
        base.documents += read_folder(folder, problems)
        extensions.documents += read_extensions(folder, problems)
    return [base, extensions]


def json_path(parts: Iterable[Any]) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def schema_problems(document: Document, validator: str) -> list[MetadataProblem]:
    # The registry is rebuilt often (every worker on every metadata change, every pack
    # check) from mostly the same documents: their verdicts are remembered by content.
    try:
        key = (validator, document.source, json.dumps(document.body, sort_keys=True))
    except (TypeError, ValueError):  # not JSON-able (a date in YAML): the schema says why
        return _schema_problems(document, validator)
    return list(_cached_problems(key))


@functools.lru_cache(maxsize=4096)
def _cached_problems(key: tuple) -> tuple[MetadataProblem, ...]:
    validator, source, body = key
    return tuple(_schema_problems(Document(source, "", json.loads(body)), validator))


def _schema_problems(document: Document, validator: str) -> list[MetadataProblem]:
    errors = sorted(VALIDATORS[validator].iter_errors(document.body),
                    key=lambda e: list(map(str, e.absolute_path)))
    return [MetadataProblem(document.source, json_path(e.absolute_path), e.message)
            for e in errors]


def deep_merge(base: dict, overlay: dict) -> dict:
    merged = dict(base)
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def add_to_layouts(body: dict, additions: dict) -> dict:
    """An overlay's ``add:`` appended to the module's layout lists (``$defs.additions`` in
    module.json): lists replace in an overlay, so without it every plugin adding a subpanel
    or a section to accounts would have to restate (and fight over) accounts' own lists."""
    if not additions:
        return body
    layouts = copy.deepcopy(body.get("layouts") or {})
    for view in ("detail", "edit"):
        for section in additions.get(view, ()):
            sections = layouts.setdefault(view, [])
            same = [s for s in sections if s.get("label") == section.get("label")]
            if not same:
                sections.append(copy.deepcopy(section))
                continue
            rows = same[0].setdefault("rows", [])
            for row in section["rows"]:
                last = rows[-1] if rows else None
                if last is not None and len(last) == len(row) and all(
                        a is None or b is None for a, b in zip(last, row)):
                    rows[-1] = [a if a is not None else b for a, b in zip(last, row)]
                else:
                    rows.append(list(row))

    def append(target: list, items) -> None:
        target.extend(item for item in items if item not in target)

    for key in ("quick_create", "filters", "subpanels"):
        if key in additions:
            append(layouts.setdefault(key, []), additions[key])
    if "first_subpanels" in additions:
        first = list(dict.fromkeys(additions["first_subpanels"]))
        layouts["subpanels"] = first + [s for s in layouts.get("subpanels", []) if s not in first]
    for key, target in (("list_columns", "columns"), ("search", "search")):
        if key in additions:
            append(layouts.setdefault("list", {}).setdefault(target, []), additions[key])
    body = {**body, "layouts": layouts}
    if additions.get("modules"):  # checked by _check_module: a field that names modules
        fields = dict(body.get("fields") or {})
        for name, modules in additions["modules"].items():
            spec = dict(fields.get(name) or {})
            spec["modules"] = list(spec.get("modules") or [])
            append(spec["modules"], modules)
            fields[name] = spec
        body["fields"] = fields
    return body


# -- building ------------------------------------------------------------------------------

def _opted_in(merged: dict, fields: dict) -> dict:
    """``modules_with_feature: X`` on a field: its ``modules`` are every module opting in to X
    (a "related to" parent link any module may join by saying so in its own YAML)."""
    return {name: {**spec, "modules": [m for m, body in merged.items() if (
        body.get("features") or {}).get(spec["modules_with_feature"])]}
        if isinstance(spec, dict) and "modules_with_feature" in spec else spec
        for name, spec in fields.items()}


def build_registry(layers: list[Layer], extra_types: Iterable[FieldType] = (),
                   features: Iterable[ModuleFeature] = ()) -> Registry:
    """Merge the layers in order and check the result. Raises ``MetadataError``.
    ``features``: the module features the plugins provide (``crbm_module_features``)."""
    problems: list[MetadataProblem] = []
    provided = {feature.name: feature for feature in features}
    types = dict(SYSTEM_TYPES)
    for ftype in extra_types:
        types[ftype.name] = ftype

    merged: dict[str, dict] = {}
    sources: dict[str, list[str]] = {}
    dropdowns: dict[str, list[dict]] = {}
    dropdown_source: dict[str, str] = {}
    protected: set[str] = set()
    for index, layer in enumerate(layers):
        is_base = index == 0
        for doc in layer.documents:
            if doc.kind == "dropdowns":
                found = schema_problems(doc, "dropdowns")
                problems += found
                if found:
                    continue
                for name, options in doc.body.items():
                    if name == "protected":
                        if is_base:  # only the shipped definitions decide what is protected
                            protected.update(options)
                        continue
                    if is_base and name in dropdowns:
                        problems.append(MetadataProblem(doc.source, f"$.{name}",
                                        f"dropdown list already defined in {dropdown_source[name]}"))
                    dropdowns[name] = options
                    dropdown_source[name] = doc.source
                continue
            name = doc.body.get("name")
            extending = not is_base and name in merged
            if layer.name == OPTIONAL_LAYER and not extending:
                continue  # it extends a module of a plugin that is not active: nothing to add
            found = schema_problems(doc, "overlay" if extending else "module")
            problems += found
            if found:
                continue
            if is_base and name in merged:
                problems.append(MetadataProblem(doc.source, "$.name",
                                f"module {name!r} already defined in {sources[name][0]}"))
                continue
            if extending:
                body = dict(doc.body)
                additions = body.pop("add", None)
                merged[name] = add_to_layouts(deep_merge(merged[name], body), additions or {})
            else:
                merged[name] = doc.body
            sources.setdefault(name, []).append(doc.source)

    merged = {name: {**body, "fields": _opted_in(merged, body.get("fields") or {})}
              for name, body in merged.items()}
    modules = {}
    for name, body in merged.items():
        source = sources[name][-1] if len(sources[name]) == 1 else " + ".join(sources[name])
        if len(sources[name]) > 1:  # an overlay may have broken what the base had right
            found = schema_problems(Document(source, "module", body), "module")
            problems += found
            if found:
                continue
        modules[name] = ModuleDef(name, body,
                                  _expand_fields(body, types, source, problems, provided),
                                  sources[name], dropdowns)

    registry = Registry(modules, dropdowns, types, frozenset(protected & set(dropdowns)),
                        provided)
    for module in modules.values():
        problems += _check_module(module, registry)
    if problems:
        raise MetadataError(problems)
    return registry


def _expand_fields(body: dict, types: dict[str, FieldType], source: str,
                   problems: list[MetadataProblem],
                   features: Mapping[str, ModuleFeature] | None = None) -> dict[str, FieldDef]:
    fields = {name: FieldDef(name, types[spec["type"]], spec, system=True)
              for name, spec in SYSTEM_FIELDS.items()}
    if body.get("features", {}).get("assignable"):
        fields["assigned_user_id"] = FieldDef("assigned_user_id", types["user"], ASSIGNED_USER,
                                              system=True)
    for feature_name, options in body.get("features", {}).items():
        feature = (features or {}).get(feature_name)
        if feature is None or options is None or options is False:
            continue
        # a feature's fields are computed by it: only its own steps write them
        for name, spec in feature.fields(options if isinstance(options, dict) else {},
                                         types).items():
            fields[name] = FieldDef(name, types[spec["type"]], spec)
    for name, spec in body["fields"].items():
        path = f"$.fields.{name}"
        if name in fields:
            problems.append(MetadataProblem(source, path, f"{name!r} is a system field; "
                                            "every module has it already"))
            continue
        type_name = spec["type"]
        if type_name not in types or types[type_name].internal:
            known = ", ".join(sorted(n for n, t in types.items() if not t.internal))
            problems.append(MetadataProblem(source, path + ".type",
                                            f"unknown field type {type_name!r} (known: {known})"))
            continue
        for sub_name, sub_spec in types[type_name].expand(name, spec):
            if sub_name in fields:
                problems.append(MetadataProblem(source, path, f"field {sub_name!r} defined twice"))
            fields[sub_name] = FieldDef(sub_name, types[sub_spec["type"]], sub_spec)
    return fields


def _check_module(module: ModuleDef, registry: Registry) -> list[MetadataProblem]:
    """Cross-references a JSON Schema cannot see: targets, lists, formulas, layouts."""
    problems: list[MetadataProblem] = []
    source = " + ".join(module.sources)

    def problem(path: str, reason: str) -> None:
        problems.append(MetadataProblem(source, path, reason))

    fields = module.fields
    if module.table.startswith("crbm_"):
        problem("$.table", "table names starting with crbm_ are reserved for the kernel")
    inherit = module.features.get("inherit_teams_from")
    if inherit:
        link = fields.get(inherit)
        if link is None or not link.type.is_link or not {"module", "type_field"} & set(link.spec):
            problem("$.features.inherit_teams_from",
                    "must name a related field of this module (or its dynamic parent)")
        elif not module.features.get("team_owned"):
            problem("$.features.inherit_teams_from", "only team-owned modules have teams")
    for i, name in enumerate(module.features.get("email_to", [])):
        link = fields.get(name)
        if link is None or not link.type.is_link or "module" not in link.spec:
            problem(f"$.features.email_to[{i}]",
                    "must name a related field of this module with a fixed 'module'")
    for feature, options in registry.features_of(module):
        for path, message in feature.check(module, options, registry):
            problem(f"$.features.{feature.name}" + (f".{path}" if path else ""), message)
    for f in fields.values():
        if f.system or f.group:
            continue
        path = f"$.fields.{f.name}"
        spec, kind = f.spec, f.type.name
        if kind in OPTION_TYPES:
            if "options" not in spec:
                problem(path, f"a {kind} field needs 'options' (a dropdown list name)")
            elif spec["options"] not in registry.dropdowns:
                problem(path + ".options", f"no dropdown list named {spec['options']!r}")
        if kind == "related":
            targets = spec.get("modules") or ([spec["module"]] if "module" in spec else [])
            if not targets:
                problem(path, "a related field needs 'module' (or 'modules' for a parent link)")
            for target in targets:
                if target not in registry.modules:
                    problem(path, f"related module {target!r} does not exist")
        if kind == "related" and "fill" in spec:
            problems += [MetadataProblem(source, f"{path}.fill.{mine}", reason)
                         for mine, reason in _fill_problems(module, registry, spec)]
        if kind == "related" and "filter_by" in spec:
            target = registry.modules.get(spec.get("module", ""))
            for theirs, mine in spec["filter_by"].items():
                where = f"{path}.filter_by.{theirs}"
                if "module" not in spec:
                    problem(where, "only a related field with a fixed 'module' filters its picker")
                    break
                other = target.fields.get(theirs) if target else None
                if target and (other is None or not other.type.is_link):
                    problem(where, f"module {target.name!r} has no related or user field "
                            f"{theirs!r} to filter on")
                if mine not in fields:
                    problem(where, f"no field {mine!r} in this module")
        if "on_delete" in spec:
            if kind != "related":
                problem(path + ".on_delete", "only related fields say what deleting the "
                        "record they point to does")
            elif spec["on_delete"] == "clear" and spec.get("required"):
                problem(path + ".on_delete", "a required field cannot be cleared: use "
                        "restrict or cascade")
        for where, reason in f.type.spec_problems(f, module, registry):
            problem(f"{path}.{where}" if where else path, reason)
        if "depends_on" in spec:
            control = fields.get(spec["depends_on"]["field"])
            if control is None or control.type.name not in ("dropdown", "status"):
                problem(path + ".depends_on.field", "must name a dropdown field of this module")
            elif "options" in control.spec and control.spec["options"] in registry.dropdowns:
                allowed = registry.option_values(control.spec["options"])
                for value in spec["depends_on"]["values"]:
                    if value not in allowed:
                        problem(path + ".depends_on.values",
                                f"{value!r} is not an option of {control.name!r}")
                own = (registry.option_values(spec["options"])
                       if spec.get("options") in registry.dropdowns else frozenset())
                for key, values in spec.get("conditional_options", {}).items():
                    if key not in allowed:
                        problem(path + f".conditional_options.{key}",
                                f"{key!r} is not an option of {control.name!r}")
                    for value in values:
                        if value not in own:
                            problem(path + f".conditional_options.{key}",
                                    f"{value!r} is not an option of this field")
        elif "conditional_options" in spec:
            problem(path + ".conditional_options", "needs depends_on")
        if "default" in spec and kind not in ("calculated",):
            try:
                value = f.type.normalize(spec["default"], spec)
            except FieldError as exc:
                problem(path + ".default", f"invalid default: {exc}")
            else:
                if kind in ("dropdown", "status") and spec.get("options") in registry.dropdowns \
                        and value not in registry.option_values(spec["options"]):
                    problem(path + ".default", f"{value!r} is not in {spec['options']}")

    transitions = module.features.get("transitions")
    if transitions:
        status = fields.get(transitions["field"])
        if status is None or status.system or \
                status.type.name not in ("dropdown", "status", "checkbox"):
            problem("$.features.transitions.field",
                    "must name a dropdown or status field of this module")
        else:
            checkbox = status.type.name == "checkbox"  # its values: true and false
            allowed = registry.option_values(status.spec["options"]) \
                if status.spec.get("options") in registry.dropdowns else None

            def wrong(value) -> bool:
                if checkbox:
                    return not isinstance(value, bool)
                return isinstance(value, bool) or (allowed is not None and value not in allowed)

            for value in transitions.get("free", ()):
                if wrong(value):
                    problem("$.features.transitions.free",
                            f"{value!r} is not an option of {status.name!r}")
            seen: set[str] = set()
            for i, action in enumerate(transitions["actions"]):
                path = f"$.features.transitions.actions[{i}]"
                if action["name"] in seen:
                    problem(path + ".name", f"{action['name']!r} is named twice")
                seen.add(action["name"])
                for key, values in (("from", action["from"]), ("to", [action["to"]])):
                    for value in values:
                        if wrong(value):
                            problem(f"{path}.{key}",
                                    f"{value!r} is not an option of {status.name!r}")

    sequence = module.features.get("sequence")
    if sequence:
        target = fields.get(sequence["field"])
        if target is None or target.type.name != "item_number":
            problem("$.features.sequence.field", "must name an item_number field of this module")

    for rel_name, rel in module.relationships.items():
        path = f"$.relationships.{rel_name}"
        other = registry.modules.get(rel["module"])
        if other is None:
            problem(path + ".module", f"module {rel['module']!r} does not exist")
            continue
        if rel["kind"] == "one_to_many":
            link = other.fields.get(rel.get("field", ""))
            if link is None or not link.type.is_link or \
                    module.name not in (link.spec.get("modules") or [link.spec.get("module")]):
                problem(path + ".field", f"must name a related field of {other.name!r} "
                        f"that points to {module.name!r}")

    usable = set(fields) | {f.group for f in fields.values() if f.group}
    layouts = module.layouts
    for view in ("detail", "edit"):
        for s, section in enumerate(layouts.get(view, [])):
            for r, row in enumerate(section["rows"]):
                for c, name in enumerate(row):
                    if name is not None and name not in usable:
                        problem(f"$.layouts.{view}[{s}].rows[{r}][{c}]", f"no field {name!r}")
    simple = [("quick_create", layouts.get("quick_create", [])),
              ("filters", layouts.get("filters", [])),
              ("list.columns", layouts.get("list", {}).get("columns", [])),
              ("list.search", layouts.get("list", {}).get("search", []))]
    for where, names in simple:
        for i, name in enumerate(names):
            if name not in usable:
                problem(f"$.layouts.{where}[{i}]", f"no field {name!r}")
    sort = layouts.get("list", {}).get("sort", "").lstrip("-")
    if sort and sort not in fields:
        problem("$.layouts.list.sort", f"no field {sort!r}")
    for i, name in enumerate(layouts.get("subpanels", [])):
        if name not in module.relationships:
            problem(f"$.layouts.subpanels[{i}]", f"no relationship {name!r}")
    for rel_name, columns in layouts.get("subpanel_columns", {}).items():
        rel = module.relationships.get(rel_name)
        other = registry.modules.get(rel["module"]) if rel else None
        if other is None:
            problem(f"$.layouts.subpanel_columns.{rel_name}", f"no relationship {rel_name!r}")
            continue
        for i, name in enumerate(columns):
            if name not in other.fields:
                problem(f"$.layouts.subpanel_columns.{rel_name}[{i}]",
                        f"module {other.name!r} has no field {name!r}")
    return problems


def _fill_problems(module: ModuleDef, registry: Registry, spec: dict) -> list[tuple[str, str]]:
    """A related field's ``fill`` (core.apps.fills.fills): each pair names a field or composite group
    on both sides, with the same parts, types and dropdown lists."""
    target = registry.modules.get(spec.get("module", ""))
    if "module" not in spec:
        return [(next(iter(spec["fill"])), "only a related field with a fixed 'module' fills")]
    if target is None:
        return []  # the missing module is reported already
    out = []
    for mine, theirs in spec["fill"].items():
        ours, others = module.expand(mine), target.expand(theirs)
        if not ours:
            out.append((mine, f"no field {mine!r} in this module"))
            continue
        if not others:
            out.append((mine, f"module {target.name!r} has no field {theirs!r}"))
            continue
        shape = {f.name[len(mine):]: f for f in ours}
        other_shape = {f.name[len(theirs):]: f for f in others}
        if set(shape) != set(other_shape) or any(
                f.type.name != other_shape[k].type.name
                or f.spec.get("options") != other_shape[k].spec.get("options")
                for k, f in shape.items()):
            reason = f"{mine!r} and {target.name}.{theirs} differ in type, parts or dropdowns"
            out.append((mine, reason))
    return out
