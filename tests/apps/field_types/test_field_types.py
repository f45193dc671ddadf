"""Every field type: what it accepts, what it refuses, and that values come back as stored."""
import datetime as dt
from decimal import Decimal

import pytest

from core.apps.field_types.types import BUILTIN_TYPES as KERNEL_TYPES
from core.apps.field_types.types import GUIDE_TYPES
from core.kernel.errors import ValidationError
from tests.pack_util import register

UTC = dt.UTC


def test_the_guides_21_types_and_the_kernel_types_exist():
    assert len(GUIDE_TYPES) == 21
    assert set(GUIDE_TYPES) <= set(KERNEL_TYPES)
    assert {"id", "user", "image", "file", "address"} <= set(KERNEL_TYPES)


def test_test_module_uses_every_type(site):
    used = {f.spec["type"] for m in ("gadgets", "widgets")
            for f in site.registry.module(m).fields.values()}
    assert set(GUIDE_TYPES) <= used
    assert {"id", "user", "image", "file"} <= used
    assert "billing_address_city" not in used  # address expanded into parts:
    assert {"address_street", "address_city", "address_country"} <= set(
        site.registry.module("gadgets").fields)


@pytest.fixture
def widget(site, admin):
    return site.records.create("widgets", {"name": "Sprocket", "color": "teal"}, admin)


def test_round_trip_of_every_type(site, admin, widget):
    values = {
        "name": "Hammer",
        "summary": "A good hammer",
        "notes": "Line one\nLine two",
        "quantity": "12",
        "weight": "1.2345",
        "discount": 12.5,
        "fragile": "on",
        "contact_email": "sales@example.com",
        "phone": "+1 (555) 010-2030 x12",
        "kind": "toy",
        "toy_age": "kid",
        "status": "active",
        "tags": ["red", "blue"],
        "released_on": "2026-03-01",
        "last_seen_at": "2026-03-01T10:30:00+02:00",
        "homepage": "example.com/hammer",
        "body": '<p onclick="x()">Hi <script>alert(1)</script><b>there</b></p>',
        "widget_id": widget["id"],
        "parent_id": widget["id"], "parent_type": "widgets",
        "price": "19.99", "price_currency": "usd",
        "owner_id": admin.id,
        "photo": "files/ab/hammer.png",
        "manual": "files/cd/manual.pdf",
        "address_street": "1 Main St", "address_city": "Toronto", "address_country": "Canada",
        "assigned_user_id": admin.id,
    }
    created = site.records.create("gadgets", values, admin)
    got = site.records.get("gadgets", created["id"], admin, labels=True)
    assert got == created | {k: v for k, v in got.items() if k.endswith(("__label", "__deleted"))}
    assert got["quantity"] == 12
    assert got["weight"] == Decimal("1.235")  # scale 3, rounded half up
    assert got["discount"] == Decimal("12.5")
    assert got["fragile"] is True
    assert got["tags"] == ["red", "blue"]
    assert got["released_on"] == dt.date(2026, 3, 1)
    assert got["last_seen_at"] == dt.datetime(2026, 3, 1, 8, 30, tzinfo=UTC)  # stored UTC
    assert got["homepage"] == "https://example.com/hammer"
    assert "<script>" not in got["body"] and "onclick" not in got["body"]
    assert "<b>there</b>" in got["body"]
    assert got["total"] == Decimal("14.820")  # calculated: 12 * 1.235
    assert got["shout"] == "HAMMER!"
    assert got["widget_color"] == "teal"  # related_value, joined on read
    assert got["widget_id__label"] == "Sprocket"
    assert got["owner_id__label"] == "admin"
    assert got["price"] == Decimal("19.99") and got["price_currency"] == "USD"
    assert got["gadget_number"].startswith("G") and got["gadget_number"].endswith("00100")
    assert got["version"] == 1 and got["deleted"] is False
    assert got["created_by"] == admin.id and got["created_at"].tzinfo is not None
    assert got["address_city"] == "Toronto"


def test_defaults_apply_on_create(site, admin):
    got = site.records.create("gadgets", {"name": "Plain"}, admin)
    assert got["kind"] == "tool" and got["status"] == "draft"
    assert got["fragile"] is False
    assert got["price_currency"] == "EUR"  # the field's default currency
    assert got["tags"] == []


