"""The workflows plugin's own hook (``core.kernel.plugins`` adds the specs of a plugin's
``hookspecs.py`` before registering the plugins): a plugin that implements it requires
``workflows`` in its ``plugin.yaml``.
"""
from __future__ import annotations

from core.kernel.hookspecs import hookspec


@hookspec
def crbm_workflow_actions(site):
    """Action types a plugin adds to workflows: a list of
    ``plugins.workflows.actions.ActionType`` named ``"<plugin>.<action>"``. The editor draws
    their ``params``; saving a workflow calls their ``check(site, module, params)``; the
    engine calls ``run(ctx, params)`` (``ActionContext``: the record, the acting user, the
    save's connection or None in a job, the run's idempotency key) and logs what it
    returns on the run history. Raise ``actions.ActionFailed`` for a failure a person
    should read (``permanent=False`` when a retry may succeed)."""
