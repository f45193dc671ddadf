"""In-app notifications: what ``notify`` stores (active users only, in the caller's
transaction, once per key), what each user sees of them on the page, in the top bar and in
the API (their own only; a link only to a record they may still view), marking them read,
and pruning old read ones."""
import datetime as dt
import html
import re

import pytest
import sqlalchemy as sa

from core.apps.admin import access_admin as aa
from core.apps.notifications import Notified, inbox, notify
from core.apps.notifications.tables import TABLE
from core.kernel.errors import ValidationError
from core.kernel.records import now
from core.kernel.users import create_user, set_active
from core.testing import ADMIN_PASSWORD, api_client, bearer, signed_in

OWNER_LEVELS = {"view": "owner", "list": "owner", "edit": "owner", "delete": "none",
                "export": "none", "report": "none"}


def rows(site, user=None) -> list[dict]:
    table = site.tables.tables[TABLE]
    stmt = sa.select(table).order_by(table.c.id)
    if user is not None:
        stmt = stmt.where(table.c.user_id == user.id)
    with site.engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


@pytest.fixture
def people(site, admin):
    return {name: create_user(site, name, ADMIN_PASSWORD) for name in ("ann", "bob", "cid")}


def bell(page: str) -> str | None:
    """The unread count the top bar shows (None: no number)."""
    link = re.search(r'<a class="nav-entry counted" href="/notifications".*?</a>', page, re.DOTALL)
    assert link, "the top bar has no notifications link"
    count = re.search(r'<span class="nav-count">([^<]+)</span>', link.group(0))
    return count.group(1) if count else None


# -- notify ------------------------------------------------------------------------------------

def test_one_notification_per_active_user_the_others_skipped_and_counted(site, people):
    set_active(site, "cid", False)
    ann, bob, cid = people["ann"], people["bob"], people["cid"]
    made = notify(site, [ann.id, bob.id, ann.id, cid.id, "no-such-user"], "Quote Q-1 approved")
    assert isinstance(made, Notified) and made == 2 and made.skipped == 2
    assert sorted((r["user_id"], r["message"], r["read_at"]) for r in rows(site)) == \
        sorted([(ann.id, "Quote Q-1 approved", None), (bob.id, "Quote Q-1 approved", None)])
    assert notify(site, [], "nobody") == 0


def test_inside_the_callers_transaction_a_rollback_leaves_nothing(site, people, admin):
    ann = people["ann"]
    with pytest.raises(RuntimeError), site.engine.begin() as conn:
        acme = site.records.create("accounts", {"name": "Acme"}, admin, connection=conn)
        assert notify(site, [ann.id], "Acme is yours", module="accounts",
                      record_id=acme["id"], connection=conn) == 1
        raise RuntimeError("the save failed after notifying")
    assert rows(site, ann) == []
    with site.engine.begin() as conn:
        acme = site.records.create("accounts", {"name": "Acme"}, admin, connection=conn)
        notify(site, [ann.id], "Acme is yours", module="accounts", record_id=acme["id"],
               connection=conn)
    assert [(r["message"], r["record_id"]) for r in rows(site, ann)] == \
        [("Acme is yours", acme["id"])]


def test_a_key_notifies_each_user_once(site, people):
    ann, bob = people["ann"], people["bob"]
    assert notify(site, [ann.id], "Reminder: call Acme", key="reminder:42") == 1
    assert notify(site, [ann.id], "Reminder: call Acme", key="reminder:42") == 0  # a retried job
    assert notify(site, [ann.id, bob.id], "Reminder: call Acme", key="reminder:42") == 1
    assert notify(site, [ann.id], "Reminder: call Acme again", key="reminder:43") == 1
    assert notify(site, [ann.id], "No key: always") == 1
    assert notify(site, [ann.id], "No key: always") == 1
    assert sorted(r["message"] for r in rows(site, ann)) == [
        "No key: always", "No key: always", "Reminder: call Acme", "Reminder: call Acme again"]


