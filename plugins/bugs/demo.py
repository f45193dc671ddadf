"""Demo bugs: a handful of bugs and enhancement requests, each linked to one or two of the
demo cases (the Cases and Bugs subpanels). The same seed makes the same bugs."""
from __future__ import annotations

from core.kernel.records import Query

BUGS = (("Export drops accented characters", "defect", "2.1", None),
        ("Dark mode for the portal", "feature", "2.0", None),
        ("Crash when printing an empty work order", "defect", "2.1", "2.2"),
        ("Search ignores the product code", "defect", "2.0", "2.1"),
        ("Bulk close of cases", "feature", "2.1", None))


def load(site, user, size, rng, progress) -> None:
    if "bugs" not in site.registry.modules or site.records.count("bugs", user, cap=0):
        return  # once
    ids = site.records.create_many("bugs", [
        {"name": name, "type": kind, "found_in": found, "fixed_in": fixed,
         "status": "closed" if fixed else rng.choice(("new", "assigned", "in_progress")),
         "resolution": "fixed" if fixed else None, "assigned_user_id": user.id}
        for name, kind, found, fixed in BUGS], user)
    cases = [c["id"] for c in site.records.list("cases", user, Query(
        fields=["id"], sort="number", limit=20))]
    for bug_id in ids:
        for case_id in rng.sample(cases, min(len(cases), rng.randint(1, 2))):
            site.records.link("bugs", bug_id, "cases", case_id, user)
    progress(len(ids), len(ids))
