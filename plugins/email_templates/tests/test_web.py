"""The template's pages: the form refuses a broken template beside its field and saves
nothing; the module is chosen from the site's modules; "Preview against a record" shows
what the template gives for a record, or the error that stops it."""
import html
import re

import sqlalchemy as sa

from core.kernel import i18n, users
from tests.pack_util import install_folder

MODULE = "email_templates"


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def count(site) -> int:
    table = site.tables.tables[MODULE]
    with site.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


def test_the_form_offers_the_modules_and_refuses_an_unknown_variable(site, admin, web):
    form = web.get("/m/email_templates/new").text
    assert '<select id="f_for_module" name="for_module">' in form
    assert '<option value="contacts">Contact</option>' in form
    response = web.post("/m/email_templates/new", data={
        "_csrf": web.csrf, "name": "Broken", "for_module": "contacts", "language": "en",
        "subject": "Hello {{ first_name }}", "body_html": "<p>{{ foo }}</p>"})
    assert response.status_code == 422
    assert '<p class="error-text" id="f_body_html-error">Unknown variable {{ foo }} in the body' \
        in html.unescape(response.text)
    response = web.post("/m/email_templates/new", data={
        "_csrf": web.csrf, "name": "Broken", "for_module": "contacts", "language": "en",
        "subject": "Hello {{ first_name", "body_html": "<p>Hi</p>"})
    assert response.status_code == 422
    assert "Subject line 1: " in html.unescape(response.text)
    assert count(site) == 0


def test_the_list_and_detail_show_the_module_by_its_name(site, admin, web):
    made = site.records.create(MODULE, {"name": "Hello", "for_module": "contacts",
                                        "subject": "Hi", "body_html": "<p>Hi</p>"}, admin)
    assert ">Contact<" in web.get("/m/email_templates").text
    detail = web.get(f"/m/email_templates/{made['id']}").text
    assert ">Contact<" in detail
    assert f'href="/email_templates/{made["id"]}/preview"' in detail
    assert "Preview against a record" in detail


def test_preview_shows_the_rendered_mail_or_the_error(site, admin, web):
    acme = site.records.create("accounts", {"name": "Acme & Sons", "industry": "banking"},
                               admin)
    made = site.records.create(MODULE, {
        "name": "Check-in", "for_module": "accounts", "subject": "Call {{ name }}",
        "body_html": "<p>{{ name }} ({{ industry }}) <a href=\"{{ record_url }}\">open</a></p>"},
        admin)
    url = f"/email_templates/{made['id']}/preview"
    page = web.get(url)
    assert page.status_code == 200 and 'data-source="/m/accounts/pick"' in page.text
    page = web.get(url, params={"module": "accounts", "record_id": acme["id"]})
    assert page.status_code == 200
    assert '<p id="preview-subject">Call Acme &amp; Sons</p>' in page.text
    assert f'<a href="/m/accounts/{acme["id"]}" rel="noopener noreferrer">open</a>' in page.text
    assert "Acme & Sons (Banking) open (/m/accounts/" in text_of(page.text)
    page = web.get(url, params={"module": "accounts", "record_id": "no-such-record"})
    assert page.status_code == 422
    assert "There is no Account with id no-such-record" in text_of(page.text)
    page = web.get(url, params={"module": "accounts", "record_id": ""})
    assert page.status_code == 422 and "Choose a record" in page.text


def test_preview_in_french_for_a_french_reader(site, admin, web):
    install_folder(site, "lang_fr")
    i18n.reload_translations()
    acme = site.records.create("accounts", {"name": "Acme", "industry": "banking"}, admin)
    main = site.records.create(MODULE, {"name": "Check-in", "for_module": "accounts",
                                        "subject": "Call {{ name }}",
                                        "body_html": "<p>{{ industry }}</p>"}, admin)
    site.records.create(MODULE, {"name": "Appel", "language": "fr", "variant_of_id": main["id"],
                                 "subject": "Appeler {{ name }}",
                                 "body_html": "<p>{{ industry }}</p>"}, admin)
    users.save_preferences(site, admin.id, i18n.Preferences(language="fr").to_dict())
    page = web.get(f"/email_templates/{main['id']}/preview",
                   params={"record_id": acme["id"], "language": "fr"})
    assert "Aperçu" in page.text  # the page in French
    assert '<p id="preview-subject">Appeler Acme</p>' in page.text
    assert '<div class="html-value" id="preview-html"><p>Banque</p></div>' in page.text
