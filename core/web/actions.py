"""Buttons a plugin puts on a record's detail page (``crbm_record_actions``).

A convert, approve or print button belongs to the plugin that knows what it means; the
detail page only draws what the hook returns, as a link or as a small form that posts
(with the page's CSRF token) when the action changes something.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.kernel.errors import N_
from core.kernel.records import Query, status_value


@dataclass(frozen=True)
class Action:
    label: str  # English, marked with core.kernel.errors.N_; translated when drawn
    url: str
    post: bool = False  # changes something: drawn as a form button, sent with POST
    primary: bool = False  # the one thing a user most likely does next
    confirm: str | None = None  # asked before posting (N_ marked), e.g. "Approve this quote?"


def record_actions(site, module, record: dict, user) -> list[Action]:
    """Print and email buttons for the PDF forms meant for this module, then every
    plugin's buttons for this record, in plugin order."""
    from core.apps.documents.printing import (
        forms_for,  # printing reads records; keep this module light
    )

    out = []
    for form in forms_for(site, module.name):
        base = f"/m/{module.name}/{record['id']}"
        out += [Action(N_("Print PDF"), f"{base}/pdf/{form.name}"),
                Action(N_("Email PDF"), f"{base}/email/{form.name}")]
    transitions = module.features.get("transitions")
    for action in transitions["actions"] if transitions else ():  # the status's next steps
        if status_value(module.fields[transitions["field"]], record.get(transitions["field"])) \
                in action["from"] and \
                site.access.can(user, module, action.get("right", "edit")):
            out.append(Action(action["label"], f"/m/{module.name}/{record['id']}/transition/"
                              f"{action['name']}", post=True))
    return out + [action for actions in site.module_hooks.of(module).crbm_record_actions(
        site=site, module=module, record=record, user=user) for action in actions or ()]


def selection_query(module, form, fields=None) -> Query:
    """What a list's mass action (``ListAction``) acts on, from the list form it posts: the
    ticked ``ids``, or with ``all`` every record the list shows for its filters
    (``f_<field>``) and quick search (``q``). Read it with ``site.records.list(..., query,
    action)``: the reader's access applies there, in SQL."""
    if form.get("all") != "1":
        return Query(filters=[("id", "in", [str(i) for i in form.getlist("ids")])],
                     fields=fields, limit=None)
    filters = []
    for name in module.layouts.get("filters", []):
        for f in module.expand(name):
            value = str(form.get(f"f_{f.name}", "")).strip()
            if value:
                op, typed = f.type.list_filter(value)
                filters.append((f.name, op, typed))
    return Query(filters=filters, search=str(form.get("q", "")).strip() or None,
                 fields=fields, limit=None)
