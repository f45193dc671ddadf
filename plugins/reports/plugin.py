"""Reports (user guide "Reports"; issue 25): a report reads one module and, through its
relationships, the records around it, groups and totals them, and draws a chart whose
every segment opens the records behind it.

Provides:

- the module ``reports`` (modules/reports.yaml): a saved report, shared like any record
  (assigned user, teams, the roles' rules for Reports). Its ``definition`` is JSON
  (compiler.py states the format) checked against the registry on every save — by the
  builder, the API or an import alike (``crbm_before_save``); a report saved without one
  starts as a list of its module's names, to be designed in the builder;
- compiling a report to **one SQL statement** under the runner's ``report`` access
  predicate for every module it reads (compiler.py) and running it (run.py);
- the pages (web.py): the builder ``/reports/new``, ``/reports/<id>/design``; the report
  ``/reports/<id>`` (chart, table, paging, CSV/XLSX export, Show SQL for administrators);
  a group's records ``/reports/<id>/records?g0=...``.

A report whose fields were removed later in the Studio is shown as broken (what is
missing, where), never as a server error; a runner who may not report on one of the
modules it reads is refused with the module's name.
"""
from __future__ import annotations

import json

from core.kernel.errors import N_, Message, ValidationError
from core.kernel.hookspecs import for_modules, hookimpl

__version__ = "0.1.0"

MODULE = "reports"


@hookimpl(specname="crbm_before_save")
@for_modules(MODULE)
def check_definitions(site, module, batch, user, connection) -> None:
    """Every saved definition is one the compiler accepts; ``report_module`` follows it."""
    from plugins.reports.compiler import ReportError, check

    errors: dict[str, Message | str] = {}
    for index, change in enumerate(batch):
        record = change.record
        where = "definition" if len(batch) == 1 else f"row {index + 1}: definition"
        text = record.get("definition")
        if not text:
            target = site.registry.modules.get(str(record.get("report_module") or ""))
            if target is None:
                errors["report_module" if len(batch) == 1 else f"row {index + 1}: report_module"] = \
                    Message(N_("no module %(name)s"), name=repr(record.get("report_module")))
                continue
            text = json.dumps(starter(target))
        try:
            definition = check(site.registry, text)
        except ReportError as exc:
            errors[where] = "; ".join(f"{k}: {v}" for k, v in exc.problems.items())
            continue
        record["definition"] = text
        record["report_module"] = definition.module.name
    if errors:
        raise ValidationError(errors)


def starter(module) -> dict:
    """A new report's definition: the module's list columns."""
    columns = [{"field": n} for n in module.list_columns()
               if n in module.fields and module.fields[n].stored][:6]
    return {"module": module.name, "columns": columns or [{"field": "id"}]}


@hookimpl
def crbm_web_routes(site):
    from plugins.reports import web

    return web.routes()


@hookimpl
@for_modules(MODULE)
def crbm_record_actions(site, module, record, user):
    from core.web.actions import Action

    return [Action(N_("Run report"), f"/reports/{record['id']}", primary=True),
            Action(N_("Design"), f"/reports/{record['id']}/design"),
            Action(N_("Saved runs"), f"/reports/{record['id']}/runs")]


# the demo's reports, made only for the modules this site has
DEMO = [
    ("Pipeline by stage", {"module": "opportunities", "columns": [
        {"field": "amount", "aggregate": "sum"}, {"field": "id", "aggregate": "count"}],
        "group_by": [{"field": "sales_stage"}], "chart": {"type": "funnel", "column": 0}}),
    ("Accounts by industry", {"module": "accounts", "columns": [
        {"via": "opportunities", "field": "amount", "aggregate": "sum"},
        {"via": "contacts", "field": "id", "aggregate": "count"},
        {"field": "id", "aggregate": "count"}],
        "group_by": [{"field": "industry"}], "chart": {"type": "bar", "column": 0}}),
    ("Deals closing by month", {"module": "opportunities", "columns": [
        {"field": "amount", "aggregate": "sum"}, {"field": "id", "aggregate": "count"}],
        "group_by": [{"field": "date_closed", "by": "month"}],
        "chart": {"type": "line", "column": 0}}),
]


@hookimpl(trylast=True)  # after the modules they read have their demo records
def crbm_demo_data(site, user, rng, progress):
    from plugins.reports.compiler import ReportError, check

    rows = []
    for name, definition in DEMO:
        try:
            check(site.registry, definition)
        except ReportError:  # a module or relationship this site does not have
            continue
        rows.append({"name": name, "definition": json.dumps(definition),
                     "assigned_user_id": user.id})
    if rows and not site.records.count(MODULE, user, cap=0):
        site.records.create_many(MODULE, rows, user)
    progress(len(rows), len(rows))


# -- scheduled reports and saved runs (scheduling.py, runs.py) ----------------------------------


@hookimpl(specname="crbm_before_save")
@for_modules(MODULE)
def check_schedules(site, module, batch, user, connection) -> None:
    """A schedule is checked whole (bad addresses named) and its next run worked out."""
    from plugins.reports import scheduling

    scheduling.check_schedules(site, module, batch, user, connection)


@hookimpl(specname="crbm_tables")
def runs_tables(metadata):
    from plugins.reports import runs

    runs.tables(metadata)


@hookimpl(specname="crbm_scheduled_tasks")
def schedule_tasks(site):
    from plugins.reports import scheduling

    return scheduling.scheduled_tasks()


@hookimpl(specname="crbm_job_handlers")
def schedule_job_handlers(site):
    from plugins.reports import scheduling

    return scheduling.job_handlers()


@hookimpl(specname="crbm_web_routes")
def schedule_routes(site):
    from plugins.reports import schedule_web

    return schedule_web.routes()
