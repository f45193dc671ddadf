"""Email templates: what saving refuses (syntax, unknown variables, sandbox escapes), and
what rendering gives for a record — values as users see them, related records, the
sender, the translation for a language — or the one error it raises."""
import datetime as dt
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from core.kernel import i18n, users
from core.kernel.errors import ValidationError
from plugins.email_templates import render
from plugins.email_templates.render import TemplateError, html_to_text
from tests.pack_util import install_folder

MODULE = "email_templates"


def template(site, admin, **values):
    base = {"name": "T", "subject": "Hello", "body_html": "<p>Hi</p>"}
    return site.records.create(MODULE, {**base, **values}, admin)


def refused(site, admin, **values) -> dict:
    with pytest.raises(ValidationError) as caught:
        template(site, admin, **values)
    return caught.value.errors


def count(site) -> int:
    table = site.tables.tables["email_templates"]
    with site.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


@pytest.fixture
def acme(site, admin):
    return site.records.create("accounts", {
        "name": "Acme <script>alert(1)</script>", "account_type": "customer",
        "industry": "banking", "phone_office": "+33 1 23 45 67 89"}, admin)


@pytest.fixture
def jane(site, admin, acme):
    return site.records.create("contacts", {
        "first_name": "Jane", "last_name": "Doe", "account_id": acme["id"],
        "birthdate": dt.date(1990, 3, 14)}, admin)


# -- at save -------------------------------------------------------------------------------

def test_a_syntax_error_is_refused_on_its_field_with_the_line(site, admin):
    errors = refused(site, admin, for_module="contacts",
                     body_html="<p>Dear {{ first_name }},</p>\n<p>{% if account %}oops</p>")
    assert list(errors) == ["body_html"]
    assert errors["body_html"].startswith("Body line 2: ")
    errors = refused(site, admin, subject="Hello {{ first_name ")
    assert errors["subject"].startswith("Subject line 1: ")
    errors = refused(site, admin, body_text="ok\n{{ name|no_such_filter }}")
    assert errors["body_text"].startswith("Text body line 2: ")
    assert count(site) == 0  # nothing saved


def test_an_unknown_variable_for_the_module_is_refused(site, admin):
    errors = refused(site, admin, for_module="contacts", body_html="<p>{{ foo }}</p>")
    assert errors == {"body_html": "Unknown variable {{ foo }} in the body"}
    errors = refused(site, admin, for_module="contacts", subject="{{ account.no_such }}")
    assert errors == {"subject": "Unknown variable {{ account.no_such }} in the subject"}
    errors = refused(site, admin, for_module="contacts", subject="{{ user.password_hash }}")
    assert errors == {"subject": "Unknown variable {{ user.password_hash }} in the subject"}
    # what the module has is fine, related records' fields and locally set names too
    made = template(site, admin, for_module="contacts", subject="{{ first_name }} at "
                    "{{ account.name }} ({{ assigned_user.email }})",
                    body_html="{% set who = first_name %}<p>{{ who }} {{ record_url }} "
                              "{{ site.name }} {{ user.name }}</p>")
    assert made["subject"].startswith("{{ first_name }}")
    assert count(site) == 1


def test_internals_and_other_templates_are_refused_at_save(site, admin):
    assert "names starting with _" in refused(site, admin, subject="{{ ''.__class__ }}")["subject"]
    assert "include" in refused(site, admin, body_html="{% include 'base.html' %}")["body_html"]
    assert refused(site, admin, body_html="", body_text="") == {
        "body_html": "Give an HTML body or a text body."}


def test_a_field_removed_in_the_studio_is_refused_at_save_and_reported_at_run_time(
        site, admin, jane):
    site.studio.save_field(admin, "contacts", "nickname", {"type": "text", "label": "Nickname"}, new=True)
    made = template(site, admin, for_module="contacts", subject="Hi {{ nickname }}")
    assert render.render(site, made["id"], "contacts", jane["id"], user=admin).subject == "Hi"
    site.studio.remove_field(admin, "contacts", "nickname")
    with pytest.raises(TemplateError) as caught:
        render.render(site, made["id"], "contacts", jane["id"], user=admin)
    assert "Unknown variable {{ nickname }}" in str(caught.value)
    assert caught.value.field == "subject"
    with pytest.raises(ValidationError) as refused_again:
        site.records.update(MODULE, made["id"], {"description": "x", "subject": "Hi {{ nickname }}!"},
                            admin)
    assert refused_again.value.errors == {"subject": "Unknown variable {{ nickname }} in the subject"}


