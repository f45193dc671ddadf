"""RecordService: reads, writes, change log, conflicts, links and lifecycle hooks."""
import datetime as dt

import pytest
from sqlalchemy import event as sa_event

from core.kernel.errors import ConflictError, NotFoundError, ValidationError, VetoError
from core.kernel.records import Query
from core.kernel.sequences import format_prefix


@pytest.fixture
def gadgets(site, admin):
    rows = [{"name": f"Gadget {i:02d}", "quantity": i, "kind": ("tool", "toy", "other")[i % 3],
             "tags": ["red"] if i % 2 else ["blue", "green"]} for i in range(1, 31)]
    site.records.create_many("gadgets", rows, admin)
    return rows


def names(rows):
    return [r["name"] for r in rows]


def test_list_filters_sorts_and_pages(site, admin, gadgets):
    page = site.records.list("gadgets", admin, Query(filters={"kind": "toy"}, sort="-quantity",
                                                     limit=3, offset=1, fields=["name", "quantity"]))
    assert names(page) == ["Gadget 25", "Gadget 22", "Gadget 19"]
    assert set(page[0]) == {"id", "name", "quantity"}  # only the fields asked for
    ranged = site.records.list("gadgets", admin, Query(
        filters=[("quantity", "gte", 10), ("quantity", "lt", 13)], sort="quantity"))
    assert [r["quantity"] for r in ranged] == [10, 11, 12]
    tagged = site.records.count("gadgets", admin, Query(filters=[("tags", "contains", "green")]))
    assert tagged == 15


def test_pages_never_overlap_and_cover_everything(site, admin, gadgets):
    seen = []
    for offset in range(0, 30, 7):
        seen += names(site.records.list("gadgets", admin, Query(sort="kind", limit=7, offset=offset)))
    assert sorted(seen) == sorted(r["name"] for r in gadgets)


def test_quick_search_and_capped_count(site, admin, gadgets):
    assert names(site.records.list("gadgets", admin, Query(search="gadget 1", sort="name"))) == \
        [f"Gadget {i}" for i in range(10, 20)]
    assert site.records.count("gadgets", admin) == 30
    assert site.records.count("gadgets", admin, cap=10) == 11  # "10+": stops counting early
    assert site.records.list("gadgets", admin, Query(search="100%_")) == []  # wildcards literal


def test_bad_list_arguments_are_refused_by_name(site, admin):
    with pytest.raises(ValidationError, match="colour: no such field to filter on"):
        site.records.list("gadgets", admin, Query(filters={"colour": "red"}))
    with pytest.raises(ValidationError, match="quantity: .* not a whole number"):
        site.records.list("gadgets", admin, Query(filters={"quantity": "lots"}))
    with pytest.raises(ValidationError, match="no such field to sort by"):
        site.records.list("gadgets", admin, Query(sort="-colour"))
    with pytest.raises(NotFoundError, match="no module named 'planets'"):
        site.records.list("planets", admin)


def test_update_changes_only_what_is_given_and_bumps_version(site, admin):
    gadget = site.records.create("gadgets", {"name": "Lamp", "quantity": 1}, admin)
    updated = site.records.update("gadgets", gadget["id"], {"quantity": 2}, admin, base=gadget)
    assert updated["quantity"] == 2 and updated["name"] == "Lamp"
    assert updated["version"] == 2 and updated["modified_at"] >= gadget["modified_at"]
    weighed = site.records.update("gadgets", gadget["id"], {"weight": "1.5"}, admin, base=updated)
    assert weighed["total"] == 3  # calculated again on update


def test_update_from_a_stale_read_is_refused_naming_the_changed_fields(site, admin):
    gadget = site.records.create("gadgets", {"name": "Lamp", "quantity": 1}, admin)
    site.records.update("gadgets", gadget["id"], {"quantity": 5, "kind": "toy"}, admin, base=gadget)
    with pytest.raises(ConflictError) as caught:
        site.records.update("gadgets", gadget["id"], {"name": "Desk lamp"}, admin, base=gadget)
    assert caught.value.fields == ["quantity", "kind"]
    assert "changed fields: quantity, kind" in str(caught.value)
    assert site.records.get("gadgets", gadget["id"], admin)["name"] == "Lamp"  # not overwritten


def test_change_log_records_audited_fields(site, admin):
    gadget = site.records.create("gadgets", {"name": "Lamp", "quantity": 1, "summary": "x"}, admin)
    site.records.update("gadgets", gadget["id"], {"quantity": 3, "summary": "y", "kind": "toy"},
                        admin)
    log = site.records.change_log("gadgets", gadget["id"])
    # the record's creation first (issue 16: create logs an entry), then the audited fields
    assert [(e["field"], e["old_value"], e["new_value"]) for e in log] == [
        ("(created)", None, None), ("quantity", "1", "3"), ("kind", "tool", "toy")]
    assert all(e["changed_by"] == admin.id and e["changed_at"].tzinfo for e in log)


