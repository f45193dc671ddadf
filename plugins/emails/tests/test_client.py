"""The mail client's pages (plugins/emails/client.py) over HTTP: folders, the list, the
reading pane, compose/reply/forward, mass actions, the Trash rule — and what is refused:
a bad address, someone else's folder or email, a post without its CSRF token."""
import datetime as dt
import html
import random
import re

import pytest

from core.kernel.records import Query
from core.kernel.users import create_user
from core.testing import ADMIN_PASSWORD, signed_in
from plugins.emails import attachments, demo, folders, trash

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


@pytest.fixture
def jane(site, admin):
    acme = site.records.create("accounts", {"name": "Acme Corporation"}, admin)
    return site.records.create("contacts", {"first_name": "Jane", "last_name": "Roe",
                                            "email1": "jane@acme.example",
                                            "account_id": acme["id"]}, admin)


def boxes(site, user) -> dict:
    with site.engine.begin() as conn:
        return {**folders.ensure_personal(site, conn, user.id), **folders.ensure_group(site, conn)}


def received(site, user, folder_id, subject="Question about your proposal", **values):
    return site.records.create("emails", {
        "name": subject, "from_address": '"Jane Roe" <jane@acme.example>',
        "to_addresses": "admin@crbm.example", "direction": "inbound", "status": "received",
        "folder_id": folder_id, "assigned_user_id": user.id, "message_id": "<q1@acme.example>",
        "date_sent": dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC),
        "body_html": "<p>Could you tell us the price?</p>", **values}, user)


def emails_in(site, user, folder_id) -> list[dict]:
    return site.records.list("emails", user, Query(filters=[("folder_id", "eq", folder_id)],
                                                   limit=None, sort="-date_sent"))


def post(web, url, **data):
    return web.post(url, data={"_csrf": web.csrf, **data}, follow_redirects=False)


# -- pages ------------------------------------------------------------------------------------

def test_the_mailbox_shows_folders_unread_counts_and_the_list_newest_first(site, admin, jane):
    box = boxes(site, admin)
    received(site, admin, box["inbox"], "Older", date_sent=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
             is_read=True)
    received(site, admin, box["inbox"], "Newer")
    received(site, admin, box["Customer Support"], "Login problem")
    with signed_in(site, "admin") as web:
        page = web.get("/email")
        assert page.status_code == 200
        text = page.text
        assert text.index("Newer") < text.index("Older")
        assert re.search(r'message-row unread[^>]*>\s*<input[^>]*>\s*<a[^>]*>\s*'
                         r'<span class="who" [^>]*>Jane Roe</span>', text)
        for name in ("Inbox", "Sent", "Drafts", "Trash", "Group Inbox", "Customer Support"):
            assert f'<span class="folder-name">{name}</span>' in text
        # unread: one in the Inbox, one in Customer Support
        assert text.count('<span class="unread-count" title="Unread">1</span>') == 4  # 2 menus
        assert 'href="/email"' in web.get("/m/accounts").text  # the top bar's "Email"
        group = web.get(f"/email?folder={box['Customer Support']}")
        assert "Login problem" in group.text and "Newer" not in group.text


def test_search_by_subject_or_sender_and_paging(site, admin, monkeypatch):
    from plugins.emails import client

    monkeypatch.setattr(client, "UNREAD_CAP", 50)  # a big folder's count stops there
    box = boxes(site, admin)
    site.records.create_many("emails", [
        {"name": f"Order {n:03}", "from_address": "orders@shop.example", "direction": "inbound",
         "folder_id": box["inbox"], "assigned_user_id": admin.id, "status": "received",
         "date_sent": dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=n)}
        for n in range(60)] + [
        {"name": "Lunch?", "from_address": "bob@friends.example", "direction": "inbound",
         "folder_id": box["inbox"], "assigned_user_id": admin.id, "status": "received"}], admin)
    with signed_in(site, "admin") as web:
        first = web.get("/email")
        assert "Order 059" in first.text and "Order 009" not in first.text
        assert '<span class="unread-count" title="Unread">50+</span>' in first.text
        following = re.search(r'href="([^"]+)" rel="next"', first.text)[1].replace("&amp;", "&")
        second = web.get(following)
        assert "Order 009" in second.text and "Order 059" not in second.text
        by_sender = web.get(f"/email?folder={box['inbox']}&q=bob")
        assert "Lunch?" in by_sender.text and "Order 0" not in by_sender.text
        by_subject = web.get(f"/email?folder={box['inbox']}&q=lunch")
        assert "Lunch?" in by_subject.text
        assert "No email matches your search." in web.get("/email?q=nothing-like-it").text


