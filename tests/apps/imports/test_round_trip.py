"""The round trip of a migration: every module of a demo site exported (the full-site zip),
then imported into a fresh site through the wizard's saved mappings, in the wizard's
module order: the same records with the same ids, relationships, dropdown values, dates,
amounts and custom fields (two Studio fields on accounts).

What does not come back as it was, and why (docs/architecture.md, "Import"): a lead the
old site converted (converting makes it); the occurrences of a recurring series (saving
the series makes them again, with ids of their own) and the invitees of those; users (not
a module: the test makes them first, as the guide's first step, and records find their
users by name)."""
from __future__ import annotations

import os
import zipfile

import pytest

from cli import load_demo
from core.apps.imports import files, mapping, run, web
from core.apps.site_export.export import export_site
from core.kernel.records import Query
from core.kernel.site import Site, create_site
from core.kernel.users import create_user

NOT_AS_IS = {"invitees"}  # (see the docstring)
# The import's database work runs on every database in test_import.py; this one adds
# Studio fields, after which a server database is made again for the next test (~20 s)
pytestmark = pytest.mark.skipif(os.environ.get("CRBM_TEST_DATABASE_URL") is not None,
                                reason="the round trip runs on SQLite only (time)")


def _comparable(site, module, user, fields):
    """id -> field values, users by name (the two sites' user ids differ)."""
    users = {u.id: u.username for u in _users(site)}
    out = {}
    extra = [f for f in ("recurrence_series_id", "recurrence_rule", "status")
             if f in module.fields and f not in fields]
    for r in site.records.list(module.name, user, Query(limit=None, fields=fields + extra)):
        if r.get("recurrence_series_id") or r.get("recurrence_rule") or \
                r.get("status") == "converted":
            continue  # (see the docstring)
        out[r["id"]] = {f: users.get(r[f], r[f]) if module.fields[f].type.name == "user"
                        else r[f] for f in fields}
    return out


def _users(site):
    import sqlalchemy as sa
    t = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        return conn.execute(sa.select(t.c.id, t.c.username, t.c.display_name)).all()


def test_a_demo_site_exported_and_imported_comes_back_the_same(site, admin, tmp_path):
    old = Site(create_site(tmp_path / "old", None))
    try:
        old.sync_schema()
        owner = create_user(old, "admin", "Old-site-password-1", is_admin=True)
        load_demo(old, owner, 12, seed=3)
        # the Studio's custom fields, on both sites (a migration brings the customizations)
        for target, user in ((old, owner), (site, admin)):
            target.studio.save_field(user, "accounts", "loyalty_tier",
                                     {"type": "dropdown", "options": "account_type_dom"},
                                     new=True)
            target.studio.save_field(user, "accounts", "renewal_date", {"type": "date"},
                                     new=True)
        for index, account in enumerate(old.records.list("accounts", owner, Query(limit=5))):
            old.records.update("accounts", account["id"], {
                "loyalty_tier": "partner", "renewal_date": f"2027-0{index + 1}-15"}, owner)
        export_site(old, tmp_path / "old.zip")
        archive = zipfile.ZipFile(tmp_path / "old.zip")
        # the guide's first step, Users: the same people on the new site (by user name)
        for user_row in _users(old):
            if user_row.username not in {u.username for u in _users(site)} and \
                    user_row.username != "system":
                create_user(site, user_row.username, "New-site-password-1",
                            display_name=user_row.display_name)
        imported = []
        for module in web.import_order(site, admin):
            entry = f"modules/{module.name}.csv"
            if entry not in archive.namelist():
                continue
            path = tmp_path / f"{module.name}.csv"
            path.write_bytes(archive.read(entry))
            table = files.open_table(path)
            if not table.samples(1):
                continue  # the demo has none of these
            # the wizard's saved mapping: made once, applied to the file
            mapping.save(site, module.name, "From the old site", table.header,
                         mapping.automatic(site, module, table.header), {}, admin.id)
            saved = mapping.find_saved(site, module.name, "From the old site")
            session_id = run.start(site, admin, module.name, path, path.name,
                                   mapping.apply_saved(saved, table.header),
                                   run.Options(create_missing=False), queue=False)
            summary = run.run_session(site, session_id)
            assert summary.processed == summary.created + summary.skipped
            imported.append(module)
        assert {"accounts", "contacts", "opportunities", "cases", "products", "quotes",
                "invoices", "notes", "calls", "meetings"} <= {m.name for m in imported}
        for module in imported:
            if module.name in NOT_AS_IS:
                continue
            fields = [f.name for f in mapping.importable_fields(module)
                      if not f.spec.get("read_only")]  # a plugin's to keep (versions)
            if module.name == "accounts":
                assert {"loyalty_tier", "renewal_date"} <= set(fields)
            before = _comparable(old, module, owner, fields)
            after = _comparable(site, module, admin, fields)
            assert before.keys() <= after.keys(), module.name
            for record_id, values in before.items():
                assert after[record_id] == values, (module.name, record_id)
    finally:
        old.close()
