"""The Studio service (core/apps/studio/studio.py): every change checked like shipped metadata, applied
with a schema sync, audited, seen by other workers, and removable without losing data."""
from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from core.apps.packs import personality
from core.apps.studio.studio import FIELD_TYPES, StudioError
from core.kernel import customizations
from core.kernel.records import Query
from core.kernel.site import Site, create_site
from core.kernel.users import create_user
from tests.apps.admin.test_web_admin import PASSWORD, csrf_of
from tests.plugins.kitchen_sink import plugin as kitchen_sink

ROOT = Path(__file__).resolve().parents[3]


def snapshot(site) -> tuple:
    """What a refused change must leave exactly as it was."""
    return (customizations.read(site.engine), sorted(site.registry.modules),
            {n: m.definition for n, m in site.registry.modules.items()},
            site.registry.dropdowns, len(site.studio.history()),
            sorted(sa.inspect(site.engine).get_table_names()))


@pytest.fixture
def studio(site):
    return site.studio


def vehicles(site, admin) -> None:
    site.studio.create_module(admin, "vehicles", "Vehicles", "Vehicle", "Fleet",
                              features={"assignable": True, "sequence_prefix": "V-"})


# -- every field type ------------------------------------------------------------------------

# name -> (spec, value given, value read back)
EVERY_TYPE = {
    "plate": ({"type": "text", "max_size": 20}, "AB-123", "AB-123"),
    "notes": ({"type": "textarea"}, "line 1\nline 2", "line 1\nline 2"),
    "year": ({"type": "integer"}, "2019", 2019),
    "weight": ({"type": "decimal", "precision": 10, "scale": 2}, "1234.5", Decimal("1234.50")),
    "wear": ({"type": "percentage"}, "12.5", Decimal("12.5")),
    "electric": ({"type": "checkbox"}, True, True),
    "contact_email": ({"type": "email"}, "fleet@example.com", "fleet@example.com"),
    "phone_no": ({"type": "phone"}, "+1 555 0100", "+1 555 0100"),
    "vin": ({"type": "item_number"}, "1HGCM82633A004352", "1HGCM82633A004352"),
    "kind": ({"type": "dropdown", "options": "gadget_kind_dom"}, "tool", "tool"),
    "stage": ({"type": "status", "options": "gadget_status_dom"}, "active", "active"),
    "tags": ({"type": "multiselect", "options": "gadget_tag_dom"}, ["red", "blue"],
             ["red", "blue"]),
    "purchase_date": ({"type": "date"}, "2024-03-01", dt.date(2024, 3, 1)),
    "serviced_at": ({"type": "datetime"}, "2024-03-01T10:30:00+00:00",
                    dt.datetime(2024, 3, 1, 10, 30, tzinfo=dt.UTC)),
    "website": ({"type": "url"}, "https://example.com/car", "https://example.com/car"),
    "description": ({"type": "html"}, "<p>Red <b>car</b></p>", "<p>Red <b>car</b></p>"),
    "price": ({"type": "currency"}, "19999.99", Decimal("19999.99")),
    "owner_account_id": ({"type": "related", "module": "accounts"}, None, None),
    "owner_name": ({"type": "related_value", "related_field": "owner_account_id",
                    "source_field": "name"}, None, None),
    "age": ({"type": "calculated", "formula": "subtract(2026, year)", "format": "integer"},
            None, 7),
    "title": ({"type": "name", "parts": ["plate", "vin"]}, None, "AB-123 1HGCM82633A004352"),
}


def test_every_field_type_is_created_and_round_trips_through_the_record_service(site, admin):
    assert {t for t, _ in FIELD_TYPES} == {spec["type"] for spec, _, _ in EVERY_TYPE.values()}
    assert len(FIELD_TYPES) == 21
    vehicles(site, admin)
    for name, (spec, _, _) in EVERY_TYPE.items():
        site.studio.save_field(admin, "vehicles", name, spec, new=True)
    account = site.records.create("accounts", {"name": "Acme Fleet"}, admin)
    values = {n: given for n, (_, given, _) in EVERY_TYPE.items() if given is not None}
    values.update(name="Van", owner_account_id=account["id"])
    created = site.records.create("vehicles", values, admin)
    record = site.records.get("vehicles", created["id"], admin)
    for name, (_, _, expected) in EVERY_TYPE.items():
        if expected is not None:
            got = record[name]
            if isinstance(expected, Decimal):
                assert Decimal(got) == expected, name
            else:
                assert got == expected, name
    assert record["owner_account_id"] == account["id"]
    assert record["price_currency"] == "USD"
    assert record["number"] == "V-1"  # numbered with its prefix
    listed = site.records.list("vehicles", admin, Query(fields=["owner_name"], labels=True))
    assert listed[0]["owner_name"] == "Acme Fleet"  # the value from the related record


