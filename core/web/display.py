"""How a stored value is shown: one function for every field type, used by all templates.

It is Python rather than a Jinja macro because a list page shows it for every cell: list
views call ``value_html`` in one loop in the view, and a Jinja call per cell costs
several times more. Every value is escaped; ``html`` fields were sanitized when saved.
"""
from __future__ import annotations

from jinja2 import pass_context
from markupsafe import Markup, escape

EMPTY = Markup('<span class="muted">—</span>')
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
