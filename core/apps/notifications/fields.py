"""Notification email fields (implementation guide §7.4.5 "Customize Notification Email
Messages"): an administrator picks, per module that notifies assignments, more fields of the
record to put in the email under each record's line — an opportunity's amount and close date,
a case's priority.

Stored as the site setting ``notification_fields`` (JSON ``{module: [field, ...]}``); read
with ``chosen(site)``, which drops what no longer exists (a field removed in the Studio, a
module whose plugin was disabled). ``clean(site, form)`` checks what Admin → Notification
emails posts (``f_<module>`` lists): an unknown module or field is refused by name, nothing
saved. ``lines(...)`` gives the "Label: value" lines of the records a mail names, read
through the record service as the assignee (their access, in SQL; one statement per module)
and written in their language and formats.
"""
from __future__ import annotations

from core.kernel import i18n
from core.kernel.errors import N_, Message
from core.kernel.records import Query

SETTING = "notification_fields"
FEATURE = "notify_assignment"
MAX_FIELDS = 10  # per module: a notification, not a report


def modules(site) -> list:
    """The modules that notify assignments, by label."""
    return sorted((m for m in site.registry.modules.values() if m.features.get(FEATURE)),
                  key=lambda m: str(m.label).lower())


def offered(module) -> list:
    """The fields an administrator may add: stored or derived values a person reads, not
    the name (already in the line), ids, files or long texts."""
    skip = {"id", "deleted", module.name_field}
    return [f for f in module.fields.values()
            if f.name not in skip and not f.type.internal and f.type.name not in (
                "file", "image", "html", "textarea", "parent_type", "id")]


def chosen(site) -> dict[str, list[str]]:
    stored = site.settings.get(SETTING)
    stored = stored if isinstance(stored, dict) else {}
    out = {}
    for module in modules(site):
        names = {f.name for f in offered(module)}
        wanted = stored.get(module.name)
        if isinstance(wanted, list):
            kept = [n for n in wanted if isinstance(n, str) and n in names][:MAX_FIELDS]
            if kept:
                out[module.name] = kept
    return out


def clean(site, form) -> tuple[dict, dict[str, Message]]:
    """The posted choice as the JSON to store, and the problems by module."""
    out, errors = {}, {}
    for module in modules(site):
        names = [str(n) for n in form.getlist(f"f_{module.name}")]
        known = {f.name for f in offered(module)}
        unknown = [n for n in names if n not in known]
        if unknown:
            errors[module.name] = Message(N_("%(module)s has no field %(field)s to add"),
                                          module=str(module.label), field=repr(unknown[0]))
        elif len(names) > MAX_FIELDS:
            errors[module.name] = Message(N_("At most %(n)s fields"), n=MAX_FIELDS)
        elif names:
            out[module.name] = list(dict.fromkeys(names))
    return out, errors


def lines(site, reader, fmt, records: list[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
    """(module, record id) -> "Label: value" lines of the chosen fields, for ``reader``."""
    wanted = chosen(site)
    by_module: dict[str, list[str]] = {}
    for module_name, record_id in records:
        if module_name in wanted:
            by_module.setdefault(module_name, []).append(record_id)
    out: dict[tuple[str, str], list[str]] = {}
    token = i18n.activate(fmt.translations)  # labels and options in the reader's language
    try:
        for module_name, ids in by_module.items():
            module = site.registry.module(module_name)
            fields = [module.fields[n] for n in wanted[module_name]]
            labels = site.registry.option_labels(module_name)
            rows = site.records.list(module_name, reader, Query(
                filters=[("id", "in", ids)], fields=[f.name for f in fields], labels=True,
                limit=None))
            for row in rows:
                shown = [(f, f.type.export_text(fmt, f, row, labels)) for f in fields]
                out[(module_name, row["id"])] = [
                    fmt.gettext("%(label)s: %(value)s") % {"label": f.label, "value": text}
                    for f, text in shown if text]
    finally:
        i18n.deactivate(token)
    return out
