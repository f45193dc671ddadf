"""Line items: the money rule against hand-computed totals, and lines saved with records.

The figures in the comments were worked out by hand (half up at each step, then summed);
banker's rounding would give different cents in three places, which these tests catch.
"""
from decimal import Decimal

import pytest
import sqlalchemy as sa

from core.kernel.errors import ValidationError
from core.kernel.site import Site, create_site
from core.kernel.users import create_user
from plugins.line_items import lines as line_items
from plugins.line_items.lines import Group, Line, TaxRate, compute
from tests.plugins.kitchen_sink import plugin as kitchen_sink
from tests.plugins.ledger import plugin as ledger

D = Decimal
T3 = ledger.TAX_CODES["T3"]
RATES = dict(ledger.TAX_CODES)


def two_groups() -> list[dict]:
    return [
        {"name": "Hardware", "shipping": "10.00", "shipping_tax_code_id": "F5", "lines": [
            # 3 x 19.99 = 59.97; -10% = 5.997 -> 6.00; net 53.97
            {"kind": "product", "name": "Widget", "quantity": "3", "unit_price": "19.99",
             "cost": "12.00", "discount_kind": "percent", "discount_value": "10",
             "tax_code_id": "T3"},
            # 100.00 - 15.50 = 84.50
            {"kind": "product", "name": "Gizmo", "quantity": "1", "unit_price": "100.00",
             "cost": "70.00", "discount_kind": "amount", "discount_value": "15.50",
             "tax_code_id": "T3"},
        ]},
        {"name": "Services", "lines": [
            {"kind": "comment", "description": "Installed on site"},
            {"kind": "service", "name": "Installation", "quantity": "2.5",
             "unit_price": "40.00"},
        ]},
    ]


def parsed(data) -> list[Group]:
    groups, errors = line_items.parse(data)
    assert errors == {}
    return groups


def test_three_rates_compounding_discounts_and_half_up_rounding():
    items = compute(parsed(two_groups()), RATES, "USD", 2)
    widget, gizmo = items.groups[0].lines
    assert (widget.ext_price, widget.discount, widget.net_price) == (D("59.97"), D("6.00"),
                                                                      D("53.97"))
    # 5% of 53.97 = 2.6985 -> 2.70; 7% = 3.7779 -> 3.78;
    # 10% compound of 53.97 + 2.70 + 3.78 = 60.45 -> 6.045 -> 6.05 (half even: 6.04)
    assert [t.amount for t in widget.taxes] == [D("2.70"), D("3.78"), D("6.05")]
    # 5% of 84.50 = 4.225 -> 4.23 (half even: 4.22); 7% = 5.915 -> 5.92;
    # 10% of 84.50 + 4.23 + 5.92 = 94.65 -> 9.465 -> 9.47 (half even: 9.46)
    assert [t.amount for t in gizmo.taxes] == [D("4.23"), D("5.92"), D("9.47")]
    hardware, services = items.groups
    assert hardware.subtotal == D("159.97") and hardware.discount == D("21.50")
    assert hardware.net == D("138.47") and hardware.shipping == D("10.00")
    # shipping taxed at 5%: 0.50, counted in the federal rate's total
    assert [(t.name, t.amount) for t in hardware.taxes] == [
        ("Federal 5%", D("7.43")), ("State 7%", D("9.70")), ("Luxury 10%", D("15.52"))]
    assert hardware.total == D("181.12")
    assert services.subtotal == services.total == D("100.00")
    totals = items.totals
    assert (totals.subtotal, totals.discount, totals.net, totals.shipping) == (
        D("259.97"), D("21.50"), D("238.47"), D("10.00"))
    assert totals.tax == D("32.65") and totals.total == D("281.12")
    # cost 3 x 12 + 70 = 106; margin (238.47 - 106) / 238.47 = 55.55 %
    assert totals.cost == D("106.00") and totals.margin_percent == D("55.55")


