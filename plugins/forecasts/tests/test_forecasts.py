"""Forecasts as a sales team meets them: a rep, their manager and the director above,
opportunities in two quarters of a fiscal year that starts in April; the roll-ups equal
the figures worked out by hand (face value and weighted, quarterly and monthly), a
Team-level manager's totals leave out what they cannot see, forecasts are entered by their
user or someone above, and "reports to" refuses loops."""
import datetime as dt
import re
from decimal import Decimal

import pytest

from core.apps.admin import access_admin as aa
from core.jobs import scheduler
from core.kernel.errors import ValidationError
from core.kernel.records import SYSTEM_USER, Query
from core.kernel.users import create_user
from core.testing import api_client, bearer, signed_in
from plugins.forecasts import periods, rollup

PASSWORD = "correct horse battery"
TODAY = dt.date(2026, 5, 20)  # in FY2026/27 Q1 (April-June)


def reports_to(site, user, manager):
    aa.update_user_profile(site, user.id, display_name=user.username, email=None,
                           is_admin=False, can_assign_access=False,
                           reports_to_id=manager.id if manager else None)


@pytest.fixture
def team(site, admin):
    """Dana (director) <- Max (manager) <- Rita (rep), each with deals (module docstring)."""
    dana, max_, rita = (create_user(site, n, PASSWORD) for n in ("dana", "max", "rita"))
    reports_to(site, max_, dana)
    reports_to(site, rita, max_)
    acme = site.records.create("accounts", {"name": "Acme"}, admin)

    def deal(owner, amount, stage, closes, **more):
        return {"name": f"{owner.username} {amount}", "account_id": acme["id"],
                "amount": amount, "sales_stage": stage, "date_closed": closes,
                "assigned_user_id": owner.id, **more}

    site.records.create_many("opportunities", [
        deal(rita, "10000", "proposal_price_quote", "2026-05-15"),  # Q1, 65 %: 6,500
        deal(rita, "4000", "closed_won", "2026-06-30"),            # Q1 won
        deal(rita, "2000", "qualification", "2026-08-01"),         # Q2, 20 %: 400
        deal(rita, "9999", "prospecting", "2026-10-01"),           # Q3: in neither
        deal(max_, "5000", "negotiation_review", "2026-04-01"),    # Q1, 80 %: 4,000
        deal(max_, "3000", "closed_lost", "2026-05-05"),           # Q1 lost: nowhere
        deal(dana, "7000", "prospecting", "2026-09-30"),           # Q2, 10 %: 700
        deal(dana, "1000", "prospecting", "2026-07-01", probability=55),  # Q2: 550
    ], admin)
    site.set_setting("calendar", {"fiscal_year_start": 4})  # the company calendar's
    site.set_setting(periods.SETTING, {"period": "quarterly",
                                       "future_periods": 2, "history_periods": 1})
    periods.keep_periods(site, TODAY)
    return {"dana": dana, "max": max_, "rita": rita, "acme": acme}


def by_name(site, kind="quarterly"):
    return {p["name"]: p for p in site.records.list("forecast_periods", SYSTEM_USER, Query(
        filters=[("period_type", "eq", kind)], limit=None))}


def money(*values):
    return tuple(Decimal(v) for v in values)


def figures(f):
    return f.face, f.weighted, f.won


def test_periods_follow_the_fiscal_year_and_are_kept_idempotently(site, admin, team):
    quarters = by_name(site)
    assert {n: (p["start_date"], p["end_date"]) for n, p in quarters.items()} == {
        "FY2025/26 Q4": (dt.date(2026, 1, 1), dt.date(2026, 3, 31)),
        "FY2026/27 Q1": (dt.date(2026, 4, 1), dt.date(2026, 6, 30)),
        "FY2026/27 Q2": (dt.date(2026, 7, 1), dt.date(2026, 9, 30))}
    assert periods.keep_periods(site, TODAY) == "0 periods created, 0 removed"
    # the scheduler's task: the window of its due day (late on the 20th in UTC is already
    # the 21st in Auckland: still Q1), idempotent
    site.set_setting("calendar", {"fiscal_year_start": 4, "time_zone": "Pacific/Auckland"})
    due = dt.datetime(2026, 5, 20, 23, 0, tzinfo=dt.UTC)
    assert scheduler.run_task(site, "forecasts.periods", due) == "0 periods created, 0 removed"
    site.set_setting("calendar", {"fiscal_year_start": 4})
    # a forecast keeps its period when the settings change; empty ones of the old kind go
    site.records.create("forecast_entries", {"period_id": quarters["FY2026/27 Q2"]["id"],
                                             "assigned_user_id": admin.id,
                                             "committed": "100"}, admin)
    site.set_setting(periods.SETTING, {"period": "monthly",
                                       "future_periods": 3, "history_periods": 0})
    assert periods.keep_periods(site, TODAY) == "3 periods created, 2 removed"
    assert sorted(by_name(site, "monthly")) == ["2026-05", "2026-06", "2026-07"]
    assert sorted(by_name(site)) == ["FY2026/27 Q2"]
    # a calendar fiscal year
    assert periods.period_at(dt.date(2026, 4, 1), "quarterly", 1).name == "FY2026 Q2"


