"""Demo workflows, so the demo site shows the module: realistic, and inactive (an
administrator switches one on to see it work) — each only when its module and its email
template are on the site, and none when the site has workflows already."""
from __future__ import annotations

import json

from core.kernel.records import SYSTEM_USER, Query


def _template(site, name: str) -> str | None:
    rows = site.records.list("email_templates", SYSTEM_USER, Query(
        filters={"name": name}, fields=["id"], limit=1), action=None)
    return rows[0]["id"] if rows else None


def workflows(site) -> list[dict]:
    found = []
    check_in = _template(site, "Account check-in reminder")
    if "accounts" in site.registry.modules and check_in:
        found.append({
            "name": "Check in with customers every quarter",
            "trigger_module": "accounts", "trigger": "scheduled", "applies_to": "both",
            "execute_as": "admin",
            "description": "Once a day, customers not changed for three months remind "
                           "their assigned user to call them.",
            "conditions": {"group": "all_of", "conditions": [
                {"field": "account_type", "when": "current", "operator": "is",
                 "value": "customer"},
                {"field": "modified_at", "when": "current", "operator": "before",
                 "date": {"kind": "offset", "amount": -3, "unit": "months"}}]},
            "actions": [{"type": "send_email", "template_id": check_in,
                         "to": [{"kind": "assigned_user"}], "delay": None, "unique": False}]})
    follow_up = _template(site, "Meeting follow-up")
    if "contacts" in site.registry.modules and follow_up:
        found.append({
            "name": "Follow up new contacts from trade shows",
            "trigger_module": "contacts", "trigger": "saved", "applies_to": "new",
            "execute_as": "owner",
            "description": "Two days after a contact met at a trade show is entered, their "
                           "assigned user gets the follow-up email to pass on.",
            "conditions": {"group": "all_of", "conditions": [
                {"field": "lead_source", "when": "current", "operator": "is",
                 "value": "trade_show"}]},
            "actions": [{"type": "send_email", "template_id": follow_up,
                         "to": [{"kind": "assigned_user"}],
                         "delay": {"amount": 2, "unit": "days"}, "unique": True}]})
    if "accounts" in site.registry.modules:
        found.append({
            "name": "Prospects with a big revenue get a hot rating",
            "trigger_module": "accounts", "trigger": "saved", "applies_to": "both",
            "execute_as": "admin",
            "description": "Sets the rating of prospects over 10 million in annual revenue.",
            "conditions": {"group": "all_of", "conditions": [
                {"field": "account_type", "when": "current", "operator": "is",
                 "value": "prospect"},
                {"field": "annual_revenue", "when": "changed"}]},
            "actions": [{"type": "set_fields", "values": {"rating": "Hot"}}]})
    return found


def load(site, user, progress) -> None:
    if site.records.count("workflows", SYSTEM_USER, cap=0):
        return
    wanted = workflows(site)
    for index, values in enumerate(wanted):
        site.records.create("workflows", {
            **values, "active": False, "conditions": json.dumps(values["conditions"]),
            "actions": json.dumps(values["actions"])}, user)
        progress(index + 1, len(wanted))