def test_reading_marks_read_blocks_remote_images_and_serves_inline_ones(site, admin, jane):
    box = boxes(site, admin)
    email = received(site, admin, box["inbox"], contact_id=jane["id"],
                     account_id=jane["account_id"],
                     body_html='<p>Hi</p><img src="https://tracker.example/p.png">'
                               '<img src="cid:logo@acme">')
    with site.engine.begin() as conn:
        attachments.add(site, conn, email["id"], [
            attachments.File("logo.png", PNG, "image/png", "logo@acme", inline=True),
            attachments.File("price list.pdf", b"%PDF-1.4 x", "application/pdf")])
    files = attachments.listed(site, [email["id"]])[email["id"]]
    with signed_in(site, "admin") as web:
        page = web.get(f"/email/{email['id']}")
        assert page.status_code == 200
        assert site.records.get("emails", email["id"], admin)["is_read"] is True
        frame = re.search(r'<iframe class="message-body"[^>]*>', page.text)[0]
        assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame
        assert "allow-scripts" not in frame and "tracker.example" not in page.text
        assert f"/email/{email['id']}/attachments/{files[0]['id']}" in frame  # cid: image
        assert "default-src &#39;none&#39;" in frame  # the document's own CSP
        assert "Remote images are blocked" in page.text
        assert "img-src 'self' data:;" in page.headers["content-security-policy"]
        assert "price list.pdf" in page.text and "logo.png" not in page.text  # inline: not listed
        assert "Jane Roe" in page.text and "Acme Corporation" in page.text  # linked records
        shown = web.get(f"/email/{email['id']}?images=1")
        assert "tracker.example" in shown.text and "Remote images are blocked" not in shown.text
        assert "https:" in shown.headers["content-security-policy"]
        served = web.get(f"/email/{email['id']}/attachments/{files[0]['id']}")
        assert served.status_code == 200 and served.content == PNG


def test_a_text_email_is_shown_as_text(site, admin):
    box = boxes(site, admin)
    email = received(site, admin, box["inbox"], body_html=None, body="Line one\n<b>not bold</b>")
    with signed_in(site, "admin") as web:
        page = web.get(f"/email/{email['id']}")
        assert '<pre class="message-text">Line one\n&lt;b&gt;not bold&lt;/b&gt;</pre>' in page.text


# -- what another user may not reach ------------------------------------------------------------

def test_nobody_opens_another_users_folder_or_email(site, admin, jane):
    ann = create_user(site, "ann", ADMIN_PASSWORD)
    box = boxes(site, admin)
    secret = received(site, admin, box["inbox"], "Salary review")
    with signed_in(site, "ann") as web:
        assert web.get(f"/email?folder={box['inbox']}").status_code == 404
        assert web.get(f"/email?folder={box['drafts']}").status_code == 404
        assert "Salary review" not in web.get("/email").text
        assert web.get(f"/email/{secret['id']}").status_code == 404
        assert web.get(f"/email/compose?reply={secret['id']}").status_code == 404
        assert web.get(f"/email/compose?forward={secret['id']}").status_code == 404
        moved = post(web, "/email/mass", action="read", ids=secret["id"])
        assert moved.status_code == 303
        assert site.records.get("emails", secret["id"], admin)["is_read"] is False
        # nor move their own email into someone else's folder
        mine = boxes(site, ann)
        own = received(site, ann, mine["inbox"], "Mine")
        refused = post(web, "/email/mass", action="move", ids=own["id"], target=box["inbox"])
        assert refused.status_code == 404
        assert site.records.get("emails", own["id"], admin)["folder_id"] == mine["inbox"]


def test_posts_without_the_csrf_token_are_refused(site, admin):
    box = boxes(site, admin)
    email = received(site, admin, box["inbox"])
    with signed_in(site, "admin") as web:
        for url, data in (("/email/mass", {"action": "delete", "ids": email["id"]}),
                          ("/email/compose", {"action": "send", "to": "a@b.example",
                                              "subject": "x"}),
                          ("/email/folders", {"name": "X"}),
                          ("/email/trash-rule", {"days": "3"})):
            assert web.post(url, data=data, follow_redirects=False).status_code == 403
    assert site.records.get("emails", email["id"], admin)["folder_id"] == box["inbox"]
    assert emails_in(site, admin, box["sent"]) == []