@pytest.mark.parametrize(("arguments", "field"), [
    ({"user_ids": "one-id-as-a-string"}, "user_ids"),
    ({"message": "   "}, "message"),
    ({"message": "x" * 2001}, "message"),
    ({"module": "accounts"}, "record_id"),
    ({"record_id": "abc"}, "module"),
    ({"module": "no_such_module", "record_id": "abc"}, "module"),
    ({"url": "javascript:alert(1)"}, "url"),
    ({"url": "//evil.example/x"}, "url"),
    ({"key": ""}, "key"),
])
def test_bad_arguments_are_refused_naming_them_and_nothing_is_written(site, people, arguments,
                                                                       field):
    given = {"user_ids": [people["ann"].id], "message": "Hello", **arguments}
    with pytest.raises(ValidationError) as refused:
        notify(site, given.pop("user_ids"), given.pop("message"), **given)
    assert field in refused.value.errors
    assert rows(site) == []


# -- the page and the bell -------------------------------------------------------------------

def test_the_bell_counts_unread_ones_at_no_statement_of_its_own(site, admin, web):
    site.records.create("accounts", {"name": "Acme"}, admin)
    web.get("/m/accounts")  # warm: grants, cached statements
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    assert bell(web.get("/m/accounts").text) is None
    notify(site, [admin.id], "One")
    notify(site, [admin.id], "Two")
    sa.event.listen(site.engine, "before_cursor_execute", record)
    try:
        page = web.get("/m/accounts").text
    finally:
        sa.event.remove(site.engine, "before_cursor_execute", record)
    assert bell(page) == "2"
    # the accounts list is its user query, its smart list tabs (core/apps/smart_lists) and
    # its rows, as before notifications existed; the count is read by the user query itself
    assert len(seen) == 3, seen
    assert [s for s in seen if TABLE in s] == [s for s in seen if "FROM crbm_users" in s]
    notify(site, [admin.id], "Three")
    assert bell(web.get("/m/accounts").text) == "3"


def test_the_bell_stops_at_99_plus(site, admin, web):
    for i in range(101):
        notify(site, [admin.id], f"Notice {i}")
    assert bell(web.get("/").text) == "99+"


def test_the_page_lists_newest_first_unread_in_bold_escaped_and_paged(site, admin, web):
    notify(site, [admin.id], "<script>alert('x')</script> & co")
    for i in range(30):
        notify(site, [admin.id], f"Notice {i:02d}")
    page = web.get("/notifications").text
    messages = re.findall(r'<li class="notification unread" data-id="\d+">.*?<span>(.*?)</span>',
                          page, re.DOTALL)
    assert [html.unescape(m) for m in messages] == [f"Notice {i:02d}" for i in range(29, 4, -1)]
    assert "31 unread" in page
    older = re.search(r'href="(/notifications\?before=\d+)" rel="next"', page).group(1)
    rest = web.get(older).text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co" in rest
    assert "<script>alert" not in rest
    assert 'rel="next"' not in rest and 'rel="first"' in rest


def test_mark_one_read_then_all_read_but_not_what_arrived_since(site, admin, web):
    notify(site, [admin.id], "First")
    notify(site, [admin.id], "Second")
    first, second = (r["id"] for r in rows(site, admin))
    page = web.post(f"/notifications/{first}/read", data={"_csrf": web.csrf})
    assert page.url.path == "/notifications"
    assert f'<li class="notification" data-id="{first}">' in page.text
    assert f'<li class="notification unread" data-id="{second}">' in page.text
    assert bell(page.text) == "1"
    # "Mark all read" covers what the page showed; a notification arriving meanwhile stays
    upto = re.search(r'name="upto" value="(\d+)"', page.text).group(1)
    notify(site, [admin.id], "Third, arrived while the page was open")
    page = web.post("/notifications/read-all", data={"_csrf": web.csrf, "upto": upto})
    assert "Notifications marked read." in page.text
    assert [r["message"] for r in rows(site, admin) if r["read_at"] is None] == \
        ["Third, arrived while the page was open"]
    assert bell(page.text) == "1"
    # without the token nothing changes
    assert web.post("/notifications/read-all", data={}).status_code == 403
    assert len([r for r in rows(site, admin) if r["read_at"] is None]) == 1