# -- validation: nothing saved when refused -------------------------------------------------

def test_a_formula_error_is_reported_with_its_position_and_nothing_is_saved(site, admin):
    vehicles(site, admin)
    site.studio.save_field(admin, "vehicles", "year", {"type": "integer"}, new=True)
    before = snapshot(site)
    with pytest.raises(StudioError) as refused:
        site.studio.save_field(admin, "vehicles", "age", {
            "type": "calculated", "formula": "subtract(2026, yeer)", "format": "integer"}, new=True)
    problem = refused.value.problems[0]
    assert (problem.where, problem.position) == ("formula", 15)
    assert "unknown field 'yeer' at line 1, column 16" in problem.reason
    with pytest.raises(StudioError) as refused:
        site.studio.save_field(admin, "vehicles", "age", {
            "type": "calculated", "formula": "add(1, 2", "format": "integer"}, new=True)
    assert refused.value.problems[0].position == 8
    assert snapshot(site) == before
    assert [p.position for p in site.studio.check_formula("vehicles", "multiply(year, )")] == [15]
    assert site.studio.check_formula("vehicles", "multiply(year, 2)") == []


@pytest.mark.parametrize("name, reason", [
    ("2fast", "must start with a lowercase letter"),
    ("Make", "must start with a lowercase letter"),
    ("created_at", "'created_at' is reserved"),
    ("select", "'select' is reserved"),
    ("crbm_x", "'crbm_x' is reserved"),
    ("name", "already has a field 'name'"),
])
def test_bad_field_names_are_refused(site, admin, name, reason):
    vehicles(site, admin)
    before = snapshot(site)
    with pytest.raises(StudioError, match=re.escape(reason)):
        site.studio.save_field(admin, "vehicles", name, {"type": "text"}, new=True)
    assert snapshot(site) == before


def test_a_composite_field_may_not_shadow_an_existing_one(site, admin):
    vehicles(site, admin)
    site.studio.save_field(admin, "vehicles", "price_currency", {"type": "text"}, new=True)
    with pytest.raises(StudioError, match="would also make 'price_currency'"):
        site.studio.save_field(admin, "vehicles", "price", {"type": "currency"}, new=True)


def test_required_without_default_is_warned(site, admin):
    vehicles(site, admin)
    change = site.studio.save_field(admin, "vehicles", "make", {"type": "text",
                                                                "required": True}, new=True)
    assert any("required without a default" in w for w in change.warnings)


def test_a_change_that_breaks_the_registry_is_refused_naming_where(site, admin):
    vehicles(site, admin)
    before = snapshot(site)
    with pytest.raises(StudioError, match=r"\$\.fields\.kind\.options: no dropdown list named"):
        site.studio.save_field(admin, "vehicles", "kind",
                               {"type": "dropdown", "options": "nothing_dom"}, new=True)
    with pytest.raises(StudioError, match=r"\$\.fields\.year\.default: invalid default"):
        site.studio.save_field(admin, "vehicles", "year", {"type": "integer", "default": "x"},
                               new=True)
    assert snapshot(site) == before


# -- dropdowns ------------------------------------------------------------------------------

def test_a_protected_dropdown_cannot_be_edited(site, admin):
    protected = {d.name for d in site.studio.dropdowns() if d.protected}
    assert "gadget_status_dom" in protected and "account_type_dom" not in protected
    before = snapshot(site)
    with pytest.raises(StudioError, match="gadget_status_dom is protected"):
        site.studio.save_dropdown(admin, "gadget_status_dom", [{"value": "x", "label": "X"}])
    assert snapshot(site) == before


@pytest.mark.parametrize("bad", ['say "hi"', "a<b", "a>b", "R&D"])
def test_special_characters_in_a_database_value_are_refused(site, admin, bad):
    before = snapshot(site)
    options = [*site.studio.dropdown("account_type_dom"), {"value": bad, "label": "Bad"}]
    with pytest.raises(StudioError, match="may not contain"):
        site.studio.save_dropdown(admin, "account_type_dom", options)
    assert snapshot(site) == before


