"""Light detail pages (issue 17): an account with records in many related modules shows its
subpanels' counts in a handful of statements and writes nothing; an opened subpanel's rows
(the fragment) and counts leave out what the reader may not see; recent items still follow
what was viewed, written in batches off the request."""
import re
import time

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from starlette.testclient import TestClient

from core.apps.admin import access_admin as aa
from core.kernel.records import SYSTEM_USER, Query
from core.kernel.users import create_user
from core.testing import ADMIN_PASSWORD, signed_in
from core.web import detail
from core.web.app import create_app
from core.web.recent import RecentItems
from tests.conftest import SERVER_URL
from tests.kernel.test_access_property import _as_user, build, clear, reference_admits, worlds

WRITES = ("INSERT", "UPDATE", "DELETE")


@pytest.fixture
def acme(site, admin):
    """An account with records in ten related modules (and a member organization)."""
    r = site.records
    acme = r.create("accounts", {"name": "Acme"}, admin)
    aid = acme["id"]
    r.create("accounts", {"name": "Acme Europe", "member_of_id": aid}, admin)
    for last in ("Coyote", "Runner", "Pepe"):
        r.create("contacts", {"last_name": last, "account_id": aid}, admin)
    r.create("emails", {"name": "Hello", "account_id": aid}, admin)
    r.create("quotes", {"name": "Q1", "stage": "draft", "account_id": aid}, admin)
    invoice = r.create("invoices", {"name": "I1", "account_id": aid}, admin)
    r.create("payments", {"account_id": aid, "amount": "10"}, admin)
    r.create("credit_notes", {"invoice_id": invoice["id"], "account_id": aid}, admin)
    r.create("purchase_orders", {"name": "P1", "status": "draft", "supplier_id": aid}, admin)
    r.create("bills", {"name": "B1", "supplier_id": aid}, admin)
    r.create("bill_payments", {"supplier_id": aid, "amount": "5"}, admin)
    r.create("sales_orders", {"name": "S1", "status": "ordered", "account_id": aid}, admin)
    r.update("accounts", aid, {"industry": "banking"}, admin)  # a change log entry
    return acme


