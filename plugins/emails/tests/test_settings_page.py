"""Admin → Email settings (plugins/emails/settings_web.py): what an administrator sees and
saves, what a bad post says (nothing saved), the group email folders, and that nobody else
gets in."""
import html
import re

import pytest

from core.kernel.users import create_user
from core.testing import signed_in
from plugins.emails import folders
from plugins.emails.settings import email_settings

PASSWORD = "correct horse battery"
GOOD = {"link_account": "", "ignore_domains": "Ours.example\n@staff.ours.example",
        "fetch_batch": "150", "keep_raw": "1", "send_batch": "20", "tracking": "1",
        "auto_bcc": "archive@ours.example"}


def text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", page))


def test_the_admin_page_lists_the_page_and_shows_the_defaults(site, admin):
    with signed_in(site, "admin") as web:
        assert 'href="/admin/email"' in web.get("/admin").text
        page = web.get("/admin/email")
        assert page.status_code == 200
        shown = text(page.text)
        assert 'name="link_account" value="1" checked' in shown
        assert 'name="fetch_batch" inputmode="numeric" value="200"' in shown
        assert 'name="tracking" value="1" checked' not in shown  # off by default
        for folder in ("Group Inbox", "Customer Support", "Campaign Responses"):
            assert f"<li>{folder}</li>" in shown


def test_a_good_post_is_saved_and_said(site, admin):
    with signed_in(site, "admin") as web:
        response = web.post("/admin/email", data={"_csrf": web.csrf, **GOOD})
        assert response.status_code == 200 and response.url.path == "/admin/email"
        assert "The email settings were saved." in response.text
        assert "ours.example\nstaff.ours.example" in html.unescape(response.text)
    saved = email_settings(site)
    assert saved.link_account is False and saved.keep_raw is True and saved.tracking is True
    assert saved.ignore_domains == ("ours.example", "staff.ours.example")
    assert (saved.fetch_batch, saved.send_batch, saved.auto_bcc) == (150, 20,
                                                                     "archive@ours.example")


def test_a_bad_post_names_each_field_and_saves_nothing(site, admin):
    before = email_settings(site)
    with signed_in(site, "admin") as web:
        response = web.post("/admin/email", data={
            "_csrf": web.csrf, **GOOD, "fetch_batch": "0", "send_batch": "lots",
            "ignore_domains": "ours.example not_a_domain", "auto_bcc": "archive"})
        assert response.status_code == 422
        shown = text(response.text)
        assert "Nothing was saved. Please correct the fields marked below." in shown
        for name, message in (
                ("fetch_batch", "'0' is not a whole number from 1 to 5000"),
                ("send_batch", "'lots' is not a whole number from 1 to 5000"),
                ("ignore_domains", "'not_a_domain' is not a domain name such as example.com"),
                ("auto_bcc", "'archive' is not an email address")):
            assert f'id="f-{name}-error">{message}</p>' in shown
            assert f'aria-describedby="f-{name}-error"' in shown
        # what was typed is still there to correct
        assert 'value="lots"' in shown and "ours.example not_a_domain" in shown
    assert email_settings(site) == before


def test_the_form_needs_its_csrf_token(site, admin):
    with signed_in(site, "admin") as web:
        response = web.post("/admin/email", data=GOOD)
        assert response.status_code == 403
    assert email_settings(site).fetch_batch == 200


def test_group_folders_are_added_and_bad_names_refused(site, admin):
    with signed_in(site, "admin") as web:
        response = web.post("/admin/email/folders", data={"_csrf": web.csrf,
                                                          "folder_name": "  Partner   mail "})
        assert response.status_code == 200
        assert "The group folder Partner mail was added." in text(response.text)
        assert "<li>Partner mail</li>" in text(response.text)
        taken = "There is already a group folder called %s."
        for name, message in (("partner MAIL", taken % "partner MAIL"),
                              ("customer support", taken % "customer support"),
                              ("   ", "A folder needs a name."),
                              ("x" * 101, "At most 100 characters, on one line.")):
            refused = web.post("/admin/email/folders", data={"_csrf": web.csrf,
                                                             "folder_name": name})
            assert refused.status_code == 422
            assert f'id="f-folder_name-error">{message}</p>' in text(refused.text)
    group = [f.name for f in folders.visible(site, admin) if f.is_group]
    assert group == ["Group Inbox", "Customer Support", "Campaign Responses", "Partner mail"]


@pytest.mark.usefixtures("quick_hashes")
def test_a_user_who_is_not_an_administrator_gets_403(site, admin):
    create_user(site, "sam", PASSWORD)
    with signed_in(site, "sam", PASSWORD) as web:
        assert web.get("/admin/email").status_code == 403
        assert web.post("/admin/email", data={"_csrf": web.csrf, **GOOD}).status_code == 403
        assert web.post("/admin/email/folders", data={
            "_csrf": web.csrf, "folder_name": "Mine now"}).status_code == 403
    assert email_settings(site).fetch_batch == 200
    assert "Mine now" not in [f.name for f in folders.visible(site, admin)]
