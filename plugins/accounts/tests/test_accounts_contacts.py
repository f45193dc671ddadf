"""The accounts plugin: what a 1CRM user expects of the module (its contacts:
plugins/contacts/tests/test_contacts.py)."""
import random
import uuid

import pytest

from core.kernel.errors import ValidationError
from core.kernel.records import Query

GUIDE_ACCOUNT_TYPES = ["Analyst", "Competitor", "Customer", "Integrator", "Investor", "Partner",
                       "Press", "Prospect", "Reseller", "Other"]


@pytest.fixture
def acme(site, admin):
    return site.records.create("accounts", {
        "name": "Acme Corporation", "account_type": "customer", "industry": "manufacturing",
        "phone_office": "+1 212 555 0100", "email1": "info@acme.example", "website": "acme.example",
        "billing_address_street": "1 Main Street", "billing_address_city": "Springfield",
        "billing_address_state": "IL", "billing_address_postal_code": "62701",
        "billing_address_country": "United States",
        "shipping_address_city": "Shelbyville", "shipping_address_country": "United States",
        "annual_revenue": "1250000", "annual_revenue_currency": "EUR", "employees": 120,
    }, admin)


# -- definitions ---------------------------------------------------------------------------

def test_account_type_offers_the_guides_ten_options(site):
    field = site.registry.module("accounts").fields["account_type"]
    options = site.registry.dropdowns[field.spec["options"]]
    assert field.spec["options"] == "account_type_dom"
    assert [o["label"] for o in options] == GUIDE_ACCOUNT_TYPES


def test_dropdowns_users_expect(site):
    labels = {name: [o["label"] for o in opts] for name, opts in site.registry.dropdowns.items()}
    assert labels["salutation_dom"] == ["Mr.", "Ms.", "Mrs.", "Miss", "Dr.", "Prof."]
    assert {"Cold Call", "Trade Show", "Web Site", "Word of mouth", "Other"} <= set(
        labels["lead_source_dom"])
    assert len(labels["industry_dom"]) >= 25


def test_modules_as_registered(site):
    accounts, contacts = site.registry.module("accounts"), site.registry.module("contacts")
    assert (accounts.label, accounts.label_singular) == ("Accounts", "Account")
    assert accounts.features == {"assignable": True, "team_owned": True, "audited": True,
                                 "importable": True, "activities": True}
    assert contacts.features["personal_data"] is True
    # composite fields arrive flat
    assert {"billing_address_city", "shipping_address_country", "annual_revenue_currency",
            "assigned_user_id"} <= set(accounts.fields)
    assert {"primary_address_street", "alt_address_postal_code"} <= set(contacts.fields)
    assert contacts.fields["birthdate"].spec["personal"] is True
    assert contacts.fields["alt_address_city"].spec["personal"] is True
    assert accounts.fields["email1"].spec.get("personal") is False
    assert accounts.layouts["subpanels"][:2] == ["contacts", "members"]
    assert {"quotes", "invoices", "emails"} <= set(accounts.layouts["subpanels"])
    assert accounts.layouts["quick_create"] == ["name", "account_type", "phone_office", "email1",
                                                "website"]


# -- accounts ------------------------------------------------------------------------------

def test_create_account_with_addresses(acme):
    assert acme["name"] == "Acme Corporation"
    assert acme["website"] == "https://acme.example"
    assert acme["billing_address_city"] == "Springfield"
    assert acme["shipping_address_city"] == "Shelbyville"
    assert acme["annual_revenue"] == 1250000
    assert acme["annual_revenue_currency"] == "EUR"
    assert acme["email_opt_out"] is False


def test_every_bad_account_field_is_named(site, admin):
    with pytest.raises(ValidationError) as caught:
        site.records.create("accounts", {
            "email1": "not-an-email", "phone_office": "call me", "account_type": "friend",
            "industry": "alchemy", "employees": -3, "website": "nowhere",
            "billing_address_postal_code": "9" * 21,
        }, admin)
    assert set(caught.value.errors) == {"name", "email1", "phone_office", "account_type",
                                        "industry", "employees", "website",
                                        "billing_address_postal_code"}
    assert caught.value.errors["name"] == "is required"


def test_account_name_changes_are_audited(site, admin, acme):
    site.records.update("accounts", acme["id"], {"name": "Acme Corp.", "rating": "Hot"}, admin)
    logged = {row["field"]: row for row in site.records.change_log("accounts", acme["id"])}
    assert logged["name"]["old_value"] == "Acme Corporation"
    assert logged["name"]["new_value"] == "Acme Corp."
    assert "rating" not in logged