def test_roll_ups_equal_the_hand_computed_totals(site, admin, team):
    dana, max_, rita = team["dana"], team["max"], team["rita"]
    quarters = by_name(site)
    q1, q2 = quarters["FY2026/27 Q1"], quarters["FY2026/27 Q2"]
    # the director: own deals, and Max's branch (Max + Rita)
    seen = rollup.pipeline(site, dana, dana.id, [q1, q2])
    assert figures(seen.of(q1["id"], dana.id)) == money(0, 0, 0)
    assert figures(seen.of(q1["id"], max_.id)) == money("15000", "10500", "4000")
    assert figures(seen.total(q1["id"])) == money("15000", "10500", "4000")
    assert figures(seen.of(q2["id"], dana.id)) == money("8000", "1250", 0)
    assert figures(seen.of(q2["id"], max_.id)) == money("2000", "400", 0)
    assert figures(seen.total(q2["id"])) == money("10000", "1650", 0)
    assert seen.total(q1["id"]).deals == 2
    # the manager: own deals, and Rita's
    seen = rollup.pipeline(site, max_, max_.id, [q1])
    assert figures(seen.of(q1["id"], max_.id)) == money("5000", "4000", 0)
    assert figures(seen.of(q1["id"], rita.id)) == money("10000", "6500", "4000")
    # monthly periods, the same fiscal year
    site.set_setting(periods.SETTING, {"period": "monthly",
                                       "future_periods": 2, "history_periods": 1})
    periods.keep_periods(site, TODAY)
    months = by_name(site, "monthly")
    seen = rollup.pipeline(site, dana, dana.id, list(months.values()))
    assert {n: figures(seen.total(p["id"])) for n, p in months.items()} == {
        "2026-04": money("5000", "4000", 0), "2026-05": money("10000", "6500", 0),
        "2026-06": money(0, 0, "4000")}


def test_a_team_level_managers_totals_leave_out_what_they_cannot_see(site, admin, team):
    aa.save_settings(site, {"inherit_created_by": False})
    east = aa.create_team(site, "East")
    tess, rob = create_user(site, "tess", PASSWORD), create_user(site, "rob", PASSWORD)
    aa.set_team_members(site, east, add=[tess.id])
    reports_to(site, rob, tess)
    role = aa.create_role(site, "Team sales")
    aa.set_role_rules(site, role, {"opportunities": ("enabled", {
        a: "team" for a in ("view", "list", "edit", "delete", "export", "report")})})
    aa.set_user_roles(site, tess.id, [role])
    values = {"account_id": team["acme"]["id"], "sales_stage": "prospecting",
              "date_closed": "2026-05-02", "assigned_user_id": rob.id}
    site.records.create("opportunities", {**values, "name": "East deal", "amount": "1000"},
                        SYSTEM_USER, teams=[east])
    site.records.create("opportunities", {**values, "name": "Hidden", "amount": "50000"},
                        SYSTEM_USER)
    q1 = by_name(site)["FY2026/27 Q1"]
    assert figures(rollup.pipeline(site, tess, tess.id, [q1]).total(q1["id"])) == \
        money("1000", "100", 0)
    assert figures(rollup.pipeline(site, admin, tess.id, [q1]).total(q1["id"])) == \
        money("51000", "5100", 0)