# -- compose ------------------------------------------------------------------------------------

def test_a_bad_address_is_named_and_nothing_is_stored(site, admin):
    with signed_in(site, "admin") as web:
        for field in ("to", "cc", "bcc"):
            data = {"to": "jane@acme.example", "subject": "Hi", "action": "send",
                    field: "jane@acme.example, not-an-address"}
            page = post(web, "/email/compose", **data)
            assert page.status_code == 400
            assert "&#39;not-an-address&#39; is not an email address" in page.text
            assert f'id="err-{field}"' in page.text
        assert "Write at least one address" in post(web, "/email/compose", to="", subject="x",
                                                     action="send").text
        late = post(web, "/email/compose", to="a@b.example", subject="x", action="later",
                    send_at="tomorrow")
        assert late.status_code == 400 and "is not a date and time" in late.text
        assert post(web, "/email/compose", action="explode").status_code == 400
    assert site.records.list("emails", admin, Query(limit=None)) == []


def test_send_queues_the_email_with_its_files_in_sent(site, admin, jane):
    box = boxes(site, admin)
    with signed_in(site, "admin") as web:
        done = web.post("/email/compose", data={
            "_csrf": web.csrf, "to": '"Jane Roe" <jane@acme.example>', "cc": "boss@acme.example",
            "subject": "Our offer", "html": "<p>Hello <b>Jane</b></p><script>x()</script>",
            "action": "send", "related": f'{{"contact_id": "{jane["id"]}"}}'},
            files=[("files", ("offer.pdf", b"%PDF-1.4 offer", "application/pdf")),
                   ("files", ("notes.txt", b"notes", "text/plain"))], follow_redirects=False)
        assert done.status_code == 303
    [email] = emails_in(site, admin, box["sent"])
    assert (email["status"], email["to_addresses"], email["cc_addresses"]) == (
        "queued", "Jane Roe <jane@acme.example>", "boss@acme.example")
    assert email["body_html"] == "<p>Hello <b>Jane</b></p>" and email["body"] == "Hello Jane"
    assert email["contact_id"] == jane["id"] and email["account_id"] is None
    assert [f["name"] for f in attachments.listed(site, [email["id"]])[email["id"]]] == [
        "offer.pdf", "notes.txt"]


def test_send_later_draft_and_a_file_too_large(site, admin):
    site.config["emails"] = {"max_attachment_mb": 0.001}  # about 1 KB
    box = boxes(site, admin)
    with signed_in(site, "admin") as web:
        later = post(web, "/email/compose", to="a@b.example", subject="Later",
                     action="later", send_at="2030-05-01T09:00")
        assert later.status_code == 303
        draft = post(web, "/email/compose", to="", subject="Unfinished", html="<p>to do</p>",
                     action="draft")
        assert draft.headers["location"].startswith("/email/compose?draft=")
        big = web.post("/email/compose", data={"_csrf": web.csrf, "to": "a@b.example",
                                               "subject": "Big", "action": "send"},
                       files=[("files", ("big.bin", b"x" * 5000, "application/octet-stream"))])
        assert big.status_code == 400 and "big.bin is larger than" in big.text
        editing = web.get(draft.headers["location"])
        assert "Unfinished" in editing.text and "<p>to do</p>" in editing.text.replace("&lt;", "<").replace("&gt;", ">")
        draft_id = draft.headers["location"].split("=")[1]
        sent = post(web, "/email/compose", to="c@d.example", subject="Finished", action="send",
                    draft_id=draft_id)
        assert sent.status_code == 303
    [scheduled] = [e for e in emails_in(site, admin, box["sent"]) if e["name"] == "Later"]
    assert scheduled["status"] == "queued"
    assert scheduled["send_at"].replace(tzinfo=dt.UTC) == dt.datetime(2030, 5, 1, 9, 0,
                                                                       tzinfo=dt.UTC)
    assert emails_in(site, admin, box["drafts"]) == []  # the draft was sent
    finished = site.records.get("emails", draft_id, admin)
    assert (finished["status"], finished["folder_id"]) == ("queued", box["sent"])
    assert [e["name"] for e in site.records.list("emails", admin, Query(limit=None))
            if e["name"] == "Big"] == []