def test_account_list_search_and_sort(site, admin, acme):
    site.records.create("accounts", {"name": "Zenith Ltd", "phone_office": "+44 20 7946 0000"},
                        admin)
    site.records.create("accounts", {"name": "Acorn Partners"}, admin)
    assert [r["name"] for r in site.records.list("accounts", admin)] == \
        ["Acme Corporation", "Acorn Partners", "Zenith Ltd"]
    found = site.records.list("accounts", admin, Query(search="ac"))
    assert {r["name"] for r in found} == {"Acme Corporation", "Acorn Partners"}
    assert [r["name"] for r in site.records.list("accounts", admin, Query(search="info@"))] == \
        ["Acme Corporation"]
    assert [r["name"] for r in site.records.list("accounts", admin, Query(search="+44"))] == \
        ["Zenith Ltd"]


def test_members_subpanel(site, admin, acme):
    branch = site.records.create("accounts", {"name": "Acme Europe", "member_of_id": acme["id"]},
                                 admin)
    members = site.records.related("accounts", acme["id"], "members", admin)
    assert [m["id"] for m in members] == [branch["id"]]
    assert site.records.related("accounts", branch["id"], "members", admin) == []
    with pytest.raises(ValidationError) as caught:
        site.records.create("accounts", {"name": "Orphan", "member_of_id": str(uuid.uuid4())},
                            admin)
    assert "member_of_id" in caught.value.errors
    with pytest.raises(ValidationError) as caught:
        site.records.update("accounts", acme["id"], {"member_of_id": acme["id"]}, admin)
    assert "member_of_id" in caught.value.errors


def test_member_of_hierarchy_refuses_loops(site, admin, acme):
    europe = site.records.create("accounts", {"name": "Acme Europe", "member_of_id": acme["id"]},
                                 admin)
    paris = site.records.create("accounts", {"name": "Acme Paris", "member_of_id": europe["id"]},
                                admin)
    with pytest.raises(ValidationError) as caught:  # Acme under its own grandchild
        site.records.update("accounts", acme["id"], {"member_of_id": paris["id"]}, admin)
    assert "one of its own members" in caught.value.errors["member_of_id"]
    assert site.records.get("accounts", acme["id"], admin)["member_of_id"] is None
    other = site.records.create("accounts", {"name": "Other Holdings"}, admin)
    moved = site.records.update("accounts", acme["id"], {"member_of_id": other["id"]}, admin)
    assert moved["member_of_id"] == other["id"]  # a loop-free move is fine


# -- search --------------------------------------------------------------------------------

def test_a_multi_word_search_still_matches_a_field_from_its_start(site, admin, acme):
    # "Acme Corp" starts the account's name: found as before, though "Corp" starts nothing
    assert [r["name"] for r in site.records.list("accounts", admin,
                                                 Query(search="Acme Corp"))] == \
        ["Acme Corporation"]
    assert site.records.list("accounts", admin, Query(search="Corp Acme")) == []

# -- demo data -----------------------------------------------------------------------------

def test_demo_data(site, admin):
    advanced = []
    given = {"site": site, "user": admin, "size": 50, "rng": random.Random(1),
             "progress": lambda done, total: advanced.append((done, total))}
    # these two plugins' demos only (converting demo leads, say, makes contacts too)
    for impl in reversed(site.hook.crbm_demo_data.get_hookimpls()):  # registration order
        if impl.plugin_name in ("accounts", "contacts"):
            impl.function(**{name: given[name] for name in impl.argnames})
    accounts = site.records.list("accounts", admin, Query(limit=None))
    contacts = site.records.list("contacts", admin, Query(limit=None))
    assert len(accounts) == 50
    assert len(contacts) == 100
    # accounts, then contacts: one call per batch (other plugins report their own totals)
    assert [a for a in advanced if a in {(50, 50), (100, 100)}] == [(50, 50), (100, 100)]

    by_id = {a["id"]: a for a in accounts}
    assert {c["account_id"] for c in contacts} == set(by_id)  # every account has someone
    members = [a for a in accounts if a["member_of_id"]]
    assert 1 <= len(members) <= 15
    assert all(m["member_of_id"] in by_id for m in members)
    assert len({a["name"] for a in accounts}) >= 45
    assert {a["account_type"] for a in accounts} <= {"analyst", "competitor", "customer",
                                                      "integrator", "investor", "partner",
                                                      "press", "prospect", "reseller", "other"}
    assert len({a["billing_address_country"] for a in accounts}) >= 3
    for contact in contacts:
        account = by_id[contact["account_id"]]
        domain = account["website"].split("://www.", 1)[1]
        assert contact["email1"].endswith("@" + domain)
        assert contact["name"].endswith(contact["last_name"])
        assert contact["assigned_user_id"] == admin.id
    assert any(c["birthdate"] for c in contacts)
    assert not all(c["birthdate"] for c in contacts)


def test_demo_data_is_reproducible():
    from plugins.accounts.plugin import account_row, build_pools

    def rows(seed):
        rng = random.Random(seed)
        pools = build_pools(rng, scale=50)
        return [account_row(rng, pools, ["A company."], "u") for _ in range(20)]

    assert rows(7) == rows(7)
    assert rows(7) != rows(8)