def test_dropdown_edits_are_marked_and_reset(site, admin):
    original = site.registry.dropdowns["account_type_dom"]
    options = [{"value": "franchise", "label": "R&D <franchise>", "labels": {"fr": "Franchise"}},
               *site.studio.dropdown("account_type_dom")]
    site.studio.save_dropdown(admin, "account_type_dom", options)
    assert site.registry.dropdowns["account_type_dom"][0]["value"] == "franchise"
    assert {d.name for d in site.studio.dropdowns() if d.modified} == {"account_type_dom"}
    site.studio.reset_dropdown(admin, "account_type_dom")
    assert site.registry.dropdowns["account_type_dom"] == original
    assert not any(d.modified for d in site.studio.dropdowns())


# -- defaults for existing records -----------------------------------------------------------

def test_a_required_field_added_to_10000_records_gets_its_default_in_all_of_them(site, admin):
    table = site.tables.tables["widgets"]
    now = dt.datetime.now(dt.UTC)
    with site.engine.begin() as conn:
        conn.execute(table.insert(), [
            {"id": f"w{i:05}", "name": f"Widget {i}", "deleted": False, "version": 1,
             "created_at": now, "modified_at": now} for i in range(10_000)])
    site.studio.save_field(admin, "widgets", "region", {"type": "text", "required": True,
                                                        "default": "North"}, new=True)
    site.studio.save_field(admin, "widgets", "rank", {"type": "integer", "required": True,
                                                      "default": 3}, new=True)
    table = site.tables.tables["widgets"]
    with site.engine.connect() as conn:
        counts = conn.execute(sa.select(table.c.region, table.c.rank, sa.func.count())
                              .group_by(table.c.region, table.c.rank)).all()
    assert [tuple(c) for c in counts] == [("North", 3, 10_000)]
    # and a record created afterwards without the field gets the default too
    created = site.records.create("widgets", {"name": "New"}, admin)
    assert site.records.get("widgets", created["id"], admin)["region"] == "North"


# -- removal keeps data unless purged ------------------------------------------------------

def test_a_removed_field_keeps_its_data_and_comes_back_on_restore(site, admin):
    vehicles(site, admin)
    site.studio.save_field(admin, "vehicles", "color", {"type": "text"}, new=True)
    created = site.records.create("vehicles", {"name": "Van", "color": "red"}, admin)
    site.studio.remove_field(admin, "vehicles", "color")
    assert "color" not in site.registry.module("vehicles").fields
    assert "color" in {c["name"] for c in sa.inspect(site.engine).get_columns("vehicles")}
    [removed] = site.studio.removed()
    assert (removed.kind, removed.module, removed.name, removed.by) == \
        ("field", "vehicles", "color", "admin")
    site.studio.restore(admin, removed.id)
    assert site.records.get("vehicles", created["id"], admin)["color"] == "red"
    assert site.studio.removed() == []


def test_a_purged_field_is_exported_then_dropped(site, admin):
    vehicles(site, admin)
    site.studio.save_field(admin, "vehicles", "color", {"type": "text"}, new=True)
    site.records.create("vehicles", {"name": "Van", "color": "red"}, admin)
    site.studio.remove_field(admin, "vehicles", "color", purge=True)
    assert "color" not in {c["name"] for c in sa.inspect(site.engine).get_columns("vehicles")}
    exports = list((site.folder / "packs" / ".exports").glob("studio_vehicles_color-*.zip"))
    assert len(exports) == 1
    assert site.studio.removed() == []


def test_standard_fields_cannot_be_removed(site, admin):
    with pytest.raises(StudioError, match="not a custom field"):
        site.studio.remove_field(admin, "accounts", "industry")