def test_a_user_never_sees_nor_marks_someone_elses(site, people):
    ann, bob = people["ann"], people["bob"]
    notify(site, [ann.id], "For Ann only")
    notify(site, [bob.id], "For Bob only")
    ann_id = rows(site, ann)[0]["id"]
    with signed_in(site, "bob") as client:
        page = client.get("/notifications").text
        assert "For Bob only" in page and "For Ann only" not in page
        client.post(f"/notifications/{ann_id}/read", data={"_csrf": client.csrf})
        client.post("/notifications/read-all", data={"_csrf": client.csrf})
    assert rows(site, ann)[0]["read_at"] is None
    assert rows(site, bob)[0]["read_at"] is not None
    with api_client(site) as api:
        headers = bearer(site, bob)
        listed = api.get("/api/v1/notifications", headers=headers).json()
        assert [n["message"] for n in listed["data"]] == ["For Bob only"]
        assert api.post(f"/api/v1/notifications/{ann_id}/read", headers=headers).status_code == 404
        marked = api.post("/api/v1/notifications/read", json={"ids": [ann_id]}, headers=headers)
        assert marked.json() == {"marked": 0, "unread": 0}
    assert rows(site, ann)[0]["read_at"] is None


def test_the_link_shows_only_while_the_reader_may_view_the_record(site, admin, people):
    ann = people["ann"]
    own = aa.create_role(site, "Own accounts")
    aa.set_role_rules(site, own, {"accounts": ("enabled", OWNER_LEVELS)})
    aa.set_role_users(site, own, add=[ann.id])
    mine = site.records.create("accounts", {"name": "Annco", "assigned_user_id": ann.id}, admin)
    theirs = site.records.create("accounts", {"name": "Admco", "assigned_user_id": admin.id},
                                 admin)
    gone = site.records.create("accounts", {"name": "Goneco", "assigned_user_id": ann.id}, admin)
    for record, text in ((mine, "Annco is yours"), (theirs, "Admco changed"),
                         (gone, "Goneco is yours")):
        notify(site, [ann.id], text, module="accounts", record_id=record["id"])
    notify(site, [ann.id], "See the calendar", url="/calendar")
    site.records.delete("accounts", gone["id"], admin)
    with signed_in(site, "ann") as client:
        page = client.get("/notifications").text
    assert f'<a href="/m/accounts/{mine["id"]}">Annco is yours</a>' in page
    assert "<span>Admco changed</span>" in page and f'/m/accounts/{theirs["id"]}' not in page
    assert "<span>Goneco is yours</span>" in page
    assert '<a href="/calendar">See the calendar</a>' in page
    with api_client(site) as api:
        listed = api.get("/api/v1/notifications", headers=bearer(site, ann)).json()["data"]
    assert {n["message"]: n["url"] for n in listed} == {
        "See the calendar": "/calendar", "Goneco is yours": None, "Admco changed": None,
        "Annco is yours": f"/m/accounts/{mine['id']}"}


