"""How a stored value is shown: one function for every field type, used by all templates.

The field's type formats the value (``FieldType.html``); this module adds the blank cell
and the list rows around it.

It is Python rather than a Jinja macro because a list page shows it for every cell: list
views call ``value_html`` in one loop in the view, and a Jinja call per cell costs
several times more. Every value is escaped; ``html`` fields were sanitized when saved.

A dropdown value whose option has a ``color`` (metadata/schema/dropdowns.json: a name from
a fixed palette) is shown as a badge, ``<span class="badge badge-option badge-<color>">``
around its label, wherever a value is shown (lists, detail, subpanels, board cards): a
status or a stage is found at a glance. The stylesheet gives each palette name a light tint
and dark text (contrast at least 4.5:1); the label is always there, so the colour is never
the only sign. Values of options without a colour are shown as before.
"""
from __future__ import annotations

import functools

from jinja2 import pass_context
from markupsafe import Markup, escape

EMPTY = Markup('<span class="muted">—</span>')
EMPTY_CLASS = ' class="empty"'  # phones hide empty cells of a row card


@pass_context
def show(context, module, f, record: dict, labels: dict) -> Markup:
    """The template function: ``{{ show(module, field, record, labels) }}``."""
    return value_html(context["fmt"], module, f, record, labels)


def value_html(fmt, module, f, record: dict, labels: dict) -> Markup:
    value = record.get(f.name)
    if value is None or value == "" or value == []:
        return EMPTY
    return _html_of(module, f)(fmt, module, f, record, labels)


def option_colors(module, f) -> dict[str, str]:
    """Stored value -> palette colour of the options of ``f``'s list that have one (empty
    for a field without a list, or a list without colours)."""
    options = getattr(module, "dropdowns", {}).get(f.spec.get("options"), ())
    return {o["value"]: o["color"] for o in options if o.get("color")}


def _html_of(module, f):
    """``f``'s cell builder: its type's (core/kernel/fields.py: ``FieldType.html``), with
    badges around the values whose option has a colour."""
    colors = option_colors(module, f) if f.type.has_options else None
    return functools.partial(_badges, f.type.html, colors) if colors else f.type.html


def _badges(html, colors: dict[str, str], fmt, module, f, record: dict, labels: dict) -> Markup:
    value = record[f.name]
    if isinstance(value, list):  # a multiselect: a badge per value
        known = labels.get(f.name, {})
        return Markup(" ").join(badge(colors.get(v), known.get(v, v)) for v in value)
    color = colors.get(value)
    return badge(color, html(fmt, module, f, record, labels)) if color else \
        html(fmt, module, f, record, labels)


def badge(color: str | None, label) -> Markup:
    """A value's badge (``label`` is escaped unless it is markup already); without a colour,
    a neutral one."""
    tint = f" badge-{color}" if color else ""
    return Markup(f'<span class="badge badge-option{tint}">{escape(label)}</span>')


def field_stylesheets(module) -> list[str]:
    """The stylesheets a module's field types ship (``FieldType.stylesheet``, a plugin's
    ``static/`` file), for the head of its pages."""
    return sorted({f.type.stylesheet for f in module.fields.values() if f.type.stylesheet})


def option_tags(choices: list[tuple[str, str]], selected=None) -> Markup:
    """``<option>`` elements for a select, built in one Python loop (lists repeat them for
    every filter and mass-update field, and a template loop costs far more), and kept: a
    list page shows the same dropdowns, in the same language, on every visit. Only plain
    text is kept (a value equal to another but shown differently — 1 and True, a Markup
    label — would find the other's tags)."""
    plain = isinstance(choices, list | tuple) and len(choices) <= CACHED_CHOICES \
        and (selected is None or type(selected) is str) \
        and all(type(value) is str and type(label) is str for value, label in choices)
    return _cached_options(tuple(choices), selected) if plain else _options(choices, selected)


CACHED_CHOICES = 200  # longer ones (a picker of every user) are built each time


def _options(choices, selected) -> Markup:
    chosen = escape(selected) if selected is not None else None
    parts = []
    for value, label in choices:
        value = escape(value)
        mark = " selected" if value == chosen else ""
        parts.append(f'<option value="{value}"{mark}>{escape(label)}</option>')
    return Markup("".join(parts))


_cached_options = functools.lru_cache(maxsize=256)(_options)


def list_rows(module, fields, rows: list[dict], labels: dict, fmt, select_label: str) -> Markup:
    """The ``<tr>`` rows of a list page: a checkbox, the first column linked to the record,
    then one cell per column. Built here in one loop; a list page's rows are its hot path,
    so what every row repeats (the cells' opening tags, a blank cell) is made once."""
    if not rows:
        return Markup("")
    select, name = escape(select_label), escape(module.name)
    first, rest = fields[0], fields[1:]
    head = f'<td data-label="{escape(first.label)}">'
    cells = [(f, f.name, _html_of(module, f), f'<td data-label="{escape(f.label)}"',
              f'<td data-label="{escape(f.label)}"{EMPTY_CLASS}>{EMPTY}</td>') for f in rest]
    out = []
    for row in rows:
        rid = escape(row["id"])
        tds = []
        for f, field, html, td, blank in cells:  # value_html, unrolled
            value = row.get(field)
            cell = EMPTY if value is None or value == "" or value == [] else \
                html(fmt, module, f, row, labels)
            tds.append(blank if cell is EMPTY else f"{td}>{cell}</td>")
        out.append(f'<tr><td class="check"><input type="checkbox" name="ids" value="{rid}" '
                   f'aria-label="{select}"></td>{head}<a href="/m/{name}/{rid}">'
                   f'{value_html(fmt, module, first, row, labels)}</a></td>{"".join(tds)}</tr>')
    return Markup("\n".join(out))