def test_a_removed_module_keeps_its_table_and_its_relationships_come_back(site, admin):
    vehicles(site, admin)
    site.studio.add_relationship(admin, "vehicles", "many_to_one", "accounts")
    account = site.records.create("accounts", {"name": "Acme"}, admin)
    site.records.create("vehicles", {"name": "Van", "account_id": account["id"]}, admin)
    site.studio.remove_module(admin, "vehicles")
    assert "vehicles" not in site.registry.modules
    assert "vehicles" not in site.registry.module("accounts").relationships
    assert sa.inspect(site.engine).has_table("vehicles")
    site.studio.restore(admin, site.studio.removed()[0].id)
    related = site.records.related("accounts", account["id"], "vehicles", admin,
                                   Query(fields=["name"]))
    assert [r["name"] for r in related] == ["Van"]
    site.studio.remove_module(admin, "vehicles", purge=True)
    assert not sa.inspect(site.engine).has_table("vehicles")
    assert list((site.folder / "packs" / ".exports").glob("studio_vehicles-*.zip"))


def test_a_related_field_makes_a_subpanel_on_its_target_which_goes_and_returns_with_it(
        site, admin):
    vehicles(site, admin)
    site.studio.save_field(admin, "vehicles", "fleet_owner_id",
                           {"type": "related", "module": "accounts"}, new=True)
    rel = site.registry.module("accounts").relationships["vehicles"]
    assert (rel["kind"], rel["field"]) == ("one_to_many", "fleet_owner_id")
    site.studio.remove_field(admin, "vehicles", "fleet_owner_id")
    assert "vehicles" not in site.registry.module("accounts").relationships
    site.studio.restore(admin, site.studio.removed()[0].id)
    assert site.registry.module("accounts").relationships["vehicles"]["field"] == "fleet_owner_id"


def test_a_module_named_like_a_studio_page_is_refused(site, admin):
    with pytest.raises(StudioError, match="'new' is reserved"):
        site.studio.create_module(admin, "new", "New things")


def test_plugin_modules_cannot_be_removed_in_the_studio(site, admin):
    with pytest.raises(StudioError, match="not a Studio module"):
        site.studio.remove_module(admin, "accounts")


# -- relationships, tabs, access level -----------------------------------------------------

def test_many_to_many_relationships_link_both_ways_and_can_be_removed(site, admin):
    vehicles(site, admin)
    site.studio.add_relationship(admin, "vehicles", "many_to_many", "contacts")
    assert site.registry.module("vehicles").relationships["contacts"]["kind"] == "many_to_many"
    assert site.registry.module("contacts").relationships["vehicles"]["kind"] == "many_to_many"
    assert sa.inspect(site.engine).has_table("contacts_vehicles_links")
    site.studio.remove_relationship(admin, "vehicles", "contacts")
    assert "vehicles" not in site.registry.module("contacts").relationships
    assert sa.inspect(site.engine).has_table("contacts_vehicles_links")  # data kept


def test_a_layout_and_its_labels_are_saved_together_or_not_at_all(site, admin):
    layout = [{"label": "Firm", "rows": [["name", "industry"]]}]
    before = snapshot(site)
    with pytest.raises(StudioError, match="labels.nothing"):
        site.studio.save_layout(admin, "accounts", "detail", layout,
                                labels={"industry": "Sector", "nothing": "X"})
    assert snapshot(site) == before
    site.studio.save_layout(admin, "accounts", "detail", layout, labels={"industry": "Sector"})
    accounts = site.registry.module("accounts")
    assert accounts.layouts["detail"] == layout
    assert accounts.fields["industry"].label == "Sector"
    assert accounts.fields["industry"].spec["options"] == "industry_dom"  # the rest is kept


def test_a_standard_subpanel_can_be_renamed_and_hidden(site, admin):
    site.studio.save_subpanels(admin, "accounts", ["contacts"], {"contacts": "People here"})
    accounts = site.registry.module("accounts")
    assert accounts.layouts["subpanels"] == ["contacts"]
    assert accounts.relationships["contacts"]["label"] == "People here"
    assert accounts.relationships["contacts"]["field"] == "account_id"


def test_tabs_groups_hidden_modules_and_renamed_tabs(site, admin):
    from core.kernel import i18n
    vehicles(site, admin)
    site.studio.save_tabs(admin, [("Fleet", ["vehicles", "accounts"]), ("People", ["contacts"])],
                          hidden=["contacts"])
    tabs = site.studio.tabs()
    assert tabs["groups"][:2] == [("Fleet", ["vehicles", "accounts"]), ("People", ["contacts"])]
    assert "contacts" in tabs["hidden"] and "vehicles" not in tabs["hidden"]
    site.studio.rename_tabs(admin, "fr", {"vehicles": "Véhicules"})
    site.studio.rename_tabs(admin, "en", {"vehicles": "Cars"})
    token = i18n.activate(i18n.translations("fr"))
    try:
        assert site.registry.module("vehicles").label == "Véhicules"
    finally:
        i18n.deactivate(token)
    assert site.registry.module("vehicles").label == "Cars"


