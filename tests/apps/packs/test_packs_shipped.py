"""Every pack CRBM ships: built from its folder, installed, seen working, uninstalled, gone."""
from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from core.apps.packs.pack_archive import check_offline
from core.kernel import users
from core.web.app import create_app
from tests.apps.packs.test_packs import assert_unchanged, snapshot
from tests.pack_util import SHIPPED, install_folder

PASSWORD = "correct horse battery"
SHIPPED_PACKS = sorted(p.name for p in SHIPPED.iterdir() if (p / "pack.yaml").is_file())


def csrf_of(page: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', page).group(1)


def signed_in(site, **preferences) -> TestClient:
    users.save_preferences(site, users.get_user(site, "admin").id, preferences)
    client = TestClient(create_app(site))
    login = client.get("/login")
    client.post("/login", data={"_csrf": csrf_of(login.text), "username": "admin",
                                "password": PASSWORD})
    return client


def test_every_shipped_pack_is_listed_here():
    assert SHIPPED_PACKS == ["b2c_starter", "holidays_ca", "holidays_fi", "holidays_uk",
                             "holidays_us", "lang_fr", "theme_nocturne"]


@pytest.mark.parametrize("name", SHIPPED_PACKS)
def test_shipped_pack_validates_offline(name):
    assert [str(p) for p in check_offline(SHIPPED / name)] == []


def effect(site, name: str) -> str:
    """What a user sees of the pack (an empty string when it is not there)."""
    if name == "lang_fr":
        with signed_in(site, language="fr") as client:
            return " ".join(re.findall(r"<h1>(.*?)</h1>", client.get("/m/accounts").text))
    if name == "theme_nocturne":
        with signed_in(site, theme=name) as client:
            css = client.get(f"/theme/{name}/theme.css")
            page = client.get("/m/accounts").text
            linked = f"/theme/{name}/theme.css" in page
            return f"css {len(css.text)} bytes, linked" if css.status_code == 200 and linked else ""
    if name.startswith("holidays_"):
        with signed_in(site, holidays=name) as client:
            return client.get("/calendar/holidays?year=2027").text
    if name == "b2c_starter":
        accounts = site.registry.module("accounts")
        return f"{accounts.label}: {', '.join(f for f in ('birthday', 'loyalty_tier') if f in accounts.fields)}"
    raise AssertionError(f"no effect check for {name}")


EXPECTED = {
    "lang_fr": "Comptes",
    "theme_nocturne": "linked",
    "holidays_ca": "Canada Day",
    "holidays_us": "Independence Day",
    "holidays_uk": "Boxing Day",
    "holidays_fi": "Second Day of Christmas",
    "b2c_starter": "Customers: birthday, loyalty_tier",
}


@pytest.mark.parametrize("name", SHIPPED_PACKS)
def test_build_install_see_uninstall_and_the_site_is_as_before(site, admin, name):
    before = snapshot(site)
    assert EXPECTED[name] not in effect(site, name)
    install_folder(site, name)
    assert site.packs.get(name).status == "enabled"
    assert EXPECTED[name] in effect(site, name)
    site.packs.remove(name, "purge")
    assert EXPECTED[name] not in effect(site, name)
    # sign-ins touch users and recent items, requests the user activity (written when the
    # app stops); the epochs move on: every worker rebuilds its registry and access after a
    # change
    assert_unchanged(site, before, ignore=("crbm_users", "crbm_sessions", "crbm_recent_items",
                                           "crbm_activity_events", "crbm_access_epoch",
                                           "crbm_metadata_epoch"))
