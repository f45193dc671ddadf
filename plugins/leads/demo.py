"""Demo leads: 1.5 per demo account — people met at trade shows, from the web site, cold
calls — at companies that are not accounts yet, in every status, a few already converted
through the real conversion (so their account, contact and links exist)."""
from __future__ import annotations

import datetime as dt

from core.kernel.records import Query
from plugins.accounts.plugin import (
    INDUSTRIES,
    Weighted,
    _company_name,
    build_pools,
    domain_for,
    pick_country,
)
from plugins.contacts.plugin import FREE_MAIL, LEAD_SOURCES, ROLES, _mailbox, _salutation

BATCH = 1_000
PER_ACCOUNT = 1.5
CONVERTED_SHARE = 0.06
STATUSES = Weighted({"new": 30, "assigned": 20, "in_process": 25, "recycled": 8, "dead": 10})
TEMPERATURES = Weighted({"cold": 40, "warm": 35, "hot": 15, None: 10})
SOURCES = Weighted({"web_site": 20, "trade_show": 12, "cold_call": 12, "conference": 9,
                    "word_of_mouth": 8, "partner": 7, "email": 7, "campaign": 9,
                    "direct_mail": 3, "self_generated": 5, "other": 3})
NOTES = ["Asked for a demo after the webinar.", "Met at the booth; wants pricing for 50 seats.",
         "Downloaded the white paper.", "Referred by an existing customer.",
         "Budget approved for next quarter.", "Evaluating two other vendors.",
         "Call back after the summer holidays.", "Interested in the on-premise edition."]


def lead_row(rng, pools, user_id: str) -> dict:
    country = pick_country(rng)
    pool = pools[country.name]
    female = rng.random() < 0.5
    first = rng.choice(pool.first_female if female else pool.first_male)
    last = rng.choice(pool.last_names)
    company = _company_name(rng, pool, rng.choice(INDUSTRIES))
    domain = domain_for(company, country.tld)
    title, department = ROLES.pick(rng)
    free = rng.random() < 0.15
    row = {
        "salutation": _salutation(rng, female),
        "first_name": first,
        "last_name": last,
        "account_name": company,
        "title": title,
        "department": department or None,
        "status": STATUSES.pick(rng),
        "temperature": TEMPERATURES.pick(rng),
        "lead_source": SOURCES.pick(rng) if rng.random() < 0.9 else LEAD_SOURCES.pick(rng),
        "email1": f"{_mailbox(rng, first, last)}@{rng.choice(FREE_MAIL) if free else domain}",
        "phone_work": country.phone(rng),
        "phone_mobile": country.phone(rng) if rng.random() < 0.5 else None,
        "website": f"https://www.{domain}" if rng.random() < 0.7 else None,
        "do_not_call": rng.random() < 0.03,
        "email_opt_out": rng.random() < 0.05,
        "description": rng.choice(NOTES) if rng.random() < 0.4 else None,
        "assigned_user_id": user_id,
    }
    row.update(pool.address(rng, "primary_address"))
    return row


def load(site, user, size: int, rng, progress) -> None:
    from plugins.leads import convert

    total = int(size * PER_ACCOUNT)
    if total <= 0:
        return
    pools = build_pools(rng, scale=min(1000, max(200, total // 40)))
    made: list[str] = []
    for start in range(0, total, BATCH):
        rows = [lead_row(rng, pools, user.id) for _ in range(min(BATCH, total - start))]
        made += site.records.create_many("leads", rows, user)
        progress(len(made), total)
    # a few were won over: converted as a user would — at companies already accounts (a
    # new department buying; the demo's size stays its number of accounts) —, with an
    # opportunity when the opportunities plugin is there
    accounts = site.records.list("accounts", user, Query(fields=["name"], limit=None))
    if not accounts:
        return
    chosen = rng.sample(made, max(1, int(len(made) * CONVERTED_SHARE)))
    stages = []
    if convert.has_opportunities(site):
        field = site.registry.module(convert.OPPORTUNITIES).fields.get("sales_stage")
        stages = [value for value, _label in site.registry.choices(field)] if field else []
    for lead_id in chosen:
        account = rng.choice(accounts)
        lead = site.records.update("leads", lead_id, {"account_name": account["name"]}, user)
        opportunity = None
        if stages and rng.random() < 0.6:
            deal = rng.choice(["Licences", "Pilot", "Services", "Renewal"])
            closes = dt.date.today() + dt.timedelta(days=rng.randrange(10, 180))
            opportunity = {"name": f"{lead['account_name']} - {deal}",
                           "amount": str(rng.randrange(20, 900) * 100),
                           "date_closed": closes.isoformat(),
                           "sales_stage": rng.choice(stages[:4])}
        convert.convert(site, user, lead_id, account_id=account["id"], opportunity=opportunity)

