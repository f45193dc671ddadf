"""Demo targets (half as many as demo accounts: names bought from a trade-show list,
business cards) and three target lists holding some targets, contacts and leads."""
from __future__ import annotations

from core.kernel.records import Query
from plugins.accounts.plugin import INDUSTRIES, _company_name, build_pools, domain_for, pick_country
from plugins.contacts.plugin import ROLES, _mailbox, _salutation

LISTS = (("Newsletter subscribers", "default", 0.4), ("Trade show 2026 invitations", "default",
                                                        0.2), ("Do not mail", "exempt", 0.03))


def target_row(rng, pools, user_id: str) -> dict:
    country = pick_country(rng)
    pool = pools[country.name]
    female = rng.random() < 0.5
    first = rng.choice(pool.first_female if female else pool.first_male)
    last = rng.choice(pool.last_names)
    company = _company_name(rng, pool, rng.choice(INDUSTRIES))
    title, department = ROLES.pick(rng)
    row = {"salutation": _salutation(rng, female), "first_name": first, "last_name": last,
           "account_name": company, "title": title, "department": department or None,
           "lead_source": rng.choice(["trade_show", "conference", "direct_mail", "campaign"]),
           "email1": f"{_mailbox(rng, first, last)}@{domain_for(company, country.tld)}",
           "phone_work": country.phone(rng) if rng.random() < 0.6 else None,
           "assigned_user_id": user_id}
    row.update(pool.address(rng, "primary_address"))
    return row


def load(site, user, size: int, rng, progress) -> None:
    from plugins.targets import members

    total = size // 2
    if total <= 0:
        return
    pools = build_pools(rng, scale=min(1000, max(200, total // 40)))
    made = site.records.create_many("prospects", [target_row(rng, pools, user.id)
                                                for _ in range(total)], user)
    progress(total, total)
    people = {module: [r["id"] for r in site.records.list(module, user, Query(
        fields=["id"], limit=2000))] for module in members.member_modules(site)}
    people["prospects"] = made
    for name, kind, share in LISTS:
        target_list = site.records.create("prospect_lists", {"name": name, "list_type": kind},
                                          user)
        for module, ids in people.items():
            chosen = [i for i in ids if rng.random() < share]
            if chosen:
                members.add_members(site, user, target_list["id"], module, chosen)
