"""Quick search through the search keys (core.kernel.fields.search_key, core.apps.search):
regardless of case and accents, word by word, a person's name parts, only what the user may
see, from an index, on the session's database (SQLite, or CRBM_TEST_DATABASE_URL)."""
import pytest
import sqlalchemy as sa

from core.apps.admin import access_admin as aa
from core.kernel.records import SYSTEM_USER, Query
from core.kernel.users import create_user


def found(site, user, module, text, field="name"):
    return sorted(r[field] for r in site.records.list(module, user, Query(search=text, limit=None)))


@pytest.fixture
def people(site, admin):
    contacts = [("Éloïse", "Dupré", "eloise@example.org"), ("Elizabeth", "Hurley", None),
                ("Eliza", "O'Brien", "ELIZA@example.org"), ("Hurley", "Stone", None),
                ("Zoë", "ÅSTRÖM", None)]
    site.records.create_many("contacts", [{"first_name": f, "last_name": la, "email1": e}
                                          for f, la, e in contacts], admin)
    site.records.create_many("accounts", [{"name": n} for n in (
        "Société Générale", "SOCIETY Club", "Straße & Co", "Ærø Shipping", "100%_ Sure")], admin)


def test_case_and_accents_do_not_matter(site, admin, people):
    assert found(site, admin, "contacts", "elo") == ["Éloïse Dupré"]
    assert found(site, admin, "contacts", "ELIZ") == ["Eliza O'Brien", "Elizabeth Hurley"]
    assert found(site, admin, "contacts", "DUPRE") == ["Éloïse Dupré"]
    assert found(site, admin, "contacts", "åström") == ["Zoë ÅSTRÖM"]
    assert found(site, admin, "contacts", "zoe astr") == ["Zoë ÅSTRÖM"]
    assert found(site, admin, "contacts", "eliza@EX") == ["Eliza O'Brien"]  # the email too
    assert found(site, admin, "accounts", "societe") == ["Société Générale"]
    assert found(site, admin, "accounts", "soci") == ["SOCIETY Club", "Société Générale"]
    assert found(site, admin, "accounts", "strasse") == ["Straße & Co"]
    assert found(site, admin, "accounts", "100%_") == ["100%_ Sure"]  # no wildcards
    assert found(site, admin, "accounts", "100") == ["100%_ Sure"]
    assert found(site, admin, "accounts", "_") == []
    assert found(site, admin, "accounts", "générale") == []  # a field starts with the word


def test_words_start_fields_in_any_order(site, admin, people):
    assert found(site, admin, "contacts", "Elizabeth Hurley") == ["Elizabeth Hurley"]
    assert found(site, admin, "contacts", "hurley eliz") == ["Elizabeth Hurley"]
    assert found(site, admin, "contacts", "  hurley   ") == ["Elizabeth Hurley", "Hurley Stone"]
    assert found(site, admin, "contacts", "hurley zoe") == []
    # the whole text starting one field counts too ("Société G" is one name)
    assert found(site, admin, "accounts", "société  g") == ["Société Générale"]
    assert found(site, admin, "accounts", "club society") == []  # words start fields


def test_a_saved_change_is_searched_by_its_new_value(site, admin, people):
    eliza = site.records.list("contacts", admin, Query(search="O'Brien"))[0]
    site.records.update("contacts", eliza["id"], {"last_name": "Ñúñez"}, admin, base=eliza)
    assert found(site, admin, "contacts", "nunez") == ["Eliza Ñúñez"]
    assert found(site, admin, "contacts", "o'brien") == []
    site.records.update_many("accounts", [r["id"] for r in site.records.list(
        "accounts", admin, Query(search="ærø"))], {"name": "Øresund Lines"}, admin)
    assert found(site, admin, "accounts", "ores") == ["Øresund Lines"]


def test_a_value_the_system_sets_is_searched_by_it(site, admin, people):
    """``set_derived`` (a plugin's computed value) writes the keys as a save does."""
    club = site.records.list("accounts", admin, Query(search="society"))[0]
    with site.engine.begin() as conn:
        site.records.set_derived("accounts", {club["id"]: {"name": "Zénith Derived"}},
                                 connection=conn)
    assert found(site, admin, "accounts", "zenith") == ["Zénith Derived"]
    assert found(site, admin, "accounts", "society") == []


def test_no_hit_from_a_record_the_user_may_not_see(site, admin):
    aa.save_settings(site, {"inherit_created_by": False})
    sales, support = aa.create_team(site, "Sales"), aa.create_team(site, "Support")
    sam = create_user(site, "sam", "correct horse battery")
    aa.set_team_members(site, sales, add=[sam.id])
    for name, team in (("Acme Émeraude", sales), ("Acme Hidden", support), ("Ébène", support)):
        site.records.create("accounts", {"name": name, "assigned_user_id": admin.id},
                            SYSTEM_USER, teams=[team])
    role = aa.create_role(site, "Sales")
    aa.set_role_rules(site, role, {"accounts": ("enabled", {
        a: "team" for a in ("view", "list", "edit", "delete", "export", "report")})})
    aa.set_role_teams(site, role, add=[sales])
    assert found(site, sam, "accounts", "acme") == ["Acme Émeraude"]
    assert found(site, sam, "accounts", "acme emer") == ["Acme Émeraude"]
    assert found(site, sam, "accounts", "ebene") == []
    assert found(site, admin, "accounts", "ebene") == ["Ébène"]
    rows, total = site.records.page("accounts", sam, Query(search="acme h", limit=20), cap=1000)
    assert (rows, total) == ([], 0)
    rows, total = site.records.page("accounts", sam, Query(search="ACME", limit=20), cap=1000)
    assert [r["name"] for r in rows] == ["Acme Émeraude"] and total == 1