def test_soft_delete_hides_the_record_but_keeps_the_row(site, admin):
    gadget = site.records.create("gadgets", {"name": "Lamp"}, admin)
    site.records.delete("gadgets", gadget["id"], admin)
    with pytest.raises(NotFoundError):
        site.records.get("gadgets", gadget["id"], admin)
    assert site.records.count("gadgets", admin) == 0
    table = site.tables.tables["gadgets"]
    with site.engine.connect() as conn:
        assert conn.execute(table.select().where(table.c.id == gadget["id"])).one().deleted


def test_related_ids_must_point_at_live_records(site, admin):
    widget = site.records.create("widgets", {"name": "W"}, admin)
    site.records.delete("widgets", widget["id"], admin)
    with pytest.raises(ValidationError, match="widget_id: no Widgets with id"):
        site.records.create("gadgets", {"name": "G", "widget_id": widget["id"]}, admin)


def test_one_to_many_and_many_to_many_relationships(site, admin):
    widget = site.records.create("widgets", {"name": "W"}, admin)
    first = site.records.create("gadgets", {"name": "First", "widget_id": widget["id"]}, admin)
    second = site.records.create("gadgets", {"name": "Second"}, admin)
    assert names(site.records.related("widgets", widget["id"], "gadgets", admin)) == ["First"]
    site.records.link("gadgets", second["id"], "widgets", widget["id"], admin)
    site.records.link("gadgets", second["id"], "widgets", widget["id"], admin)  # harmless twice
    assert names(site.records.related("gadgets", second["id"], "widgets", admin)) == ["W"]
    assert names(site.records.related("widgets", widget["id"], "linked_gadgets", admin)) == ["Second"]
    site.records.unlink("gadgets", second["id"], "widgets", widget["id"], admin)
    assert site.records.related("gadgets", second["id"], "widgets", admin) == []
    assert first["widget_id"] == widget["id"]


def test_create_many_is_all_or_nothing(site, admin):
    rows = [{"name": "Good"}, {"name": "Bad", "quantity": "lots"}, {"name": "Also good"}]
    with pytest.raises(ValidationError) as caught:
        site.records.create_many("gadgets", rows, admin)
    assert caught.value.errors == {"row 2: quantity": "'lots' is not a whole number"}
    assert site.records.count("gadgets", admin) == 0


def test_hooks_run_in_order_with_record_changes_and_user(site, admin, recorder):
    gadget = site.records.create("gadgets", {"name": "Lamp", "quantity": 1}, admin)
    site.records.update("gadgets", gadget["id"], {"quantity": 2}, admin)
    site.records.delete("gadgets", gadget["id"], admin)
    assert [c[0] for c in recorder.calls] == ["before_save", "after_save", "before_save",
                                              "after_save", "before_delete", "after_delete"]
    assert recorder.calls[2] == ("before_save", ["Lamp"], "admin", [False], [["quantity"]])
    assert recorder.calls[0][3] == [True]


def test_batch_hooks_are_called_once_per_batch(site, admin, recorder):
    site.records.create_many("gadgets", [{"name": f"G{i}"} for i in range(500)], admin)
    assert [c[0] for c in recorder.calls] == ["before_save", "after_save"]
    assert len(recorder.calls[0][1]) == 500


def test_a_plugin_can_veto_a_save_and_nothing_is_written(site, admin, recorder):
    recorder.veto_name = "Forbidden"
    with pytest.raises(VetoError, match="not allowed"):
        site.records.create_many("gadgets", [{"name": "Fine"}, {"name": "Forbidden"}], admin)
    assert site.records.count("gadgets", admin) == 0
    assert [c[0] for c in recorder.calls] == ["before_save"]  # after_save never ran
    gadget = site.records.create("gadgets", {"name": "Fine"}, admin)
    with pytest.raises(VetoError):
        site.records.update("gadgets", gadget["id"], {"name": "Forbidden"}, admin)
    assert site.records.get("gadgets", gadget["id"], admin)["name"] == "Fine"


def test_sequence_numbers_use_prefix_codes(site, admin):
    first = site.records.create("gadgets", {"name": "A"}, admin)
    ids = site.records.create_many("gadgets", [{"name": "B"}, {"name": "C"}], admin)
    year = dt.datetime.now(dt.UTC).strftime("%y")
    numbers = [first["gadget_number"]] + [site.records.get("gadgets", i, admin)["gadget_number"]
                                          for i in ids]
    assert numbers == [f"G{year}-00100", f"G{year}-00101", f"G{year}-00102"]