def test_a_fixed_module_is_for_administrators_only(site, admin):
    vehicles(site, admin)
    site.studio.update_module(admin, "vehicles", access_level="fixed")
    clerk = create_user(site, "clerk", PASSWORD)
    module = site.registry.module("vehicles")
    assert site.access.mode(clerk, module) == "disabled"
    assert site.access.mode(admin, module) == "enabled"


# -- the audit trail -------------------------------------------------------------------------

def test_every_change_is_in_the_audit_trail_with_who_and_when(site, admin):
    vehicles(site, admin)
    site.studio.save_field(admin, "vehicles", "make", {"type": "text"}, new=True)
    site.studio.save_layout(admin, "vehicles", "list", ["name", "make"])
    entries = site.studio.history()
    assert [(e.action, e.target, e.user) for e in entries] == [
        ("edit layout", "vehicles.list", "admin"), ("add field", "vehicles.make", "admin"),
        ("create module", "vehicles", "admin")]
    assert all(dt.datetime.now(dt.UTC) - e.at < dt.timedelta(minutes=5) for e in entries)


# -- personality round trip --------------------------------------------------------------------

def test_the_studio_layer_exported_as_a_personality_gives_a_fresh_site_the_same_registry(
        site, admin, tmp_path):
    vehicles(site, admin)
    site.studio.save_field(admin, "vehicles", "year", {"type": "integer"}, new=True)
    site.studio.add_relationship(admin, "vehicles", "many_to_one", "accounts")
    site.studio.save_layout(admin, "vehicles", "detail", [
        {"label": "Vehicle", "rows": [["name", "year"], ["account_id", None]]}])
    site.studio.save_dropdown(admin, "account_type_dom",
                              [{"value": "fleet", "label": "Fleet", "labels": {"fr": "Flotte"}}])
    site.studio.save_tabs(admin, [("Fleet", ["vehicles"])], hidden=[])
    site.studio.rename_tabs(admin, "fr", {"vehicles": "Véhicules"})
    data = personality.export(site, "fleet_style", "1.0.0", "Fleet set-up")
    folder = create_site(tmp_path / "fresh", f"sqlite:///{tmp_path / 'fresh.db'}")
    fresh = Site(folder, extra_plugins=[kitchen_sink])
    try:
        fresh.sync_schema()
        fresh.packs.install(data, None, "fleet.zip")
        merged = {n: m.definition for n, m in site.registry.modules.items()}
        assert {n: m.definition for n, m in fresh.registry.modules.items()} == merged
        assert fresh.registry.dropdowns == site.registry.dropdowns
        assert sa.inspect(fresh.engine).has_table("vehicles")
    finally:
        fresh.close()


# -- a second worker ---------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_change_is_seen_by_a_second_worker_process_without_restart(tmp_path, database_url):
    """`crbm serve` in its own process shares the database; the Studio changes the
    registry here; the other process shows the new field on its next request."""
    folder = create_site(tmp_path / "shared", database_url)
    site = Site(folder)
    site.sync_schema()
    admin = create_user(site, "admin", PASSWORD, is_admin=True)
    account = site.records.create("accounts", {"name": "Acme"}, admin)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "--site", str(folder),
                               "serve", "--port", str(port)], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            for _ in range(200):
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                pytest.fail(worker.stdout.read1().decode())
            login = client.get("/login")
            client.post("/login", data={"_csrf": csrf_of(login.text), "username": "admin",
                                        "password": PASSWORD})
            before = client.get(f"/m/accounts/{account['id']}/edit")
            assert before.status_code == 200
            assert "Fleet size" not in before.text
            site.studio.save_field(admin, "accounts", "fleet_size",
                                   {"type": "integer", "label": "Fleet size"}, new=True)
            layout = site.studio.layout("accounts", "edit")
            layout[0]["rows"].append(["fleet_size", None])
            site.studio.save_layout(admin, "accounts", "edit", layout)
            after = client.get(f"/m/accounts/{account['id']}/edit")
            assert "Fleet size" in after.text
            assert 'name="fleet_size"' in after.text
    finally:
        worker.terminate()
        worker.wait(10)
        site.close()