def test_reply_quotes_and_threads_and_forward_carries_the_attachments(site, admin, jane):
    box = boxes(site, admin)
    original = received(site, admin, box["inbox"], contact_id=jane["id"],
                        references="<q0@acme.example>", thread_id="<q0@acme.example>")
    with site.engine.begin() as conn:
        attachments.add(site, conn, original["id"], [attachments.File("plan.pdf", b"%PDF plan",
                                                                      "application/pdf")])
    with signed_in(site, "admin") as web:
        reply = web.get(f"/email/compose?reply={original['id']}")
        assert 'value="Re: Question about your proposal"' in reply.text
        assert "&lt;blockquote&gt;&lt;p&gt;Could you tell us the price?" in reply.text
        assert 'name="in_reply_to" value="&lt;q1@acme.example&gt;"' in reply.text
        assert 'value="&#34;Jane Roe&#34; &lt;jane@acme.example&gt;"' in reply.text
        related = re.search(r'name="related" value="([^"]*)"', reply.text)[1]
        assert post(web, "/email/compose", to="jane@acme.example", subject="Re: Question",
                    html="<p>Yes</p>", action="send", in_reply_to="<q1@acme.example>",
                    references="<q0@acme.example> <q1@acme.example>",
                    thread_id="<q0@acme.example>",
                    related=related.replace("&#34;", '"')).status_code == 303
        forward = web.get(f"/email/compose?forward={original['id']}")
        assert 'value="Fwd: Question about your proposal"' in forward.text
        assert "plan.pdf" in forward.text
        assert post(web, "/email/compose", to="colleague@crbm.example", subject="Fwd: Q",
                    action="send", forward_of=original["id"]).status_code == 303
    sent = {e["name"]: e for e in emails_in(site, admin, box["sent"])}
    reply = sent["Re: Question"]
    assert (reply["in_reply_to"], reply["references"], reply["thread_id"]) == (
        "<q1@acme.example>", "<q0@acme.example> <q1@acme.example>", "<q0@acme.example>")
    assert reply["contact_id"] == jane["id"]
    forwarded = sent["Fwd: Q"]
    [carried] = attachments.listed(site, [forwarded["id"]])[forwarded["id"]]
    assert carried["name"] == "plan.pdf" and attachments.read(site, carried) == b"%PDF plan"


def test_email_from_a_record_fills_its_address_and_files_it_on_the_record(site, admin, jane):
    with signed_in(site, "admin") as web:
        detail = web.get(f"/m/contacts/{jane['id']}")
        assert f'/email/compose?module=contacts&amp;record={jane["id"]}' in detail.text
        page = web.get(f"/email/compose?module=contacts&record={jane['id']}")
        assert 'value="&#34;Jane Roe&#34; &lt;jane@acme.example&gt;"' in page.text
        related = re.search(r'name="related" value="([^"]*)"', page.text)[1].replace("&#34;", '"')
        assert post(web, "/email/compose", to="jane@acme.example", subject="Hello",
                    action="send", related=related).status_code == 303
        assert web.get("/email/compose?module=contacts&record=nope").status_code == 404
    [email] = site.records.list("emails", admin, Query(limit=None))
    assert email["contact_id"] == jane["id"] and email["account_id"] == jane["account_id"]
    assert (email["parent_type"], email["parent_id"]) in ((None, None), ("contacts", jane["id"]))


def test_a_template_is_rendered_for_the_record(site, admin, jane):
    template = site.records.create("email_templates", {
        "name": "Follow-up", "for_module": "contacts", "language": "en",
        "subject": "Hello {{ first_name }}", "body_html": "<p>Dear {{ first_name }},</p>"}, admin)
    with signed_in(site, "admin") as web:
        page = web.get(f"/email/compose?module=contacts&record={jane['id']}")
        assert "Follow-up" in page.text and "Insert template" in page.text
        got = web.get(f"/email/template/{template['id']}?module=contacts&record={jane['id']}")
        assert got.json() == {"subject": "Hello Jane", "html": "<p>Dear Jane,</p>"}
        wrong = web.get(f"/email/template/{template['id']}?module=accounts&record=x")
        assert wrong.status_code == 400 and "another kind of record" in wrong.json()["error"]
        assert web.get("/email/template/nope?module=contacts&record=x").status_code == 404


# -- mass actions, folders, Trash ---------------------------------------------------------------

