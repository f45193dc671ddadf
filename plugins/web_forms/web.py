"""The web forms' pages: the public endpoint a web site posts to, and the administrator's
"Embed" page.

``POST /forms/<form id>`` takes no session and no CSRF token — it is posted from another
site by people who are not users. What guards it instead, in this order:

1. a rate limit per IP address (``RATE``, shared by every worker through
   ``core.web.throttle``; the site setting ``web_forms_rate_limit`` changes it): 429;
2. the body's size (``MAX_BODY``, counted as it arrives): 413;
3. the form exists and is active: 404;
4. the ``Origin`` header, when the browser sends one and the form names its web site,
   must be that site: 403 (CORS answers name that origin only, and ``OPTIONS`` preflights
   are answered for it alone);
5. the honeypot field filled: answered as a success, nothing created;
6. the signed timestamp, when the form requires one: 400;
7. the required fields: 422 naming them; then the record service's own validation
   (field types, lists): 422 naming each field.

The record is created through ``RecordService.create`` as the form's "Assign submissions
to" user (for leads without one, the leads plugin's "Assign New Leads To" when that plugin
is there; else whoever made the form), and a job (``web_forms.notify``) mails that user once
the record is committed. A browser's plain post is redirected to the thank-you page (or a
short page of ours); a script's (``Accept: application/json``) gets JSON.
"""
from __future__ import annotations

import json
import logging
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from core import jobs
from core.kernel import i18n
from core.kernel.errors import N_, Message, NotFoundError, ValidationError, VetoError
from core.kernel.identity import client_ip, load_user_by_id
from core.kernel.records import SYSTEM_USER, User
from core.web import throttle
from core.web.pages import page

from . import forms

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024
RATE = 20  # submissions per IP address per minute, all forms together
NOTIFY = "web_forms.notify"


def _text(message: Message, **params) -> str:
    """English (the public endpoint has no reader whose language we know)."""
    return message.template % (params or message.params) if (params or message.params) \
        else message.template


class Refused(Exception):
    def __init__(self, status: int, message: Message, **extra):
        super().__init__(str(message))
        self.status, self.message, self.extra = status, message, extra


def _rule(site) -> throttle.Rule:
    limit = site.settings.get("web_forms_rate_limit", RATE)
    return throttle.Rule("web-form-ip", int(limit) if str(limit).isdigit() else RATE, 60)


def _cors(design: forms.FormDesign | None, origin: str | None) -> dict:
    if design is None or not origin or origin != design.allowed_origin:
        return {"Vary": "Origin"}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def _answer(request: Request, status: int, message: str, headers: dict, **extra):
    if _wants_json(request):
        body = {"ok": status < 400, "message": message, **extra}
        return JSONResponse(body, status_code=status, headers=headers)
    return HTMLResponse(_page(message), status_code=status, headers=headers)


def _page(message: str) -> str:
    from markupsafe import escape
    return (f'<!doctype html><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{escape(message)}</title>'
            f'<p style="font-family:sans-serif;max-width:40rem;margin:3rem auto">'
            f'{escape(message)}</p>')


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "") or \
        request.headers.get("content-type", "").startswith("application/json")


def _design(site, form_id: str) -> forms.FormDesign:
    try:
        record = site.records.get(forms.MODULE, form_id, SYSTEM_USER, action=None)
    except NotFoundError:
        record = None
    design = forms.FormDesign.of(record) if record else None
    if design is None or not design.active:
        raise Refused(404, Message(N_("There is no such web form, or it no longer takes "
                                      "submissions.")))
    return design


