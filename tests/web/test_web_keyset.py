"""List pages past the first few go by keyset cursor (core/web/paging.py): Next, Previous
and Last walk a filtered, sorted list with ties and empty values in its sort field without
a row twice or a row missed, keep the list's filters, search, sort and size, and the
database reads them from the sort index (SQLite's plan)."""
import html
import re

import pytest
import sqlalchemy as sa

from core.kernel.records import Query
from tests.web import test_web_views

client = test_web_views.client  # signed in as the admin, with the CSRF token at hand

ROW = re.compile(r'<a href="/m/gadgets/([0-9a-f-]{36})">')


def rel(page_html: str, name: str) -> str | None:
    found = re.search(rf'<a href="(\?[^"]*)" rel="{name}">', page_html)
    return "/m/gadgets" + html.unescape(found.group(1)) if found else None


def walk(client, url: str, direction: str) -> tuple[list[str], list[str]]:
    """The row ids of every page from ``url`` following ``direction`` links, and the
    count line of each page."""
    ids, counts = [], []
    for _ in range(50):
        page = client.get(url)
        assert page.status_code == 200
        rows = ROW.findall(page.text)
        ids = ids + rows if direction == "next" else rows + ids
        counts.append(" ".join(re.search(r"data-count>(.*?)</span>", page.text, re.DOTALL)
                               .group(1).split()))
        url = rel(page.text, direction)
        if url is None:
            return ids, counts
    raise AssertionError("the pages never end")


@pytest.fixture
def gadgets(site, admin):
    """60 toys and 20 tools: ties in name (the same name in three cases), and no
    quantity on every third."""
    names = [("Same", "same", "SAME")[i % 3] if i % 2 else f"Gadget {i:02d}" for i in range(80)]
    site.records.create_many("gadgets", [
        {"name": name, "kind": "tool" if i % 4 == 3 else "toy",
         "quantity": None if i % 3 == 0 else i % 7} for i, name in enumerate(names)], admin)


@pytest.mark.parametrize("sort", ["name", "-name", "quantity", "-quantity"])
def test_next_previous_and_last_walk_a_filtered_sorted_list(client, site, admin, gadgets, sort):
    expected = [r["id"] for r in site.records.list("gadgets", admin, Query(
        filters=[("kind", "eq", "toy")], sort=sort, limit=None, fields=["id"]))]
    assert len(expected) == 60
    start = f"/m/gadgets?f_kind=toy&sort={sort}&size=10"
    forward, counts = walk(client, start, "next")
    assert forward == expected  # every toy once, in the list's order
    assert counts[0] == "1–10 of 60" and counts[2] == "21–30 of 60" and counts[-1] == "51–60 of 60"
    last = client.get(rel(client.get(start).text, "last"))
    assert ROW.findall(last.text) == expected[-10:] and 'rel="next"' not in last.text
    backward, counts = walk(client, rel(client.get(start).text, "last"), "prev")
    assert backward == expected
    assert counts[0] == "51–60 of 60" and counts[-1] == "1–10 of 60"


def test_links_keep_the_filters_search_sort_and_size(client, gadgets):
    page = client.get("/m/gadgets?f_kind=toy&q=same&sort=-name&size=10").text
    following = client.get(rel(page, "next")).text
    for url in (rel(page, "next"), rel(page, "last"), rel(following, "prev"),
                rel(following, "first")):
        assert "f_kind=toy" in url and "q=same" in url and "sort=-name" in url and "size=10" in url
    assert "11–20 of 20" in " ".join(following.split()) and 'rel="next"' not in following
    # the first pages by number; the current one is marked
    assert '<strong aria-current="page">1</strong>' in page and "page=2" in page
    assert '<strong aria-current="page">2</strong>' in following


def test_a_cursor_of_another_order_shows_the_first_page(client, site, admin, gadgets):
    page = client.get("/m/gadgets?f_kind=toy&sort=name&size=10").text
    cursor = re.search(r"after=([^&\"]+)", html.unescape(rel(page, "next"))).group(1)
    other = client.get(f"/m/gadgets?f_kind=toy&sort=-quantity&size=10&after={cursor}")
    assert other.status_code == 200
    assert ROW.findall(other.text) == [r["id"] for r in site.records.list(
        "gadgets", admin, Query(filters=[("kind", "eq", "toy")], sort="-quantity", limit=10))]
    assert client.get("/m/gadgets?after=not-a-cursor").status_code == 200


