"""The contacts plugin: what a 1CRM user expects of the module — the composed name, the
account's phone shown alongside, the account's subpanel and the people search."""
import pytest

from core.kernel.errors import ValidationError
from core.kernel.records import Query


@pytest.fixture
def acme(site, admin):
    return site.records.create("accounts", {"name": "Acme Corporation",
                                            "phone_office": "+1 212 555 0100"}, admin)


def test_contact_name_is_composed_from_its_parts(site, admin):
    ada = site.records.create("contacts", {"salutation": "Dr.", "first_name": "Ada",
                                           "last_name": "Lovelace"}, admin)
    assert ada["name"] == "Dr. Ada Lovelace"
    ada = site.records.update("contacts", ada["id"], {"salutation": None}, admin)
    assert ada["name"] == "Ada Lovelace"
    plain = site.records.create("contacts", {"last_name": "Babbage"}, admin)
    assert plain["name"] == "Babbage"


def test_contact_needs_a_last_name_and_valid_values(site, admin):
    with pytest.raises(ValidationError) as caught:
        site.records.create("contacts", {"first_name": "Ada", "email1": "ada(at)example.org",
                                         "phone_mobile": "mobile", "birthdate": "31/12/1815"},
                            admin)
    assert set(caught.value.errors) == {"last_name", "email1", "phone_mobile", "birthdate"}
    assert caught.value.errors["last_name"] == "is required"
    with pytest.raises(ValidationError) as caught:
        site.records.create("contacts", {"last_name": "Lovelace", "salutation": "Sir"}, admin)
    assert set(caught.value.errors) == {"salutation"}


def test_contact_shows_its_accounts_phone(site, admin, acme):
    wile = site.records.create("contacts", {"first_name": "Wile E.", "last_name": "Coyote",
                                            "account_id": acme["id"]}, admin)
    assert wile["account_phone"] == "+1 212 555 0100"
    site.records.update("accounts", acme["id"], {"phone_office": "+1 212 555 0199"}, admin)
    assert site.records.get("contacts", wile["id"], admin)["account_phone"] == "+1 212 555 0199"
    labelled = site.records.get("contacts", wile["id"], admin, labels=True)
    assert labelled["account_id__label"] == "Acme Corporation"
    with pytest.raises(ValidationError):
        site.records.update("contacts", wile["id"], {"account_phone": "+1 000 000 0000"}, admin)


def test_contacts_subpanel_of_an_account(site, admin, acme):
    other = site.records.create("accounts", {"name": "Globex"}, admin)
    ids = site.records.create_many("contacts", [
        {"first_name": "Wile E.", "last_name": "Coyote", "account_id": acme["id"]},
        {"first_name": "Road", "last_name": "Runner", "account_id": acme["id"]},
        {"first_name": "Hank", "last_name": "Scorpio", "account_id": other["id"]},
    ], admin)
    panel = site.records.related("accounts", acme["id"], "contacts", admin)
    assert [c["name"] for c in panel] == ["Wile E. Coyote", "Road Runner"]  # list sort: last_name
    site.records.delete("contacts", ids[0], admin)
    assert [c["id"] for c in site.records.related("accounts", acme["id"], "contacts", admin)] == \
        [ids[1]]


def test_contact_search(site, admin):
    site.records.create_many("contacts", [
        {"first_name": "Ada", "last_name": "Lovelace", "email1": "ada@analytical.example"},
        {"first_name": "Charles", "last_name": "Babbage", "email1": "cb@analytical.example"},
    ], admin)
    assert [r["last_name"] for r in site.records.list("contacts", admin, Query(search="lov"))] \
        == ["Lovelace"]
    assert [r["last_name"] for r in site.records.list("contacts", admin, Query(search="cha"))] \
        == ["Babbage"]
    assert [r["last_name"] for r in site.records.list("contacts", admin, Query(search="ada@"))] \
        == ["Lovelace"]



def test_full_name_search_finds_people_by_every_word(site, admin):
    """Each word of the search must start one of the searched name parts (or email), in
    any order and case: people are looked up by their full name."""
    site.records.create_many("contacts", [
        {"first_name": "Elizabeth", "last_name": "Hurley", "email1": "liz@example.com"},
        {"first_name": "Elizabeth", "last_name": "Taylor"},
        {"first_name": "Hugh", "last_name": "Grant"},
        {"first_name": "Liz", "last_name": "Hurleyson"},
    ], admin)

    def found(text: str) -> list[str]:
        rows = site.records.list("contacts", admin, Query(search=text, sort="last_name"))
        return [r["name"] for r in rows]

    assert found("Elizabeth Hurley") == ["Elizabeth Hurley"]
    assert found("hurley eliz") == ["Elizabeth Hurley"]
    assert found("  ELIZABETH   hurley ") == ["Elizabeth Hurley"]
    assert found("Elizabeth") == ["Elizabeth Hurley", "Elizabeth Taylor"]
    assert found("hurley") == ["Elizabeth Hurley", "Liz Hurleyson"]
    assert found("Elizabeth Grant") == []
    assert found("Elizabeth Smith") == []
    assert found("liz@example.com Hurley") == ["Elizabeth Hurley"]
    assert found("Eliz%") == [] and found("_lizabeth") == []  # LIKE wildcards are text
    # the web list and the pickers search the same way
    assert site.records.count("contacts", admin, Query(search="Hugh Grant")) == 1