def test_the_api_lists_pages_and_marks_read(site, admin):
    for i in range(5):
        notify(site, [admin.id], f"Notice {i}")
    with api_client(site) as api:
        headers = bearer(site, admin)
        first = api.get("/api/v1/notifications?limit=3", headers=headers).json()
        assert [n["message"] for n in first["data"]] == ["Notice 4", "Notice 3", "Notice 2"]
        assert first["unread"] == 5 and first["data"][0]["unread"] is True
        rest = api.get(f"/api/v1/notifications?limit=3&before={first['next_before']}",
                       headers=headers).json()
        assert [n["message"] for n in rest["data"]] == ["Notice 1", "Notice 0"]
        assert rest["next_before"] is None
        one = first["data"][0]["id"]
        assert api.post(f"/api/v1/notifications/{one}/read", headers=headers).status_code == 204
        unread = api.get("/api/v1/notifications?unread=true", headers=headers).json()
        assert unread["unread"] == 4 and one not in [n["id"] for n in unread["data"]]
        assert api.post("/api/v1/notifications/read", json={"all": True},
                        headers=headers).json() == {"marked": 4, "unread": 0}
        bad = api.post("/api/v1/notifications/read", json={"ids": ["x"], "all": True},
                       headers=headers)
        assert bad.status_code == 422 and "ids" in str(bad.json()["errors"])
        assert api.get("/api/v1/notifications?limit=0", headers=headers).status_code == 422
        assert api.post("/api/v1/notifications/read", json={"ids": [10**30]},
                        headers=headers).status_code == 422
        assert api.post(f"/api/v1/notifications/{10**30}/read",
                        headers=headers).status_code == 404
        document = api.get("/api/v1/openapi.json", headers=headers).json()
    assert {"/api/v1/notifications", "/api/v1/notifications/read",
            "/api/v1/notifications/{id}/read"} <= set(document["paths"])
    assert "Notification" in document["components"]["schemas"]


# -- pruning ----------------------------------------------------------------------------------

def test_prune_removes_read_ones_past_the_retention_and_keeps_unread_ones(site, admin):
    for text in ("old read", "old unread", "recently read"):
        notify(site, [admin.id], text)
    table = site.tables.tables[TABLE]
    today = now()
    with site.engine.begin() as conn:
        for text, read_at in (("old read", today - dt.timedelta(days=31)),
                              ("recently read", today - dt.timedelta(days=29))):
            conn.execute(table.update().where(table.c.message == text).values(read_at=read_at))
        conn.execute(table.update().values(created_at=today - dt.timedelta(days=90)))
    task = next(t for found in site.hook.crbm_scheduled_tasks(site=site) for t in found or []
                if t.name == "notifications.prune")
    assert task.schedule == "30 3 * * *" and task.enabled
    assert task.run(site, today) == "Removed 1 read notifications"
    assert sorted(r["message"] for r in rows(site)) == ["old unread", "recently read"]
    assert task.run(site, today) == "Removed 0 read notifications"  # a second run: nothing
    site.set_setting(inbox.SETTING, {"retention_days": 0})
    assert task.run(site, today + dt.timedelta(days=400)) == "Read notifications are kept for ever."
    assert len(rows(site)) == 2
    site.set_setting(inbox.SETTING, {"retention_days": 1})
    assert inbox.prune(site, at=today) == 1
    assert [r["message"] for r in rows(site)] == ["old unread"]


def test_the_studio_refuses_a_module_named_like_the_api_path(site):
    from core.apps.studio.studio import module_name_problem
    assert module_name_problem("notifications") is not None


def test_the_bell_s_poll_gives_the_count_and_only_the_reader_s_new_ones(site, people, admin,
                                                                         web):
    """``/notifications/live.json?after=<id>``: the unread count and the unread ones newer
    than what the page saw, oldest first — another user's never; no-store."""
    notify(site, [admin.id], "First")
    first = web.get("/notifications/live.json").json()
    assert first["unread"] == 1 and [n["message"] for n in first["new"]] == ["First"]
    notify(site, [admin.id], "Second")
    notify(site, [admin.id], "Third")
    notify(site, [u.id for u in people.values()], "Not for admin")
    answer = web.get(f"/notifications/live.json?after={first['newest']}")
    assert answer.headers["cache-control"] == "no-store"
    data = answer.json()
    assert data["unread"] == 3
    assert [n["message"] for n in data["new"]] == ["Second", "Third"]
    assert web.get(f"/notifications/live.json?after={data['newest']}").json()["new"] == []
    assert web.get("/notifications/live.json?after=nonsense").status_code == 200
