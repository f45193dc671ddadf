"""The demo admin's mailbox: a realistic inbox to open the mail client on.

Received emails from the first demo contacts (linked to the contact and their account, so
they show on both Histories), a few answered — the reply in Sent, threaded by
In-Reply-To/References, and now and then the customer's answer back in the Inbox —, a
draft, an email scheduled for tomorrow, and a customer's question in the group folder
"Customer Support". Once: a mailbox that already has mail is left as it is. The demo sends
nothing (what is sent is already "sent"; the scheduled one waits for the outbound queue).
"""
from __future__ import annotations

import datetime as dt

from core.kernel.records import Query
from plugins.emails import folders

CONTACTS = 10
SUBJECTS = (
    ("Question about your proposal", ("<p>Hello,</p><p>thank you for the proposal you sent last "
     "week. Could you tell us whether the price includes installation and the first year of "
     "support?</p><p>Best regards,</p>")),
    ("Meeting next Tuesday", ("<p>Hi,</p><p>would Tuesday at 10:00 work for you to go through "
     "the rollout plan? Our IT lead will join.</p><p>Thanks,</p>")),
    ("Invoice INV-2031", ("<p>Hello,</p><p>we received invoice INV-2031. Our purchase order "
     "number is <b>PO-77812</b>; could you add it and send the invoice again?</p>")),
    ("Renewal of our contract", ("<p>Good morning,</p><p>our contract ends at the end of next "
     "quarter. We would like to renew for two years: can you send us the terms?</p>")),
    ("Thank you for the demo", ("<p>Hi,</p><p>the team enjoyed yesterday's demo. A few "
     "questions came up about the reporting module:</p><ul><li>Can reports be scheduled?</li>"
     "<li>Is there an export to Excel?</li></ul><p>Regards,</p>")),
    ("Newsletter: spring product update", ("<p>Our spring update is out.</p>"
     '<p><img src="https://newsletter.example.com/banner.png" alt="Spring update"></p>'
     "<p>Read what is new in the product.</p>")),
)
REPLY = ("<p>Hello {first},</p><p>thank you for your message — I am looking into it and will "
         "come back to you before the end of the week.</p><p>Kind regards,</p>")
ANSWER = "<p>Thank you, that works for us. Talk soon!</p>"
QUESTION = ("Problem with the login page", ("<p>Hello support,</p><p>since this morning our "
            "users cannot sign in: the page says their password has expired. Can you help?"
            "</p><p>Thanks,</p>"))


def _address(contact: dict) -> str:
    name = " ".join(filter(None, (contact.get("first_name"), contact.get("last_name"))))
    return f'"{name}" <{contact["email1"]}>' if name else contact["email1"]


def load(site, user, size, rng, progress) -> None:
    if "contacts" not in site.registry.modules:
        return
    with site.engine.begin() as conn:
        mine = folders.ensure_personal(site, conn, user.id)
        group = folders.ensure_group(site, conn)
    if site.records.count("emails", user, Query(filters=[("folder_id", "in",
                                                          list(mine.values()))]), cap=0):
        return  # once
    contacts = site.records.list("contacts", user, Query(
        fields=["id", "first_name", "last_name", "email1", "account_id"],
        filters=[("email1", "not_empty", None)], sort="last_name", limit=CONTACTS))
    if not contacts:
        return
    me = getattr(user, "email", None) or "admin@crbm.example"
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    rows: list[dict] = []

    def email(**values) -> dict:
        row = {"assigned_user_id": user.id, "is_read": True, **values}
        rows.append(row)
        return row

    for n, contact in enumerate(contacts):
        subject, body = SUBJECTS[n % len(SUBJECTS)]
        when = now - dt.timedelta(days=n // 2, hours=rng.randrange(1, 9), minutes=rng.randrange(60))
        key = f"<demo-{n}-{rng.randrange(10**9)}@{contact['email1'].split('@')[-1]}>"
        links = {"contact_id": contact["id"], "account_id": contact.get("account_id")}
        email(name=subject, from_address=_address(contact), to_addresses=me, body_html=body,
              date_sent=when, status="received", direction="inbound", folder_id=mine["inbox"],
              is_read=n >= 4, message_id=key, thread_id=key, **links)
        if n % 3 == 1:  # answered: the reply in Sent, and the customer's answer back
            reply_key = f"<demo-reply-{n}-{rng.randrange(10**9)}@crbm.example>"
            email(name=f"Re: {subject}", from_address=me, to_addresses=_address(contact),
                  body_html=REPLY.format(first=contact.get("first_name") or "")
                  + f"<blockquote>{body}</blockquote>", date_sent=when + dt.timedelta(hours=1),
                  status="sent", direction="outbound", folder_id=mine["sent"],
                  message_id=reply_key, in_reply_to=key, references=key, thread_id=key, **links)
            if n % 2:
                email(name=f"Re: {subject}", from_address=_address(contact), to_addresses=me,
                      body_html=ANSWER, date_sent=when + dt.timedelta(hours=3),
                      status="received", direction="inbound", folder_id=mine["inbox"],
                      is_read=False, message_id=f"<demo-answer-{n}@example>",
                      in_reply_to=reply_key, references=f"{key} {reply_key}", thread_id=key,
                      **links)
    first = contacts[0]
    email(name="Our offer for the second site", from_address=me, to_addresses=_address(first),
          body_html="<p>Hello,</p><p>as promised, here is our offer for the second site.</p>",
          date_sent=now, status="draft", direction="outbound", folder_id=mine["drafts"],
          contact_id=first["id"], account_id=first.get("account_id"))
    email(name="Checking in after the installation", from_address=me,
          to_addresses=_address(contacts[-1]), date_sent=now, status="queued",
          send_at=now + dt.timedelta(days=1), direction="outbound", folder_id=mine["sent"],
          body_html="<p>Hello,</p><p>how is the new system running after the first week?</p>",
          contact_id=contacts[-1]["id"], account_id=contacts[-1].get("account_id"))
    asker = contacts[min(2, len(contacts) - 1)]
    email(name=QUESTION[0], from_address=_address(asker), to_addresses="support@crbm.example",
          body_html=QUESTION[1], date_sent=now - dt.timedelta(minutes=35), status="received",
          direction="inbound", folder_id=group["Customer Support"], is_read=False,
          shared_at=now - dt.timedelta(minutes=35),
          contact_id=asker["id"], account_id=asker.get("account_id"),
          message_id="<demo-support-1@example>")
    site.records.create_many("emails", rows, user)
    progress(len(rows), len(rows))