@pytest.fixture
def statements(site):
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    sa.event.listen(site.engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(site.engine, "before_cursor_execute", record)


def counts(page: str) -> dict[str, int]:
    return {name: int(n) for name, n in re.findall(
        r'<details class="card subpanel" id="sub-(\w+)"(?:(?!</details>).)*?data-count="(\d+)"',
        page, re.DOTALL)}  # the Activities and History panels have no count: not here


def test_an_account_detail_is_a_few_statements_and_no_write(site, admin, acme, statements):
    create_user(site, "sam", ADMIN_PASSWORD)  # the default role: a non-administrator
    for username in ("admin", "sam"):
        with signed_in(site, username) as client:
            client.get(f"/m/accounts/{acme['id']}")  # warm: the grants, the cached statement
            statements.clear()
            page = client.get(f"/m/accounts/{acme['id']}")
            assert page.status_code == 200
            assert len(statements) <= 6, statements
            assert not [s for s in statements if s.split()[0].upper() in WRITES], statements
            shown = counts(page.text)
            # every subpanel the account's layout has, each with its count
            assert len(shown) == len(site.registry.module("accounts").layouts["subpanels"])
            assert shown["contacts"] == 3 and shown["members"] == 1
            assert all(shown[m] == 1 for m in ("emails", "quotes", "invoices", "payments",
                                               "credit_notes", "purchase_orders", "bills",
                                               "bill_payments", "sales_orders")), shown
            assert "Coyote" not in page.text  # rows come when a subpanel is opened
            if username == "admin":  # the change log names who changed what
                assert "Change log" in page.text and ">admin<" in page.text
            statements.clear()
            rows = client.get(f"/m/accounts/{acme['id']}/subpanel/contacts?fragment=1")
            assert len(statements) <= 3 and "<html" not in rows.text
            assert [n for n in ("Coyote", "Runner", "Pepe") if n in rows.text] == \
                ["Coyote", "Runner", "Pepe"]


def test_an_empty_subpanel_shows_zero_and_create_without_reading_rows(site, admin, web,
                                                                      statements):
    lonely = site.records.create("accounts", {"name": "Lonely"}, admin)
    web.get(f"/m/accounts/{lonely['id']}")
    statements.clear()
    page = web.get(f"/m/accounts/{lonely['id']}").text
    assert set(counts(page).values()) == {0}
    panel = re.search(r'id="sub-contacts".*?</details>', page, re.DOTALL).group(0)
    assert "data-empty" in panel and "/m/contacts/new?account_id=" in panel
    assert "None yet." in panel
    assert not [s for s in statements if s.startswith("SELECT contacts.")]  # no rows read


def test_counts_and_rows_leave_out_what_the_reader_may_not_see(site, admin, acme):
    """A contact denied to the reader is neither counted nor listed; the counts follow a
    change of access at once (the cached statement goes with the reader's grants)."""
    sam = create_user(site, "sam", ADMIN_PASSWORD)
    [coyote] = [c for c in site.records.related("accounts", acme["id"], "contacts", admin)
                if c["name"].endswith("Coyote")]
    with signed_in(site, "sam") as client:
        url = f"/m/accounts/{acme['id']}"
        assert counts(client.get(url).text)["contacts"] == 3
        aa.add_deny(site, "contacts", coyote["id"], user_id=sam.id)
        assert counts(client.get(url).text)["contacts"] == 2
        for fragment in ("?fragment=1", ""):  # what crbm.js fetches, and the page without JS
            rows = client.get(f"{url}/subpanel/contacts{fragment}")
            assert rows.status_code == 200
            assert "Coyote" not in rows.text and coyote["id"] not in rows.text
            assert "Runner" in rows.text and "Pepe" in rows.text
    with signed_in(site, "admin") as client:  # the administrator still sees all three
        assert counts(client.get(f"/m/accounts/{acme['id']}").text)["contacts"] == 3


def test_a_subpanel_of_a_record_one_may_not_see_is_not_found(site, admin, acme):
    sam = create_user(site, "sam", ADMIN_PASSWORD)
    aa.add_deny(site, "accounts", acme["id"], user_id=sam.id)
    with signed_in(site, "sam") as client:
        for url in (f"/m/accounts/{acme['id']}/subpanel/contacts?fragment=1",
                    f"/m/accounts/{acme['id']}/subpanel/contacts"):
            response = client.get(url)
            assert response.status_code == 404 and "Coyote" not in response.text
        assert client.get(f"/m/accounts/{acme['id']}/subpanel/nope").status_code == 404


def test_recent_items_follow_views_without_a_write_on_the_detail_page(site, admin, acme,
                                                                     statements):
    other = site.records.create("accounts", {"name": "Globex"}, admin)
    with signed_in(site, "admin") as client:
        statements.clear()
        client.get(f"/m/accounts/{other['id']}")
        client.get(f"/m/accounts/{acme['id']}")
        assert not [s for s in statements if s.split()[0].upper() in WRITES]
        home = client.get("/").text  # this worker's views are written before it reads
        assert home.index("Acme") < home.index("Globex")  # the latest first
        site.records.delete("accounts", other["id"], admin)
        assert "Globex" not in client.get("/").text  # a deleted record never shows


def test_each_worker_writes_its_own_views(site, admin, acme):
    """Two workers: a view in one reaches the other's home page once the first has written
    its batch (its thread does so every few seconds; here a short interval)."""
    with signed_in(site, "admin") as one:
        one.app.state.recent.close()
        one.app.state.recent = RecentItems(site, interval=0.05)
        one.get(f"/m/accounts/{acme['id']}")
        with signed_in(site, "admin") as two:
            deadline = time.monotonic() + 10
            while "Acme" not in two.get("/").text:
                assert time.monotonic() < deadline, "the first worker never wrote its view"
                time.sleep(0.05)


def test_two_workers_writing_one_view_keep_the_latest(site, admin, acme):
    """Both workers noted the same view: both batches land (no duplicate-key error), and
    the row holds the later time."""
    recent = site.tables.tables["crbm_recent_items"]
    one, two = RecentItems(site, interval=3600), RecentItems(site, interval=3600)
    try:
        one.note(admin.id, "accounts", acme["id"])
        two.note(admin.id, "accounts", acme["id"])
        (earlier,), (later,) = one._pending.values(), two._pending.values()
        assert two.flush() == 1 and one.flush() == 1  # the older batch written last
        with site.engine.connect() as conn:
            rows = conn.execute(sa.select(recent.c.viewed_at)).scalars().all()
        assert rows == [max(earlier, later)]
    finally:
        one.close()
        two.close()


def test_views_noted_before_shutdown_are_written(site, admin, acme):
    app = create_app(site)
    app.state.recent = RecentItems(site, interval=3600)  # the thread would wait an hour
    with TestClient(app) as client:
        login = client.get("/login")
        csrf = re.search(r'name="_csrf" value="([^"]+)"', login.text).group(1)
        client.post("/login", data={"_csrf": csrf, "username": "admin",
                                    "password": ADMIN_PASSWORD})
        client.get(f"/m/accounts/{acme['id']}")
        recent = site.tables.tables["crbm_recent_items"]
        with site.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(recent)).scalar() == 0
    with site.engine.connect() as conn:  # the application shut down: written
        assert conn.execute(sa.select(recent.c.record_id)).scalars().all() == [acme["id"]]
    assert site.records.get("accounts", acme["id"], SYSTEM_USER)