def test_mass_actions_move_between_personal_and_group_folders_mark_and_delete(site, admin):
    box = boxes(site, admin)
    one, two = (received(site, admin, box["inbox"], f"Mail {n}") for n in (1, 2))
    ids = [one["id"], two["id"]]
    with signed_in(site, "admin") as web:
        assert post(web, "/email/mass", action="read", ids=ids,
                    folder=box["inbox"]).status_code == 303
        assert all(e["is_read"] for e in emails_in(site, admin, box["inbox"]))
        post(web, "/email/mass", action="unread", ids=[one["id"]])
        assert not site.records.get("emails", one["id"], admin)["is_read"]
        post(web, "/email/mass", action="move", ids=ids, target=box["Customer Support"])
        assert len(emails_in(site, admin, box["Customer Support"])) == 2
        post(web, "/email/mass", action="move", ids=[two["id"]], target=box["inbox"])
        assert [e["id"] for e in emails_in(site, admin, box["inbox"])] == [two["id"]]
        post(web, "/email/mass", action="delete", ids=[two["id"]])
        assert [e["id"] for e in emails_in(site, admin, box["trash"])] == [two["id"]]
        post(web, "/email/mass", action="delete", ids=[two["id"]])  # from the Trash: gone
        assert emails_in(site, admin, box["trash"]) == []
        assert post(web, "/email/mass", action="move", ids=[one["id"]],
                    target="not-a-folder").status_code == 404
        assert post(web, "/email/mass", action="burn", ids=[one["id"]]).status_code == 400
        assert "Tick the emails first." in web.get(post(web, "/email/mass", action="read")
                                                   .headers["location"]).text


def test_folders_of_ones_own_and_the_trash_rule(site, admin):
    with signed_in(site, "admin") as web:
        made = post(web, "/email/folders", name="Projects")
        assert made.status_code == 303
        assert "Projects" in web.get(made.headers["location"]).text
        again = post(web, "/email/folders", name="projects")
        assert "is empty or taken" in web.get(again.headers["location"]).text
        assert post(web, "/email/trash-rule", days="7").status_code == 303
        assert trash.keep_days(site, admin) == 7
        bad = post(web, "/email/trash-rule", days="0")
        assert "is not a whole number from 1 to 3650" in web.get(bad.headers["location"]).text
        assert trash.keep_days(site, admin) == 7


def test_the_trash_is_emptied_by_each_users_rule(site, admin):
    ann = create_user(site, "ann", ADMIN_PASSWORD)
    mine, hers = boxes(site, admin), boxes(site, ann)
    trash.set_keep_days(site, admin, 2)  # ann keeps the default, 30 days
    old_mine = received(site, admin, mine["trash"], "old mine")
    new_mine = received(site, admin, mine["trash"], "new mine")
    old_hers = received(site, ann, hers["trash"], "old hers")
    kept = received(site, admin, mine["inbox"], "in the inbox")
    table = site.records.table(site.registry.module("emails"))
    now = dt.datetime.now(dt.UTC)
    with site.engine.begin() as conn:
        for email, days in ((old_mine, 3), (old_hers, 10), (kept, 400)):
            conn.execute(table.update().where(table.c.id == email["id"])
                         .values(modified_at=now - dt.timedelta(days=days)))
    assert trash.run_task(site, now) == "deleted 1 emails from Trash"
    assert trash.run_task(site, now) == "deleted 0 emails from Trash"  # nothing twice
    left = {e["name"] for who in (admin, ann)  # each mailbox is its owner's
            for e in site.records.list("emails", who, Query(limit=None))}
    assert left == {"new mine", "old hers", "in the inbox"}
    assert new_mine["id"]


def test_the_demo_inbox(site, admin):
    acme = site.records.create("accounts", {"name": "Acme"}, admin)
    site.records.create_many("contacts", [
        {"first_name": f"Person{n}", "last_name": "Demo", "email1": f"p{n}@acme.example",
         "account_id": acme["id"]} for n in range(6)], admin)
    demo.load(site, admin, 10, random.Random(1), lambda done, total: None)
    demo.load(site, admin, 10, random.Random(1), lambda done, total: None)  # once
    box = boxes(site, admin)
    inbox = emails_in(site, admin, box["inbox"])
    assert len(inbox) >= 6 and all(e["contact_id"] for e in inbox)
    assert any(not e["is_read"] for e in inbox)
    assert any(e["in_reply_to"] for e in emails_in(site, admin, box["sent"]))
    assert [e["status"] for e in emails_in(site, admin, box["drafts"])] == ["draft"]
    assert [e["name"] for e in emails_in(site, admin, box["Customer Support"])] == [
        "Problem with the login page"]


