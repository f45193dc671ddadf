"""Workflows (implementation guide §7.5.5): what happens by itself when a record is saved
or deleted, or when a date comes, under conditions.

The plugin brings:

- the condition library (``conditions.py``: the JSON shape, checking, in-memory evaluation,
  SQL for scans; ``dates.py``: the calendar its date filters count in — the company
  calendar's time zone, first day of the week and fiscal year start, Admin → Company
  calendar, core.apps.calendar.settings);
- the actions registry (``actions.py``) and its hook ``crbm_workflow_actions``
  (``hookspecs.py``) for plugins that add actions;
- the ``workflows`` module (administrators only) with its run history ``workflow_runs``;
  saving a workflow checks its trigger module, conditions (``scan`` for a scheduled one) and
  every action's parameters, refusing with what and where (``check_workflow``);
- the engine (``engine.py``): the save and delete triggers, the job ``workflows.action``
  (delayed and outward actions) and the scheduler task ``workflows.process``.
"""
from __future__ import annotations

import json

import sqlalchemy as sa

from core.kernel import i18n
from core.kernel.errors import N_, ValidationError
from core.kernel.hookspecs import for_modules, hookimpl
from core.kernel.hooktypes import AdminLink, JobHandler, ScheduledTask
from plugins.workflows import actions, conditions, engine, history

__version__ = "0.2.0"

TRIGGERS = ("saved", "deleted", "scheduled")


def _(text: str) -> str:
    """``text`` in the language of the page at work (a save from the web: its reader's;
    a job: English), marked for the catalog."""
    return i18n.active().gettext(text)


@hookimpl
def crbm_after_save(site, module, batch, user, connection):
    engine.on_write(site, module, batch, user, connection, "saved")


@hookimpl
def crbm_after_delete(site, module, records, user, connection):
    engine.on_write(site, module, records, user, connection, "deleted")


@hookimpl(specname="crbm_after_save")
@for_modules("workflows")
def after_saving_workflows(site, batch, connection):
    engine.invalidate(site)  # this process sees a changed workflow at once
    actions.prepare_round_robin(site, [change.record for change in batch], connection)


@hookimpl(specname="crbm_after_delete")
@for_modules("workflows")
def after_deleting_workflows(site):
    engine.invalidate(site)


@hookimpl(specname="crbm_before_save")
@for_modules("workflows")
def before_saving_workflows(site, module, batch, connection):
    for index, change in enumerate(batch):
        errors = check_workflow(site, change.record, connection)
        if errors:
            raise ValidationError(errors if len(batch) == 1 else
                                  {f"row {index + 1}: {k}": v for k, v in errors.items()})


def check_workflow(site, record, connection=None) -> dict[str, str]:
    """field -> what is wrong with a workflow about to be saved (empty: it can be)."""
    errors: dict[str, str] = {}
    module_name = record.get("trigger_module") or ""
    if module_name in engine.OWN_MODULES or module_name not in site.registry.modules:
        errors["trigger_module"] = _("'%s' is not a module of this site") % module_name
        return errors
    module = site.registry.module(module_name)
    text = (record.get("conditions") or "").strip()
    if text and text not in ("{}", "null"):
        try:
            condition = json.loads(text)
        except ValueError as exc:
            condition, errors["conditions"] = None, _("not valid JSON: %s") % exc
        if condition is not None:
            problems = conditions.validate(site, module_name, condition,
                                           scan=record.get("trigger") == "scheduled")
            if problems:
                errors["conditions"] = "; ".join(p.text(i18n.active().gettext) for p in problems)
    problems = actions.check_actions(site, module, record.get("actions") or "[]")
    if not problems:
        problems = _cycles(site, record, connection)
    if problems:
        errors["actions"] = "; ".join(problems)
    return errors


def _cycles(site, record, connection) -> list[str]:
    """A workflow may not start itself, directly or through others (on its module)."""
    own_id = str(record.get("id") or "")
    graph: dict[str, list[str]] = {}
    table = site.records.table(site.registry.module("workflows"))
    rows = connection.execute(sa.select(table.c.id, table.c.actions, table.c.trigger_module)
                              .where(table.c.deleted.is_(False))).all()
    modules = {str(r.id): r.trigger_module for r in rows}
    for row in rows:
        graph[str(row.id)] = _starts(row.actions)
    graph[own_id] = _starts(record.get("actions"))
    problems = []
    for number, action in enumerate(json.loads(record.get("actions") or "[]"), 1):
        if action.get("type") != "start_workflow":
            continue
        target = str(action.get("workflow_id"))
        where = _("Action %d (Start another workflow)") % number
        if target == own_id:
            problems.append(_("%s: a workflow cannot start itself") % where)
        elif target not in modules:
            problems.append(_("%s: no such workflow") % where)
        elif modules[target] != record.get("trigger_module"):
            problems.append(_("%s: the workflow to start is on another module") % where)
        elif _reaches(graph, target, own_id):
            problems.append(_("%s: starting that workflow would start this one again") % where)
    return problems


def _starts(text) -> list[str]:
    try:
        return [str(a.get("workflow_id")) for a in json.loads(text or "[]")
                if isinstance(a, dict) and a.get("type") == "start_workflow"]
    except ValueError:
        return []


def _reaches(graph, start, goal) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return False


@hookimpl
def crbm_tables(metadata):
    # the round-robin pointer of each assign action (actions._round_robin): a counter
    # bumped in the saving transaction, so concurrent saves take turns
    sa.Table("workflow_round_robin", metadata,
             sa.Column("workflow_id", sa.String(36), primary_key=True),
             sa.Column("action_index", sa.Integer, primary_key=True),
             sa.Column("counter", sa.Integer, nullable=False, server_default="0"))


@hookimpl
def crbm_demo_data(site, user, progress):
    """Three inactive workflows on accounts and contacts (demo.py)."""
    from plugins.workflows import demo

    demo.load(site, user, progress)


@hookimpl
def crbm_admin_links(site):
    # guide 7.5.5: the Workflow module is reached from the Admin screen only
    return [AdminLink(N_("Workflows"), "/m/workflows",
                      N_("Automated actions when records are saved or deleted, or a date "
                         "comes"))]


@hookimpl
def crbm_job_handlers(site):
    return [JobHandler(engine.JOB, engine.run_job, retries=5)]


@hookimpl
def crbm_scheduled_tasks(site):
    return [ScheduledTask(engine.TASK, N_("Process workflows"), engine.process,
                          "@every 15m")]


from plugins.workflows.web import crbm_record_actions, crbm_web_routes  # noqa: F401 (the editor: its hooks)


@hookimpl
def crbm_field_types(site):
    return [history.MessageType(), history.MessageI18nType()]  # the run history's messages, translated when read
