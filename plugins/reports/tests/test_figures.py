"""A report's figures are the figures a person would write the SQL for: accounts joined to
their opportunities and their contacts, grouped by industry, the sum of the amounts and the
count of the contacts — checked against hand-written SQL, for an administrator and, over
random worlds (Hypothesis), for a Team-level user against the same SQL restricted to what
their team may see. Joining two relationships must not multiply one by the other."""
from __future__ import annotations

import itertools
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.apps.admin import access_admin as aa
from core.kernel.records import SYSTEM_USER
from core.kernel.users import create_user
from plugins.reports.compiler import ReportError, ReportRefused, check
from plugins.reports.run import run
from tests.conftest import SERVER_URL

INDUSTRIES = ("banking", "energy", "retail")
REPORT = {"module": "accounts",
          "columns": [{"via": "opportunities", "field": "amount", "aggregate": "sum"},
                      {"via": "contacts", "field": "id", "aggregate": "count"},
                      {"field": "id", "aggregate": "count"}],
          "group_by": [{"field": "industry"}]}
_tags = itertools.count()


def reference(site, tag: str, visible=None) -> dict:
    """{industry: (sum of amounts, contacts, accounts)} by hand; ``visible(alias, module)``
    is the SQL text restricting each table to the runner's records."""
    seen = visible or (lambda alias, module: "1 = 1")
    sums = f"""
        SELECT a.industry, SUM(o.amount) FROM accounts a
        JOIN opportunities o ON o.account_id = a.id AND o.deleted = :no AND {seen('o', 'opportunities')}
        WHERE a.deleted = :no AND a.name LIKE :tag AND {seen('a', 'accounts')}
        GROUP BY a.industry"""
    contacts = f"""
        SELECT a.industry, COUNT(c.id) FROM accounts a
        JOIN contacts c ON c.account_id = a.id AND c.deleted = :no AND {seen('c', 'contacts')}
        WHERE a.deleted = :no AND a.name LIKE :tag AND {seen('a', 'accounts')}
        GROUP BY a.industry"""
    accounts = f"""
        SELECT a.industry, COUNT(*) FROM accounts a
        WHERE a.deleted = :no AND a.name LIKE :tag AND {seen('a', 'accounts')}
        GROUP BY a.industry"""
    params = {"no": False, "tag": f"{tag}%"}
    with site.engine.connect() as conn:
        found = [dict(list(conn.execute(sa.text(q), params))) for q in (sums, contacts, accounts)]
    return {i: (cents(found[0][i]) if found[0].get(i) is not None else None,
                found[1].get(i, 0), n) for i, n in found[2].items()}


