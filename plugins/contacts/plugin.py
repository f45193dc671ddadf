"""Contacts: the people you deal with, usually at one of your accounts.

Provides the ``contacts`` module (modules/contacts.yaml) — name composed from salutation,
first and last name, the account link with the account's phone shown alongside, two
addresses, personal-data flags for GDPR — the ``salutation_dom`` and ``lead_source_dom``
dropdown lists, and demo contacts (about two per account, a few entered twice) through
``crbm_demo_data``.

vCard (vcard.py, vcard_web.py): a contact, or the contacts ticked on the list, exported as
vCard 3.0 or 4.0 (detail button, list mass actions), and .vcf files imported all or nothing
(create or update by UID: the ``vcard_uid`` field), from /vcard/import.
"""
from __future__ import annotations

import datetime as dt
import random

from core.kernel.errors import N_
from core.kernel.hookspecs import for_modules, hookimpl
from core.kernel.hooktypes import ListAction
from core.kernel.records import Query
from core.web import exporting
from plugins.accounts.plugin import COUNTRIES, Weighted, ascii_slug, build_pools, pick_country

__version__ = "0.1.0"

BATCH = 1_000
PER_ACCOUNT = 2

# (title, department), weighted towards the people a sales team actually talks to.
ROLES = Weighted({
    ("Chief Executive Officer", "Management"): 4, ("Managing Director", "Management"): 3,
    ("Chief Financial Officer", "Finance"): 3, ("Chief Technology Officer", "IT"): 3,
    ("Chief Operating Officer", "Operations"): 2, ("VP Sales", "Sales"): 5,
    ("VP Marketing", "Marketing"): 3, ("VP Engineering", "Engineering"): 2,
    ("Sales Manager", "Sales"): 8, ("Account Manager", "Sales"): 7,
    ("Sales Representative", "Sales"): 6, ("Marketing Manager", "Marketing"): 5,
    ("Marketing Coordinator", "Marketing"): 3, ("Purchasing Manager", "Purchasing"): 7,
    ("Buyer", "Purchasing"): 5, ("IT Manager", "IT"): 6, ("Systems Administrator", "IT"): 4,
    ("Software Engineer", "Engineering"): 4, ("Project Manager", "Operations"): 6,
    ("Operations Manager", "Operations"): 4, ("Office Manager", "Administration"): 5,
    ("Executive Assistant", "Administration"): 3, ("Controller", "Finance"): 3,
    ("Accountant", "Finance"): 4, ("HR Manager", "Human Resources"): 3,
    ("Customer Service Manager", "Support"): 3, ("Support Specialist", "Support"): 3,
    ("Consultant", ""): 2,
})
LEAD_SOURCES = Weighted({"existing_customer": 14, "web_site": 14, "cold_call": 10,
                         "trade_show": 8, "conference": 7, "word_of_mouth": 9, "partner": 7,
                         "email": 6, "campaign": 7, "self_generated": 5, "employee": 3,
                         "public_relations": 3, "direct_mail": 2, "other": 5})
FREE_MAIL = ["gmail.com", "outlook.com", "yahoo.com", "icloud.com", "gmx.net", "proton.me"]
ACCOUNT_FIELDS = ["id", "website", "phone_office", "billing_address_street",
                  "billing_address_city", "billing_address_state", "billing_address_postal_code",
                  "billing_address_country"]
BY_COUNTRY = {c.name: c for c in COUNTRIES}
BIRTH_FROM = dt.date(1955, 1, 1).toordinal()
BIRTH_TO = dt.date(2002, 12, 31).toordinal()


def _domain(website: str | None) -> str | None:
    if not website:
        return None
    host = website.split("://", 1)[-1].split("/", 1)[0].lower()
    return host.removeprefix("www.")


def _mailbox(rng: random.Random, first: str, last: str) -> str:
    given, family = ascii_slug(first) or "x", ascii_slug(last) or "x"
    return rng.choice([f"{given}.{family}", f"{given}.{family}", f"{given[0]}{family}",
                       f"{given[0]}.{family}", f"{given}{family}", given])


def _salutation(rng: random.Random, female: bool) -> str | None:
    roll = rng.random()
    if roll < 0.03:
        return rng.choice(["Dr.", "Prof."])
    if roll < 0.6:
        return rng.choice(["Ms.", "Ms.", "Mrs."]) if female else "Mr."
    return None


