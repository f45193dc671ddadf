"""The forecast page (``/forecasts``) and Admin → Forecasts (``/admin/forecasts``).

The forecast page shows one period for one person — you, or (``?user=``) someone below
you; an administrator may open anyone's. Its rows: the person's own deals, then one per
direct report with that report's whole team rolled up (a link opens their page), then the
total. Each row has the committed and best-case figures its user entered (editable here
by that user and anyone above them: one form, saved in one transaction, only changed
rows written; a refused value is shown beside its row and nothing is saved) and the
pipeline worked out in SQL (rollup.py). The chart is inline SVG made here: bars per row
for committed, weighted pipeline and closed won, scaled to the largest figure; its legend
is HTML below it (it wraps on a phone).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from babel import numbers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.apps.field_types.types import default_currency
from core.kernel.errors import N_, Message, NotFoundError, ValidationError
from core.kernel.records import Query
from core.web.pages import page
from core.web.templating import flash
from plugins.forecasts import periods, rollup

URL, ADMIN_URL = "/forecasts", "/admin/forecasts"
ENTRY_FIELDS = ("committed", "best_case")
SERIES = (("committed", N_("Committed")), ("weighted", N_("Weighted pipeline")),
          ("won", N_("Closed won")))
CHART_WIDTH, LABEL_WIDTH, BAR, GAP = 480, 110, 10, 14


@dataclass
class Row:
    user_id: str | None  # None: the total
    name: str
    figures: rollup.Figures
    entry: dict | None = None
    team: bool = False  # a direct report's whole team (a link to their page)
    values: dict = field(default_factory=dict)  # what the form shows
    errors: dict = field(default_factory=dict)


def _names(site, ids) -> dict[str, str]:
    users = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        return {r.id: r.display_name or r.username for r in conn.execute(
            sa.select(users.c.id, users.c.display_name, users.c.username)
            .where(users.c.id.in_(list(ids))))}


def _periods(site, user) -> list[dict]:
    kind = periods.forecast_settings(site).period
    return site.records.list(periods.PERIODS, user, Query(
        filters=[("period_type", "eq", kind)], sort="start_date", limit=None,
        fields=["id", "name", "start_date", "end_date"]))


def _context(request: Request, params) -> dict:
    site, me = request.app.state.site, request.state.user
    root = str(params.get("user") or me.id)
    if root != me.id and not me.is_admin and not rollup.in_team(site, me.id, [root]):
        raise HTTPException(403, Message(N_("You may see the forecasts of the people who "
                                            "report to you, not this one.")))
    names = _names(site, [root])
    if root not in names:
        raise NotFoundError(f"no user with id {root}")
    shown = _periods(site, me)
    today = periods.site_today(site)
    chosen = next((p for p in shown if p["id"] == params.get("period")), None) or \
        next((p for p in shown if p["start_date"] <= today <= p["end_date"]), None) or \
        (shown[0] if shown else None)
    context = {"periods": shown, "period": chosen, "root": root, "root_name": names[root],
               "rows": [], "chart": None, "currency": default_currency(site)}
    if chosen is None:
        return context
    teams = rollup.branches(site, root)
    names |= _names(site, teams)
    found = rollup.pipeline(site, me, root, [chosen])
    entries = {e["assigned_user_id"]: e for e in site.records.list(
        periods.ENTRIES, me, Query(filters=[("period_id", "eq", chosen["id"]),
                                            ("assigned_user_id", "in", list(teams))],
                                   limit=None))}
    rows = [Row(root, names[root], found.of(chosen["id"], root), entries.get(root))]
    rows += sorted((Row(b, names.get(b, b), found.of(chosen["id"], b), entries.get(b),
                        team=True) for b in teams if b != root), key=lambda r: r.name.lower())
    total = Row(None, "", found.total(chosen["id"]))
    total.values = {name: sum((r.entry[name] or Decimal(0) for r in rows if r.entry),
                              Decimal(0)) for name in ENTRY_FIELDS}
    digits = numbers.get_currency_precision(context["currency"])
    for row in rows:  # shown with the currency's digits ("17500.00", not the column's six)
        row.values = {name: _plain((row.entry or {}).get(name), digits) for name in ENTRY_FIELDS}
    context.update(rows=rows, total=total, chart=_chart(rows))
    return context


def _plain(value, digits: int) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(Decimal(1).scaleb(-digits))


def _chart(rows: list[Row]) -> dict:
    """Bar geometry for the SVG: per row, one bar per series, widths scaled to the
    largest figure (a page of zeros draws empty bars)."""
    def value(row: Row, key: str) -> Decimal:
        if key == "committed":
            return row.values.get("committed") or Decimal(0)
        return getattr(row.figures, key)

    largest = max((value(r, k) for r in rows for k, _ in SERIES), default=Decimal(0)) or 1
    room = CHART_WIDTH - LABEL_WIDTH - 10
    groups, y = [], 10
    for row in rows:
        bars = []
        for index, (key, label) in enumerate(SERIES):
            amount = value(row, key)
            bars.append({"key": key, "label": label, "value": amount, "y": y + index * BAR,
                         "width": int(room * amount / largest)})
        groups.append({"name": row.name, "y": y, "bars": bars})
        y += BAR * len(SERIES) + GAP
    return {"groups": groups, "height": y, "width": CHART_WIDTH, "x": LABEL_WIDTH,
            "bar": BAR - 2}


@page()
def forecast_page(request: Request, form):
    site, me = request.app.state.site, request.state.user
    params = form if form is not None else request.query_params
    context = _context(request, params)
    status = 200
    if form is not None and context["period"] is not None:
        errors = _save(site, me, context, form)
        if not errors:
            flash(request, N_("The forecast was saved."), "info")
            return RedirectResponse(f"{URL}?period={context['period']['id']}"
                                    f"&user={context['root']}", 303)
        status = 422
    response = request.app.state.templates.render(request, "forecast.html", status=status,
                                                  series=SERIES, **context)
    response.headers["Cache-Control"] = "no-store"
    return response


def _save(site, me, context: dict, form) -> dict:
    """Write the rows whose figures changed, in one transaction; the problems by row."""
    changed = []
    for row in context["rows"]:
        posted = {name: str(form.get(f"{name}_{row.user_id}") or "").strip() or None
                  for name in ENTRY_FIELDS}
        current = {name: row.values.get(name) for name in ENTRY_FIELDS}
        row.values = dict(posted)
        if any(_differs(posted[n], current[n]) for n in ENTRY_FIELDS):
            changed.append((row, posted))
    try:
        with site.engine.begin() as conn:
            for row, posted in changed:
                try:
                    if row.entry:
                        site.records.update(periods.ENTRIES, row.entry["id"], posted, me,
                                            connection=conn)
                    else:
                        site.records.create(periods.ENTRIES, {
                            **posted, "period_id": context["period"]["id"],
                            "assigned_user_id": row.user_id}, me, connection=conn)
                except ValidationError as exc:
                    row.errors = exc.errors
            if any(row.errors for row, _ in changed):
                raise _Refused()
    except _Refused:
        return {row.user_id: row.errors for row, _ in changed if row.errors}
    return {}


class _Refused(Exception):
    """A row was refused: roll the others back."""


def _differs(posted: str | None, current) -> bool:
    if posted is None or current is None:
        return (posted is None) != (current is None)
    try:
        return Decimal(posted) != Decimal(current)
    except ArithmeticError:
        return True


# -- Admin → Forecasts -------------------------------------------------------------------------


@page()
def settings_page(request: Request, form):
    site = request.app.state.site
    if not request.state.user.is_admin:
        raise HTTPException(403, Message(N_("Only administrators can change this setting.")))
    errors: dict = {}
    values = periods.forecast_settings(site).to_json()
    if form is not None:
        values, errors = periods.clean_settings(form)
        if not errors:
            site.set_setting(periods.SETTING, values)
            periods.keep_periods(site)  # the new settings' periods, at once
            flash(request, N_("The forecast settings were saved."), "info")
            return RedirectResponse(ADMIN_URL, 303)
        values = {name: str(form.get(name) or "") for name in values}
    response = request.app.state.templates.render(
        request, "admin_forecasts.html", status=422 if errors else 200, values=values,
        errors=errors,
        kinds=[("monthly", N_("Monthly")), ("quarterly", N_("Quarterly"))])
    response.headers["Cache-Control"] = "no-store"
    return response


def routes() -> list[Route]:
    return [Route(URL, forecast_page, methods=["GET", "POST"]),
            Route(ADMIN_URL, settings_page, methods=["GET", "POST"])]
