"""Service subcontracts and supported products: what the modules refuse, the expiry
reminder sent once per subcontract and end date (in the app and by email through the
outbound queue, to a real SMTP server), and the account's subpanels."""
import datetime as dt

import pytest
import sqlalchemy as sa

from core import jobs
from core.kernel.errors import ValidationError
from core.kernel.users import create_user
from plugins.service_contracts import reminders

TODAY = dt.date(2026, 12, 6)


@pytest.fixture
def manager(site):
    user = create_user(site, "anna", "Manager-Pass-1!", is_admin=True)
    users = site.tables.tables["crbm_users"]
    with site.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == user.id)
                     .values(email="anna@example.com"))
    return user


def account(site, admin, name="Acme"):
    return site.records.create("accounts", {"name": name}, admin)


def contract(site, admin, account_id, end, **values):
    return site.records.create("subcontracts", {
        "name": "Acme support", "account_id": account_id, "date_start": dt.date(2025, 1, 1),
        "date_end": end, "assigned_user_id": values.pop("assigned_user_id", admin.id),
        **values}, admin)


def test_dates_and_accounts_are_checked(site, admin):
    acme, other = account(site, admin), account(site, admin, "Globex")
    with pytest.raises(ValidationError) as refused:
        contract(site, admin, acme["id"], dt.date(2024, 12, 31))
    assert set(refused.value.errors) == {"date_end"}
    theirs = contract(site, admin, other["id"], dt.date(2027, 6, 30))
    with pytest.raises(ValidationError) as refused:
        site.records.create("supported_products", {
            "name": "Printer", "account_id": acme["id"], "subcontract_id": theirs["id"]}, admin)
    assert set(refused.value.errors) == {"subcontract_id"}
    assert site.records.count("supported_products", admin) == 0
    ours = contract(site, admin, acme["id"], dt.date(2027, 6, 30))
    asset = site.records.create("supported_products", {
        "name": "Printer", "account_id": acme["id"], "subcontract_id": ours["id"],
        "serial_number": "SN-1", "purchase_cost": "450.00", "support_cost": "80.00"}, admin)
    covered = site.records.related("subcontracts", ours["id"], "supported_products", admin)
    assert [r["id"] for r in covered] == [asset["id"]]
    on_account = site.records.related("accounts", acme["id"], "subcontracts", admin)
    assert [r["id"] for r in on_account] == [ours["id"]]


def test_the_account_manager_is_reminded_once_before_the_end(site, admin, manager,
                                                              smtp_inbox):
    site.set_setting("service_contracts", {"reminder_days": 30})
    acme = account(site, admin)
    soon = contract(site, admin, acme["id"], TODAY + dt.timedelta(days=20),
                    assigned_user_id=manager.id)
    contract(site, admin, acme["id"], TODAY + dt.timedelta(days=90), name="Later",
             assigned_user_id=manager.id)
    contract(site, admin, acme["id"], TODAY + dt.timedelta(days=5), name="Cancelled",
             status="cancelled", assigned_user_id=manager.id)
    assert reminders.scan(site, TODAY) == 1
    assert reminders.scan(site, TODAY) == 0  # a second run, another worker: nothing twice
    assert reminders.scan(site, TODAY + dt.timedelta(days=1)) == 0
    jobs.run_due_jobs(site)
    [message] = smtp_inbox.messages
    assert message["To"] == "anna@example.com"
    assert message["Subject"] == "Renewal due: Acme support"
    assert "ends on" in message.get_body(("plain",)).get_content()
    notes = site.tables.tables["crbm_notifications"]
    with site.engine.connect() as conn:
        mine = conn.execute(sa.select(notes.c.record_id).where(
            notes.c.user_id == manager.id)).scalars().all()
    assert mine == [soon["id"]]
    # the email is filed on the subcontract (its History)
    sent = site.tables.tables["emails"]
    with site.engine.connect() as conn:
        parent = conn.execute(sa.select(sent.c.parent_id, sent.c.status)).all()
    assert [tuple(p) for p in parent] == [(soon["id"], "sent")]
    # renewed: the new end date is reminded in its turn
    site.records.update("subcontracts", soon["id"], {"date_end": TODAY + dt.timedelta(days=40)},
                        admin)
    assert reminders.scan(site, TODAY + dt.timedelta(days=15)) == 1


def test_no_reminders_when_turned_off(site, admin, manager):
    site.set_setting("service_contracts", {"reminder_days": 0})
    contract(site, admin, account(site, admin)["id"], TODAY + dt.timedelta(days=3),
             assigned_user_id=manager.id)
    assert reminders.scan(site, TODAY) == 0
    site.set_setting("service_contracts", {"reminder_days": "soon"})  # unusable: the default
    assert reminders.reminder_days(site) == 30
    assert reminders.scan(site, TODAY) == 1


def test_pages_show_the_contract_its_assets_and_the_accounts_subpanels(site, admin, web):
    acme = account(site, admin)
    ours = contract(site, admin, acme["id"], dt.date(2027, 6, 30), annual_fee="2400.00")
    site.records.create("supported_products", {
        "name": "Laser printer", "account_id": acme["id"], "subcontract_id": ours["id"],
        "serial_number": "SN-4711"}, admin)
    page = web.get(f"/m/subcontracts/{ours['id']}")
    assert page.status_code == 200
    assert "Acme support" in page.text and "Supported products" in page.text
    listing = web.get("/m/supported_products?q=SN-47")
    assert listing.status_code == 200 and "Laser printer" in listing.text
    assert "Service subcontracts" in web.get(f"/m/accounts/{acme['id']}").text


def test_each_asset_and_subcontract_lists_its_cases(site, admin, web):
    acme = account(site, admin)
    ours = contract(site, admin, acme["id"], dt.date(2027, 6, 30))
    printer = site.records.create("supported_products", {
        "name": "Laser printer", "account_id": acme["id"], "subcontract_id": ours["id"]}, admin)
    case = site.records.create("cases", {
        "name": "Paper jam", "account_id": acme["id"], "subcontract_id": ours["id"],
        "supported_product_id": printer["id"]}, admin)
    site.records.create("cases", {"name": "Other trouble", "account_id": acme["id"]}, admin)
    for module, record in (("supported_products", printer), ("subcontracts", ours)):
        history = site.records.related(module, record["id"], "cases", admin)
        assert [r["id"] for r in history] == [case["id"]]
    page = web.get(f"/m/cases/{case['id']}")
    assert "Laser printer" in page.text and "Acme support" in page.text
