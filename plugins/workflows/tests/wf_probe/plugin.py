"""A test-only plugin for the workflow engine's tests: a ``wf_leads`` module standing in for
the leads of the guide's example (leads do not exist in CRBM yet: a name, a temperature
dropdown, a status, an assigned user), a ``last_activity_on`` date on contacts (the "5
quiet days" example), and a plugin action ``wf_probe.mark`` through the workflows
plugin's own hook ``crbm_workflow_actions``."""
from __future__ import annotations

from core.kernel.hookspecs import hookimpl
from plugins.workflows.actions import ActionFailed, ActionType, Param

PLUGIN_NAME = "wf_probe"
MARKS: list[tuple[str, str]] = []  # (record id, the action's "label") per run


def _mark(ctx, params):
    if params.get("label") == "boom":
        raise ActionFailed("the probe refuses 'boom'")
    MARKS.append((ctx.record["id"], params.get("label")))
    return f"marked {params.get('label')}"


def _check(site, module, params):
    return ["label: must not be 'never'"] if params.get("label") == "never" else []


@hookimpl
def crbm_workflow_actions(site):
    return [ActionType("wf_probe.mark", "Mark the record", (Param("label", "Label", "text"),),
                       _mark, _check)]
