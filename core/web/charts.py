"""Charts: the one place an Apache ECharts option is built (static/charts.js draws it).

Contract. ``option(kind, segments, series, fmt, ...)`` returns a JSON-ready ECharts option
for ``segments`` (``Segment``: a label, one figure per series, the URL of exactly its
records, optionally its figure as the table shows it). ``kind`` is one of ``KINDS``:
``bar``, ``hbar`` (horizontal bars), ``stacked_bar``, ``line``, ``pie``, ``donut``,
``funnel``; pie, donut and funnel draw the first series. Every data item carries ``url``
(its drill-down) and ``name``; ``aria`` is on (with ``about``, a description of every
figure in the reader's language: ECharts' own is English). ``crbm`` tells charts.js the
kind, the look, the currency (``Intl.NumberFormat``: numbers and amounts formatted in the
browser, in ``crbm.locale``, the reader's number locale).

The page embeds it with ``script_json`` in a holder::

    <div data-chart><script type="application/json">{{ json }}</script></div>

and includes the vendored ECharts and /static/charts.js, which draws every ``[data-chart]``
(SVG renderer, aria on, a click on a segment opens its ``url``, resized with its box).

``look`` is where a chart stands: ``page`` (a report's page: one wide chart that turns its
bars across on a narrow screen, figures on its bars, a legend below) or ``panel`` (a
dashboard's dashlet: a small fixed box, the site's palette so the table's swatches under
it name the slices). The looks differ in layout only; the data, the URLs, the numbers and
the drawing are this module's and charts.js's for both.

Why one module: reports and dashboards drew the same kinds of chart with two copies of
the option building, the number formatting and the drawing script. One chart code for
every picture means a fix (a label that overflows, a locale's numbers) or a new kind lands
everywhere at once.

Helpers charts and their tables share: ``whole_currency`` (an amount in whole units: read
at a glance) and ``date_skeleton`` (a segment's date label by a CLDR skeleton).
"""
from __future__ import annotations

import copy
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from babel import Locale, dates

from core.kernel.errors import N_, Message

# what each kind is called (the report builder's choices; a chart's aria description)
LABELS = {"bar": N_("Bars"), "stacked_bar": N_("Stacked bars"), "line": N_("Line"),
          "pie": N_("Pie"), "donut": N_("Donut"), "funnel": N_("Funnel")}
KINDS = ("bar", "hbar", "stacked_bar", "line", "pie", "donut", "funnel")
LOOKS = ("page", "panel")
ROUND = ("pie", "donut", "funnel")  # the kinds with no axes: a slice or step per segment
# The panel's colours: distinct in hue and lightness (readable printed in grey too); a
# dashlet's table shows them as swatches (dashboards.css .sw-N)
PALETTE = ["#1f6feb", "#f0a202", "#2e7d32", "#8e44ad", "#d1495b", "#00798c", "#6c757d",
           "#edae49", "#30638e", "#a05195"]


@dataclass(frozen=True)
class Segment:
    """One bar, slice or step: its label, its figures (one per series, None: no figure),
    the URL of exactly its records, how many records, and its figure as the table shows it
    (``text``: what the chart's accessible description says). ``parts`` — its levels'
    (key, label) pairs, for a two-level group — lets a stacked bar stack the second level."""

    label: str
    values: tuple
    url: str
    count: int | None = None
    text: str | None = None
    parts: tuple = ()


