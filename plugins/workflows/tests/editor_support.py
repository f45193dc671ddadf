"""What the editor's tests share: the plugin modules their sites load and a workflow."""
from __future__ import annotations

import json

from tests.plugins.kitchen_sink import plugin as kitchen_sink


def extra_plugins() -> list:
    """kitchen_sink (gadgets: every field type, the trigger module)."""
    return [kitchen_sink]


def make_workflow(site, user, **values) -> dict:
    """A workflow on gadgets (saved, new and existing records)."""
    record = {"name": "Toys get a reminder", "active": True, "trigger_module": "gadgets",
              "trigger": "saved", "applies_to": "both", "execute_as": "trigger_user",
              "conditions": "", "actions": "[]"}
    record.update(values)
    for key in ("conditions", "actions"):
        if not isinstance(record[key], str):
            record[key] = json.dumps(record[key])
    return site.records.create("workflows", record, user)


NESTED = {"group": "all_of", "conditions": [
    {"field": "kind", "when": "changed_to", "operator": "is", "value": "toy"},
    {"group": "any_of", "conditions": [
        {"field": "quantity", "when": "current", "operator": "gte", "value": "10"},
        {"field": "released_on", "when": "current", "operator": "within",
         "anchor": {"kind": "today"}, "amount": 2, "unit": "weeks", "direction": "next"}]}]}
ACTIONS = [{"type": "set_fields", "delay": None, "unique": False, "values": {"summary": "toy!"}},
           {"type": "webhook", "delay": {"amount": 5, "unit": "days"}, "unique": True,
            "url": "https://example.com/hook"}]
