"""Demo opportunities: a realistic pipeline for the first demo accounts — every stage
represented, open deals closing over the next two quarters, a few closed in the last
months — with one to three of the account's contacts in roles on most of them. A handful
whatever the demo's size; the same seed makes the same pipeline."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from core.kernel.records import Query

OPPORTUNITIES = 24
# (stage, share of deals): an ordinary funnel, wide at the top
STAGES = (("prospecting", 4), ("qualification", 3), ("needs_analysis", 3),
          ("value_proposition", 2), ("id_decision_makers", 2), ("perception_analysis", 2),
          ("proposal_price_quote", 3), ("negotiation_review", 2), ("closed_won", 2),
          ("closed_lost", 1))
SUBJECTS = ("CRM rollout", "Annual support renewal", "Network upgrade", "Office expansion",
            "Cloud migration", "Security audit", "Laptop refresh", "Training programme",
            "Data warehouse", "Call-centre headsets", "Managed print services",
            "ERP integration")
NEXT_STEPS = ("Send proposal", "Schedule demo", "Call the buyer", "Meet the CFO",
              "Technical workshop", "Negotiate terms", "Wait for budget approval", None)
ROLES = ("primary_decision_maker", "business_decision_maker", "technical_evaluator",
         "executive_sponsor", "influencer", "technical_decision_maker", "business_evaluator")
SOURCES = ("existing_customer", "web_site", "cold_call", "trade_show", "partner",
           "word_of_mouth", "campaign")


def _amount(rng) -> Decimal:
    """Deal sizes of a small B2B seller: mostly 5-60k, now and then a large one."""
    base = rng.choice((5, 8, 12, 15, 20, 25, 30, 40, 60, 120))
    return Decimal(base * 1000 + rng.randrange(0, 20) * 250)


def load(site, user, rng, progress) -> None:
    if site.records.count("opportunities", user, cap=0):
        return
    accounts = site.records.list("accounts", user, Query(fields=["id", "name"], sort="name",
                                                         limit=OPPORTUNITIES // 2))
    if not accounts:
        return
    contacts: dict[str, list[str]] = {}
    for c in site.records.list("contacts", user, Query(
            fields=["id", "account_id"], filters=[("account_id", "in",
                                                   [a["id"] for a in accounts])], limit=None)):
        contacts.setdefault(c["account_id"], []).append(c["id"])
    stages = [stage for stage, share in STAGES for _ in range(share)]
    today = dt.date.today()
    rows = []
    for index in range(OPPORTUNITIES):
        account = accounts[index % len(accounts)]
        stage = stages[index % len(stages)]
        closed = stage.startswith("closed_")
        # open deals close within the next two quarters, closed ones did in the last three months
        days = -rng.randint(5, 90) if closed else rng.randint(7, 180)
        rows.append({"name": f"{account['name']} — {SUBJECTS[index % len(SUBJECTS)]}",
                     "account_id": account["id"], "sales_stage": stage,
                     "amount": _amount(rng), "date_closed": today + dt.timedelta(days=days),
                     "opportunity_type": rng.choice(("new_business", "existing_business")),
                     "lead_source": rng.choice(SOURCES),
                     "next_step": None if closed else rng.choice(NEXT_STEPS),
                     "assigned_user_id": user.id})
    ids = site.records.create_many("opportunities", rows, user)
    links = []
    for opportunity_id, row in zip(ids, rows):
        people = contacts.get(row["account_id"]) or []
        if people and rng.random() < 0.75:
            for contact_id, role in zip(rng.sample(people, min(len(people), rng.randint(1, 3))),
                                        rng.sample(ROLES, 3)):
                links.append({"opportunity_id": opportunity_id, "contact_id": contact_id,
                              "contact_role": role})
    if links:
        site.records.create_many("opportunity_contacts", links, user)
    progress(len(ids), len(ids))