def test_html_is_sanitized_at_save_and_jinja_tags_are_kept(site, admin):
    made = template(site, admin, for_module="accounts",
                    body_html='<p onclick="x()">{% if name < "M" %}early{% endif %}</p>'
                              '<script>alert(1)</script><a href="{{ record_url }}">open</a>')
    assert made["body_html"] == ('<p>{% if name < "M" %}early{% endif %}</p>'
                                 '<a href="{{ record_url }}" rel="noopener noreferrer">open</a>')


# -- rendering -----------------------------------------------------------------------------

def test_values_are_shown_as_users_see_them_with_related_records(site, admin, acme, jane):
    made = template(site, admin, for_module="contacts",
                    subject="{{ first_name }} of {{ account.name }}",
                    body_html="<p>{{ name }}, born {{ birthdate }}, {{ account.account_type }} "
                              "in {{ account.industry }}; yours, {{ user.name }} "
                              "({{ assigned_user.name }}) {{ account_id }}</p>")
    mail = render.render(site, made["id"], "contacts", jane["id"], user=admin)
    assert mail.subject == "Jane of Acme <script>alert(1)</script>"  # the subject is text
    assert "Customer in Banking" in mail.html  # dropdown labels
    assert "born Mar 14, 1990" in mail.html  # the date as English readers read it
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in mail.html and "<script>" not in mail.html
    assert "yours, admin (admin)" in mail.html
    assert mail.text.startswith("Jane Doe, born Mar 14, 1990, Customer in Banking")
    assert "<script>alert(1)</script>" in mail.text  # text is not HTML: nothing to escape


