"""`db check` and `db sync`: the database follows the registry, and data survives."""
import textwrap

import sqlalchemy as sa

from core.kernel.records import Query
from core.kernel.registry import Layer, read_folder
from tests.pack_util import register


def add_pack(site, name, text):
    folder = site.folder / "packs" / name / "modules"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "widgets.yaml").write_text(textwrap.dedent(text))
    register(site, {"name": name, "kind": "module", "version": "1.0", "title": name})
    site.reload()


def test_a_new_site_is_in_sync_after_sync(site):
    assert site.check_schema().in_sync


def test_check_detects_an_added_field_and_sync_applies_it_keeping_data(site, admin):
    widget = site.records.create("widgets", {"name": "Keep me", "color": "red"}, admin)
    add_pack(site, "extra", """\
        name: widgets
        fields:
          weight: {type: decimal, precision: 8, scale: 2}
          color: {type: text, max_size: 400}
        """)
    diff = site.check_schema()
    assert "add column widgets.weight (NUMERIC(8, 2))" in diff.pending
    assert any(p.startswith("alter column widgets.color (type VARCHAR(255) -> VARCHAR(400)")
               for p in diff.pending)
    applied = site.sync_schema()
    assert applied.pending == diff.pending
    assert site.check_schema().in_sync
    kept = site.records.get("widgets", widget["id"], admin)
    assert kept["name"] == "Keep me" and kept["color"] == "red" and kept["weight"] is None
    site.records.update("widgets", widget["id"], {"weight": "2.5", "color": "r" * 400}, admin)
    assert site.records.get("widgets", widget["id"], admin)["weight"] == 2.5


def test_removing_a_field_is_held_back_unless_drops_are_allowed(site, admin):
    add_pack(site, "extra", "name: widgets\nfields: {weight: {type: integer}}\n")
    site.sync_schema()
    site.records.create("widgets", {"name": "W", "weight": 3}, admin)
    add_pack(site, "extra", "name: widgets\nfields: {weight: null}\n")
    held = site.sync_schema()
    assert held.destructive == ["drop column widgets.weight"] and held.pending == []
    assert site.check_schema().destructive == ["drop column widgets.weight"]
    dropped = site.sync_schema(allow_drop=True)
    assert dropped.pending == ["drop column widgets.weight"]
    assert site.check_schema().in_sync
    assert site.records.list("widgets", admin)[0]["name"] == "W"


def test_other_software_tables_are_left_alone(site):
    with site.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE someone_elses (x INTEGER)")
    assert site.check_schema().in_sync
    site.sync_schema(allow_drop=True)
    with site.engine.connect() as conn:
        conn.exec_driver_sql("SELECT x FROM someone_elses")


def test_layers_helper_reads_plugin_folders(site):
    problems = []
    documents = read_folder(site.plugins[0].folder, problems)
    assert not problems and documents
    assert isinstance(site.layers()[0], Layer)


def sort_indexes(site, table: str) -> set[str]:
    return {i["name"] for i in sa.inspect(site.engine).get_indexes(table)
            if i["name"].endswith("_ci")}


def test_lists_sort_text_along_an_index_regardless_of_case(site, admin):
    """Text sorts regardless of case (core/database.CaseFolded); its own index keeps that
    order fast on SQLite and PostgreSQL (MariaDB's collation ignores case already), and
    a site made before gets it from `db sync`."""
    dialect = site.engine.dialect.name
    expected = {"ix_accounts_name_ci"} if dialect in ("sqlite", "postgresql") else set()
    assert sort_indexes(site, "accounts") >= expected
    if dialect == "sqlite":  # the list's own query walks it
        stmt, _ = site.records.select(site.registry.module("accounts"), admin,
                                       Query(sort="-name", limit=50, fields=["name"]), "list")
        sql = str(stmt.compile(site.engine, compile_kwargs={"literal_binds": True}))
        with site.engine.connect() as conn:
            plan = " ".join(row[3] for row in conn.execute(sa.text("EXPLAIN QUERY PLAN " + sql)))
        assert "SCAN accounts USING INDEX ix_accounts_name_ci" in plan, plan
    if not expected:
        assert site.check_schema().in_sync
        return
    with site.engine.begin() as conn:  # as on a site made before
        conn.execute(sa.text("DROP INDEX ix_accounts_name_ci"))
    assert "create index ix_accounts_name_ci on accounts" in site.check_schema().pending
    site.sync_schema()
    assert "ix_accounts_name_ci" in sort_indexes(site, "accounts")
    assert site.check_schema().in_sync
    # a Studio field that is indexed gets one too, and a SQLite table rebuild keeps it
    site.studio.create_module(admin, "vehicles", "Vehicles", "Vehicle", "Fleet")
    assert "ix_vehicles_name_ci" in sort_indexes(site, "vehicles")
    site.studio.save_field(admin, "vehicles", "plate", {"type": "text", "max_size": 20},
                           new=True)
    assert "ix_vehicles_name_ci" in sort_indexes(site, "vehicles")
    assert site.check_schema().in_sync


def test_sites_with_the_same_modules_share_their_tables_until_one_changes(site, admin,
                                                                          make_site):
    """Site._schema: building the tables is most of a boot, so two sites of the same
    definitions and plugins share one (read-only) MetaData; a change to the definitions
    (a Studio field) gives that site its own, and the other keeps what it had."""
    other = make_site("other")
    assert other.tables is site.tables
    before = set(site.tables.tables["accounts"].columns.keys())
    site.studio.save_field(admin, "accounts", "loyalty_tier", {"type": "text"}, new=True)
    assert site.tables is not other.tables
    assert "loyalty_tier" in site.tables.tables["accounts"].columns
    assert set(other.tables.tables["accounts"].columns.keys()) == before
    other.reload()  # it reads the same customization now: the new shape, shared again
    assert other.tables is site.tables
