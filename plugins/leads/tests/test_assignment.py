"""Assignment notifications on leads (features.notify_assignment, core.apps.notifications):
the new assignee gets the bell and, while their preference is on, an email through the
site's outgoing mail (a real SMTP server here, aiosmtpd) — once, whatever the retries."""

import pytest
import sqlalchemy as sa

from core import jobs
from core.kernel import i18n, users
from core.testing import ADMIN_PASSWORD, signed_in
from plugins.leads import convert


@pytest.fixture
def inbox(site, smtp_inbox):
    """The shared test SMTP server; links in the mail point at the site's address, and the
    job queue the mail went through is closed after."""
    site.set_setting("base_url", "https://crm.example.com")
    yield smtp_inbox
    jobs.close(site)


def person(site, name, language="en"):
    found = users.create_user(site, name, ADMIN_PASSWORD)
    table = site.tables.tables["crbm_users"]
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == found.id)
                     .values(email=f"{name}@example.com"))
    users.save_preferences(site, found.id, i18n.Preferences(language=language).to_dict())
    return found


def bell(site, user) -> list[str]:
    table = site.tables.tables["crbm_notifications"]
    with site.engine.connect() as conn:
        return list(conn.execute(sa.select(table.c.message).where(table.c.user_id == user.id)
                                 .order_by(table.c.id)).scalars())


def test_the_new_assignee_is_told_by_the_bell_and_by_email(site, admin, inbox):
    rep = person(site, "rep")
    lead = site.records.create("leads", {"first_name": "John", "last_name": "Doe",
                                         "assigned_user_id": rep.id}, admin)
    mine = site.records.create("leads", {"last_name": "Mine"}, admin)  # their own: no notice
    assert bell(site, rep) == ["Lead “John Doe” was assigned to you by admin."]
    assert bell(site, admin) == []
    assert jobs.run_due_jobs(site) == 1
    [message] = inbox.messages
    assert message["To"] == "rep@example.com"
    assert message["Subject"] == "Lead “John Doe” was assigned to you by admin."
    assert f"https://crm.example.com/m/leads/{lead['id']}" in message.get_content()
    assert jobs.run_due_jobs(site) == 0 and len(inbox.messages) == 1

    # a redelivered job finds its notification mailed: nothing twice
    from core.apps.notifications import assignment
    key = f"assigned:leads:{lead['id']}:1"
    assert assignment.send_mail_job(site, {"user_id": rep.id, "keys": [key]}) == \
        "nothing left to mail"
    # reassigning (a mass update of two leads) tells the new assignee once per lead
    assert site.records.update_many("leads", [lead["id"], mine["id"]],
                                    {"assigned_user_id": rep.id}, admin) == 1
    assert len(bell(site, rep)) == 2
    # converting does not notify anyone: the contact module has no such flag
    convert.convert(site, admin, mine["id"], account_name="Acme")
    assert len(bell(site, rep)) == 2


def test_preference_off_means_the_bell_only(site, admin, inbox):
    rep = person(site, "rep", "fr")
    with signed_in(site, "rep") as client:
        page = client.get("/preferences").text
        assert 'name="assignment_email" value="1" checked' in page
        saved = client.post("/preferences", data={
            "_csrf": client.csrf, "language": "en", "timezone": "UTC",
            "date_format": "medium", "time_format": "short"}, follow_redirects=False)
        assert saved.status_code == 303
        assert 'name="assignment_email" value="1" checked' not in client.get("/preferences").text
    site.records.create("leads", {"last_name": "Roe", "assigned_user_id": rep.id}, admin)
    assert bell(site, rep) == ["Lead “Roe” was assigned to you by admin."]
    jobs.run_due_jobs(site)
    assert inbox.messages == []


def test_a_rolled_back_save_notifies_no_one(site, admin):
    rep = person(site, "rep")
    with pytest.raises(RuntimeError), site.engine.begin() as conn:
        site.records.create("leads", {"last_name": "Gone", "assigned_user_id": rep.id}, admin,
                            connection=conn)
        raise RuntimeError("the caller's transaction fails afterwards")
    assert bell(site, rep) == []
    assert jobs.run_due_jobs(site) == 0
    jobs.close(site)