def test_forecasts_are_entered_by_their_user_or_someone_above(site, admin, team):
    dana, max_, rita = team["dana"], team["max"], team["rita"]
    q1 = by_name(site)["FY2026/27 Q1"]["id"]
    own = site.records.create("forecast_entries", {"period_id": q1, "assigned_user_id":
                                                   rita.id, "committed": "9000"}, rita)
    with pytest.raises(ValidationError) as caught:
        site.records.create("forecast_entries", {"period_id": q1, "assigned_user_id": max_.id,
                                                 "committed": "1"}, rita)
    assert "only for yourself and the people who report to you" in \
        str(caught.value.errors["assigned_user_id"])
    site.records.update("forecast_entries", own["id"], {"best_case": "12000"}, dana)
    with pytest.raises(ValidationError) as caught:
        site.records.create("forecast_entries", {"period_id": q1, "assigned_user_id":
                                                 rita.id}, max_)
    assert "period_id" in caught.value.errors
    with pytest.raises(ValidationError):
        site.records.create("forecast_entries", {"period_id": q1, "assigned_user_id":
                                                 max_.id, "committed": "-5"}, max_)


def test_reports_to_refuses_loops(site, admin, team):
    dana, rita = team["dana"], team["rita"]
    with pytest.raises(ValidationError) as caught:
        reports_to(site, dana, rita)
    assert "rita reports to this user" in str(caught.value.errors["reports_to_id"])
    with pytest.raises(ValidationError):
        reports_to(site, dana, dana)
    with signed_in(site, "admin") as web:
        page = web.get(f"/admin/users/{dana.id}").text
        assert 'name="reports_to_id"' in page
        refused = web.post(f"/admin/users/{dana.id}/profile", data={
            "_csrf": web.csrf, "display_name": "Dana", "reports_to_id": rita.id})
        assert refused.status_code == 422 and "would make a loop" in refused.text
        assert aa.get_user(site, dana.id)["display_name"] == "dana"  # nothing saved
        web.post(f"/admin/users/{dana.id}/profile", data={
            "_csrf": web.csrf, "display_name": "Dana", "reports_to_id": admin.id})
        assert aa.get_user(site, dana.id)["reports_to_id"] == admin.id


def test_the_forecast_page(site, admin, team):
    q1 = by_name(site)["FY2026/27 Q1"]
    with signed_in(site, "dana", PASSWORD) as web:
        page = web.get(f"/forecasts?period={q1['id']}").text
        rows = dict(re.findall(r'<tr[^>]*data-user="([^"]+)">(.*?)</tr>', page, re.DOTALL))
        assert "$15,000.00" in rows[team["max"].id] and "$10,500.00" in rows["total"]
        assert "<svg" in page and 'class="bar-weighted"' in page
        saved = web.post("/forecasts", data={
            "_csrf": web.csrf, "period": q1["id"], "user": team["dana"].id,
            f"committed_{team['dana'].id}": "12000", f"committed_{team['max'].id}": "8000",
            f"best_case_{team['max'].id}": "16000"}, follow_redirects=False)
        assert saved.status_code == 303
        entries = site.records.list("forecast_entries", admin, Query(limit=None))
        assert sorted((e["assigned_user_id"] == team["max"].id, e["committed"]) for e in
                      entries) == [(False, Decimal(12000)), (True, Decimal(8000))]
        refused = web.post("/forecasts", data={
            "_csrf": web.csrf, "period": q1["id"], "user": team["dana"].id,
            f"committed_{team['dana'].id}": "1", f"committed_{team['max'].id}": "-1"})
        assert refused.status_code == 422
        assert {e["committed"] for e in site.records.list(
            "forecast_entries", admin, Query(limit=None))} == {Decimal(12000),
                                                              Decimal(8000)}
        assert web.get(f"/forecasts?user={team['rita'].id}").status_code == 200
    # the REST API reads them, as each user's roles allow
    with api_client(site) as api:
        listed = api.get("/api/v1/forecast_entries", headers=bearer(site, team["dana"]))
        assert listed.status_code == 200 and len(listed.json()["data"]) == 2
    with signed_in(site, "rita", PASSWORD) as web:
        assert web.get(f"/forecasts?user={team['dana'].id}").status_code == 403
    with signed_in(site, "admin") as web:
        page = web.get("/admin/forecasts")
        assert page.status_code == 200
        assert "/admin/calendar" in page.text  # the fiscal year is the company calendar's
        before = periods.forecast_settings(site)
        bad = web.post("/admin/forecasts", data={"_csrf": web.csrf, "period": "weekly",
                                                 "future_periods": "4", "history_periods": "1"})
        assert bad.status_code == 422 and periods.forecast_settings(site) == before


def test_demo_forecasts(site, admin):
    import cli

    cli.load_demo(site, admin, 3, seed=1)
    assert site.records.count("forecast_periods", admin) == 8  # 4 ahead, 4 past (quarterly)
    entries = site.records.list("forecast_entries", admin, Query(limit=None))
    assert entries and all(e["best_case"] >= e["committed"] > 0 for e in entries)