def contact_row(rng: random.Random, pools, account: dict | None, user_id: str) -> dict:
    country = BY_COUNTRY.get((account or {}).get("billing_address_country")) or pick_country(rng)
    pool = pools[country.name]
    female = rng.random() < 0.5
    first = rng.choice(pool.first_female if female else pool.first_male)
    last = rng.choice(pool.last_names)
    title, department = ROLES.pick(rng)
    domain = _domain((account or {}).get("website"))
    personal = f"{_mailbox(rng, first, last)}{rng.randrange(100) if rng.random() < 0.5 else ''}" \
        f"@{rng.choice(FREE_MAIL)}"
    row = {
        "salutation": _salutation(rng, female),
        "first_name": first,
        "last_name": last,
        "title": title,
        "department": department or None,
        "account_id": account["id"] if account else None,
        "email1": f"{_mailbox(rng, first, last)}@{domain}" if domain else personal,
        "email2": personal if domain and rng.random() < 0.1 else None,
        "phone_mobile": country.phone(rng) if rng.random() < 0.7 else None,
        "phone_home": country.phone(rng) if rng.random() < 0.1 else None,
        "birthdate": dt.date.fromordinal(rng.randint(BIRTH_FROM, BIRTH_TO))
        if rng.random() < 0.3 else None,
        "lead_source": LEAD_SOURCES.pick(rng) if rng.random() < 0.8 else None,
        "do_not_call": rng.random() < 0.03,
        "email_opt_out": rng.random() < 0.05,
        "assigned_user_id": user_id,
    }
    office = (account or {}).get("phone_office")
    if office and rng.random() < 0.5:  # reached through the switchboard
        row["phone_work"] = f"{office} x{rng.randint(100, 4999)}"
    else:
        row["phone_work"] = country.phone(rng)
    if account and account.get("billing_address_city"):  # people work where the company is
        for part in ("street", "city", "state", "postal_code", "country"):
            row[f"primary_address_{part}"] = account.get(f"billing_address_{part}")
    else:
        row.update(pool.address(rng, "primary_address"))
    if rng.random() < 0.05:
        row.update(pool.address(rng, "alt_address"))
    return row


@hookimpl(trylast=True)
def crbm_demo_data(site, user, size, rng, progress):
    """``size`` × 2 contacts: every account gets at least one, the rest spread at random;
    about one in a hundred is a person entered twice (``_enter_twice``)."""
    total = size * PER_ACCOUNT
    if total <= 0:
        return
    accounts = site.records.list("accounts", user, Query(fields=ACCOUNT_FIELDS, limit=None))
    if accounts:
        if len(accounts) > total:
            accounts = rng.sample(accounts, total)
        chosen = accounts + rng.choices(accounts, k=total - len(accounts))
        rng.shuffle(chosen)
    else:
        chosen = [None] * total
    pools = build_pools(rng, scale=min(1000, max(200, total // 40)))
    # its own generator, so the shared one (and every plugin's data after this) stays as it was
    twins = random.Random(f"contacts-twins-{total}")
    for start in range(0, total, BATCH):
        batch = [contact_row(rng, pools, account, user.id)
                 for account in chosen[start:start + BATCH]]
        _enter_twice(twins, batch)
        site.records.create_many("contacts", batch, user)
        progress(start + len(batch), total)


def _enter_twice(rng: random.Random, batch: list[dict], share: float = 0.01) -> None:
    """About ``share`` of the people entered a second time, as two colleagues do: the same
    person, email and account, another title, maybe a shortened first name (what "Find
    duplicates" and the merge page are for). A row is taken over only where its
    account has someone else in the batch, so every account keeps a contact."""
    per_account: dict = {}
    for row in batch:
        per_account[row["account_id"]] = per_account.get(row["account_id"], 0) + 1
    for i in range(1, len(batch)):
        if rng.random() >= share or per_account[batch[i]["account_id"]] < 2:
            continue
        original = batch[rng.randrange(i)]
        per_account[batch[i]["account_id"]] -= 1
        per_account[original["account_id"]] += 1
        # what the colleague typed differently: the title, maybe a shortened first name
        twin = {**original, "title": batch[i]["title"], "department": batch[i]["department"]}
        if rng.random() < 0.5:
            twin["first_name"] = original["first_name"][:max(3, len(original["first_name"]) - 1)]
        batch[i] = twin


@hookimpl(specname="crbm_web_routes")
def vcard_web_routes(site):
    from plugins.contacts import vcard_web

    return vcard_web.routes


@hookimpl(specname="crbm_record_actions")
@for_modules("contacts")
def vcard_record_actions(site, module, record, user):
    from core.web.actions import Action

    return [Action(N_("Export vCard"), f"/vcard/contacts/{record['id']}.vcf?version=3.0")]


@hookimpl(specname="crbm_list_actions")
@for_modules("contacts")
def vcard_list_actions(site, module, user):
    if not site.access.can(user, module, "export"):
        return []
    exports = [ListAction(N_("Export vCard 3.0"), "/vcard/contacts?version=3.0"),
               ListAction(N_("Export vCard 4.0"), "/vcard/contacts?version=4.0")] \
        if exporting.may_export(site, user, module) else []  # the site's export setting too
    return [*exports, ListAction(N_("Import vCard…"), "/vcard/import")]
