"""Full-text search (core.apps.search.fulltext) on the session's database (SQLite, or
PostgreSQL / MariaDB with CRBM_TEST_DATABASE_URL): ranked hits with highlighted snippets,
the index kept in step by creates, updates, mass updates and deletes and filled by the
backfill, a restricted user's hits, snippets and counts, accents and other languages as
docs/architecture.md ("Full-text search") says, query syntax taken as text, the pages."""
import pytest
import sqlalchemy as sa

from core.apps.admin import access_admin as aa
from core.apps.search import fulltext
from core.kernel.users import create_user
from core.testing import signed_in

PASSWORD = "correct horse battery"
OWNER_LEVELS = {"view": "owner", "list": "owner", "edit": "owner", "delete": "owner",
                "export": "none", "report": "owner"}


def note(site, user, name, description="", **more):
    return site.records.create("notes", {"name": name, "description": description, **more}, user)


def titles(results):
    return [h.title for h in results.hits]


def test_ranked_hits_with_highlighted_snippets(site, admin):
    note(site, admin, "Boiler maintenance", "Yearly service of the boiler in the basement.")
    note(site, admin, "Invoice question", "The customer asks about the boiler on invoice 42.")
    note(site, admin, "Unrelated", "Nothing to see here.")
    found = fulltext.search(site, admin, "boiler")
    assert titles(found) == ["Boiler maintenance", "Invoice question"]  # the title counts more
    assert found.counts == {"notes": 2}
    assert str(found.hits[1].snippet) == \
        "The customer asks about the <mark>boiler</mark> on invoice 42."
    assert found.hits[0].url == f"/m/notes/{found.hits[0].id}"
    # every word must be there; the last one is a prefix (type-ahead)
    assert titles(fulltext.search(site, admin, "boiler invo")) == ["Invoice question"]
    assert titles(fulltext.search(site, admin, "boil")) == ["Boiler maintenance",
                                                           "Invoice question"]
    assert titles(fulltext.search(site, admin, "boil invoice")) == []
    # paging
    assert titles(fulltext.search(site, admin, "boiler", limit=1, offset=1)) == \
        ["Invoice question"]


def test_snippets_are_escaped_then_marked(site, admin):
    note(site, admin, "<b>Bold</b> & co", "<script>alert('x')</script> a harmless script")
    found = fulltext.search(site, admin, "script")
    assert str(found.hits[0].snippet) == \
        "&lt;<mark>script</mark>&gt;alert(&#39;x&#39;)&lt;/<mark>script</mark>&gt; a harmless " \
        "<mark>script</mark>"
    assert found.hits[0].title == "<b>Bold</b> & co"  # text: the template escapes it


def test_index_follows_create_update_mass_update_and_delete(site, admin):
    a = note(site, admin, "Alpha", "first words")
    b = note(site, admin, "Beta", "second words")
    assert sorted(titles(fulltext.search(site, admin, "words"))) == ["Alpha", "Beta"]
    site.records.update("notes", a["id"], {"description": "changed text"}, admin)
    assert titles(fulltext.search(site, admin, "words")) == ["Beta"]
    assert titles(fulltext.search(site, admin, "changed")) == ["Alpha"]
    site.records.update_many("notes", [a["id"], b["id"]], {"description": "mass edited"}, admin)
    assert sorted(titles(fulltext.search(site, admin, "mass"))) == ["Alpha", "Beta"]
    assert titles(fulltext.search(site, admin, "second")) == []
    site.records.delete("notes", a["id"], admin)
    assert titles(fulltext.search(site, admin, "mass")) == ["Beta"]
    assert fulltext.search(site, admin, "alpha").counts == {}


def test_backfill_indexes_rows_written_around_the_record_service(site, admin):
    a = note(site, admin, "Indexed", "kept by the save")
    table = site.tables.tables["notes"]
    fts = fulltext._names(site.registry.module("notes"))
    with site.engine.begin() as conn:  # the index lost: as for a module that just opted in
        for name in fts if site.engine.dialect.name == "sqlite" else fts[:1]:
            conn.execute(sa.text(f"DELETE FROM {conn.dialect.identifier_preparer.quote(name)}"))
    assert fulltext.search(site, admin, "kept").hits == []
    assert fulltext.backfill(site, batch=1) == 1
    assert titles(fulltext.search(site, admin, "kept")) == ["Indexed"]
    assert fulltext.backfill(site) == 0
    assert table is not None and a["id"]


