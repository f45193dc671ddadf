"""The line items plugin: groups of priced lines on a record, as the module feature
``line_items`` (``crbm_module_features``).

A module opts in with ``features: {line_items: {catalog, tax_codes, negative_quantities}}``
in its YAML, and its plugin ``requires: line_items``. The feature adds the total fields
and the two tables, prices the lines a write gives (``lines.py``: the money rule), stores
and reads them, and gives the API its schemas (``api.py``), the web its editor and detail
table (``web.py``, ``templates/_line_items.html``) and printed documents their
``line_items`` (``documents.py``). Tax rates, currency digits and a new group's defaults
come from the hooks ``crbm_tax_rates``, ``crbm_currency_digits`` and
``crbm_line_item_defaults`` (the pricing plugin answers them).
"""
from __future__ import annotations

import sqlalchemy as sa

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import ModuleFeature
from plugins.line_items import api, documents, web
from plugins.line_items.lines import (
    CURRENCY_FIELD,
    TOTAL_FIELDS,
    LineItems,
    compute,
    default_currency,
    digits,
    parse,
    read,
    tables,
    tax_codes_of,
    unknown_tax_codes,
    write,
)

__version__ = "0.1.0"


class LineItemsFeature(ModuleFeature):
    """``features.line_items``: the total fields, the two tables, and the lines a write
    gives a record (its value ``line_items``) parsed, priced and stored."""

    name = "line_items"
    label = N_("line items and totals")

    def fields(self, options: dict, types: dict) -> dict[str, dict]:
        out = {}
        for name, label in TOTAL_FIELDS.items():
            spec = {"type": "currency", "label": label, "computed_by": "line_items"}
            for sub_name, sub_spec in types["currency"].expand(name, spec):
                if sub_name != CURRENCY_FIELD:  # the document's currency is the user's
                    sub_spec = {**sub_spec, "computed_by": "line_items"}
                else:  # a new document's is the site's default currency (prepare)
                    sub_spec = {k: v for k, v in sub_spec.items() if k != "default"}
                out[sub_name] = sub_spec
        return out

    def check(self, module, options: dict, registry) -> list[tuple[str, str]]:
        return [(key, f"module {options[key]!r} does not exist")
                for key in ("catalog", "tax_codes")
                if options.get(key) and options[key] not in registry.modules]

    def tables(self, module, metadata: sa.MetaData) -> None:
        tables(module.table, metadata)

    def prepare(self, site, conn, module, given: list, normalized: list,
                currents: list[dict] | None) -> list:
        """Parse the lines each row gives, price them with one tax-rate lookup for the lot,
        and put the totals into the records. A row that gives no lines keeps its stored
        ones; they are priced again only when the document's currency changes."""
        options = module.features.get("line_items") or {}
        negative = bool(options.get("negative_quantities"))
        groups_of: list = [None] * len(given)
        for index, data in enumerate(given):
            record, row_errors = normalized[index]
            current = currents[index] if currents else None
            if current is None and not record.get(CURRENCY_FIELD):
                record[CURRENCY_FIELD] = default_currency(site)
            code = record.get(CURRENCY_FIELD) or default_currency(site)
            if data is None and current is not None and code != current.get(CURRENCY_FIELD):
                data = self.read(site, conn, module, current).as_input()
            if data is None:
                if current is None:  # a new record without lines: all totals are zero
                    record.update(compute([], {}, code, 0).total_values())
                continue
            groups, problems = parse(data, negative_quantities=negative)
            row_errors.update(problems)
            groups_of[index] = groups
        codes = set().union(*(tax_codes_of(g) for g in groups_of if g))
        rates = (site.hook.crbm_tax_rates(site=site, tax_code_ids=codes, connection=conn)
                 or {}) if codes else {}
        documents = []
        for index, groups in enumerate(groups_of):
            record, row_errors = normalized[index]
            if groups is None:
                documents.append(None)
                continue
            row_errors.update(unknown_tax_codes(groups, rates))
            code = record.get(CURRENCY_FIELD) or default_currency(site)
            items = compute(groups, rates, code, digits(site, code))
            current = currents[index] if currents else None
            if current is not None and not row_errors and \
                    code == current.get(CURRENCY_FIELD) and \
                    items.as_input() == self.read(site, conn, module, current).as_input():
                documents.append(None)  # the same lines posted again: nothing to write
                continue
            record.update(items.total_values())
            documents.append(items)
        return documents

    def write(self, site, conn, module, record_id: str, data: LineItems) -> None:
        write(conn, site.records.tables, module.table, record_id, data)

    def read(self, site, conn, module, record: dict) -> LineItems:
        code = record.get(CURRENCY_FIELD) or default_currency(site)
        return read(conn, site.records.tables, module.table, record["id"], code,
                    digits(site, code))

    def copy(self, data: LineItems):
        return data.as_copy()

    # -- API, web, documents ---------------------------------------------------------------
    web = web  # the editor and detail table (core/web/views.py asks through the feature)

    def api_value_schema(self) -> dict:
        return {**api.LINE_ITEMS_SCHEMA, "description": "groups of lines; the totals follow"}

    def api_input_schema(self) -> dict:
        return api.LINE_ITEMS_INPUT

    def api_component_schemas(self) -> dict[str, dict]:
        return {"LineItems": api.LINE_ITEMS_OUTPUT, "LineItemsInput": api.LINE_ITEMS_INPUT}

    def to_json(self, data: LineItems) -> dict:
        return api.line_items_json(data)

    def from_json(self, body: dict):
        return body["groups"]

    def document_context(self, site, fmt, module, record: dict, user) -> dict:
        return documents.context(site, fmt, module, record, user)


@hookimpl
def crbm_module_features(site):
    return [LineItemsFeature()]