def test_a_failed_create_gives_its_sequence_number_back(site, admin, recorder):
    site.records.create("gadgets", {"name": "A"}, admin)
    recorder.veto_name = "B"
    with pytest.raises(VetoError):
        site.records.create("gadgets", {"name": "B"}, admin)
    recorder.veto_name = None
    third = site.records.create("gadgets", {"name": "C"}, admin)
    assert third["gadget_number"].endswith("00101")  # no gap


@pytest.mark.parametrize("prefix,expected", [
    ("%y", "27"), ("%Y", "2027"), ("%m", "01"), ("%M", "Jan"), ("%d", "01"),
    ("%W", "53"), ("%o", "2026"),  # 2027-01-01 is in ISO week 53 of 2026
    ("INV-%Y%m-", "INV-202701-"), ("100%%", "100%"), ("%q", "%q"),
])
def test_prefix_codes(prefix, expected):
    assert format_prefix(prefix, dt.date(2027, 1, 1)) == expected


def test_mass_update_changes_every_selected_record_in_one_batch(site, admin, gadgets, recorder):
    toys = site.records.list("gadgets", admin, Query(filters={"kind": "toy"}, limit=None))
    recorder.reset()
    changed = site.records.update_many("gadgets", [t["id"] for t in toys], {"status": "retired"},
                                       admin)
    assert changed == 10
    assert site.records.count("gadgets", admin, Query(filters={"status": "retired"})) == 10
    assert [c[0] for c in recorder.calls] == ["before_save", "after_save"]  # once per batch
    after = site.records.get("gadgets", toys[0]["id"], admin)
    assert after["version"] == 2 and after["modified_by"] == admin.id
    assert site.records.update_many("gadgets", [t["id"] for t in toys], {"status": "retired"},
                                    admin) == 0  # nothing left to change


def test_mass_update_validates_and_writes_nothing_when_invalid(site, admin, gadgets):
    ids = [g["id"] for g in site.records.list("gadgets", admin, Query(limit=5))]
    with pytest.raises(ValidationError) as caught:
        site.records.update_many("gadgets", ids, {"kind": "spaceship"}, admin)
    assert any("kind" in key for key in caught.value.errors)
    assert site.records.count("gadgets", admin, Query(filters={"kind": "spaceship"})) == 0


def test_a_page_comes_with_its_capped_count_in_one_statement(site, admin, gadgets):
    rows, total = site.records.page("gadgets", admin, Query(sort="name", limit=5), cap=None)
    assert [r["name"] for r in rows] == [f"Gadget {i:02d}" for i in range(1, 6)] and total == 30
    assert "__total" not in rows[0]
    assert site.records.page("gadgets", admin, Query(limit=5), cap=10)[1] == 11  # "10+"
    toys = site.records.page("gadgets", admin, Query(filters={"kind": "toy"}, limit=3), cap=100)
    assert toys[1] == 10 and len(toys[0]) == 3
    past_the_end = site.records.page("gadgets", admin, Query(limit=5, offset=100), cap=100)
    assert past_the_end == ([], 30)


def test_a_search_page_counts_its_hits_in_the_same_statement(site, admin, gadgets):
    # Hits under the cap: counted from the hits the page is sorted from (one pass)...
    statements = []
    sa_event.listen(site.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    rows, total = site.records.page("gadgets", admin, Query(search="gadget 1", sort="-name",
                                                           limit=4, offset=2), cap=100)
    assert names(rows) == ["Gadget 17", "Gadget 16", "Gadget 15", "Gadget 14"] and total == 10
    assert len(statements) == 1 and "__total" not in rows[0]
    # ...past the cap the count says "cap+" and the page is still the first in sort order,
    assert site.records.page("gadgets", admin, Query(search="gadget", sort="name", limit=3),
                             cap=5) == (site.records.list("gadgets", admin, Query(
                                 search="gadget", sort="name", limit=3)), 6)
    # and past the last hit the page is empty with the true count; a miss is 0 at once.
    assert site.records.page("gadgets", admin, Query(search="gadget 2", limit=5, offset=40),
                             cap=100) == ([], 10)
    assert site.records.page("gadgets", admin, Query(search="zebra", limit=5), cap=100) == ([], 0)


def test_deleting_many_is_one_batch_and_skips_what_is_gone(site, admin, gadgets, recorder):
    ids = [g["id"] for g in site.records.list("gadgets", admin, Query(sort="name", limit=5))]
    site.records.delete("gadgets", ids[0], admin)
    recorder.reset()
    assert site.records.delete_many("gadgets", ids + ["no-such-id"], admin) == 4
    assert [c[0] for c in recorder.calls] == ["before_delete", "after_delete"]
    assert len(recorder.calls[0][1]) == 4
    assert site.records.count("gadgets", admin) == 25
    with pytest.raises(NotFoundError):
        site.records.delete("gadgets", ids[1], admin)  # already gone
