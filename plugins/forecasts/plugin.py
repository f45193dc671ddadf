"""Forecasts: what each salesperson expects to close per period, beside what their pipeline
says, rolled up through who reports to whom (user guide 1.1, implementation guide 7.1.1).

Provides:

- the hidden modules ``forecast_periods`` (kept by the scheduler task ``forecasts.periods``
  from the setting ``forecasts``: monthly or quarterly periods counted from the fiscal
  year's first month, the current one and those ahead, a few past; periods.py) and
  ``forecast_entries`` (a user's *committed* and *best case* figures for a period; the
  entry's assigned user is whose forecast it is);
- **who may enter a forecast**: its user, anyone they report to (directly or through
  others: ``crbm_users.reports_to_id``, set on Admin → Users) and administrators — checked
  on every save (``crbm_before_save``), so the API and imports obey it too; one entry per
  user and period;
- the **forecast page** ``/forecasts`` (web.py; a top-bar link): for a period and a person
  (yourself, or someone below you), one row for the person's own deals and one per direct
  report with that report's whole team rolled up, then the total: entered committed and
  best case beside the pipeline worked out in SQL (face value, weighted by probability,
  closed won; rollup.py, counting only opportunities the viewer may list), and a bar chart
  of the same drawn as inline SVG on the server (no script, no library: a handful of bars,
  readable without JavaScript and printable);
- **Admin → Forecasts** (``/admin/forecasts``): the forecast settings; saving them runs the
  periods task at once;
- read access through the REST API comes with the modules (``/api/v1/forecast_entries``,
  ``/api/v1/forecast_periods``);
- demo forecasts: the periods and the demo user's committed figures.

The fiscal year's first month and the time zone of "today" are the company calendar's
(core.apps.calendar.settings, Admin → Company calendar), shared with workflows and
opportunities: 1CRM keeps one fiscal year start in its company settings.
"""
from __future__ import annotations

from core.kernel.errors import N_, Message, ValidationError
from core.kernel.hookspecs import for_modules, hookimpl
from core.kernel.hooktypes import AdminLink, NavEntry, ScheduledTask
from core.kernel.records import SYSTEM_USER
from plugins.forecasts import periods, rollup

__version__ = "0.1.0"

TASK = "forecasts.periods"


@hookimpl(specname="crbm_before_save")
@for_modules(periods.ENTRIES)
def before_saving_entries(site, module, batch, user, connection) -> None:
    """One entry per user and period; saved only by its user, someone above them or an
    administrator."""
    import sqlalchemy as sa

    errors: dict[str, Message] = {}

    def problem(index: int, name: str, message: Message) -> None:
        errors[name if len(batch) == 1 else f"row {index + 1}: {name}"] = message

    owners = {c.record.get("assigned_user_id") for c in batch} - {None}
    allowed = owners if user.is_admin or user.id == SYSTEM_USER.id else \
        rollup.in_team(site, user.id, owners, connection)
    pairs: dict[tuple, int] = {}
    for index, change in enumerate(batch):
        owner = change.record.get("assigned_user_id")
        if owner is None:
            problem(index, "assigned_user_id", Message(N_("is required")))
        elif owner not in allowed:
            problem(index, "assigned_user_id", Message(N_(
                "you may enter forecasts only for yourself and the people who report to you")))
        pair = (change.record.get("period_id"), owner)
        if pair in pairs:
            problem(index, "period_id", Message(N_("this user has a forecast for this period "
                                                   "already")))
        pairs[pair] = index
    if not errors and pairs:
        entries = site.tables.tables[module.table]
        rows = connection.execute(sa.select(entries.c.period_id, entries.c.assigned_user_id)
                                  .where(entries.c.period_id.in_({p for p, _ in pairs}),
                                         entries.c.deleted.is_(False),
                                         entries.c.id.not_in([c.record["id"] for c in batch])))
        for row in rows:
            index = pairs.get((row.period_id, row.assigned_user_id))
            if index is not None:
                problem(index, "period_id", Message(N_("this user has a forecast for this "
                                                       "period already")))
    if errors:
        raise ValidationError(errors)


@hookimpl
def crbm_scheduled_tasks(site):
    return [ScheduledTask(TASK, N_("Keep the forecast periods"), periods.periods_task,
                          "15 0 * * *")]


@hookimpl
def crbm_web_routes(site):
    from plugins.forecasts import web

    return web.routes()


@hookimpl
def crbm_navigation(site, user):
    return [NavEntry(N_("Forecasts"), "/forecasts", icon="trending-up")]


@hookimpl
def crbm_admin_links(site):
    return [AdminLink(N_("Forecasts"), "/admin/forecasts",
                      N_("Forecast period, periods kept"))]


@hookimpl(trylast=True)
def crbm_demo_data(site, user, rng, progress):
    """The forecast periods, and the demo user's committed and best-case figures for the
    current and next period from their pipeline (a bit under and a bit over weighted)."""
    from decimal import Decimal

    from core.kernel.records import Query

    periods.keep_periods(site)
    today = periods.site_today(site)
    ahead = site.records.list(periods.PERIODS, user, Query(
        filters=[("end_date", "gte", today)], sort="start_date", limit=2))
    found = rollup.pipeline(site, user, user.id, ahead)
    rows = []
    for period in ahead:
        figures = found.total(period["id"])
        if figures.face:
            committed = (figures.won + figures.weighted * Decimal("0.9")).quantize(rollup.CENT)
            best = (figures.won + figures.face * Decimal("0.6")).quantize(rollup.CENT)
            rows.append({"period_id": period["id"], "assigned_user_id": user.id,
                         "committed": committed, "best_case": max(best, committed)})
    if rows and not site.records.count(periods.ENTRIES, user, cap=0):
        site.records.create_many(periods.ENTRIES, rows, user)
    progress(len(rows), len(rows))
