"""A record's timeline (core/apps/activities/timeline.py) as a salesperson meets it beside an
account's fields: its calls, meetings, tasks, notes, emails and changes newest first, a
filter by kind, "Load more" by key (no page shifts when a note is added meanwhile), only
what the reader may see, read when shown (the detail page gains no statement); and the
subpanels' open/closed state remembered per user on the server, in the page's one facts
statement."""
import datetime as dt
import re

import pytest
import sqlalchemy as sa

from core.apps.activities import timeline
from core.kernel.records import SYSTEM_USER
from core.kernel.users import create_user
from core.testing import signed_in

PASSWORD = "correct horse battery"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture
def acme(site, admin):
    return site.records.create("accounts", {"name": "Acme Corporation"}, admin)


@pytest.fixture
def statements(site):
    class Seen(list):
        def __init__(self):
            super().__init__()
            self.offsets = []

        def clear(self):
            super().clear()
            self.offsets.clear()

    seen = Seen()

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))
        seen.offsets.append(parameters[-1] if statement.rstrip().endswith("OFFSET ?") else None)

    sa.event.listen(site.engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(site.engine, "before_cursor_execute", record)


def about(record):
    return {"parent_id": record["id"], "parent_type": "accounts"}


def items(html: str) -> list[str]:
    """The entries' titles (an activity's link, a change's field) in the order shown."""
    return [re.sub(r"<[^>]+>", "", m).strip() for m in re.findall(
        r'<li class="tl-item[^"]*"[^>]*>.*?<p>(.*?)</p>', html, re.DOTALL)]


def fragment(web, account, query="") -> str:
    response = web.get(f"/m/accounts/{account['id']}/timeline?fragment=1{query}")
    assert response.status_code == 200, response.text
    assert "<html" not in response.text
    return response.text


def test_timeline_mixes_activities_emails_and_changes_newest_first(site, admin, web, acme):
    site.records.create("calls", {"name": "Kick-off call", "status": "held",
                                  "date_start": NOW - dt.timedelta(days=3), **about(acme)}, admin)
    site.records.create("meetings", {"name": "Site visit", "status": "held",
                                     "date_start": NOW - dt.timedelta(days=1),
                                     "date_end": NOW - dt.timedelta(hours=20), **about(acme)},
                        admin)
    site.records.create("emails", {"name": "Your quote", "account_id": acme["id"],
                                   "date_sent": NOW - dt.timedelta(days=2)}, admin)
    site.records.update("accounts", acme["id"], {"industry": "banking"}, admin)
    html = fragment(web, acme)
    shown = items(html)
    # the change (now), the account's creation (just before), the meeting (a day ago), the
    # email (2 days), the call (3: logged after the fact, placed when it was held)
    order = [next(i for i, s in enumerate(shown) if word in s)
             for word in ("Industry", "Created", "Site visit", "Your quote", "Kick-off call")]
    assert order == sorted(order), shown
    assert "Held" in html and "by admin" in html  # the status; who changed the field
    assert "→ <ins>Banking</ins>" in html  # a dropdown's label, not its stored value
    only_calls = items(fragment(web, acme, "&kind=calls"))
    assert len(only_calls) == 1 and "Kick-off call" in only_calls[0]
    changes = items(fragment(web, acme, "&kind=changes"))
    assert [s.split()[0] for s in changes] == ["Industry", "Created"]
    # an unknown kind is everything, not an error
    assert len(items(fragment(web, acme, "&kind=nonsense"))) == len(shown)
    # without JavaScript: a page of its own, with the filter
    page = web.get(f"/m/accounts/{acme['id']}/timeline?kind=calls")
    assert page.status_code == 200 and "<html" in page.text and "Kick-off call" in page.text
    assert '<option value="calls" selected>' in page.text


def test_load_more_pages_by_key_and_a_new_note_shifts_nothing(site, admin, web, acme,
                                                               statements):
    site.records.create_many("notes", [{"name": f"Note {n:02}", **about(acme)}
                                       for n in range(45)], admin)
    seen, url, pages = [], f"/m/accounts/{acme['id']}/timeline?fragment=1", 0
    while url:
        statements.clear()
        html = web.get(url).text
        # keyset, not OFFSET (SQLite's LIMIT always says OFFSET: it is 0 throughout)
        assert not [o for o in statements.offsets if o], statements
        # the session, the record, then a statement per source (each kind through each of its
        # links to accounts, the change log) — never one per row
        sources = sum(len(k.link_fields) for k in timeline.activity_kinds(
            site.registry, site.registry.module("accounts"))) + 1
        assert len(statements) <= 2 + sources, "\n".join(s[:120] for s in statements)
        page = items(html)
        assert len(page) <= timeline.PAGE
        seen.extend(page)
        pages += 1
        if pages == 1:  # a note added after the first page: the next pages do not move
            site.records.create("notes", {"name": "Late note", **about(acme)}, admin)
        more = re.search(r'href="([^"]+)" data-more', html)
        url = more.group(1).replace("&amp;", "&") + "&fragment=1" if more else None
    assert pages == 3
    names = [s for s in seen if s.startswith("Note")]
    assert len(names) == len(set(names)) == 45  # each once, none skipped
    assert "Late note" not in " ".join(seen) and seen[-1].startswith("Created")


def test_timeline_shows_only_what_the_reader_may_see(site, admin, acme):
    from core.apps.admin import access_admin as aa

    aa.save_settings(site, {"inherit_created_by": False})
    east = aa.create_team(site, "East")
    tess = create_user(site, "tess", PASSWORD)
    aa.set_team_members(site, east, add=[tess.id])
    role = aa.create_role(site, "Team calls")
    rights = ("view", "list", "edit", "delete", "export", "report")
    aa.set_role_rules(site, role, {"calls": ("enabled", {a: "team" for a in rights}),
                                   "meetings": ("disabled", {})})
    aa.set_user_roles(site, tess.id, [role])
    values = {"status": "held", "date_start": NOW, **about(acme)}
    site.records.create("calls", {**values, "name": "East call"}, SYSTEM_USER, teams=[east])
    site.records.create("calls", {**values, "name": "Hidden call"}, SYSTEM_USER)
    site.records.create("meetings", {**values, "name": "Hidden meeting",
                                     "date_end": NOW + dt.timedelta(hours=1)}, SYSTEM_USER)
    with signed_in(site, "tess", PASSWORD) as web:
        html = fragment(web, acme)
        assert "East call" in html and "Hidden" not in html
        detail = web.get(f"/m/accounts/{acme['id']}").text
        assert 'data-kind="calls"' in detail and 'data-kind="meetings"' not in detail
        # History's count in its heading: her team's call only
        assert re.search(r'id="sub-history".*?data-panel-count="1"', detail, re.DOTALL)
    with signed_in(site, "tess", PASSWORD) as web:
        other = web.get("/m/accounts/00000000-0000-0000-0000-000000000000/timeline?fragment=1")
        assert other.status_code == 404


def test_detail_page_reads_no_entry_and_remembers_open_panels_per_user(site, admin, acme,
                                                                      statements):
    site.records.create("calls", {"name": "Kick-off call", "status": "held",
                                  "date_start": NOW, **about(acme)}, admin)
    with signed_in(site, "admin") as web:
        url = f"/m/accounts/{acme['id']}"
        web.get(url)
        statements.clear()
        page = web.get(url).text
        count = len(statements)
        assert count <= 6, statements
        assert 'data-timeline="/m/accounts/' in page and "Kick-off call" not in page
        # the Activities and History panels' counts come in the same statement
        assert re.search(r'id="sub-activities".*?data-panel-count="0"', page, re.DOTALL)
        assert re.search(r'id="sub-history".*?data-panel-count="1"', page, re.DOTALL)
        assert not re.search(r'<details[^>]*id="sub-contacts"[^>]*\sopen[\s>]', page)
        # opened here: remembered for the user, on the server
        assert web.post("/panels/state", data={"_csrf": web.csrf, "panel": "accounts:contacts",
                                               "open": "1"}).status_code == 204
        assert web.post("/panels/state", data={"_csrf": web.csrf, "panel": "accounts:history",
                                               "open": "1"}).status_code == 204
        statements.clear()
        page = web.get(url).text
        assert len(statements) == count  # the state came in the facts statement
        assert re.search(r'<details[^>]*id="sub-contacts"[^>]*\sopen[\s>]', page)
        assert re.search(r'<details[^>]*id="sub-history"[^>]*\sopen[\s>]', page)
        assert web.post("/panels/state", data={"_csrf": web.csrf, "panel": "accounts:contacts",
                                               "open": "0"}).status_code == 204
        assert not re.search(r'<details[^>]*id="sub-contacts"[^>]*\sopen[\s>]',
                             web.get(url).text)
        # bad input: refused, nothing stored; no token: refused
        assert web.post("/panels/state", data={"_csrf": web.csrf, "panel": "../x",
                                               "open": "1"}).status_code == 400
        for made_up in ("nosuch:x", "accounts:nosuch"):
            assert web.post("/panels/state", data={"_csrf": web.csrf, "panel": made_up,
                                                   "open": "1"}).status_code == 404
        assert web.post("/panels/state", data={"panel": "accounts:contacts",
                                               "open": "1"}).status_code == 403
    create_user(site, "sam", PASSWORD)
    with signed_in(site, "sam", PASSWORD) as web:  # another user: their own choice
        page = web.get(f"/m/accounts/{acme['id']}").text
        assert not re.search(r'<details[^>]*id="sub-history"[^>]*\sopen[\s>]', page)