def test_a_restricted_user_sees_no_hit_snippet_or_count_of_hidden_records(site, admin):
    owen = create_user(site, "owen", PASSWORD)
    role = aa.create_role(site, "Own notes")
    aa.set_role_rules(site, role, {"notes": ("enabled", OWNER_LEVELS)})
    aa.set_role_users(site, role, add=[owen.id])
    note(site, admin, "Secret merger", "the secret plan with Globex")
    note(site, admin, "Another secret", "secret too")
    note(site, owen, "My secret", "owen's own secret")
    found = fulltext.search(site, owen, "secret")
    assert titles(found) == ["My secret"]
    assert found.counts == {"notes": 1}
    assert fulltext.search(site, owen, "globex").counts == {}
    assert fulltext.search(site, admin, "secret").counts == {"notes": 3}
    # a module the user may not list is not searched at all
    aa.set_role_rules(site, role, {"notes": ("disabled", {})})
    assert fulltext.search(site, owen, "secret").counts == {}
    # the pages say the same
    with signed_in(site, "owen", PASSWORD) as client:
        data = client.get("/search.json", params={"q": "secret"}).json()
        assert data["hits"] == [] and data["counts"] == []
        page = client.get("/search", params={"q": "globex"})
        assert page.status_code == 200 and "Globex" not in page.text.replace(
            'value="globex"', "")


@pytest.mark.parametrize("stored,query,hit", [
    ("Crème brûlée à la française", "creme brulee", True),  # accents fold, both ways
    ("Creme brulee", "crème BRÛLÉE", True),
    ("Straße in Köln", "strasse koln", True),  # ß is ss, ö is o
    ("Søren Ærø Łódź", "soren aero lodz", True),  # the letters NFKD keeps whole
    ("Haustür", "haus", True),  # German compounds: a prefix finds the compound
    ("Haustür", "tür", False),  # but not its second part (no decompounding)
    ("Haustür und Garten", "tür garten", False),
    ("talossa asuu", "talo", True),  # Finnish inflections: the stem as a typed prefix
    ("talossa asuu", "talo asuu", False),  # a word before the last must be whole (no stemming)
    ("東京タワーに行きました", "東京", True),  # CJK: a run of characters is one word;
    ("東京タワーに行きました", "タワー", False),  # its prefix finds it, its middle does not
    ("e-mail: jane.doe@example.com", "example", True),  # addresses are cut into words
    ("e-mail: jane.doe@example.com", "jane.doe@example.com", True),
])
def test_languages_behave_as_documented(site, admin, stored, query, hit):
    note(site, admin, stored, "")
    assert bool(fulltext.search(site, admin, query).hits) is hit


@pytest.mark.parametrize("query", [
    'boiler OR nothing', '"boiler', 'boiler*', 'NEAR(boiler service)', '-boiler', 'boiler -x',
    '(boiler)', 'title:boiler', 'boiler AND', '+boiler', "boiler' OR 1=1 --", "^boiler", "b\\",
    "boiler " + "x" * 10_000, "boiler " * 2_000, "\x00boiler", "&#x62;oiler",
])
def test_query_syntax_is_text_and_long_queries_are_answered(site, admin, query):
    note(site, admin, "Boiler service", "near the basement")
    found = fulltext.search(site, admin, query)  # never an error
    assert found.counts in ({}, {"notes": 1})
    with signed_in(site, "admin") as client:
        for url in ("/search", "/search.json"):
            assert client.get(url, params={"q": query}).status_code == 200


def test_operators_are_words(site, admin):
    note(site, admin, "Boiler service", "")
    note(site, admin, "Near or not", "")
    assert titles(fulltext.search(site, admin, "boiler OR near")) == []  # OR is a word
    assert titles(fulltext.search(site, admin, "-boiler")) == ["Boiler service"]
    assert titles(fulltext.search(site, admin, '"near')) == ["Near or not"]
    assert titles(fulltext.search(site, admin, "not OR near")) == ["Near or not"]


def test_deleted_records_never_hit(site, admin):
    a = note(site, admin, "Gone", "deleted note")
    site.records.delete("notes", a["id"], admin)
    assert fulltext.search(site, admin, "deleted").counts == {}


MEMOS = """name: memos
label: Memos
fields:
  name: {type: name, label: Subject}
  body: {type: html, label: Body}
  pages: {type: integer, label: Pages}
features:
  full_text: {fields: [name, pages, nowhere, name]}
layouts:
  list: {columns: [name]}
"""


