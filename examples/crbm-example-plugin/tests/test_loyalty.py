"""The loyalty plugin, tested from outside CRBM with CRBM's published fixtures only:
``site``, ``admin`` and ``web`` come from CRBM's pytest plugin (core.testing, the pytest11
entry point ``crbm``) — no conftest, no import of CRBM's own tests. The site they boot
loads this plugin because it is installed (its ``crbm.plugins`` entry point)."""
from __future__ import annotations

import datetime as dt

import pytest
from crbm_loyalty import plugin as loyalty

from core.jobs import scheduler
from core.kernel.errors import ValidationError
from core.kernel.records import Query
from core.testing import api_client, bearer


@pytest.fixture
def account(site, admin):
    return site.records.create("accounts", {"name": "Corner Bakery"}, admin)


@pytest.fixture
def card(site, admin, account):
    return site.records.create("loyalty_cards", {"name": "L-0001", "account_id": account["id"],
                                                 "points": 120}, admin)


def test_the_site_loads_the_installed_plugin(site):
    assert "loyalty" in [p.name for p in site.plugins]
    assert "loyalty_cards" in site.registry.modules
    assert site.registry.module("loyalty_cards").fields["tier"].type.name == "tier"


def test_the_tier_follows_the_points_and_earned_points_keep_a_year(site, admin, card):
    assert card["tier"] == "bronze"
    assert card["points_expire_on"] == dt.date.today() + dt.timedelta(days=loyalty.VALID_DAYS)
    gold = site.records.update("loyalty_cards", card["id"], {"points": 2500}, admin)
    assert gold["tier"] == "gold"
    silver = site.records.update("loyalty_cards", card["id"], {"points": 600}, admin)
    assert silver["tier"] == "silver"
    # spending points does not extend their life
    assert silver["points_expire_on"] == gold["points_expire_on"]


def test_the_tier_type_takes_only_tiers(site, admin):
    f = site.registry.module("loyalty_cards").fields["tier"]
    assert [f.type.normalize(v, f.spec) for v in ("Gold", " silver ", "", None)] \
        == ["gold", "silver", None, None]
    with pytest.raises(ValueError, match="is not a tier: give bronze, silver or gold"):
        f.type.normalize("platinum", f.spec)
    with pytest.raises(ValidationError):
        site.records.create("loyalty_cards", {"name": "L-2", "points": -5}, admin)


def test_the_expiry_job_is_scheduled_and_idempotent(site, admin, card):
    task = scheduler.tasks(site)["loyalty.expire_points"]
    site.records.update("loyalty_cards", card["id"],
                        {"points": 900, "points_expire_on": dt.date(2020, 1, 31)}, admin)
    assert loyalty.expire_points(site, today=dt.date(2020, 1, 31)) == []  # not past it yet
    assert loyalty.expire_points(site, today=dt.date(2020, 2, 1)) == [card["id"]]
    expired = site.records.get("loyalty_cards", card["id"], admin)
    assert (expired["points"], expired["tier"], expired["points_expire_on"]) == (0, "bronze", None)
    assert expired["version"] > card["version"]
    assert loyalty.expire_points(site, today=dt.date(2020, 2, 1)) == []  # nothing left to do
    assert task.run(site, dt.datetime.now(dt.UTC)) == "0 cards expired"  # as scheduled: today
    assert site.records.get("loyalty_cards", card["id"], admin)["version"] == expired["version"]


def test_the_list_shows_tier_badges_and_filters_by_tier(site, admin, web, account):
    for number, points in (("L-1", 10), ("L-2", 700), ("L-3", 3000)):
        site.records.create("loyalty_cards", {"name": number, "points": points}, admin)
    page = web.get("/m/loyalty_cards")
    assert page.status_code == 200
    assert '<span class="badge tier-gold">Gold</span>' in page.text
    filtered = web.get("/m/loyalty_cards", params={"f_tier": "silver"})
    assert "L-2" in filtered.text and "L-3" not in filtered.text
    names = [r["name"] for r in site.records.list(
        "loyalty_cards", admin, Query(filters={"tier": "gold"}))]
    assert names == ["L-3"]


def test_the_api_reads_and_describes_the_tier(site, admin, card):
    with api_client(site) as client:
        got = client.get(f"/api/v1/loyalty_cards/{card['id']}", headers=bearer(site, admin))
        assert got.status_code == 200, got.text
        assert got.json()["tier"] == "bronze"
        schema = client.get("/api/v1/openapi.json", headers=bearer(site, admin)).json()
    text = str(schema)
    assert "'enum': ['bronze', 'silver', 'gold', None]" in text


def test_a_card_made_with_an_expiry_date_keeps_it(site, admin):
    card = site.records.create("loyalty_cards", {"name": "L-1", "points": 900,
                                                 "points_expire_on": dt.date(2020, 1, 31)}, admin)
    assert (card["tier"], card["points_expire_on"]) == ("silver", dt.date(2020, 1, 31))
    assert loyalty.expire_points(site, today=dt.date(2020, 2, 1)) == [card["id"]]
    assert loyalty.expire_points(site, today=dt.date(2020, 2, 1)) == []
