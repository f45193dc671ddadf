"""Line items in the REST API: the JSON schema of a record body's ``line_items`` and of
``PUT .../line_items``, and the JSON of a record's groups, lines and totals (money as
decimal strings). ``plugin.py`` hands them to the API through the feature.
"""
from __future__ import annotations

from decimal import Decimal

from plugins.line_items import lines as line_items


def decimal_text(value) -> str | None:
    """1234.500000 -> "1234.5": plain notation whatever the column's scale (as the API's
    own decimals)."""
    if value is None:
        return None
    if isinstance(value, float):
        value = Decimal(repr(value))
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def to_json(value):
    return decimal_text(value) if isinstance(value, Decimal | float) else value


NUMBER = {"type": ["string", "number", "null"], "pattern": r"^-?[0-9]{1,18}(\.[0-9]{1,12})?$",
          "exclusiveMinimum": -(10 ** 18), "exclusiveMaximum": 10 ** 18}
ID = {"type": ["string", "null"], "maxLength": 36}
LINE_INPUT = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "id": ID, "kind": {"enum": [*line_items.KINDS, None]},
        "name": {"type": ["string", "null"], "maxLength": 255},
        "quantity": NUMBER, "unit_price": NUMBER, "list_price": NUMBER, "cost": NUMBER,
        "discount_kind": {"enum": [*line_items.DISCOUNT_KINDS, None]},
        "discount_value": NUMBER, "tax_code_id": ID, "product_id": ID,
        "part_number": {"type": ["string", "null"], "maxLength": 100},
        "description": {"type": ["string", "null"], "maxLength": 10_000},
        "source_line_id": ID,
    },
}
GROUP_INPUT = {
    "type": "object", "additionalProperties": False, "required": ["lines"],
    "properties": {"id": ID, "name": {"type": ["string", "null"], "maxLength": 255},
                   "shipping": NUMBER, "shipping_tax_code_id": ID,
                   "lines": {"type": "array", "items": LINE_INPUT,
                             "maxItems": line_items.MAX_LINES}},
}
LINE_ITEMS_SCHEMA = {"type": "array", "items": GROUP_INPUT, "maxItems": 500}

MONEY = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
TAXES = {"type": "array", "items": {
    "type": "object", "required": ["name", "percent", "amount"],
    "properties": {"name": {"type": "string"}, "percent": MONEY, "amount": MONEY,
                   "compound": {"type": "boolean"}}}}
LINE_ITEMS_OUTPUT = {
    "type": "object", "required": ["currency", "groups", "totals"],
    "properties": {
        "currency": {"type": "string"},
        "groups": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": ["string", "null"]}, "name": {"type": ["string", "null"]},
            "shipping": MONEY, "shipping_tax_code_id": {"type": ["string", "null"]},
            "subtotal": MONEY, "discount": MONEY, "net": MONEY, "taxes": TAXES, "tax": MONEY,
            "total": MONEY,
            "lines": {"type": "array", "items": {"type": "object", "properties": {
                **{k: {"type": ["string", "null"]} for k in line_items.INPUT_FIELDS},
                **{k: {"type": ["string", "null"]} for k in ("id",)},
                "ext_price": MONEY, "discount": MONEY, "net_price": MONEY, "taxes": TAXES,
                "tax": MONEY}}}}}},
        "totals": {"type": "object", "properties": {
            "subtotal": MONEY, "discount": MONEY, "net": MONEY, "shipping": MONEY,
            "taxes": TAXES, "tax": MONEY, "total": MONEY}},
    },
}


def line_items_json(items: line_items.LineItems) -> dict:
    """A record's groups and lines with every figure, money as decimal strings."""
    def taxes(amounts):
        return [{"name": t.name, "percent": decimal_text(t.percent),
                 "amount": decimal_text(t.amount), "compound": t.compound} for t in amounts]

    def line(li: line_items.Line) -> dict:
        out = {k: to_json(getattr(li, k)) for k in line_items.INPUT_FIELDS}
        return out | {"id": li.id, "ext_price": decimal_text(li.ext_price),
                      "discount": decimal_text(li.discount),
                      "net_price": decimal_text(li.net_price), "taxes": taxes(li.taxes),
                      "tax": decimal_text(li.tax)}

    t = items.totals
    return {"currency": items.currency,
            "groups": [{"id": g.id, "name": g.name, "shipping": decimal_text(g.shipping),
                        "shipping_tax_code_id": g.shipping_tax_code_id,
                        "subtotal": decimal_text(g.subtotal), "discount": decimal_text(g.discount),
                        "net": decimal_text(g.net), "taxes": taxes(g.taxes),
                        "tax": decimal_text(g.tax), "total": decimal_text(g.total),
                        "lines": [line(li) for li in g.lines]} for g in items.groups],
            "totals": {"subtotal": decimal_text(t.subtotal), "discount": decimal_text(t.discount),
                       "net": decimal_text(t.net), "shipping": decimal_text(t.shipping),
                       "taxes": taxes(t.taxes), "tax": decimal_text(t.tax),
                       "total": decimal_text(t.total)}}


LINE_ITEMS_INPUT = {"type": "object", "additionalProperties": False, "required": ["groups"],
                    "properties": {"groups": LINE_ITEMS_SCHEMA}}