def test_reads_are_one_statement_per_related_module(site, admin, acme, jane):
    owner = users.create_user(site, "owner", "correct horse battery")
    jane = site.records.create("contacts", {"last_name": "Owned", "account_id": acme["id"],
                                            "assigned_user_id": owner.id}, admin)
    assert jane["assigned_user_id"] == owner.id
    made = template(site, admin, for_module="contacts",
                    body_html="{{ account.name }} {{ account.phone_office }} "
                              "{{ account.industry }} {{ assigned_user.name }} {{ user.email }}")
    statements = []

    def count_it(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(site.engine, "before_cursor_execute", count_it)
    try:
        mail = render.render(site, made["id"], "contacts", jane["id"], user=admin)
    finally:
        sa.event.remove(site.engine, "before_cursor_execute", count_it)
    tables = [re.search(r"FROM (\w+)", s).group(1) for s in statements
              if "crbm_metadata_epoch" not in s]
    assert "Banking owner" in mail.html
    # the template, the contact, the account, the users (sender and owner): one each
    assert sorted(tables) == ["accounts", "contacts", "crbm_users",
                              "email_templates"], statements


def test_python_internals_are_refused_at_run_time(site, admin, jane):
    for source in ("{{ ''.__class__ }}", "{{ account.__class__ }}",
                   "{{ first_name.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}",
                   "{{ account|attr('_values') }}", "{{ 'x' * 10**9 }}", "{{ 9 ** 999999 }}",
                   "{% for x in range(10**9) %}{% endfor %}"):
        sneaky = {"id": "x", "name": "sneaky", "subject": "s", "body_html": source,
                  "for_module": "contacts"}
        with pytest.raises(TemplateError) as caught:
            render.render(site, sneaky, "contacts", jane["id"], user=admin)
        assert caught.value.field == "body_html", source


def test_a_missing_related_record_is_false_or_a_clear_error(site, admin):
    alone = site.records.create("contacts", {"last_name": "Alone"}, admin)
    made = template(site, admin, for_module="contacts",
                    body_html="<p>{% if account %}at {{ account.name }}{% else %}no account"
                              "{% endif %}</p>")
    assert "no account" in render.render(site, made["id"], "contacts", alone["id"],
                                         user=admin).html
    strict = template(site, admin, name="S", for_module="contacts",
                      body_html="<p>{{ account.name }}</p>")
    with pytest.raises(TemplateError) as caught:
        render.render(site, strict["id"], "contacts", alone["id"], user=admin)
    assert "has no Account" in str(caught.value)
    with pytest.raises(TemplateError) as caught:
        render.render(site, strict["id"], "accounts", alone["id"], user=admin)
    assert "is for contacts" in str(caught.value)
    with pytest.raises(TemplateError):
        render.render(site, strict["id"], "contacts", "no-such-id", user=admin)


def test_the_translation_follows_the_language_and_its_formats(site, admin, acme, jane):
    main = template(site, admin, for_module="contacts", subject="Hello {{ first_name }}",
                    body_html="<p>Born {{ birthdate }}</p>")
    template(site, admin, name="T fr", language="fr", variant_of_id=main["id"],
             subject="Bonjour {{ first_name }}", body_html="<p>Né le {{ birthdate }}</p>")
    english = render.render(site, main["id"], "contacts", jane["id"], user=admin)
    french = render.render(site, main["id"], "contacts", jane["id"], user=admin,
                           language="fr_CA")
    german = render.render(site, main["id"], "contacts", jane["id"], user=admin, language="de")
    assert (english.subject, english.language) == ("Hello Jane", "en")
    assert (french.subject, french.language) == ("Bonjour Jane", "fr")
    assert "Né le 14 mars 1990" in french.html  # French date
    assert german.subject == "Hello Jane"  # no German translation: the main template
    # a translation takes its main template's module
    variants = site.records.list(MODULE, admin)
    assert {v["for_module"] for v in variants} == {"contacts"}


def test_dropdown_labels_follow_the_template_language(site, admin, acme, jane):
    install_folder(site, "lang_fr")
    i18n.reload_translations()
    main = template(site, admin, for_module="contacts", body_html="{{ account.industry }}")
    template(site, admin, name="fr", language="fr", variant_of_id=main["id"],
             body_html="{{ account.industry }}")
    assert render.render(site, main["id"], "contacts", jane["id"], user=admin,
                         language="fr").html == "Banque"
    assert render.render(site, main["id"], "contacts", jane["id"], user=admin).html == "Banking"


def test_a_translation_is_checked_against_its_main_template(site, admin):
    main = template(site, admin, for_module="contacts")
    errors = refused(site, admin, name="fr", language="fr", variant_of_id=main["id"],
                     body_html="{{ industry }}")
    assert errors == {"body_html": "Unknown variable {{ industry }} in the body"}
    assert "already in this language" in refused(
        site, admin, name="en2", language="en", variant_of_id=main["id"])["language"]
    template(site, admin, name="fr", language="fr", variant_of_id=main["id"],
             body_html="{{ first_name }}")
    # the main template cannot move to a module its translation does not suit
    with pytest.raises(ValidationError) as caught:
        site.records.update(MODULE, main["id"], {"for_module": "accounts"}, admin)
    assert "The translation fr does not suit this module" in caught.value.errors["for_module"]


def test_amounts_and_extra_variables(site, admin, acme):
    # a template for no module in particular: its names are checked when it renders
    made = template(site, admin, subject="{{ name }}", body_html="",
                    body_text="{{ note }}: {{ figure }}")
    mail = render.render(site, made["id"], "accounts", acme["id"], user=admin,
                         extra={"note": "Due", "figure": Decimal("12.50")})
    assert mail.html is None and mail.text == "Due: 12.50"


def test_raw_values_compare_as_numbers_and_dates(site, admin, jane):
    made = template(site, admin, for_module="contacts", body_html="",
                    body_text="{% if raw.birthdate.year < 2000 %}older{% endif %} "
                              "{{ raw.first_name }}")
    assert render.render(site, made["id"], "contacts", jane["id"], user=admin).text == \
        "older Jane"
    assert refused(site, admin, for_module="contacts", subject="{{ raw.nope }}") == {
        "subject": "Unknown variable {{ raw.nope }} in the subject"}


def test_html_to_text():
    assert html_to_text('<p>Dear <b>Jane</b>,</p><ul><li>one</li><li>two</li></ul>'
                        '<p>See <a href="https://x.example/q">the quote</a><br>Bye</p>') == (
        "Dear Jane,\n\n- one\n- two\n\nSee the quote (https://x.example/q)\nBye\n")


def test_the_sender_is_a_user_with_a_name_and_email(site, admin, acme):
    marie = users.create_user(site, "marie", "correct horse battery")
    table = site.tables.tables["crbm_users"]
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == marie.id).values(
            display_name="Marie Curie", email="marie@example.com"))
    made = template(site, admin, for_module="accounts", subject="{{ user.name }} <{{ user.email }}>")
    assert render.render(site, made["id"], "accounts", acme["id"], user=marie).subject == \
        "Marie Curie <marie@example.com>"


def test_a_workflow_asks_whether_a_template_suits_its_module(site, admin):
    main = template(site, admin, subject="{{ name }}")  # for any module
    template(site, admin, name="fr", language="fr", variant_of_id=main["id"],
             subject="{{ industry }}")
    assert render.problem_for(site, main["id"], "accounts") is None
    assert render.problem_for(site, main["id"], "contacts") == \
        "fr: Unknown variable {{ industry }} in the subject"
    fixed = template(site, admin, name="C", for_module="contacts")
    assert render.problem_for(site, fixed["id"], "accounts") == \
        "The template C is for contacts, not accounts."