def test_an_empty_first_page_is_one_statement(site, admin, people):
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(site.engine, "before_cursor_execute", count)
    try:
        assert site.records.page("accounts", admin, Query(search="nothing", limit=20),
                                 cap=1000) == ([], 0)
        assert len(statements) == 1
        statements.clear()  # past the last page, the count still tells how many there are
        assert site.records.page("accounts", admin, Query(search="soc", limit=20, offset=20),
                                 cap=1000) == ([], 2)
        assert len(statements) == 2
    finally:
        sa.event.remove(site.engine, "before_cursor_execute", count)


def test_a_search_that_finds_much_reads_the_same_page(site, admin, people):
    """Past the count's cap the page is still the same rows, in the same order."""
    site.records.create_many("accounts", [{"name": f"Sociable {i}"} for i in range(5)], admin)
    expected = [r["name"] for r in site.records.list("accounts", admin, Query(
        search="soc", sort="name", limit=None))]
    assert len(expected) == 7 and expected[0] == "Sociable 0"
    rows, total = site.records.page("accounts", admin, Query(search="SOC", limit=4, sort="name"),
                                    cap=3)
    assert [r["name"] for r in rows] == expected[:4] and total == 4  # "3+"
    rows, total = site.records.page("accounts", admin, Query(search="soc", limit=4, offset=4,
                                                             sort="name"), cap=3)
    assert [r["name"] for r in rows] == expected[4:]


def test_keys_are_filled_after_a_sync(site, admin, people):
    """A site upgraded from before the keys (or rows written around the record service):
    the next schema sync adds the key columns and fills them."""
    table = site.tables.tables["accounts"]
    with site.engine.begin() as conn:
        for index in [i for i in table.indexes if i.name.startswith("ix_accounts__sk_")]:
            index.drop(conn)
        for column in ("_sk_name", "_sk_email1", "_sk_phone_office"):
            conn.exec_driver_sql(f"ALTER TABLE accounts DROP COLUMN {column}")
        conn.execute(sa.text("INSERT INTO accounts (id, name, deleted, version, created_at, "
                             "modified_at) VALUES ('raw-1', 'Ålesund Raw', :f, 1, :t, :t)"),
                     {"f": False, "t": "2026-01-01 00:00:00"})
    site.sync_schema()
    assert found(site, admin, "accounts", "societe") == ["Société Générale"]
    assert found(site, admin, "accounts", "alesund") == ["Ålesund Raw"]
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table)
                            .where(table.c._sk_name.is_(None))).scalar() == 0


# -- the index serves it ---------------------------------------------------------------------

def plan(site, user, module, text) -> str:
    """The database's plan of a list page of this search, as text."""
    stmt, _ = site.records.select(site.registry.module(module), user,
                                   Query(search=text, limit=20), "list")
    sql = str(stmt.compile(site.engine, compile_kwargs={"literal_binds": True}))
    dialect = site.engine.dialect.name
    with site.engine.begin() as conn:
        if dialect == "sqlite":
            return "\n".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
        if dialect == "postgresql":  # a handful of rows: a scan would be cheaper, so say no
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            return "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql))
        rows = conn.exec_driver_sql("EXPLAIN " + sql).mappings().all()
        return "\n".join(f"{r['table']} type={r['type']} key={r['key']} extra={r['Extra']}"
                         for r in rows)


@pytest.mark.parametrize("module, text", [("accounts", "acme"), ("contacts", "eliz"),
                                          ("contacts", "hurley eliz")])
def test_the_search_keys_index_is_used(site, admin, module, text):
    site.records.create_many(module, [
        {"name": f"Firm {i:04d}"} if module == "accounts" else
        {"first_name": f"First{i:04d}", "last_name": f"Last{i:04d}", "email1": f"p{i}@x.org"}
        for i in range(2_000)], admin)
    with site.engine.begin() as conn:
        if site.engine.dialect.name != "sqlite":
            conn.exec_driver_sql(f"ANALYZE {'TABLE ' if site.engine.dialect.name != 'postgresql' else ''}{module}")
    text_plan = plan(site, admin, module, text)
    print(text_plan)
    dialect = site.engine.dialect.name
    if dialect == "sqlite":
        assert "_sk_" in text_plan and "SCAN " + module not in text_plan
    elif dialect == "postgresql":
        assert "_sk_" in text_plan and "Seq Scan" not in text_plan
    else:
        # the page's 20 picked ids (a derived table) are read whole, the module's table never
        mine = [line for line in text_plan.splitlines() if line.startswith(module + " ")]
        assert "key=ix_" in text_plan and "_sk_" in text_plan
        assert not [line for line in mine if "type=ALL" in line]