async def submit(request: Request):
    site = request.app.state.site
    form_id = request.path_params["form_id"][:64]
    origin = request.headers.get("origin")
    design = None
    try:
        verdict = (await run_in_threadpool(throttle.counters(site).take, [
            (_rule(site), throttle.ip_subject(client_ip(request)))]) or [None])[0]
        if verdict is not None and not verdict.allowed:
            raise Refused(429, Message(N_("Too many forms were sent from your address. Try "
                                          "again in %(seconds)s seconds."),
                                       seconds=verdict.retry_after),
                          headers={"Retry-After": str(verdict.retry_after)})
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            raise Refused(413, Message(N_("The form is too large (at most %(kb)s KB)."),
                                       kb=MAX_BODY // 1024))
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise Refused(413, Message(N_("The form is too large (at most %(kb)s KB)."),
                                           kb=MAX_BODY // 1024))
        posted = _parse(request, bytes(body))
        design = await run_in_threadpool(_design, site, form_id)
        return await run_in_threadpool(_receive, request, site, design, origin, posted)
    except Refused as refused:
        headers = {**_cors(design, origin), **refused.extra.get("headers", {})}
        extra = {k: v for k, v in refused.extra.items() if k != "headers"}
        return _answer(request, refused.status, _text(refused.message), headers, **extra)


def _parse(request: Request, body: bytes) -> dict:
    kind = request.headers.get("content-type", "")
    try:
        text = body.decode("utf-8")
        if kind.startswith("application/json"):
            data = json.loads(text or "{}")
            if not isinstance(data, dict):
                raise ValueError
            return {str(k): "" if v is None else str(v) for k, v in data.items()}
        return dict(parse_qsl(text, keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, Message(N_("The form's data could not be read."))) from None


def _assignee(request: Request, site, design: forms.FormDesign):
    """Who the record is created as: the form's user, else whom the glue with the target's
    plugin names (leads: "Assign New Leads To", glue_leads.py), else the form's maker."""
    candidates = [design.assign_to_id,
                  site.hook.crbm_web_form_assignee(site=site, module=design.target)]
    candidates.append(design.created_by)
    for uid in filter(None, candidates):
        user = load_user_by_id(request.app, uid)
        if user is not None:
            return user
    raise Refused(503, Message(N_("This form cannot take submissions now: nobody is set to "
                                  "receive them.")))


def _receive(request: Request, site, design: forms.FormDesign, origin: str | None,
             posted: dict):
    headers = _cors(design, origin)
    if origin and design.allowed_origin and origin.lower() != design.allowed_origin:
        raise Refused(403, Message(N_("This form may not be sent from %(origin)s."),
                                   origin=origin))
    if posted.get(forms.HONEYPOT):  # a robot: told it worked, nothing kept
        return _done(request, design, headers, None)
    if design.require_token:
        problem = forms.token_problem(site, design.id, posted.get(forms.TOKEN))
        if problem is not None:
            raise Refused(400, problem)
    module = site.registry.modules.get(design.target)
    if module is None:
        raise Refused(404, Message(N_("There is no such web form, or it no longer takes "
                                      "submissions.")))
    values, missing = forms.submission(module, design, posted)
    if missing:
        raise Refused(422, Message(N_("Please fill in: %(fields)s."),
                                   fields=", ".join(missing)), missing=missing)
    source = module.fields.get("lead_source")
    if source is not None and "lead_source" not in values and source.spec.get("options") \
            and "web_site" in site.registry.option_values(source.spec["options"]):
        values["lead_source"] = "web_site"
    user = _assignee(request, site, design)
    if "assigned_user_id" in module.fields:
        values["assigned_user_id"] = user.id
    try:
        record = site.records.create(design.target, values, user)
    except ValidationError as exc:
        problems = {str(module.fields[k].label) if k in module.fields else k:
                    _text(m) if isinstance(m, Message) else str(m)
                    for k, m in exc.errors.items()}
        raise Refused(422, Message(N_("Please correct: %(problems)s."), problems="; ".join(
            f"{k}: {v}" for k, v in problems.items())), errors=problems) from None
    except VetoError as exc:
        raise Refused(422, Message(N_("The form was not accepted: %(reason)s"),
                                   reason=str(exc))) from None
    try:  # the record is committed: the assignee hears of it from a job
        jobs.enqueue(site, NOTIFY, {"form_id": design.id, "module": design.target,
                                    "record_id": record["id"], "user_id": user.id})
    except Exception:
        log.exception("web_forms: could not queue the notification for %s", record["id"])
    return _done(request, design, headers, record)


def _done(request: Request, design: forms.FormDesign, headers: dict, record: dict | None):
    if _wants_json(request):
        return JSONResponse({"ok": True, "message": "Thank you."}, status_code=201,
                            headers=headers)
    target = design.thank_you_url or f"/forms/{design.id}/thanks"
    return RedirectResponse(target, 303, headers=headers)


async def preflight(request: Request):
    """CORS preflight: answered for the form's own web site only."""
    site = request.app.state.site
    origin = request.headers.get("origin")
    try:
        design = await run_in_threadpool(_design, site, request.path_params["form_id"][:64])
    except Refused:
        return Response(status_code=404)
    if not origin or origin.lower() != design.allowed_origin:
        return Response(status_code=403, headers={"Vary": "Origin"})
    return Response(status_code=204, headers={
        **_cors(design, origin.lower()), "Access-Control-Allow-Methods": "POST, GET",
        "Access-Control-Allow-Headers": "Content-Type, Accept",
        "Access-Control-Max-Age": "600"})


async def token_view(request: Request):
    """A fresh signed timestamp for the embedded form's script."""
    site = request.app.state.site
    origin = request.headers.get("origin")
    try:
        design = await run_in_threadpool(_design, site, request.path_params["form_id"][:64])
    except Refused as refused:
        return JSONResponse({"ok": False, "message": _text(refused.message)}, status_code=404)
    return JSONResponse({"token": forms.token(site, design.id)},
                        headers={**_cors(design, (origin or "").lower()),
                                 "Cache-Control": "no-store"})


async def thanks(request: Request):
    return HTMLResponse(_page("Thank you. Your message was received."))


# -- the administrator's page -------------------------------------------------------------

@page()
def embed_view(request: Request, form):
    """The HTML to paste into the web site, and what it looks like."""
    site, user = request.app.state.site, request.state.user
    if not user.is_admin:
        raise HTTPException(403, Message(N_("Only administrators design web forms.")))
    record = site.records.get(forms.MODULE, request.path_params["form_id"], user)
    design = forms.FormDesign.of(record)
    problems = forms.problems(site, record)
    action = str(request.url_for("web_form_submit", form_id=design.id))
    fmt = request.state.fmt
    token = i18n.activate(fmt.translations)
    try:
        html = forms.snippet(site, design, action, fmt) if not problems else None
    finally:
        i18n.deactivate(token)
    module = site.registry.modules.get(design.target)
    return request.app.state.templates.render(
        request, "web_form_embed.html", record=record, design=design, snippet=html,
        problems=problems, action=action,
        offered=forms.offered(module) if module is not None else [])


def notify(site, payload: dict) -> None:
    """The job: mail the assignee about the new record, in their language, with a link and
    the records it likely duplicates (core.apps.duplicates, among what the assignee may
    see). Keyed on the record: a retry after a sent mail sends the same Message-ID, which
    mail servers and clients fold into one."""
    from core.apps.documents import mail
    from core.apps.duplicates import find_duplicates
    form = site.records.get(forms.MODULE, payload["form_id"], SYSTEM_USER, action=None)
    module = site.registry.module(payload["module"])
    try:
        record = site.records.get(module.name, payload["record_id"], SYSTEM_USER, action=None)
    except NotFoundError:
        return  # deleted meanwhile: nothing to tell
    person = _person(site, payload["user_id"])
    if person is None or not person["email"]:
        return
    tr = i18n.gettext_for(i18n.Preferences.from_dict(person["preferences"]), site.locale_dirs)
    base = str(site.settings.get("base_url") or "").rstrip("/")
    name = record.get(module.name_field) if module.name_field else None
    name = name or " ".join(filter(None, (record.get("first_name"), record.get("last_name"))))
    what = tr.gettext(str(module.label_singular))
    subject = tr.gettext("New %(module)s from the web form %(form)s: %(name)s") % {
        "module": what, "form": form["name"], "name": name or record["id"]}
    lines = [tr.gettext("A visitor sent the web form \u201c%(form)s\u201d.") % {
        "form": form["name"]}, "",
        *(f"{tr.gettext(str(module.fields[n].label))}: {record.get(n)}" for n in forms._names(
            form.get("form_fields")) if n in module.fields and record.get(n)),
        "", f"{base}/m/{module.name}/{record['id']}"]
    twins = find_duplicates(site, module, record, person["user"], exclude_id=record["id"])
    if twins:
        lines += ["", tr.gettext("It may be a duplicate of:")]
        lines += [f"- {twin.name}: {base}/m/{module.name}/{twin.id}" for twin in twins]
    mail.send_mail(site, person["email"], subject, "\n".join(lines),
                   message_id=f"<web-form-{record['id']}@crbm>")


def _person(site, user_id: str) -> dict | None:
    """The assignee's address and stored preferences (their language)."""
    import sqlalchemy as sa
    table = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table.c.username, table.c.is_admin, table.c.email,
                                     table.c.preferences).where(
            table.c.id == user_id, table.c.active.is_(True))).first()
    if row is None:
        return None
    try:
        preferences = json.loads(row.preferences) if row.preferences else None
    except ValueError:
        preferences = None
    return {"email": row.email, "preferences": preferences,
            "user": User(str(user_id), row.username, bool(row.is_admin))}


routes = [
    Route("/forms/{form_id}", submit, methods=["POST"], name="web_form_submit"),
    Route("/forms/{form_id}", preflight, methods=["OPTIONS"]),
    Route("/forms/{form_id}/token", token_view, methods=["GET"]),
    Route("/forms/{form_id}/thanks", thanks, methods=["GET"]),
    Route("/admin/web-forms/{form_id}/embed", embed_view, methods=["GET"]),
]