def test_teams_denies_and_log_names_come_with_the_counts(site, admin, acme):
    """What the one statement also answers: the record's teams, an administrator's denies
    (with names) and team choices, and who appears in the change log."""
    north, south = aa.create_team(site, "North"), aa.create_team(site, "South")
    aa.create_team(site, "West")
    sam = create_user(site, "sam", ADMIN_PASSWORD, display_name="Sam Spade")
    site.records.set_teams("accounts", [acme["id"]], admin, add=[north, south])
    site.records.update("accounts", acme["id"], {"industry": "energy"}, admin)
    aa.add_deny(site, "accounts", acme["id"], user_id=sam.id)
    aa.add_deny(site, "accounts", acme["id"], team_id=south)
    with signed_in(site, "admin") as client:
        page = client.get(f"/m/accounts/{acme['id']}").text
    teams = re.search(r"<dd data-teams>(.*?)</dd>", page, re.DOTALL).group(1)
    assert re.findall(r'<span class="tag">(.*?)</span>', teams) == ["North", "South"]
    access = re.search(r'<section class="card" id="access">(.*?)</section>', page,
                       re.DOTALL).group(1)
    assert re.findall(r"<li>(.*?) <small", access) == ["Sam Spade", "South"]
    assert re.findall(r'<option value="[^"]+">(\w+)</option>', access) == \
        ["North", "South", "West"]  # every team, by name: the deny form's choices
    log = page.split("Change log")[1]
    assert ">admin<" in log and "Industry" in log
    aa.remove_deny(site, _deny_id(site, sam.id))
    with signed_in(site, "sam") as client:  # not an administrator: no denies section
        page = client.get(f"/m/accounts/{acme['id']}").text
    assert 'id="access"' not in page and "West" not in page
    teams = re.search(r"<dd data-teams>(.*?)</dd>", page, re.DOTALL).group(1)
    assert re.findall(r'<span class="tag">(.*?)</span>', teams) == ["North", "South"]


def _deny_id(site, user_id: str) -> int:
    denies = site.tables.tables["crbm_record_denies"]
    with site.engine.connect() as conn:
        return conn.execute(sa.select(denies.c.id).where(denies.c.user_id == user_id)).scalar()


@settings(max_examples=15 if SERVER_URL else 40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(world=worlds())
def test_subpanel_counts_and_rows_admit_what_the_access_reference_admits(site, world):
    """The access property (tests/kernel/test_access_property.py) for subpanels: in a drawn
    organisation, every user's count of an account's contacts (the detail page's one
    statement, its cached form included) and the rows of its subpanel are exactly the
    contacts the plain Python reading of the model lets them list."""
    clear(site)
    made = build(site, world)
    account_of = {c["id"]: c["account_id"] for c in site.records.list(
        "contacts", SYSTEM_USER, Query(fields=["id", "account_id"], limit=None))}
    denied = {}
    for module, index, who in world["denies"]:
        if module == "contacts" and made[module]:
            denied.setdefault(made[module][index % len(made[module])][0], set()).add(who)
    accounts = site.registry.module("accounts")
    for user in world["users"]:
        u = _as_user(user)
        for account_id, _ in made["accounts"]:
            expected = {contact_id for (contact_id, teams), spec in
                        zip(made["contacts"], world["records"]["contacts"])
                        if account_of[contact_id] == account_id and reference_admits(
                            world, user, "contacts", "list", {
                                "owner": spec["owner"], "creator": spec["creator"],
                                "teams": teams, "denied_to": denied.get(contact_id, set())})}
            for _ in range(2):  # built, then from the grants' cache
                facts = detail.facts(site, accounts, {"id": account_id, "created_by": None}, u,
                                     [{"name": "contacts"}])
                assert facts.counts["contacts"] == len(expected), (user, account_id)
            rows = site.records.related("accounts", account_id, "contacts", u,
                                        Query(fields=["id"], limit=None))
            assert {r["id"] for r in rows} == expected
