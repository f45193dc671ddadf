"""Reports × dashboards: a saved report on a dashboard. Registered by the reports
manifest's ``glue`` only while the dashboards plugin is active.

**Report**: its option is a report the user may list. A grouped report with a chart draws
that chart (``plugins.reports.run``: one statement under the runner's access predicates)
over its finest groups, every segment opening the report's own drill-down
(``/reports/<id>/records?g0=...``), and the groups' table under it; a grouped report
without a chart its table; a list report its first rows. A report that cannot run any
more (a field removed in the Studio, a module the user may not report on) says why in its
place.
"""
from __future__ import annotations

from core.kernel.errors import N_, NotFoundError
from core.kernel.hookspecs import hookimpl
from core.kernel.records import Query
from plugins.dashboards.dashlets import Cell, DashletType, Drawn, Segment, Table, chart, record_url

MODULE = "reports"
ROWS = 10
# a report's chart kind -> its dashlet's (core.web.charts): in a dashlet's small box the
# finest groups are plain bars, and a pie is a ring (the table under it names the slices)
KINDS = {"bar": "bar", "stacked_bar": "bar", "line": "line", "pie": "donut", "donut": "donut",
         "funnel": "funnel"}


def report_choices(site, user) -> list[tuple[str, str]]:
    return [(r["id"], r["name"] or r["id"]) for r in site.records.list(
        MODULE, user, Query(sort="name", limit=200, fields=["name"]))]


def report(site, user, options, fmt) -> Drawn:
    from plugins.reports.compiler import ReportError, ReportRefused, check
    from plugins.reports.run import headers as worded, run

    report_id = str(options.get("value") or "")
    try:
        saved = site.records.get(MODULE, report_id, user)
    except NotFoundError:
        return Drawn(error=fmt.gettext("This report was deleted, or you may no longer see it."))
    url = f"/reports/{report_id}"
    try:
        definition = check(site.registry, saved.get("definition") or "{}")
        result = run(site, definition, user, fmt)
    except ReportError as exc:
        return Drawn(error=fmt.gettext("The report “%(name)s” cannot run: %(reason)s") % {
            "name": saved["name"], "reason": "; ".join(str(v) for v in exc.problems.values())})
    except ReportRefused as exc:
        return Drawn(error=str(exc))
    more = (fmt.gettext("Open the report “%(name)s”") % {"name": saved["name"]}, url)
    title = saved["name"] or None  # the report's own name heads its dashlet
    if definition.groups:
        shown = [i for i, c in enumerate(definition.columns) if c.aggregate]
        groups = result.finest
        if not groups:
            return Drawn(empty=fmt.gettext("The report finds nothing."), more=more, title=title)
        labels = worded(definition, fmt)  # as the report's page heads them ("Number of …")
        headers = (" · ".join(str(g.field.label) for g in definition.groups),
                   *(labels[i] for i in shown))
        rows = tuple((Cell(" · ".join(g.labels), f"{url}/records?{g.query}"),
                      *(Cell(g.cells[i].text, num=True) for i in shown)) for g in groups)
        table = Table(headers, rows, (False, *(True for _ in shown)))
        option = None
        spec = definition.chart
        if spec and spec.get("column", 0) < len(definition.columns):
            column = spec.get("column", 0)
            segments = [Segment(" · ".join(g.labels), (g.cells[column].value or 0,),
                                f"{url}/records?{g.query}", g.count) for g in groups]
            option, _ = chart(KINDS.get(spec.get("type"), "bar"), segments,
                              [labels[column]], fmt,
                              key_header=headers[0])
        return Drawn(table=table, chart=option, more=more, title=title)
    module = definition.module.name
    rows = tuple((Cell(str(r.get("name") or r["id"]), record_url(module, r["id"])),
                  *(Cell(c.text) for c in r["cells"][:4])) for r in result.rows[:ROWS])
    if not rows:
        return Drawn(empty=fmt.gettext("The report finds nothing."), more=more, title=title)
    headers = (fmt.gettext("Record"), *worded(definition, fmt)[:4])
    return Drawn(table=Table(headers, rows), more=more, title=title)


@hookimpl
def crbm_dashlets(site):
    return [DashletType("reports.report", N_("Report"),
                        N_("A saved report's chart or table."), report, width=2,
                        choices=report_choices, option_label=N_("Report"))]

