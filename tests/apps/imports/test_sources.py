"""SugarCRM CE 6.5 and SuiteCRM 7 exports (fixtures/: their real header layouts, built from
those projects' sources as fixtures/README.md says) import with no manual mapping, in the
guide's module order: contacts linked to their accounts by name, phones' leading ``'``
taken off, multi-line streets and UTF-8 city names intact, activities on their parents."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.apps.imports import files, manage, mapping, run
from core.kernel.records import Query

FIXTURES = Path(__file__).parent / "fixtures"
ORDER = [("accounts", "Accounts"), ("opportunities", "Opportunities"),
         ("contacts", "Contacts"), ("leads", "Leads"), ("calls", "Calls"),
         ("meetings", "Meetings"), ("tasks", "Tasks"), ("notes", "Notes")]


@pytest.mark.parametrize("source", ["sugarcrm65", "suitecrm7"])
def test_an_export_imports_with_automatic_mapping(site, admin, tmp_path, source):
    skipped = {}
    for module, their in ORDER:
        path = tmp_path / f"{their}.csv"
        shutil.copy(FIXTURES / source / f"{their}.csv", path)
        table = files.open_table(path)
        columns = mapping.automatic(site, site.registry.module(module), table.header, source)
        session_id = run.start(site, admin, module, path, path.name, columns,
                               run.Options(source=source), queue=False)
        summary = run.run_session(site, session_id)
        assert summary.processed == summary.created + summary.skipped
        skipped[module] = [run.reason_text(r["reason"])
                           for r in manage.skipped(site, admin, session_id)]
    # the one row refused: a lead already converted there (converting makes it here)
    assert {m: s for m, s in skipped.items() if s} == {"leads": [(
        "A lead becomes Converted by converting it (Convert, on its page), which makes its "
        "account and contact.")]}
    accounts = {a["name"]: a for a in site.records.list("accounts", admin, Query(limit=None))}
    munich = accounts["Müller Maschinenbau GmbH"]
    assert munich["billing_address_street"] == "Leopoldstraße 12\nHinterhaus, 3. OG"
    assert munich["billing_address_city"] == "München"
    assert accounts["Wawel Software Sp. z o.o."]["billing_address_city"] == "Kraków"
    assert accounts["Müller Maschinenbau do Brasil Ltda."]["billing_address_city"] == "São Paulo"
    contacts = {c["last_name"]: c for c in site.records.list("contacts", admin, Query(limit=None))}
    assert contacts["Müller"]["account_id"] == munich["id"]
    assert contacts["Bennett"]["account_id"] == munich["id"]
    assert contacts["Wiśniewski"]["account_id"] == accounts["Wawel Software Sp. z o.o."]["id"]
    assert contacts["Bennett"]["phone_mobile"] == "+44 20 7946 0958"  # was '+44 20 ...
    calls = site.records.list("calls", admin, Query(limit=None))
    assert calls and all(c["parent_id"] for c in calls)
    opportunities = site.records.list("opportunities", admin, Query(limit=None))
    assert all(o["account_id"] for o in opportunities)