def cents(value) -> Decimal:
    """SQLite sums amounts as floats: compared to the cent, as they are shown."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def figures(site, user, tag: str) -> dict:
    definition = check(site.registry, {**REPORT, "filters": [
        {"field": "name", "op": "starts", "value": tag}]})
    result = run(site, definition, user, _fmt())
    return {g.keys[0]: (cents(g.cells[0].value) if g.cells[0].value is not None else None,
                        g.cells[1].value, g.cells[2].value) for g in result.groups}


def _fmt():
    from core.kernel import i18n

    return i18n.Formatter(i18n.Preferences())


def world(site, tag: str, accounts, opportunities, contacts, teams=None) -> None:
    """Records straight from the drawn lists; ``teams`` {(module, index): [team ids]}."""
    account_ids = site.records.create_many("accounts", [
        {"name": f"{tag} {i}", "industry": industry, "assigned_user_id": owner}
        for i, (industry, owner) in enumerate(accounts)], SYSTEM_USER)
    ids = {"accounts": account_ids}
    ids["opportunities"] = site.records.create_many("opportunities", [
        {"name": f"{tag} deal {i}", "account_id": account_ids[a % len(account_ids)],
         "amount": amount, "sales_stage": "prospecting", "date_closed": "2026-06-30",
         "assigned_user_id": owner}
        for i, (a, amount, owner) in enumerate(opportunities)], SYSTEM_USER) \
        if opportunities and account_ids else []
    ids["contacts"] = site.records.create_many("contacts", [
        {"last_name": f"{tag} {i}", "account_id": account_ids[a % len(account_ids)],
         "assigned_user_id": owner}
        for i, (a, owner) in enumerate(contacts)], SYSTEM_USER) \
        if contacts and account_ids else []
    links = site.tables.tables["crbm_record_teams"]
    rows = [{"module": module, "team_id": team, "record_id": ids[module][index]}
            for (module, index), chosen in (teams or {}).items() if index < len(ids[module])
            for team in chosen]
    if rows:
        with site.engine.begin() as conn:
            conn.execute(links.delete().where(links.c.record_id.in_({r["record_id"] for r in rows})))
            conn.execute(links.insert(), rows)


def test_grouped_figures_equal_hand_written_sql(site, admin):
    world(site, "Fig", [("banking", None), ("banking", None), ("energy", None), (None, None)],
          [(0, "1000.50", None), (0, "200", None), (1, "300", None), (2, "40", None),
           (3, "5", None)],
          [(0, None), (0, None), (0, None), (2, None)])
    got = figures(site, admin, "Fig")
    assert got == reference(site, "Fig")
    # the fan-out a naive join makes: 1200.50 x 3 contacts
    assert got["banking"] == (Decimal("1500.5"), 3, 2)
    assert got[None] == (Decimal(5), 0, 1)


def test_a_team_level_user_sees_only_their_teams_figures(site, admin):
    """One case by hand, before the property test below tries many."""
    role, east = aa.create_role(site, "Team reports"), aa.create_team(site, "East")
    tess = create_user(site, "tess" + uuid.uuid4().hex[:6], "correct horse battery")
    aa.set_team_members(site, east, add=[tess.id])
    aa.set_role_rules(site, role, {m: ("enabled", {a: "team" for a in (
        "view", "list", "report")}) for m in ("accounts", "opportunities", "contacts")})
    aa.set_user_roles(site, tess.id, [role])
    world(site, "Team", [("banking", tess.id), ("banking", None)],
          [(0, "100", tess.id), (0, "7", None), (1, "1000", tess.id)], [(0, None), (1, tess.id)])
    # the deal of 1000 and the second contact hang off the account she cannot see
    assert figures(site, tess, "Team") == {"banking": (Decimal(100), 0, 1)}
    assert figures(site, admin, "Team") == {"banking": (Decimal(1107), 2, 2)}


@pytest.fixture
def team_user(site):
    role, east, west = (aa.create_role(site, "Team reports"), aa.create_team(site, "East"),
                        aa.create_team(site, "West"))
    tess = create_user(site, "tess", "correct horse battery")
    aa.set_team_members(site, east, add=[tess.id])
    aa.set_role_rules(site, role, {m: ("enabled", {a: "team" for a in (
        "view", "list", "report")}) for m in ("accounts", "opportunities", "contacts")})
    aa.set_user_roles(site, tess.id, [role])
    return tess, east, west, create_user(site, "otto", "correct horse battery")


def owners(*user_ids):
    return st.sampled_from([None, *user_ids])


@settings(max_examples=6 if SERVER_URL else 25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_property_a_team_level_users_report_equals_the_restricted_reference(
        site, admin, team_user, data):
    tess, east, west, otto = team_user
    tag = f"P{next(_tags)}x"
    accounts = data.draw(st.lists(st.tuples(st.sampled_from((*INDUSTRIES, None)),
                                            owners(tess.id, otto.id)), min_size=1, max_size=6))
    opportunities = data.draw(st.lists(st.tuples(
        st.integers(0, 5), st.decimals("0", "99999", places=2).map(str), owners(tess.id, otto.id)),
        max_size=8))
    contacts = data.draw(st.lists(st.tuples(st.integers(0, 5), owners(tess.id, otto.id)), max_size=8))
    some_teams = st.sets(st.sampled_from((east, west)))
    teams = {(m, i): data.draw(some_teams) for m, n in (
        ("accounts", len(accounts)), ("opportunities", len(opportunities)),
        ("contacts", len(contacts))) for i in range(n)}
    world(site, tag, accounts, opportunities, contacts, teams)

    def team_level(alias, module):  # the guide's "team" level, written out
        return (f"({alias}.assigned_user_id = '{tess.id}' OR {alias}.id IN (SELECT record_id "
                f"FROM crbm_record_teams WHERE module = '{module}' AND team_id = '{east}'))")

    assert figures(site, tess, tag) == reference(site, tag, team_level)
    assert figures(site, admin, tag) == reference(site, tag)


def test_a_runner_who_may_not_report_on_a_module_is_refused_by_name(site, team_user):
    tess = team_user[0]
    role = aa.user_roles(site, tess.id)[0]
    aa.set_role_rules(site, role, {"contacts": ("disabled", {})})
    with pytest.raises(ReportRefused, match="Contacts"):
        figures(site, tess, "x")


def test_bad_definitions_are_refused_with_every_problem_and_its_place(site):
    with pytest.raises(ReportError) as caught:
        check(site.registry, {
            "module": "accounts",
            "columns": [{"field": "no_such"}, {"via": "opportunities", "field": "amount"},
                        {"field": "name", "aggregate": "sum"}],
            "filters": [{"field": "annual_revenue", "op": "eq", "value": "lots"},
                        {"field": "industry", "op": "between", "value": 1}],
            "group_by": [{"field": "name", "by": "month"}],
            "chart": {"type": "radar"}})
    problems = {k: str(v) for k, v in caught.value.problems.items()}
    assert set(problems) >= {"columns[0].field", "columns[1].aggregate",
                             "columns[2].aggregate", "filters[1].op", "group_by[0].by",
                             "chart.type"}
    assert "no field 'no_such'" in problems["columns[0].field"]
    with pytest.raises(ReportError, match="not valid JSON"):
        check(site.registry, "{nope")
    with pytest.raises(ReportError, match="no module"):
        check(site.registry, {"module": "spaceships", "columns": [{"field": "name"}]})


def test_a_sum_over_several_currencies_is_a_number_marked_mixed_not_an_amount(site, admin):
    account = site.records.create("accounts", {"name": "Mix Corp"}, SYSTEM_USER)
    site.records.create_many("opportunities", [
        {"name": f"Mix {i}", "account_id": account["id"], "amount": amount,
         "amount_currency": currency, "sales_stage": stage}
        for i, (amount, currency, stage) in enumerate([
            ("100", "USD", "prospecting"), ("50", "USD", "prospecting"),
            ("200", "USD", "qualification"), ("30", "EUR", "qualification")])], SYSTEM_USER)
    definition = check(site.registry, {
        "module": "opportunities", "columns": [{"field": "amount", "aggregate": "sum"}],
        "filters": [{"field": "name", "op": "starts", "value": "Mix "}],
        "group_by": [{"field": "sales_stage"}]})
    result = run(site, definition, admin, _fmt())
    cells = {g.keys[0]: g.cells[0] for g in result.groups if g.level == 0}
    one, two = cells["prospecting"], cells["qualification"]
    assert (cents(one.value), one.mixed, one.text) == (Decimal("150.00"), False, "$150.00")
    assert (cents(two.value), two.mixed) == (Decimal("230.00"), True)  # 200 USD + 30 EUR
    assert "$" not in two.text and "€" not in two.text
    assert result.total.cells[0].mixed
