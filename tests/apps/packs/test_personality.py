"""Personality packs: a site's customizations exported, and imported declaratively."""
from __future__ import annotations

import datetime as dt

import pytest

from core.apps.packs import personality
from core.apps.packs.pack_archive import PackError
from core.kernel import customizations
from core.kernel.customizations import Item
from core.kernel.site import Site, create_site
from tests.plugins.kitchen_sink import plugin as kitchen_sink


def customize(site, when: dt.datetime | None = None) -> None:
    """A custom field, a layout change, a dropdown edit and a renamed tab."""
    accounts = site.registry.module("accounts")
    columns = [*accounts.layouts["list"]["columns"], "vip_since"]
    options = [*site.registry.dropdowns["account_type_dom"],
               {"value": "franchise", "label": "Franchise"}]
    site.studio.save_items(None, [
        Item("module", "accounts", {"name": "accounts", "label": "Clients",
                                    "fields": {"vip_since": {"type": "date", "label": "VIP since"}},
                                    "layouts": {"list": {"columns": columns}}}, when),
        Item("dropdowns", "account_types", {"account_type_dom": options}, when),
    ])


def merged(site) -> dict:
    return {"modules": {n: m.definition for n, m in site.registry.modules.items()},
            "dropdowns": site.registry.dropdowns}


@pytest.fixture
def fresh_site(tmp_path):
    """A second, untouched site with its own (SQLite) database."""
    folder = create_site(tmp_path / "fresh", f"sqlite:///{tmp_path / 'fresh.db'}")
    site = Site(folder, extra_plugins=[kitchen_sink])
    site.sync_schema()
    yield site
    site.close()


def test_round_trip_gives_the_fresh_site_the_same_merged_registry(site, fresh_site, admin):
    customize(site)
    assert site.registry.module("accounts").label == "Clients"
    data = personality.export(site, "acme_style", "1.0.0", "Acme's set-up")
    check = fresh_site.packs.check(data, None, "acme.zip")
    assert check.ok, check.problems
    assert "add customization: module accounts" in check.changes
    assert "add customization: dropdown lists account_types" in check.changes
    fresh_site.packs.install(data, None, "acme.zip")
    assert merged(fresh_site) == merged(site)
    assert "vip_since" in {c["name"] for c in _columns(fresh_site, "accounts")}
    # and uninstalling puts the fresh site back as it was
    fresh_site.packs.remove("acme_style", "uninstall")
    assert fresh_site.registry.module("accounts").label == "Accounts"
    assert customizations.read(fresh_site.engine) == []


def _columns(site, table):
    import sqlalchemy as sa
    return sa.inspect(site.engine).get_columns(table)


def test_import_updates_and_removes_to_match_and_refuses_to_overwrite_newer_changes(site, fresh_site):
    old = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    customize(site, when=old)
    data = personality.export(site, "acme_style", "1.0.0", "Acme")
    # the target changed accounts after the pack's version, and has an item the pack lacks
    fresh_site.studio.save_items(None, [
        Item("module", "accounts", {"name": "accounts", "label": "Customers"}),
        Item("module", "contacts", {"name": "contacts", "label": "People"}),
    ])
    report = fresh_site.packs.check(data, None, "acme.zip")
    assert "update customization: module accounts — CHANGED ON THIS SITE SINCE (newer here)" \
        in report.changes
    assert "remove customization: module contacts — CHANGED ON THIS SITE SINCE (newer here)" \
        in report.changes
    with pytest.raises(PackError, match="changed on this site after the pack's version"):
        fresh_site.packs.install(data, None, "acme.zip")
    assert fresh_site.registry.module("accounts").label == "Customers"  # nothing changed
    fresh_site.packs.install(data, None, "acme.zip", overwrite_newer=True)
    assert fresh_site.registry.module("accounts").label == "Clients"
    assert fresh_site.registry.module("contacts").label == "Contacts"


def test_bundled_packs_travel_with_the_personality(site, fresh_site, admin):
    from tests.apps.packs.test_packs import module_pack
    site.packs.install(module_pack(), admin, "loyalty.zip")
    site.studio.save_items(None, [Item("module", "rewards", {"name": "rewards", "label": "Perks"})])
    data = personality.export(site, "acme_style", "1.0.0", "Acme", bundle=["loyalty"])
    report = fresh_site.packs.install(data, None, "acme.zip")
    assert "installed bundled pack loyalty 1.0.0" in report.changes
    assert fresh_site.registry.module("rewards").label == "Perks"
    assert merged(fresh_site) == merged(site)
