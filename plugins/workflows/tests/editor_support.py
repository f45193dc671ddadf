"""What the editor's tests share: the plugin modules their sites load and a workflow.

The editor (``plugins/workflows/web.py``) is written beside the engine; until the engine's
workflow module, its ``actions`` registry and the registration of the editor's hooks are on
this branch, the tests load stand-ins of them (``editor_stub/``, brief 18b's shapes) — and
only then: with the engine present they test against the real ones."""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

from tests.plugins.kitchen_sink import plugin as kitchen_sink

WORKFLOWS = Path(__file__).resolve().parents[1]


def _engine_has(path: str) -> bool:
    return (WORKFLOWS / path).exists()


def extra_plugins() -> list:
    """kitchen_sink (gadgets: every field type, the trigger module) and the stand-ins the
    branch still needs."""
    modules = [kitchen_sink]
    if not _engine_has("modules/workflows.yaml"):
        from plugins.workflows.tests.editor_stub.module import plugin as record_stub
        modules.append(record_stub)
    if "plugins.workflows.web" not in (WORKFLOWS / "plugin.py").read_text(encoding="utf-8"):
        from plugins.workflows.tests.editor_stub.hooks import plugin as hooks_stub
        modules.append(hooks_stub)
    if not _engine_has("actions.py"):
        standin = importlib.import_module("plugins.workflows.tests.editor_stub.actions_standin")
        sys.modules.setdefault("plugins.workflows.actions", standin)
    return modules


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