def test_a_sent_email_leaves_through_the_outbound_queue(site, admin, jane, smtp_inbox):
    from core import jobs

    box = boxes(site, admin)
    with signed_in(site, "admin") as web:
        assert web.post("/email/compose", data={
            "_csrf": web.csrf, "to": "jane@acme.example", "subject": "Your price list",
            "html": "<p>Attached.</p>", "action": "send",
            "related": f'{{"contact_id": "{jane["id"]}"}}'},
            files=[("files", ("prices.txt", b"Installation included.", "text/plain"))],
            follow_redirects=False).status_code == 303
    jobs.run_due_jobs(site)
    [message] = smtp_inbox.messages
    assert (message["Subject"], message["To"]) == ("Your price list", "jane@acme.example")
    [attached] = message.iter_attachments()
    assert attached.get_filename() == "prices.txt"
    [email] = emails_in(site, admin, box["sent"])
    assert email["status"] == "sent" and email["contact_id"] == jane["id"]


def test_a_mailbox_is_its_owners_until_an_email_is_filed_or_shared(site, admin, jane):
    """modules/emails.yaml private: another user — an administrator too — reads none of
    someone's unfiled mail through any path (page, list, API); filed on a contact, or put
    in a group folder, it is shared as the roles say (here: with everyone)."""
    from core.testing import api_client, bearer

    ann = create_user(site, "ann", ADMIN_PASSWORD)
    mine = boxes(site, ann)
    secret = received(site, ann, mine["inbox"], "Salary review", message_id="<s@x>",
                      from_address="hr@elsewhere.example")
    filed = received(site, ann, mine["inbox"], "About the proposal", contact_id=jane["id"])
    assert site.records.get("emails", secret["id"], ann)["name"] == "Salary review"
    names = {e["name"] for e in site.records.list("emails", admin, Query(limit=None))}
    assert "Salary review" not in names and "About the proposal" in names  # admins too
    with signed_in(site, "admin") as web:
        assert web.get(f"/m/emails/{secret['id']}").status_code == 404
        assert "Salary review" not in web.get("/m/emails").text
        assert web.get(f"/m/emails/{filed['id']}").status_code == 200
        assert web.get(f"/email/{secret['id']}/attachments/1").status_code == 404
    api = api_client(site)
    assert api.get(f"/api/v1/emails/{secret['id']}", headers=bearer(site, admin)).status_code == 404
    listed = api.get("/api/v1/emails", headers=bearer(site, admin)).json()
    assert "Salary review" not in str(listed)
    # put in a group folder by its owner: every user sees it there; back: private again
    with signed_in(site, "ann") as web:
        post(web, "/email/mass", action="move", ids=secret["id"], target=mine["Customer Support"])
        assert site.records.get("emails", secret["id"], admin)["name"] == "Salary review"
        post(web, "/email/mass", action="move", ids=secret["id"], target=mine["inbox"])
    assert "Salary review" not in {e["name"] for e in site.records.list(
        "emails", admin, Query(limit=None))}


HOSTILE = ('<p onclick="steal()">Hi <a href="javascript:alert(1)">here</a></p>'
           '<script>alert(2)</script><img src=x onerror="alert(3)">'
           '<div style="width: expression(alert(4)); background:url(javascript:alert(5))">x</div>'
           '<iframe src="https://evil.example"></iframe><form action="https://evil.example">'
           '<input name="password"></form><svg onload="alert(6)"></svg>'
           '<img src="https://tracker.example/pixel.gif">')


def test_hostile_html_mail_is_inert(site, admin):
    """Scripts, event handlers, javascript: links, CSS expressions, frames, forms and remote
    images: nh3 (the html field) keeps none of them, and the reading pane adds a sandbox
    and blocks the remote image until asked."""
    box = boxes(site, admin)
    email = received(site, admin, box["inbox"], "Invoice overdue", body_html=HOSTILE)
    stored = site.records.get("emails", email["id"], admin)["body_html"]
    for bad in ("<script", "onclick", "onerror", "onload", "javascript:", "expression(",
                "<iframe", "<form", "<input", "style="):
        assert bad not in stored.lower(), bad
    assert "Hi" in stored and "here" in stored
    with signed_in(site, "admin") as web:
        page = html.unescape(web.get(f"/email/{email['id']}").text)
    frame = re.search(r'<iframe class="message-body"[^>]*>', page)[0]
    assert "allow-scripts" not in frame and "allow-same-origin" not in frame
    for bad in ("alert(", "tracker.example", "evil.example"):
        assert bad not in page, bad
