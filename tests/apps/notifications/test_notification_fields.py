"""Admin → Notification emails (core.apps.notifications.fields, implementation guide §7.4.5):
the fields an administrator adds appear under each record in the assignee's email, in the
assignee's language and formats; a bad choice is refused by name and nothing is saved."""
import datetime as dt

import pytest

from core import jobs
from core.kernel import i18n, users
from core.testing import ADMIN_PASSWORD, signed_in
from tests.pack_util import install_folder


@pytest.fixture
def rep(site):
    found = users.create_user(site, "rep", ADMIN_PASSWORD)
    table = site.tables.tables["crbm_users"]
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == found.id).values(email="rep@example.com"))
    return found


def post(web, data):
    return web.post("/admin/notification-emails", data={"_csrf": web.csrf, **data},
                    follow_redirects=False)


def test_chosen_fields_come_under_the_record_in_the_assignees_language(site, admin, rep,
                                                                      smtp_inbox):
    install_folder(site, "lang_fr")
    users.save_preferences(site, rep.id, i18n.Preferences(language="fr").to_dict())
    with signed_in(site, "admin") as web:
        page = web.get("/admin/notification-emails")
        assert page.status_code == 200
        assert 'name="f_opportunities" value="amount"' in page.text
        assert 'name="f_leads" value="lead_source"' in page.text
        saved = post(web, {"f_opportunities": ["amount", "date_closed", "sales_stage"],
                           "f_leads": "lead_source"})
        assert saved.status_code == 303
        assert 'value="amount" checked' in web.get("/admin/notification-emails").text
    acme = site.records.create("accounts", {"name": "Acme"}, admin)
    site.records.create("opportunities", {
        "name": "Big deal", "amount": "12500.50", "date_closed": dt.date(2027, 3, 31),
        "sales_stage": "proposal_price_quote", "account_id": acme["id"],
        "assigned_user_id": rep.id}, admin)
    jobs.run_due_jobs(site)
    [message] = smtp_inbox.messages
    body = message.get_content()
    assert "Big deal" in body
    assert "12\u202f500,50" in body or "12 500,50" in body  # French digits
    assert "31 mars 2027" in body and "Montant de l’affaire : " in body
    assert "Proposition/Devis" in body  # the stage's label, in French


def test_a_field_the_module_does_not_have_is_refused_and_nothing_saved(site, admin):
    with signed_in(site, "admin") as web:
        refused = post(web, {"f_opportunities": ["amount", "password_hash"]})
        assert refused.status_code == 422
        assert "has no field &#39;password_hash&#39; to add" in refused.text
        assert site.settings.get("notification_fields") is None


def test_only_administrators_choose(site, admin, rep):
    with signed_in(site, "rep") as web:
        assert web.get("/admin/notification-emails").status_code == 403
        assert post(web, {"f_leads": "lead_source"}).status_code == 403
    assert site.settings.get("notification_fields") is None
