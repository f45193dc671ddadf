"""The scheduler task ``admin.prune_deleted`` (core/apps/admin/prune.py): records deleted
longer ago than the retention go for good, with their links, the kernel's rows about them
and their line items; younger ones, and ones live records still point at, stay."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from core.apps.admin import access_admin, prune
from core.kernel import users
from core.kernel.records import now
from core.kernel.users import create_user
from tests.pack_util import install_folder


def age_deletion(site, module: str, record_id: str, days: int) -> None:
    """Make the record look deleted ``days`` ago (a delete stamps ``modified_at``)."""
    table = site.tables.tables[site.registry.module(module).table]
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == record_id).values(
            modified_at=now() - dt.timedelta(days=days)))


def ids(site, table_name: str, column: str = "id") -> set[str]:
    table = site.tables.tables[table_name]
    with site.engine.connect() as conn:
        return set(conn.execute(sa.select(table.c[column])).scalars())


def kernel_rows(site, record_id: str) -> dict[str, int]:
    """How many rows each kernel table keeps about ``record_id``."""
    counts = {}
    with site.engine.connect() as conn:
        for name in ("crbm_change_log", "crbm_record_teams", "crbm_recent_items",
                     "crbm_record_denies"):
            table = site.tables.tables[name]
            counts[name] = conn.execute(sa.select(sa.func.count()).select_from(table)
                                        .where(table.c.record_id == record_id)).scalar()
    return counts


@pytest.fixture
def world(site, admin):
    """Tax codes and rates linked many-to-many, quotes with lines, accounts; some deleted
    40 days ago, some 10 days ago, owned by different users."""
    clerk = create_user(site, "clerk", "correct horse battery")
    records = site.records
    team = access_admin.create_team(site, "Sales")
    made = {}
    for name in ("old", "young", "kept"):
        made[f"rate_{name}"] = records.create("tax_rates", {"name": f"Rate {name}", "rate": "5"},
                                             admin)["id"]
        made[f"code_{name}"] = records.create("tax_codes", {"name": f"Code {name}",
                                                            "code": name.upper()}, admin)["id"]
        records.link("tax_codes", made[f"code_{name}"], "rates", made[f"rate_{name}"], admin)
    account = records.create("accounts", {"name": "Acme"}, admin)["id"]
    for name, owner in (("old", clerk), ("young", admin)):
        made[f"quote_{name}"] = records.create("quotes", {
            "name": f"Quote {name}", "account_id": account, "assigned_user_id": owner.id,
            "line_items": [{"name": "Work", "lines": [
                {"name": "Setup", "quantity": "2", "unit_price": "50"}]}]}, admin)["id"]
        records.update("quotes", made[f"quote_{name}"], {"stage": "negotiation"}, admin,
                       teams=[team])
    # a live quote's line keeps a tax code deleted long ago (it is priced with it again)
    made["code_used"] = records.create("tax_codes", {"name": "Used", "code": "USED"},
                                       admin)["id"]
    made["quote_live"] = records.create("quotes", {
        "name": "Quote live", "account_id": account, "line_items": [{"name": "Work", "lines": [
            {"name": "Setup", "quantity": "1", "unit_price": "10",
             "tax_code_id": made["code_used"]}]}]}, admin)["id"]
    made["account_old"] = records.create("accounts", {"name": "Gone Ltd"}, admin)["id"]
    # a live contact still links to an account deleted long ago ("Held Inc (deleted)")
    made["account_held"] = records.create("accounts", {"name": "Held Inc"}, admin)["id"]
    made["contact"] = records.create("contacts", {"last_name": "Still", "account_id":
                                                  made["account_held"]}, admin)["id"]
    recent = site.tables.tables["crbm_recent_items"]
    denies = site.tables.tables["crbm_record_denies"]
    with site.engine.begin() as conn:
        for key in ("quote_old", "quote_young"):
            conn.execute(recent.insert().values(user_id=admin.id, module="quotes",
                                                record_id=made[key], viewed_at=now()))
            conn.execute(denies.insert().values(module="quotes", record_id=made[key],
                                                user_id=clerk.id, created_at=now()))
    for module, key in (("tax_codes", "code_old"), ("tax_rates", "rate_kept"),
                        ("tax_codes", "code_used"),
                        ("quotes", "quote_old"), ("accounts", "account_old")):
        records.delete(module, made[key], admin)
        age_deletion(site, module, made[key], 40)
    for module, key in (("tax_codes", "code_young"), ("quotes", "quote_young")):
        records.delete(module, made[key], admin)
        age_deletion(site, module, made[key], 10)
    accounts = site.tables.tables["accounts"]
    with site.engine.begin() as conn:  # deleted around the record service: the link stays
        conn.execute(accounts.update().where(accounts.c.id == made["account_held"])
                     .values(deleted=True, modified_at=now() - dt.timedelta(days=90)))
    return made


def test_the_task_is_offered_weekly(site):
    tasks = [t for found in site.hook.crbm_scheduled_tasks(site=site) for t in found or []]
    task = next(t for t in tasks if t.name == "admin.prune_deleted")
    assert (task.label, task.schedule, task.enabled) == \
        ("Prune deleted records", "0 3 * * 0", True)


def test_records_deleted_past_the_retention_go_with_what_hangs_off_them(site, world):
    before = {name: ids(site, name) for name in ("tax_codes", "tax_rates", "quotes", "accounts")}
    old_quote, young_quote = world["quote_old"], world["quote_young"]
    assert kernel_rows(site, old_quote) == kernel_rows(site, young_quote) == {
        "crbm_change_log": 1, "crbm_record_teams": 1, "crbm_recent_items": 1,
        "crbm_record_denies": 1}

    result = prune.run(site, now())  # the due time the scheduler passes
    assert result == "Removed 4 records from 4 modules; 2 kept: live records still refer to them"

    assert ids(site, "tax_codes") == before["tax_codes"] - {world["code_old"]}
    assert ids(site, "tax_rates") == before["tax_rates"] - {world["rate_kept"]}
    assert ids(site, "quotes") == before["quotes"] - {old_quote}
    assert ids(site, "accounts") == before["accounts"] - {world["account_old"]}
    # the many-to-many links of both removed sides went; the others stayed
    links = ids(site, "tax_code_rates", "tax_codes_id")
    assert links == {world["code_young"]}
    # the old quote's lines, kernel rows went; the young one's are all there
    assert ids(site, "quotes_lines", "record_id") == {young_quote, world["quote_live"]}
    assert ids(site, "quotes_line_groups", "record_id") == {young_quote, world["quote_live"]}
    assert set(kernel_rows(site, old_quote).values()) == {0}
    assert set(kernel_rows(site, young_quote).values()) == {1}
    # the account a live contact still names stays, and the tax code a live line uses
    assert world["account_held"] in ids(site, "accounts")
    assert world["code_used"] in ids(site, "tax_codes")

    again = prune.run(site, None)
    assert again == "Removed 0 records from 0 modules; 2 kept: live records still refer to them"


def test_batches_take_the_lot_and_a_retention_of_0_keeps_everything(site, admin):
    made = [site.records.create("tax_rates", {"name": f"R{i}", "rate": "1"}, admin)["id"]
            for i in range(5)]
    assert site.records.delete_many("tax_rates", made, admin) == 5
    for record_id in made:
        age_deletion(site, "tax_rates", record_id, 400)
    site.set_setting(prune.SETTING, {"retention_days": 0})
    assert prune.run(site, None) == \
        "Deleted records are kept for ever (Admin → Deleted records)."
    assert ids(site, "tax_rates") == set(made)
    site.set_setting(prune.SETTING, {"retention_days": 365})
    # a run is for its due time: one due 60 days ago prunes what was deleted 425 days ago
    assert prune.run(site, now() - dt.timedelta(days=60)) == \
        "Removed 0 records from 0 modules"
    pruned = prune.prune(site, batch=2)  # three write transactions
    assert pruned.removed == {"tax_rates": 5} and ids(site, "tax_rates") == set()


def test_the_retention_is_an_admin_setting(site, web):
    page = web.get("/admin/deleted-records")
    assert page.status_code == 200 and 'value="30"' in page.text
    assert "/admin/deleted-records" in web.get("/admin").text
    bad = web.post("/admin/deleted-records", data={"_csrf": web.csrf, "retention_days": "-3"})
    assert bad.status_code == 400
    assert "&#39;-3&#39; is not a number of days from 0 to 36500" in bad.text
    assert prune.retention_days(site) == 30
    saved = web.post("/admin/deleted-records", data={"_csrf": web.csrf, "retention_days": "7"},
                     follow_redirects=False)
    assert saved.status_code == 303 and prune.retention_days(site) == 7


def test_a_french_administrator_reads_the_page_in_french(site, web, admin):
    install_folder(site, "lang_fr")
    users.save_preferences(site, admin.id, {"language": "fr"})
    page = web.get("/admin/deleted-records")
    assert "Conserver les enregistrements supprimés pendant (jours)" in page.text
    bad = web.post("/admin/deleted-records", data={"_csrf": web.csrf, "retention_days": "x"})
    assert "&#39;x&#39; n&#39;est pas un nombre de jours entre 0 et 36500" in bad.text
