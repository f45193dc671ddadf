"""Line items on record pages: the editor of the edit/create forms and the detail table.

The editor names its inputs ``li-<g>-<field>`` for a group and ``li-<g>-<l>-<field>`` for a
line. The indexes only tie one row's inputs together: the order of groups and lines is the
order their inputs arrive in (a browser sends a form in page order, so moving a row is
moving its nodes), and indexes may have gaps after removals. A hidden ``_line_items``
input says the editor was on the form; without it a save leaves the record's lines alone.

The arithmetic stays in ``lines.py``: the editor sends what was typed, the record
service prices it, and its errors (``line_items.<group>.<line>.<field>``, numbered from 1
in the order sent) are put back on the rows they name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from babel import numbers

from core.kernel.errors import N_, Message, NotFoundError
from core.kernel.records import Query
from plugins.line_items import lines as line_items

FORM_MARKER = "_line_items"
GROUP_FIELDS = ("name", "shipping", "shipping_tax_code_id")
LINE_FIELDS = ("kind", "name", "part_number", "description", "quantity", "unit_price",
               "list_price", "cost", "discount_kind", "discount_value", "tax_code_id",
               "product_id", "source_line_id")
# what a user typed into a line: a row with none of these is an unused blank row
_CONTENT = ("name", "part_number", "description", "unit_price", "list_price", "cost",
            "discount_value", "product_id", "source_line_id")
_KEY = re.compile(r"li-(\d{1,9})-(?:(\d{1,9})-)?([a-z_]+)")
MAX_TAX_CODES = 500  # choices of a tax-code select

LABELS = {
    "kind": N_("Type"), "name": N_("Name"), "part_number": N_("Part number"),
    "description": N_("Description"), "quantity": N_("Quantity"),
    "unit_price": N_("Unit price"), "list_price": N_("List price"), "cost": N_("Cost"),
    "discount_kind": N_("Discount type"), "discount_value": N_("Discount"),
    "tax_code_id": N_("Tax code"), "shipping": N_("Shipping"),
    "shipping_tax_code_id": N_("Shipping tax code"), "lines": N_("Lines"),
}
KIND_LABELS = {"product": N_("Product"), "service": N_("Service"), "comment": N_("Comment")}


CURRENCY_FIELD = line_items.CURRENCY_FIELD  # the document's currency, a field of the form


def enabled(module) -> bool:
    return module.features.get("line_items") is not None


def default_currency(site, module) -> str:
    """A new document's currency: the module's own (``currency`` on its YAML's total
    fields is not offered; a pack may set the field's default), else the site's."""
    f = module.fields.get(CURRENCY_FIELD)
    return (f.spec.get("default") if f else None) or line_items.default_currency(site)


def saved(site, module, record_id: str, user, action: str = "view") -> line_items.LineItems:
    """A record's saved lines (for the editor or a duplicate)."""
    return site.records.feature_data("line_items", module.name, record_id, user, action=action)


# -- reading the form ----------------------------------------------------------------------

def read(form) -> list[dict] | None:
    """The groups a submitted form holds, as ``plugins.line_items.lines.parse`` takes them (every
    value the text typed); None when the form had no line-items editor. Rows left blank
    (an "add line" never filled in) and empty groups are dropped."""
    if form.get(FORM_MARKER) != "1":
        return None
    groups: dict[int, dict] = {}  # in the order their first input arrives
    for key, value in form.multi_items():
        match = _KEY.fullmatch(key)
        if not match or not isinstance(value, str):
            continue
        group = groups.setdefault(int(match[1]), {"lines": {}})
        name = match[3]
        if match[2] is None:
            if name in GROUP_FIELDS:
                group[name] = value
        elif name in LINE_FIELDS:
            group["lines"].setdefault(int(match[2]), {})[name] = value
    out = []
    for group in groups.values():
        lines = [line for line in group.pop("lines").values() if not _blank_line(line)]
        for line in lines:  # the type select always has a value: it counts with a discount
            if not (line.get("discount_value") or "").strip():
                line.pop("discount_kind", None)
        if lines or (group.get("name") or "").strip() or _nonzero(group.get("shipping")):
            out.append({**group, "lines": lines})
    return out


def _blank_line(line: dict) -> bool:
    return not any((line.get(name) or "").strip() for name in _CONTENT)


def _nonzero(text: str | None) -> bool:
    return bool((text or "").strip().strip("0.,"))


def read_into(values: dict, form, module, fields) -> list[dict] | None:
    """Put the form's lines (and the document currency, when the editor showed it) into
    the values for the record service; returns the lines as posted (None: no editor)."""
    if not enabled(module):
        return None
    posted = read(form)
    if posted is None:
        return None
    values["line_items"] = posted
    if _currency_input(fields):
        values[line_items.CURRENCY_FIELD] = str(form.get(line_items.CURRENCY_FIELD, ""))
    return posted


def check(module, posted: list[dict] | None) -> dict:
    """The problems ``parse`` finds in posted lines: shown with the form's own errors when
    those keep the record service from seeing the lines."""
    if posted is None:
        return {}
    negative = bool(module.features["line_items"].get("negative_quantities"))
    return line_items.parse(posted, negative_quantities=negative)[1]


def _currency_input(fields) -> bool:
    """The editor asks for the document currency unless the layout's form already does."""
    return line_items.CURRENCY_FIELD not in {f.name for f in fields}


# -- the editor ----------------------------------------------------------------------------

@dataclass
class Editor:
    """What ``_line_items.html``'s editor draws."""

    groups: list[dict]  # GROUP_FIELDS + "lines" (LINE_FIELDS), as text, + "_errors"
    problems: list[dict]  # for the summary: group, line (1-based or None), field, message
    tax_choices: list[tuple[str, str]] | None  # None: tax codes are typed
    catalog: str | None
    price_url: str | None
    price_context: list[str]  # the form's related fields, sent along when pricing a product
    currency_input: bool
    currency: str
    next_index: int  # the first index the page's script gives a new row
    saved: line_items.LineItems | None = None
    group_defaults: dict = field(default_factory=dict)  # what a group added here starts with
    labels: dict = field(default_factory=lambda: LABELS)
    kinds: dict = field(default_factory=lambda: KIND_LABELS)


def blank(defaults: dict | None = None) -> list[dict]:
    """A new record's editor: one group with one empty line (typing works without script),
    starting with the plugins' group defaults (``group_defaults``)."""
    return [{"name": "", "shipping": "", **(defaults or {}),
             "lines": [{"kind": "product", "quantity": "1"}]}]


def group_defaults(site, module) -> dict:
    """What a new group starts with (``crbm_line_item_defaults``: the shipping tax code
    when the company taxes shipping)."""
    out = {}
    for answer in site.module_hooks.of(module).crbm_line_item_defaults(site=site, module=module):
        out.update(answer or {})
    return {k: v for k, v in out.items() if k in GROUP_FIELDS}


def state_of(items: line_items.LineItems) -> list[dict]:
    """Saved lines as the editor's inputs show them."""
    return [{"name": group.name or "", "shipping": _text(group.shipping or None),
             "shipping_tax_code_id": group.shipping_tax_code_id or "",
             "lines": [{name: _text(getattr(line, name)) for name in LINE_FIELDS}
                       for line in group.lines]}
            for group in items.groups]


def _text(value) -> str:
    if value is None:
        return ""
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def editor(site, module, user, fields, groups: list[dict], errors: dict | None = None,
           currency: str | None = None, saved: line_items.LineItems | None = None) -> Editor:
    feature = module.features["line_items"]
    groups = [{**g, "lines": [dict(line) for line in g.get("lines") or []]} for g in groups]
    problems = _place_errors(groups, errors or {})
    catalog = feature.get("catalog")
    return Editor(
        groups=groups, problems=problems,
        tax_choices=_tax_choices(site, feature, user, groups),
        catalog=catalog, price_url=f"/{catalog}/price" if catalog else None,
        price_context=[f.name for f in fields if f.type.name == "related"],
        currency_input=_currency_input(fields),
        currency=currency or "",
        next_index=max([len(groups)] + [len(g["lines"]) for g in groups]),
        saved=saved, group_defaults=group_defaults(site, module))


def _place_errors(groups: list[dict], errors: dict) -> list[dict]:
    """Attach each ``line_items.G[.L][.field]`` error to its group or line (``_errors``,
    keyed by field, "" for the row itself) and list them all for the summary."""
    problems = []
    for key, message in errors.items():
        parts = key.split(".")
        if parts[0] != "line_items":
            continue
        indexes = [int(p) for p in parts[1:] if p.isdigit()]
        name = parts[-1] if len(parts) > 1 and not parts[-1].isdigit() else ""
        group_no = indexes[0] if indexes else None
        line_no = indexes[1] if len(indexes) > 1 else None
        problems.append({"where": _where(group_no, line_no), "label": LABELS.get(name),
                         "anchor": _anchor(group_no, line_no, name), "message": message,
                         "order": (group_no or 0, line_no or 0)})
        if group_no is None or not 0 < group_no <= len(groups):
            continue
        target = groups[group_no - 1]
        if line_no is not None:
            if not 0 < line_no <= len(target["lines"]):
                continue
            target = target["lines"][line_no - 1]
        target.setdefault("_errors", {})[name] = message
    problems.sort(key=lambda p: p["order"])
    return problems


def _where(group_no: int | None, line_no: int | None) -> Message:
    """Where a problem is, as the summary says it (rows as the user counts them)."""
    if line_no is not None:
        return Message(N_("Group %(group)s, line %(line)s"), group=group_no, line=line_no)
    if group_no is not None:
        return Message(N_("Group %(group)s"), group=group_no)
    return Message(N_("Line items"))


def _anchor(group_no: int | None, line_no: int | None, name: str) -> str:
    """The id of the input a problem is about (the editor numbers rows from 0 as drawn);
    a problem with a whole row points at its name."""
    name = name if name in GROUP_FIELDS + LINE_FIELDS else "name"
    if group_no is None:
        return "line-items"
    if line_no is None:
        return f"li-{group_no - 1}-{name}"
    return f"li-{group_no - 1}-{line_no - 1}-{name}"


def _tax_choices(site, feature, user, groups) -> list[tuple[str, str]] | None:
    """(id, name) of the tax codes the user may pick; codes already on the lines stay
    offered (by id) even when the user cannot list them."""
    target = feature.get("tax_codes")
    if not target:
        return None
    choices = dict(tax_code_names(site, target, user))
    used = {g.get("shipping_tax_code_id") for g in groups} | \
        {line.get("tax_code_id") for g in groups for line in g["lines"]}
    for code in sorted(c for c in used if c and c not in choices):
        choices[code] = code
    return list(choices.items())


def tax_code_names(site, target: str, user, ids=None) -> list[tuple[str, str]]:
    other = site.registry.module(target)
    name = other.name_field
    query = Query(fields=[name] if name else [], sort=name, limit=MAX_TAX_CODES)
    if ids is not None:
        if not ids:
            return []
        query.filters = [("id", "in", sorted(ids))]
    return [(r["id"], (r.get(name) if name else None) or r["id"])
            for r in site.records.list(target, user, query)]


# -- the detail table ----------------------------------------------------------------------

@dataclass
class Table:
    """What ``_line_items.html``'s read-only table draws."""

    items: line_items.LineItems
    tax_names: dict[str, str]
    show_list_prices: bool
    fmt: object

    def money(self, value) -> str:
        return self.fmt.currency(value, self.items.currency)

    def price(self, value) -> str:
        """A unit price: at least the currency's digits, and every digit it has beyond."""
        if value is None:
            return ""
        return numbers.format_currency(value, self.items.currency, locale=self.fmt.number_locale,
                                       decimal_quantization=False)

    def discount(self, line) -> str:
        if not line.discount:
            return ""
        text = self.money(line.discount)
        if line.discount_kind == "percent" and line.discount_value:
            text += f" ({self.fmt.percent(line.discount_value)})"
        return text

    def tax_label(self, tax) -> str:
        """A tax line's name as printed documents give it ("GST 5%", rate shown once)."""
        from core.apps.documents.printing import (
            tax_label,  # printing reads records; keep this light
        )

        return tax_label(self.fmt, tax.name, tax.percent)

    def tax_code(self, code: str | None) -> str:
        return self.tax_names.get(code, code) if code else ""


def table(site, module, record: dict, user, fmt) -> Table | None:
    """The record's lines for its detail page (None when it has none)."""
    try:
        items = site.records.feature_data("line_items", module.name, record["id"], user)
    except NotFoundError:
        return None
    if not items.groups:
        return None
    target = module.features["line_items"].get("tax_codes")
    names = {}
    if target:
        codes = line_items.tax_codes_of(items.groups)
        names = dict(tax_code_names(site, target, user, codes))
    # a document may carry a "show list prices" choice (a checkbox field of that name)
    return Table(items, names, bool(record.get("show_list_prices")), fmt)

