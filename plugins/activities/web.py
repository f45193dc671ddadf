"""The invitees' answers on the web (issue 20).

- ``GET /invitations/<invitee id>/<answer>/<token>``: public (the invitee may have no
  account: a contact, a lead). The token is the HMAC of the invitee row and the answer
  (invitees.answer_token); a bad or withdrawn one is a 410 page. The GET only asks — mail
  scanners open links — and the page's button POSTs the answer (``set_answer``).
- ``POST /meetings/<id>/answer/<answer>``: an invited user answers from the meeting's page
  (the Accept / Tentative / Decline buttons, ``meeting_actions``); they must be able to see
  the meeting and be its invitee.
- ``meeting_actions`` also shows, as a warning, the invited users already busy in another
  meeting at that time (invitees.busy_users): a warning, never a refusal.
"""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.kernel import i18n
from core.kernel.errors import N_, Message, NotFoundError
from core.web.actions import Action
from core.web.pages import page
from core.web.templating import flash
from plugins.activities import invitees as inv

ANSWER_LABELS = {"none": N_("No answer"), "accepted": N_("Accepted"),
                 "tentative": N_("Tentative"), "declined": N_("Declined")}
ANOTHER = N_("another meeting")  # one the reader may not see: its name is not told
BUTTONS = (("accepted", N_("Accept")), ("tentative", N_("Tentative")),
           ("declined", N_("Decline")))


def _render(request, status=200, **context):
    return request.app.state.templates.render(request, "invitation_answer.html",
                                              status=status, **context)


@page(public=True)
def answer_link(request, form):
    site = request.app.state.site
    invitee_id = request.path_params["invitee_id"]
    answer, token = request.path_params["answer"], request.path_params["token"]
    from core.kernel.records import SYSTEM_USER

    if not inv.token_ok(site, invitee_id, answer, token):
        return _render(request, status=410, invalid=True)
    try:
        invitee = site.records.get(inv.MODULE, invitee_id, SYSTEM_USER)
        meeting = site.records.get("meetings", invitee["meeting_id"], SYSTEM_USER) \
            if invitee.get("meeting_id") else site.records.get("calls", invitee["call_id"],
                                                                 SYSTEM_USER)
    except NotFoundError:
        return _render(request, status=410, invalid=True)
    label = i18n.active().gettext(ANSWER_LABELS[answer])
    if request.method == "POST":
        inv.set_answer(site, invitee_id, answer)
        return _render(request, invitee=invitee, meeting=meeting, done=True, answer=answer,
                       answer_label=label)
    return _render(request, invitee=invitee, meeting=meeting, answer=answer,
                   answer_label=label)


@page()
def answer_from_page(request, form):
    site, user = request.app.state.site, request.state.user
    meeting_id, answer = request.path_params["meeting_id"], request.path_params["answer"]
    if answer not in inv.ANSWERS[1:]:
        raise HTTPException(404)
    try:
        site.records.get("meetings", meeting_id, user)  # may they see it at all?
    except NotFoundError:
        raise HTTPException(404) from None
    mine = [i for i in inv.invitees_of(site, "meetings", [meeting_id])[meeting_id]
            if i.kind == "users" and i.id == user.id]
    if not mine:
        raise HTTPException(403, "You are not invited to this meeting.")
    inv.set_answer(site, mine[0].invitee_record_id, answer)
    flash(request, Message(N_("Your answer is recorded: %(answer)s."),
                           answer=i18n.active().gettext(ANSWER_LABELS[answer])), "info")
    return RedirectResponse(f"/m/meetings/{meeting_id}", 303)


def meeting_actions(site, record, user) -> list[Action]:
    """Answer buttons for an invited user; the busy invitees' warning for everyone."""
    actions: list[Action] = []
    invited = inv.invitees_of(site, "meetings", [record["id"]]).get(record["id"], [])
    mine = [i for i in invited if i.kind == "users" and i.id == user.id]
    if mine:
        for answer, label in BUTTONS:
            if mine[0].accept_status != answer:
                actions.append(Action(label, f"/meetings/{record['id']}/answer/{answer}",
                                      post=True, primary=answer == "accepted"))
    busy = inv.busy_users(site, [record["id"]]).get(record["id"], [])
    if busy and record.get("status") == "planned":
        tr = i18n.active()
        visible = site.records.allowed("meetings", [c.meeting_id for c in busy], user, "view")
        names = ", ".join(f"{c.name} (“{c.meeting_name}”)" if c.meeting_id in visible
                          else f"{c.name} ({tr.gettext(ANOTHER)})" for c in busy)
        text = tr.gettext("Warning — busy at that time: %(names)s") % {"names": names}
        target = next((c.meeting_id for c in busy if c.meeting_id in visible), None)
        actions.append(Action(text.replace("%", "%%"),
                              f"/m/meetings/{target}" if target else "#"))
    return actions


routes = [
    Route("/invitations/{invitee_id}/{answer}/{token}", answer_link, methods=["GET", "POST"]),
    Route("/meetings/{meeting_id}/answer/{answer}", answer_from_page, methods=["POST"]),
]