def option(kind: str, segments: Sequence[Segment], series: Sequence[str], fmt, *,
           currency: str | None = None, look: str = "panel",
           about: tuple[str, str] | None = None) -> dict:
    """The ECharts option of ``segments`` (module docstring). ``about`` — (what is
    charted, by what) — adds the accessible description of every figure."""
    if kind not in KINDS or look not in LOOKS:
        raise ValueError(f"no chart {kind!r} in the look {look!r}")
    chart: dict = {"aria": {"enabled": True}, "tooltip": {"trigger": "item", "confine": True},
                   "crbm": {"kind": kind, "look": look, "currency": currency,
                            "locale": str(fmt.number_locale).replace("_", "-")}}
    if about:
        chart["aria"].update(decal={"show": False}, label={"description": _described(
            fmt, kind, about, segments)})
    if look == "panel":
        chart.update(color=PALETTE, animation=False, textStyle={"fontFamily": "inherit"})
    if kind in ROUND:
        chart.update(_round(kind, segments, series[0], look))
    elif kind == "stacked_bar" and segments and all(len(s.parts) == 2 for s in segments):
        chart.update(_stacked(segments, look))
    else:
        chart.update(_axes(kind, segments, series, look))
    return chart


def script_json(chart: dict) -> str:
    """``chart`` as JSON safe inside <script type="application/json"> (no "</script>" in
    a label can end it)."""
    return json.dumps(chart, ensure_ascii=False).replace("<", "\\u003c") \
        .replace(">", "\\u003e").replace("&", "\\u0026")


def _said(fmt, message: Message) -> str:
    text = fmt.gettext(message.template)
    return text % message.params if message.params else text


def _described(fmt, kind: str, about: tuple[str, str], segments) -> str:
    column, group = about
    values = "; ".join(f"{s.label}: {s.text or '–'}" for s in segments)
    return _said(fmt, Message(N_("Chart of %(column)s by %(group)s (%(chart)s): %(values)s."),
                              chart=fmt.gettext(LABELS.get(kind, LABELS["bar"])),
                              column=column, group=group, values=values))


def _figure(value) -> float | None:
    return None if value is None else float(value)


def _item(segment: Segment, index: int = 0) -> dict:
    return {"value": _figure(segment.values[index]), "name": segment.label, "url": segment.url}


def _round(kind: str, segments, name: str, look: str) -> dict:
    """A pie, donut or funnel: a slice or step per segment with a figure above zero (none
    can be drawn of nothing; the table still lists it). In a panel each keeps its
    segment's colour, the swatch of its table row."""
    items = []
    for i, s in enumerate(segments):
        item = _item(s)
        if item["value"] is None or item["value"] <= 0:
            continue
        if look == "panel":
            item["itemStyle"] = {"color": PALETTE[i % len(PALETTE)]}
        items.append(item)
    series: dict = {"name": name, "type": "funnel" if kind == "funnel" else "pie", "data": items}
    if kind == "funnel":
        series.update(sort="none", gap=2, label={"show": True, "position": "inside"})
        series.update({"minSize": "8%", "left": "5%", "width": "90%"} if look == "page" else
                      {"minSize": "12%", "left": "8%", "width": "84%", "top": 8, "bottom": 40})
    else:
        series.update(avoidLabelOverlap=True,
                      radius=["42%", "70%"] if kind == "donut" else "70%")
        if look == "page":
            series["center"] = ["50%", "45%"]
        else:
            series.update(center=["50%", "46%"], label={"show": False})
    shaped: dict = {"series": [series]}
    if look == "page":
        shaped["legend"] = {"type": "scroll", "bottom": 0}
    return shaped


def _stacked(segments, look: str) -> dict:
    """Bars of the first level, each stacking its second level's groups: a series per
    second-level group (a gap where a bar lacks it)."""
    heads: dict = {}
    subs: dict = {}
    for s in segments:
        heads.setdefault(s.parts[0][0], s.parts[0][1])
        subs.setdefault(s.parts[1][0], s.parts[1][1])
    at = {(s.parts[0][0], s.parts[1][0]): s for s in segments}
    series = [{"name": label, "type": "bar", "stack": "total", "emphasis": {"focus": "series"},
               "data": [({"value": _figure(at[(h, k)].values[0]), "url": at[(h, k)].url}
                         if (h, k) in at else None) for h in heads]}
              for k, label in subs.items()]
    return _frame("stacked_bar", list(heads.values()), series, look, legend=True)


