"""Converting a record into a record of another module ("smart convert").

1CRM copies, on every conversion, the fields the two modules share by name — so a field an
administrator added to both (in the Studio, say) follows the record without any mapping.
``smart_copy`` is that rule; ``convert`` applies it, copies the line items when both modules
have them, and writes the new record in the caller's transaction, so a plugin can change
the source (a stage, a status) in the same all-or-nothing step. "Assigned to" follows too
(the order is still the sales rep's); a source assigned to nobody gives a record assigned,
as every new record is, to whoever converts it.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from core.kernel.records import User
from core.kernel.registry import ModuleDef

# the one system field that follows a record (who made it and when, its number do not)
COPIED_SYSTEM = frozenset({"assigned_user_id"})


def copyable_fields(source: ModuleDef, target: ModuleDef) -> list[str]:
    """Fields both modules have, with the same type, that a writer may set in the target."""
    number = target.features.get("sequence", {}).get("field")
    out = []
    for name, f in target.fields.items():
        theirs = source.fields.get(name)
        if (theirs is None or (f.system and name not in COPIED_SYSTEM) or name == number
                or "computed_by" in f.spec or not f.stored
                or not f.type.writable(f.spec) or theirs.type.name != f.type.name):
            continue
        if f.type.is_link and f.spec.get("module") != theirs.spec.get("module"):
            continue  # same name, other target: not the same thing
        out.append(name)
    return out


def smart_copy(source: ModuleDef, target: ModuleDef, record: Mapping[str, Any]) -> dict:
    return {name: record[name] for name in copyable_fields(source, target)
            if record.get(name) is not None}


def convert(site, user: User, source_name: str, record_id: str, target_name: str, *,
            values: Mapping[str, Any] | None = None,
            lines: Callable[[Any], list[dict]] | None = None, connection=None) -> dict:
    """Create a ``target_name`` record from a ``source_name`` one; returns the new record.

    ``values`` are set over the copied fields. The data of every module feature both
    modules have is copied (``ModuleFeature.copy``: every line, each remembering its source
    line); ``lines`` replaces that copy for the first such feature (partial invoicing keeps
    only what is left to invoice). ``connection``: the caller's transaction.
    """
    registry = site.registry
    source, target = registry.module(source_name), registry.module(target_name)
    record = site.records.get(source_name, record_id, user, connection=connection)
    new_values = smart_copy(source, target, record) | dict(values or {})
    targets = {feature.name for feature, _options in registry.features_of(target)}
    for feature, _options in registry.features_of(source):
        if feature.name in targets:
            data = site.records.feature_data(feature.name, source_name, record_id, user,
                                             connection=connection)
            new_values[feature.name] = lines(data) if lines else feature.copy(data)
            lines = None
    return site.records.create(target_name, new_values, user, connection=connection)