def test_records_added_before_a_cursor_page_do_not_shift_it(client, site, admin, gadgets):
    page = client.get("/m/gadgets?f_kind=toy&sort=name&size=10").text
    second = rel(page, "next")
    before = ROW.findall(client.get(second).text)
    site.records.create_many("gadgets", [{"name": "Aaa", "kind": "toy"}] * 3, admin)
    assert ROW.findall(client.get(second).text) == before  # OFFSET would shift it by three


def test_select_all_matching_from_a_cursor_page(client, site, admin, gadgets):
    page = client.get(rel(client.get("/m/gadgets?f_kind=toy&q=same&size=10").text, "next")).text
    form = page[page.index('class="list-form"'):]
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    assert hidden["f_kind"] == "toy" and hidden["q"] == "same" and "after" not in hidden["back"]
    response = client.post("/m/gadgets/action", data={**hidden, "all": "1", "action": "update",
                                                      "mass_kind": "tool"})
    assert "Updated 20 of 20 selected records." in response.text


def test_a_keyset_page_seeks_the_sort_index(site, admin, gadgets):
    """(name, id) is one index and the condition starts with the first key's range: the
    database seeks to the page and reads it in order, with no sort step: SQLite ascending
    (descending it walks the index from the end, in order), PostgreSQL both ways (its text
    sort key reads NULL as "", so NULL names come first there too)."""
    records = site.records
    dialect = records.engine.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        pytest.skip("MariaDB's plans on a table this small do not tell")
    module = site.registry.module("gadgets")
    last = records.list("gadgets", admin, Query(sort="name", limit=10))[-1]
    for sort in ("name", "-name"):
        query = Query(sort=sort, limit=10, fields=["id", "name"],
                      after={"name": last["name"], "id": last["id"]})
        stmt, _ = records.select(module, admin, query, "list")
        with records.engine.connect() as conn:
            sql = stmt.compile(conn, compile_kwargs={"literal_binds": True})
            if dialect == "sqlite":
                plan = " ".join(r[3] for r in conn.execute(sa.text(f"EXPLAIN QUERY PLAN {sql}")))
            else:  # a table this small is read whole unless told otherwise
                conn.execute(sa.text("SET enable_seqscan = off; SET enable_bitmapscan = off"))
                plan = " ".join(r[0] for r in conn.execute(sa.text(f"EXPLAIN {sql}")))
        assert "ix_gadgets_name_ci" in plan and "TEMP B-TREE" not in plan \
            and "Sort" not in plan.replace("Sort Key", ""), plan
        if dialect == "sqlite" and sort == "name":  # ascending: NULL names come first
            assert "SEARCH gadgets USING INDEX ix_gadgets_name_ci (name>?)" in plan, plan
        if dialect == "postgresql":  # NULL names sort as "", first: a range either way
            assert ("Index Scan Backward" if sort == "-name" else "Index Scan") in plan \
                and "Index Cond: (lower((COALESCE(name, ''::character varying))::text) " \
                f"{'<=' if sort == '-name' else '>='}" in plan, plan


@pytest.mark.browser
@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_a_person_pages_through_a_list(page, site, admin, gadgets, viewport):
    from playwright.sync_api import expect

    from tests.browser import log_in, screenshot
    log_in(page)
    page.goto("/m/gadgets?f_kind=toy&sort=name&size=10")
    count = page.locator("[data-count]")
    expect(count).to_contain_text("1–10 of 60")
    page.get_by_role("link", name="Next ›").click()
    expect(count).to_contain_text("11–20 of 60")
    page.get_by_role("link", name="Last »").click()
    expect(count).to_contain_text("51–60 of 60")
    page.get_by_role("link", name="‹ Previous").click()
    expect(count).to_contain_text("41–50 of 60")
    screenshot(page, "list-pager", viewport)
    page.get_by_role("link", name="« First").click()
    expect(count).to_contain_text("1–10 of 60")