def test_a_declaration_is_checked_with_the_registry(tmp_path):
    import types

    from core.kernel.registry import MetadataError
    from core.kernel.site import Site, create_site
    folder = tmp_path / "memos"
    (folder / "modules").mkdir(parents=True)
    (folder / "modules" / "memos.yaml").write_text(MEMOS)
    plugin = types.ModuleType("memos")
    plugin.__file__ = str(folder / "plugin.py")
    with pytest.raises(MetadataError) as caught:
        Site(create_site(tmp_path / "site"), extra_plugins=[plugin])
    said = str(caught.value)
    for problem in (("$.features.full_text.fields[1]: field 'pages' (integer) cannot be "
                     "indexed: only name, text, textarea, html, email, url, phone fields"),
                    "$.features.full_text.fields[2]: field 'nowhere' does not exist",
                    "$.features.full_text.fields[3]: field 'name' is named twice"):
        assert problem in said
    (folder / "modules" / "memos.yaml").write_text(MEMOS.replace("fields: [name, pages, nowhere, "
                                                                 "name]", "fields: []"))
    with pytest.raises(MetadataError) as caught:
        Site(create_site(tmp_path / "other"), extra_plugins=[plugin])
    assert "$.features.full_text.fields" in str(caught.value)
    # html is indexed as its text; opting in is one line
    (folder / "modules" / "memos.yaml").write_text(MEMOS.replace("fields: [name, pages, nowhere, "
                                                                 "name]", "fields: [name, body]"))
    site = Site(create_site(tmp_path / "third"), extra_plugins=[plugin])
    try:
        site.sync_schema()
        admin = create_user(site, "root", PASSWORD, is_admin=True)
        site.records.create("memos", {"name": "Plan", "body": "<p>Hello <b>wor</b>ld &amp; "
                                      "<i>friends</i></p><script>evil()</script>"}, admin)
        found = fulltext.search(site, admin, "friends")
        assert str(found.hits[0].snippet) == "Hello wor ld &amp; <mark>friends</mark>"
        assert fulltext.search(site, admin, "evil").hits == []
    finally:
        site.close()


def test_header_box_search_page_and_type_ahead(site, admin, web):
    for i in range(7):
        note(site, admin, f"Pump {i}", "pressure checked")
    site.records.create("emails", {"name": "Pump offer", "body": "A pump for you",
                                   "direction": "inbound"}, admin)
    home = web.get("/")
    assert 'action="/search"' in home.text and "/static/search.js" in home.text
    page = web.get("/search", params={"q": "pump"})
    assert page.status_code == 200
    assert page.text.count('class="search-hit"') == 6  # 5 notes + 1 email
    assert 'data-module="notes" data-count="7"' in page.text
    assert 'data-module="emails" data-count="1"' in page.text
    assert "<mark>Pump</mark>" in page.text or "<mark>pump</mark>" in page.text
    assert "module=notes" in page.text  # "All results in Notes"
    one = web.get("/search", params={"q": "pump", "module": "notes", "page": "x"})
    assert one.text.count('class="search-hit"') == 7
    assert web.get("/search", params={"q": "pump", "module": "nope", "page": "99999"}) \
        .status_code == 200
    data = web.get("/search.json", params={"q": "pum"}).json()
    assert {c["module"]: c["count"] for c in data["counts"]} == {"notes": 7, "emails": 1}
    assert len(data["hits"]) == 8 and data["hits"][0]["url"].startswith("/m/")
    assert web.get("/search.json").json()["hits"] == []
    only = web.get("/search.json", params={"q": "pump", "module": "emails"}).json()
    assert [h["title"] for h in only["hits"]] == ["Pump offer"]
    assert web.get("/search").status_code == 200



def test_a_french_reader_gets_the_search_page_in_french(site, admin, web):
    from core.kernel import users
    from tests.pack_util import install_folder
    install_folder(site, "lang_fr")
    users.save_preferences(site, admin.id, {"language": "fr"})
    note(site, admin, "Chaudière", "entretien annuel de la chaudière")
    page = web.get("/search", params={"q": "chaudiere"})
    for words in ("Rechercher", "Tous les modules", "1 résultat", "<mark>chaudière</mark>"):
        assert words in page.text
    assert "Aucun résultat." in web.get("/search", params={"q": "zzzz"}).text


def test_another_field_list_indexes_every_record_again(site, admin):
    note(site, admin, "Subject only", "a body word")
    assert titles(fulltext.search(site, admin, "body")) == ["Subject only"]
    module = site.registry.module("notes")
    specs = site.tables.tables[fulltext.SPECS]
    with site.engine.begin() as conn:  # as if the index had been made from the title alone
        conn.execute(specs.update().where(specs.c.module == "notes").values(fields="name"))
        fulltext._clear(conn, module)
        fulltext.refresh(site, conn, module, [{"id": "x", "name": "stale"}])
    assert fulltext.backfill(site) == 1
    assert titles(fulltext.search(site, admin, "body")) == ["Subject only"]
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(specs.c.fields).where(specs.c.module == "notes")) \
            .scalar() == "name,description"
