"""The History panel, its count and the timeline (core/apps/activities) read an activity
kind's many-to-many relationships to the record's module too: an email linked to several
contacts (the emails plugin's ``contacts`` relationship) is in each contact's History,
counted once where a link field names the record as well, and only for readers who may
list it."""
import re

import pytest
import sqlalchemy as sa

from core.apps.activities import panels
from core.apps.admin import access_admin as aa
from core.kernel.records import SYSTEM_USER
from core.kernel.users import create_user
from core.testing import signed_in

PASSWORD = "correct horse battery"


@pytest.fixture
def linked(site, admin):
    if "emails" not in site.registry.modules:
        pytest.skip("the emails plugin is not active")
    ann = site.records.create("contacts", {"last_name": "Ann"}, admin)
    bob = site.records.create("contacts", {"last_name": "Bob"}, admin)
    email = site.records.create("emails", {"name": "Shared minutes", "status": "sent",
                                           "contact_id": ann["id"]}, SYSTEM_USER)
    for contact in (ann, bob):  # the kernel's link, as a user would add it
        site.records.link("emails", email["id"], "contacts", contact["id"], admin)
    return ann, bob, email


def test_a_kind_s_many_to_many_relationships_to_the_module_are_read(site, linked):
    contacts = site.registry.module("contacts")
    [emails] = [k for k in panels.kinds(site.registry, contacts) if k.module.name == "emails"]
    assert emails.link_relationships == ("contacts",)
    assert "contact_id" in emails.link_fields
    accounts = site.registry.module("accounts")
    [emails] = [k for k in panels.kinds(site.registry, accounts) if k.module.name == "emails"]
    assert emails.link_relationships == ()


def test_the_panel_its_count_and_the_timeline_show_a_linked_email(site, admin, linked):
    ann, bob, email = linked
    for contact in (ann, bob):
        [row] = [r["row"] for r in panels.rows(site, site.registry.module("contacts"),
                                                contact["id"], "history", admin)
                 if r["kind"].module.name == "emails"]
        assert row["id"] == email["id"]
    with signed_in(site, "admin") as web:
        for contact in (ann, bob):  # Ann's through contact_id and the link: once
            page = web.get(f"/m/contacts/{contact['id']}").text
            assert re.search(r'id="sub-history".*?data-panel-count="(\d+)"', page,
                             re.DOTALL).group(1) == "1"
            timeline = web.get(f"/m/contacts/{contact['id']}/timeline?fragment=1").text
            assert timeline.count("Shared minutes") == 1


def test_a_reader_who_may_not_list_the_email_does_not_see_it(site, admin, linked,
                                                            quick_hashes):
    _, bob, _ = linked
    aa.save_settings(site, {"inherit_created_by": False})
    role = aa.create_role(site, "Own emails only")
    rights = ("view", "list", "edit", "delete", "export", "report")
    aa.set_role_rules(site, role, {"emails": ("enabled", {a: "owner" for a in rights})})
    tess = create_user(site, "tess", PASSWORD)
    aa.set_user_roles(site, tess.id, [role])
    site.records.update("contacts", bob["id"], {"assigned_user_id": tess.id}, admin)
    assert panels.rows(site, site.registry.module("contacts"), bob["id"], "history",
                       tess) == []
    with signed_in(site, "tess", PASSWORD) as web:
        assert "Shared minutes" not in web.get(
            f"/m/contacts/{bob['id']}/panel/history?fragment=1").text
        page = web.get(f"/m/contacts/{bob['id']}").text
        found = re.search(r'id="sub-history".*?data-panel-count="(\d+)"', page, re.DOTALL)
        assert found is None or found.group(1) == "0"
    # the link table is what names it: removing the link takes it off Bob's History
    site.records.unlink("emails", linked[2]["id"], "contacts", bob["id"], admin)
    assert panels.rows(site, site.registry.module("contacts"), bob["id"], "history",
                       admin) == []
    table = site.tables.tables["emails_contacts"]
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 1