def _axes(kind: str, segments, names: Sequence[str], look: str) -> dict:
    """Bars or a line: a category per segment, a series per figure."""
    series = []
    for i, name in enumerate(names):
        one: dict = {"name": name, "type": "line" if kind == "line" else "bar",
                     "data": [_item(s, i) for s in segments]}
        if kind == "stacked_bar":
            one["stack"] = "total"
        if look == "page":
            one.update({"symbol": "circle", "symbolSize": 9, "showSymbol": True,
                        "lineStyle": {"width": 2.5}, "areaStyle": {"opacity": 0.08}}
                       if kind == "line" else {"barMaxWidth": 56})
        else:
            one.update({"barMaxWidth": 28, "smooth": kind == "line", "symbolSize": 8},
                       **({"areaStyle": {"opacity": .12}} if kind == "line" else
                          {"barGap": "10%"}))
        series.append(one)
    return _frame(kind, [s.label for s in segments], series, look, legend=len(names) > 1)


def _frame(kind: str, categories: list, series: list, look: str, *, legend: bool) -> dict:
    """The axes, grid, legend and tooltip around bars or a line, in ``look``."""
    if look == "page":  # charts.js turns bars across on a narrow screen
        framed = {"xAxis": {"type": "category", "data": categories,
                            "axisTick": {"alignWithLabel": True}},
                  "yAxis": {"type": "value"}, "series": series,
                  "grid": {"left": 8, "right": 16, "top": 16, "bottom": 40 if legend else 8,
                           "containLabel": True},
                  "tooltip": {"trigger": "axis" if kind == "line" else "item",
                              "confine": True}}
        if legend:
            framed["legend"] = {"type": "scroll", "bottom": 0}
        return framed
    category: dict = {"type": "category", "data": categories, "axisTick": {"show": False}}
    value = {"type": "value", "splitNumber": 4, "axisLabel": {"hideOverlap": True},
             "splitLine": {"lineStyle": {"color": "#e5eaf0"}}}
    across = kind == "hbar"
    if across:
        category.update(inverse=True, axisLabel={"width": 110, "overflow": "truncate"})
    else:
        category["axisLabel"] = {"hideOverlap": True}
    framed = {"xAxis": value if across else category, "yAxis": category if across else value,
              "grid": {"left": 8, "right": 24, "top": 36 if legend else 12, "bottom": 8,
                       "containLabel": True},
              "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}, "confine": True},
              "series": series}
    if legend:
        framed["legend"] = {"top": 0, "icon": "roundRect"}
    return framed


# -- the figures and labels charts and their tables share -----------------------------------


def whole_currency(fmt, value, code: str) -> str:
    """An amount in whole units of ``code`` in the reader's number format ("$210,000"):
    a dashboard's figures are read at a glance, and fit a phone's width."""
    pattern = copy.copy(fmt.number_locale.currency_formats["standard"])
    pattern.frac_prec = (0, 0)
    amount = value if isinstance(value, Decimal) else Decimal(str(value or 0))
    return pattern.apply(amount.quantize(Decimal(1), ROUND_HALF_UP), fmt.number_locale,
                         currency=code, currency_digits=False)


@functools.lru_cache(maxsize=256)
def _skeleton_pattern(locale_name: str, skeleton: str):
    skeletons = Locale.parse(locale_name).datetime_skeletons
    key = skeleton if skeleton in skeletons else dates.match_skeleton(skeleton, skeletons)
    return skeletons[key] if key else skeleton


def date_skeleton(locale, skeleton: str, day) -> str:
    """``day`` by a CLDR skeleton ("yMMM": "Dec 2026", "EEEd": "Mon 7") in ``locale``:
    Babel's ``format_skeleton``, its pattern matched once per locale and skeleton (the
    match costs milliseconds, and a chart labels a dozen segments)."""
    return dates.format_date(day, _skeleton_pattern(str(locale), skeleton), locale=locale)