def test_a_currency_with_no_digits():
    groups = parsed([{"lines": [
        # 3 x 333 = 999; -10% = 99.9 -> 100; net 899; 8% = 71.92 -> 72
        {"name": "Tea set", "quantity": "3", "unit_price": "333", "discount_value": "10",
         "tax_code_id": "JP8"},
        # 0.5 yen rounds up to 1
        {"name": "Sticker", "quantity": "1", "unit_price": "0.5"}]}])
    items = compute(groups, RATES, "JPY", line_items.currency_digits("JPY"))
    assert items.digits == 0
    first, second = items.groups[0].lines
    assert (first.ext_price, first.discount, first.net_price) == (D(999), D(100), D(899))
    assert first.taxes[0].amount == D(72) and second.ext_price == D(1)
    assert items.totals.total == D(972)  # 899 + 72 + 1


def test_a_currency_with_three_digits():
    groups = parsed([{"lines": [
        # 2.0005 -> 2.001 (half even: 2.000); 10% = 0.2001 -> 0.200
        {"name": "Dates", "quantity": "1", "unit_price": "2.0005", "tax_code_id": "BH10"}]}])
    items = compute(groups, RATES, "BHD", line_items.currency_digits("BHD"))
    assert items.digits == 3
    assert items.totals.net == D("2.001") and items.totals.tax == D("0.200")
    assert items.totals.total == D("2.201")


def test_bad_lines_are_all_reported_with_where_they_are():
    _, errors = line_items.parse([
        {"lines": [{"name": "A", "quantity": "-1", "unit_price": "5"},
                   {"name": "", "quantity": "x"},
                   {"name": "C", "unit_price": "10", "discount_kind": "percent",
                    "discount_value": "150"},
                   {"name": "D", "unit_price": "10", "discount_kind": "amount",
                    "discount_value": "11"},
                   {"kind": "gift", "name": "E"}]},
        "not a group"])
    assert {k: str(v) for k, v in errors.items()} == {
        "line_items.1.1.quantity": "must not be negative",
        "line_items.1.2.name": "is required",
        "line_items.1.2.quantity": "'x' is not a number",
        "line_items.1.3.discount_value": "a percentage is at most 100",
        "line_items.1.4.discount_value": "the discount is more than the line's price",
        "line_items.1.5.kind": "'gift' is not one of product, service, comment",
        "line_items.2": "must be a group (a mapping with lines)",
    }
    _, errors = line_items.parse([{"lines": [{"name": "Refund", "quantity": "-1"}]}],
                                 negative_quantities=True)
    assert errors == {}


def test_money_never_goes_through_floats():
    groups = parsed([{"lines": [{"name": "x", "quantity": 3, "unit_price": 0.1}]}])
    assert compute(groups, {}, "USD", 2).totals.total == D("0.30")
    assert isinstance(Line().quantity, Decimal)


# -- saved with records --------------------------------------------------------------------

@pytest.fixture
def books(tmp_path, database_url):
    folder = create_site(tmp_path / "site", database_url)
    site = Site(folder, extra_plugins=[kitchen_sink, ledger])
    site.sync_schema()
    yield site, create_user(site, "admin", "correct horse battery", is_admin=True)
    site.close()


def test_lines_and_totals_are_saved_with_the_record(books):
    site, admin = books
    record = site.records.create("ledgers", {"name": "Order 1", "line_items": two_groups()},
                                 admin)
    assert record["amount"] == D("281.12") and record["tax_total"] == D("32.65")
    assert record["subtotal"] == D("259.97") and record["discount_total"] == D("21.50")
    assert record["shipping_total"] == D("10.00")
    assert {record[f"{name}_currency"] for name in line_items.TOTAL_FIELDS} == {"USD"}
    items = site.records.feature_data("line_items", "ledgers", record["id"], admin)
    assert [g.name for g in items.groups] == ["Hardware", "Services"]
    assert [line.name for line in items.lines] == ["Widget", "Gizmo", None, "Installation"]
    assert items.lines[2].description == "Installed on site"
    assert items.totals.total == D("281.12") and items.lines[0].quantity == D(3)
    # the rates are kept with the lines: read back, the taxes are as they were charged
    assert [(t.name, t.amount) for t in items.totals.taxes] == [
        ("Federal 5%", D("7.43")), ("State 7%", D("9.70")), ("Luxury 10%", D("15.52"))]
    # copying the lines into another record gives the same totals
    copy = site.records.create("ledgers", {"name": "Copy", "line_items": items.as_input()},
                               admin)
    assert copy["amount"] == D("281.12")