BAD_VALUES = [
    ("name", "x" * 41, "at most 40"),
    ("summary", "y" * 21, "at most 20"),
    ("quantity", "twelve", "not a whole number"),
    ("quantity", "1.5", "not a whole number"),
    ("quantity", -1, "at least 0"),
    ("quantity", 1001, "at most 1000"),
    ("weight", "heavy", "not a number"),
    ("discount", 150, "at most 100"),
    ("fragile", "maybe", "not yes or no"),
    ("contact_email", "not-an-email", "not an email address"),
    ("phone", "call me", "not a phone number"),
    ("kind", "spaceship", "not an option"),
    ("status", "gone", "not an option"),
    ("tags", ["red", "plaid"], "'plaid' is not an option"),
    ("released_on", "31/02/2026", "not a date"),
    ("released_on", "2026-02-31", "not a date"),
    ("last_seen_at", "yesterday", "not a date and time"),
    ("homepage", "javascript:alert(1)", "not a web address"),
    ("price_currency", "EURO", "ISO 4217"),
    ("widget_id", "00000000-0000-0000-0000-00000000beef", "no Widgets with id"),
    ("owner_id", "nobody", "no user with id"),
    ("parent_type", "planets", "not one of"),
    ("nonsense", "x", "no such field"),
    ("total", 5, "is read-only"),
]


@pytest.mark.parametrize("field,value,message", BAD_VALUES, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD_VALUES)])
def test_invalid_value_is_refused_with_the_field_named(site, admin, field, value, message):
    with pytest.raises(ValidationError) as caught:
        site.records.create("gadgets", {"name": "Ok", field: value}, admin)
    assert field in caught.value.errors
    assert message in caught.value.errors[field]
    assert site.records.count("gadgets", admin) == 0  # nothing saved


def test_one_error_lists_every_bad_field(site, admin):
    with pytest.raises(ValidationError) as caught:
        site.records.create("gadgets", {"quantity": "x", "contact_email": "nope",
                                        "kind": "zzz", "tags": ["plaid"]}, admin)
    assert set(caught.value.errors) == {"name", "quantity", "contact_email", "kind", "tags"}
    assert caught.value.errors["name"] == "is required"


def test_dependent_field_is_cleared_when_hidden_and_conditional_options_enforced(site, admin):
    hidden = site.records.create("gadgets", {"name": "Drill", "kind": "tool",
                                             "toy_age": "kid"}, admin)
    assert hidden["toy_age"] is None  # only shown (and kept) for toys
    with pytest.raises(ValidationError) as caught:
        site.records.create("gadgets", {"name": "Rattle", "kind": "toy", "toy_age": "baby"}, admin)
    assert "not offered when kind is 'toy'" in caught.value.errors["toy_age"]


def test_parent_link_needs_its_type(site, admin, widget):
    with pytest.raises(ValidationError) as caught:
        site.records.create("gadgets", {"name": "Orphan", "parent_id": widget["id"]}, admin)
    assert "parent_type" in caught.value.errors
    ok = site.records.create("gadgets", {"name": "Child", "parent_id": widget["id"],
                                         "parent_type": "widgets"}, admin)
    assert ok["parent_type"] == "widgets"


def test_calculated_field_reports_evaluation_errors(site, admin):
    pack = site.folder / "packs" / "bad_formula" / "modules"
    pack.mkdir(parents=True)
    (pack / "gadgets.yaml").write_text(
        'name: gadgets\nfields: {ratio: {type: calculated, format: decimal, '
        'formula: "divide(quantity, summary)"}}\n')
    register(site, {"name": "bad_formula", "kind": "module", "version": "1.0", "title": "x"})
    site.reload()
    site.sync_schema()
    ok = site.records.create("gadgets", {"name": "Even", "quantity": 6, "summary": "3"}, admin)
    assert ok["ratio"] == 2
    with pytest.raises(ValidationError) as caught:  # "abc" is no number: the save is refused
        site.records.create("gadgets", {"name": "Odd", "quantity": 6, "summary": "abc"}, admin)
    assert caught.value.errors["ratio"].startswith("cannot be calculated: divide()")
    assert site.records.count("gadgets", admin) == 1
