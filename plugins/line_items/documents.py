"""Line items in printed documents: what a PDF form reads under ``line_items``
(docs/pdf_forms.md) — every figure formatted in the document's currency, tax codes by name.
"""
from __future__ import annotations

from core.apps.documents.printing import tax_label
from core.kernel.records import Query
from core.kernel.registry import ModuleDef
from plugins.line_items import lines as li


def context(site, fmt, module: ModuleDef, record: dict, user) -> dict:
    """``line_items`` of a record's document context."""
    items = site.records.feature_data("line_items", module.name, record["id"], user)
    out = items_context(fmt, items, _tax_code_names(site, module, items, user))
    out["show_list_prices"] = bool(record.get("show_list_prices"))
    return out


def _money(fmt, value, code: str) -> str:
    return fmt.currency(value, code) if value is not None else ""


def items_context(fmt, items: li.LineItems, tax_code_names: dict[str, str]) -> dict:
    code = items.currency
    known: dict[str, str] = {}  # a list price is most often the unit price, a net the amount

    def money(value):
        if value is None:
            return ""
        key = str(value)
        found = known.get(key)
        if found is None:
            found = known[key] = _money(fmt, value, code)
        return found

    def taxes(rows):
        return [{"name": t.name, "percent": fmt.percent(t.percent),
                 "label": tax_label(fmt, t.name, t.percent), "amount": money(t.amount)}
                for t in rows]

    def less(value):  # a discount is taken off: printed negative, "-$30.00"
        return money(-value) if value else ""

    groups = []
    for group in items.groups:
        lines = []
        for line in group.lines:
            priced = line.kind != "comment"
            discount = ""
            if priced and line.discount:
                discount = (fmt.percent(line.discount_value) if line.discount_kind == "percent"
                            else money(line.discount))
            lines.append({
                "kind": line.kind, "name": line.name or "", "part_number": line.part_number or "",
                "description": line.description or "",
                "quantity": fmt.number(line.quantity) if priced else "",
                "unit_price": money(line.unit_price) if priced else "",
                "list_price": money(line.list_price) if priced else "",
                "discount": discount,
                "ext_price": money(line.ext_price) if priced else "",
                "net_price": money(line.net_price) if priced else "",
                "tax_code": tax_code_names.get(line.tax_code_id, "") if priced else ""})
        groups.append({"name": group.name or "", "lines": lines, "subtotal": money(group.subtotal),
                       "discount": less(group.discount),
                       "shipping": money(group.shipping) if group.shipping else "",
                       "taxes": taxes(group.taxes), "total": money(group.total)})
    t = items.totals
    return {"groups": groups, "currency": code,
            "totals": {"subtotal": money(t.subtotal),
                       "discount": less(t.discount),
                       "net": money(t.net), "shipping": money(t.shipping) if t.shipping else "",
                       "taxes": taxes(t.taxes), "tax": money(t.tax), "total": money(t.total)},
            "show_list_prices": False, "show_pretax_totals": False}


def _tax_code_names(site, module: ModuleDef, items: li.LineItems, user) -> dict[str, str]:
    codes_module = module.features["line_items"].get("tax_codes")
    codes = {line.tax_code_id for line in items.lines if line.tax_code_id}
    if not codes_module or not codes:
        return {}
    target = site.registry.module(codes_module)
    name = target.name_field or "id"
    rows = site.records.list(codes_module, user, _query(codes, name))
    return {row["id"]: str(row.get(name) or "") for row in rows}


def _query(ids, name_field):
    return Query(filters=[("id", "in", sorted(ids))], fields=["id", name_field], limit=None)
