"""How a stored value is shown: one function for every field type, used by all templates.

It is Python rather than a Jinja macro because a list page shows it for every cell: list
views call ``value_html`` in one loop in the view, and a Jinja call per cell costs
several times more. Every value is escaped; ``html`` fields were sanitized when saved.
"""
from __future__ import annotations

from jinja2 import pass_context
from markupsafe import Markup, escape

EMPTY = Markup('<span class="muted">—</span>')
EMPTY_CLASS = ' class="empty"'  # phones hide empty cells of a row card
PLAIN = frozenset({"text", "name", "item_number", "id", "currency_code"})


@pass_context
def show(context, module, f, record: dict, labels: dict) -> Markup:
    """The template function: ``{{ show(module, field, record, labels) }}``."""
    return value_html(context["fmt"], module, f, record, labels)


def value_html(fmt, module, f, record: dict, labels: dict) -> Markup:
    value = record.get(f.name)
    if value is None or value == "" or value == []:
        return EMPTY
    kind = f.type.name
    if kind in PLAIN:  # the commonest cells: nothing to format
        return escape(value)
    if kind in ("dropdown", "status"):
        return escape(labels.get(f.name, {}).get(value, value))
    if kind == "related":
        target = f.spec.get("module") or record.get(f.spec["type_field"])
        if f"{f.name}__label" in record and record[f"{f.name}__label"] is None:
            # the record exists but the reader may not see it: neither name nor link
            return Markup('<span class="muted">{}</span>').format(fmt.gettext("(no access)"))
        if record.get(f"{f.name}__deleted"):  # they may see it, but it is gone: no link
            return Markup('<span class="muted">{}</span>').format(
                fmt.gettext("%(name)s (deleted)") % {"name": record[f"{f.name}__label"]})
        label = record.get(f"{f.name}__label") or value
        return Markup(f'<a href="/m/{escape(target)}/{escape(value)}">{escape(label)}</a>')
    if kind == "user":
        return escape(record.get(f"{f.name}__label") or value)
    if kind == "url":  # only http(s)/ftp get stored (fields.UrlType)
        text = escape(value)
        return Markup(f'<a href="{text}" rel="noopener noreferrer" target="_blank">{text}</a>')
    if kind == "email":
        text = escape(value)
        return Markup(f'<a href="mailto:{text}">{text}</a>')
    if kind == "phone":
        text = escape(value)
        return Markup(f'<a href="tel:{text}">{text}</a>')
    if kind == "html":
        return Markup('<div class="html-value">{}</div>').format(Markup(value))
    if kind == "textarea":
        return Markup("<br>").join(escape(line) for line in value.splitlines())
    if kind in ("image", "file"):
        url = f"/m/{module.name}/{record['id']}/file/{f.name}"
        if kind == "image":
            return Markup('<img class="thumb" src="{}" alt="{}">').format(url, f.label)
        return Markup('<a href="{}">{}</a>').format(url, value.rsplit("/", 1)[-1])
    return escape(fmt.field(f, value, record, options=labels.get(f.name)))


def option_tags(choices: list[tuple[str, str]], selected=None) -> Markup:
    """``<option>`` elements for a select, built in one Python loop (lists repeat them for
    every filter and mass-update field, and a template loop costs far more)."""
    chosen = escape(selected) if selected is not None else None
    parts = []
    for value, label in choices:
        value = escape(value)
        mark = " selected" if value == chosen else ""
        parts.append(f'<option value="{value}"{mark}>{escape(label)}</option>')
    return Markup("".join(parts))


def list_rows(module, fields, rows: list[dict], labels: dict, fmt, select_label: str) -> Markup:
    """The ``<tr>`` rows of a list page: a checkbox, the first column linked to the record,
    then one cell per column. Built here in one loop; a list page's rows are its hot path."""
    heads = [escape(f.label) for f in fields]
    select = escape(select_label)
    out = []
    for row in rows:
        rid = escape(row["id"])
        cells = [value_html(fmt, module, f, row, labels) for f in fields]
        tds = "".join(f'<td data-label="{head}"{EMPTY_CLASS if cell is EMPTY else ""}>{cell}</td>'
                      for head, cell in zip(heads[1:], cells[1:]))
        out.append(f'<tr><td class="check"><input type="checkbox" name="ids" value="{rid}" '
                   f'aria-label="{select}"></td><td data-label="{heads[0]}"><a href="/m/'
                   f'{escape(module.name)}/{rid}">{cells[0]}</a></td>{tds}</tr>')
    return Markup("\n".join(out))
