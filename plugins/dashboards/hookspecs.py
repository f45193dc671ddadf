"""The dashboards plugin's own hook (``core.kernel.plugins`` adds the specs of a plugin's
``hookspecs.py`` before registering the plugins). A plugin answers it from a glue module
registered only while dashboards is active (its manifest's ``glue: dashboards: ...``), so
neither plugin needs the other.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from core.kernel.hookspecs import hookspec

if TYPE_CHECKING:
    from core.kernel.site import Site
    from plugins.dashboards.dashlets import DashletType


@hookspec
def crbm_dashlets(site: Site) -> list[DashletType] | None:
    """The kinds of dashlet this plugin offers: a list of
    ``plugins.dashboards.dashlets.DashletType`` (frozen dataclasses).

    ``name`` is ``"<plugin>.<what>"`` (stored in users' dashboards: keep it stable),
    ``label`` and ``description`` are ``N_`` strings (the chooser shows them), ``render``
    is ``render(site, user, options, fmt) -> Drawn`` and ``drill`` (optional)
    ``drill(site, user, key) -> Drill | None``. ``width`` is the default width in grid
    columns (1 to 3), ``default`` puts the kind in the standard dashboard (in ``rank``
    order), ``choices(site, user)`` (optional) the values of its one option (a saved
    report) as (value, label) pairs.

    A render reads set-based, a small fixed number of statements whatever the data, and
    only through what the user may see: ``site.records`` or a statement carrying
    ``site.access.predicate(user, module, "list", table)`` (``dashlets.grouped`` does
    both). It returns a ``Drawn``: a ``Table`` (rows of ``Cell``, with links) and/or a
    chart: ``dashlets.chart(kind, segments, series, fmt, key_header=...)`` returns both the
    ECharts option — built by the site's one chart code, ``core.web.charts`` (kinds bar,
    hbar, stacked_bar, line, pie, donut, funnel; its ``Segment``: a label, one figure per
    series, the URL of the list of exactly its records), drawn by /static/charts.js — and
    the ``Table`` of the same figures, which the page always draws beside it; ``figures``
    (KPIs), ``form`` (a ``QuickForm`` posted to a module's create page) and ``title`` (the
    heading, when the option names it). Modules a site lacks (a plugin disabled) simply
    give no dashlet: check ``site.registry``.
    """