def test_changing_lines_updates_totals_and_reposting_them_changes_nothing(books):
    site, admin = books
    record = site.records.create("ledgers", {"name": "Order", "line_items": two_groups()},
                                 admin)
    same = site.records.update("ledgers", record["id"], {
        "line_items": site.records.feature_data("line_items", "ledgers", record["id"], admin).as_input()},
        admin, base=record)
    assert same["version"] == record["version"]  # nothing changed, nothing written
    fewer = two_groups()[:1]
    changed = site.records.update("ledgers", record["id"], {"line_items": fewer}, admin,
                                  base=same)
    assert changed["amount"] == D("181.12") and changed["version"] == record["version"] + 1
    assert len(site.records.feature_data("line_items", "ledgers", record["id"], admin).groups) == 1
    # a new currency prices the stored lines again with its digits
    yen = site.records.update("ledgers", record["id"], {"amount_currency": "JPY"}, admin)
    assert yen["amount"] == D(181) and yen["amount_currency"] == "JPY"
    assert yen["subtotal_currency"] == "JPY"


def test_bad_lines_and_written_totals_are_refused_and_nothing_changes(books):
    site, admin = books
    record = site.records.create("ledgers", {"name": "Order", "line_items": two_groups()},
                                 admin)
    bad = two_groups()
    bad[0]["lines"][0]["quantity"] = "-2"
    bad[1]["lines"][1]["tax_code_id"] = "NOPE"
    with pytest.raises(ValidationError) as caught:
        site.records.update("ledgers", record["id"], {"line_items": bad}, admin)
    assert {k: str(v) for k, v in caught.value.errors.items()} == {
        "line_items.1.1.quantity": "must not be negative",
        "line_items.2.2.tax_code_id": "unknown tax code"}
    with pytest.raises(ValidationError) as caught:
        site.records.update("ledgers", record["id"], {"amount": "1.00"}, admin)
    assert str(caught.value.errors["amount"]) == "is read-only"
    with pytest.raises(ValidationError):
        site.records.create("ledgers", {"name": "New", "line_items": bad}, admin)
    after = site.records.get("ledgers", record["id"], admin)
    assert after["amount"] == D("281.12") and after["version"] == record["version"]
    assert len(site.records.feature_data("line_items", "ledgers", record["id"], admin).lines) == 4
    table = site.tables.tables["ledgers"]
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 1


def test_a_record_without_lines_totals_zero(books):
    site, admin = books
    record = site.records.create("ledgers", {"name": "Empty"}, admin)
    assert record["amount"] == 0 and record["amount_currency"] == "USD"
    assert site.records.feature_data("line_items", "ledgers", record["id"], admin).groups == []


def test_many_records_with_lines_in_one_write(books):
    site, admin = books
    ids = site.records.create_many("ledgers", [
        {"name": f"Order {n}", "line_items": two_groups()} for n in range(20)], admin)
    table = site.tables.tables["ledgers_lines"]
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 80
    assert site.records.get("ledgers", ids[-1], admin)["amount"] == D("281.12")


def test_totals_come_from_the_tax_rates_of_the_time(books):
    site, admin = books
    record = site.records.create("ledgers", {"name": "Then", "line_items": [
        {"lines": [{"name": "x", "unit_price": "100", "tax_code_id": "F5"}]}]}, admin)
    ledger.TAX_CODES["F5"] = [TaxRate("Federal 6%", D(6))]
    try:
        items = site.records.feature_data("line_items", "ledgers", record["id"], admin)
        assert items.totals.total == D("105.00")  # as charged, not as rates are now
    finally:
        ledger.TAX_CODES["F5"] = [TaxRate("Federal 5%", D(5))]
