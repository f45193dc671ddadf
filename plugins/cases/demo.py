"""Demo cases: the service skills list, the demo user rated in them, and cases for the
first demo accounts (a dozen whatever the demo's size) and their contacts — new, active,
pending, closed (some rated) — two of them naming the skills they need. The same seed
makes the same cases. Nothing is mailed (the settings' contact mail and surveys are off on
a new site)."""
from __future__ import annotations

from core.kernel.records import Query

ACCOUNTS = 12
SKILLS = (("Networking", "Routers, VPNs, firewalls."), ("Printers", "Laser and inkjet printers."),
          ("Accounting software", "Set-up and year-end closing."),
          ("On-site installation", "Hardware installed at the customer's."))
SUBJECTS = ("Printer jams on every page", "Cannot connect to the VPN",
            "Invoice shows the wrong tax", "Password reset does not arrive", "Request for on-site training",
            "Year-end closing fails", "Scanner is very slow", "New office needs cabling",
            "Licence key rejected", "Backup did not run last night")
STATUSES = ("new", "assigned", "in_progress", "pending", "closed", "closed")
PRIORITIES = ("p1", "p2", "p2", "p3")
TYPES = ("administration", "product", "user", "question")


def load(site, user, size, rng, progress) -> None:
    if "cases" not in site.registry.modules or site.records.count("cases", user, cap=0):
        return  # once
    skills = site.records.create_many("service_skills", [
        {"name": name, "description": text} for name, text in SKILLS], user)
    site.records.create_many("user_skills", [
        {"user_id": user.id, "skill_id": skill, "level": str(rng.randint(2, 5))}
        for skill in skills], user)
    accounts = site.records.list("accounts", user, Query(fields=["id"], sort="name",
                                                         limit=ACCOUNTS))
    contacts: dict[str, list[str]] = {}
    for c in site.records.list("contacts", user, Query(
            filters=[("account_id", "in", [a["id"] for a in accounts])],
            fields=["id", "account_id"], limit=None)):
        contacts.setdefault(c["account_id"], []).append(c["id"])
    rows = []
    for account in accounts:
        for _ in range(rng.randint(1, 3)):
            status = rng.choice(STATUSES)
            row = {"name": rng.choice(SUBJECTS), "account_id": account["id"],
                   "contact_id": rng.choice(contacts.get(account["id"]) or [None]),
                   "status": status, "priority": rng.choice(PRIORITIES),
                   "type": rng.choice(TYPES), "assigned_user_id": user.id,
                   "description": "Reported by phone; details in the History."}
            if status == "closed":
                row["resolution"] = "Solved with the customer on the phone."
            rows.append(row)
    ids = site.records.create_many("cases", rows, user)
    if ids and skills:
        site.records.create_many("case_skills", [
            {"case_id": ids[0], "skill_id": skills[0], "level": "2"},
            {"case_id": ids[0], "skill_id": skills[1], "level": "2"},
            {"case_id": ids[-1], "skill_id": skills[2], "level": "3"}], user)
    progress(len(ids), len(ids))
