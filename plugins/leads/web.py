"""The leads plugin's pages: *Convert Lead* (``/leads/<id>/convert``) and *Admin → Leads*
(``/admin/leads``, the business model, account name format and "Assign New Leads To").

The convert page offers what the guide's conversion screen does: a new account (named
from the lead's company, or from the person in B2C), or an existing one — an account of
exactly the company's name is offered first —, and, when the opportunities plugin is
active, an opportunity (name, amount, close date, sales stage). A refused conversion
shows the page again with each problem beside its field; nothing is written.
"""
from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.kernel.errors import N_, Message, ValidationError
from core.web.pages import page
from core.web.templating import flash
from plugins.leads import convert as lead_convert
from plugins.leads import settings as lead_setup

log = logging.getLogger(__name__)

ADMIN_URL = "/admin/leads"
OPPORTUNITY_INPUTS = ("opportunity_name", "amount", "date_closed", "sales_stage")
MEETING_INPUTS = ("meeting_name", "meeting_start", "meeting_end", "meeting_location")


def _render(request: Request, name: str, status: int = 200, **context):
    response = request.app.state.templates.render(request, name, status=status, **context)
    response.headers["Cache-Control"] = "no-store"
    return response


def _back(request: Request, lead_id: str, message, kind: str = "error"):
    flash(request, message, kind)
    return RedirectResponse(f"/m/leads/{lead_id}", 303)


def _stages(site) -> list[tuple[str, str]]:
    module = site.registry.modules.get(lead_convert.OPPORTUNITIES)
    field = module.fields.get("sales_stage") if module else None
    return list(site.registry.choices(field)) if field is not None and \
        field.type.has_options else []


@page()
def convert_view(request: Request, form):
    site, user = request.app.state.site, request.state.user
    lead_id = request.path_params["record_id"]
    lead = site.records.get("leads", lead_id, user)
    if lead_convert.is_converted(lead):
        return _back(request, lead_id, lead_convert.already_message(lead))
    if form is None:  # what the post would refuse, said at once (a posted form says it too)
        try:
            lead_convert.check_rights(site, user, lead, new_account=False, opportunity=False)
        except lead_convert.ConvertRefused as exc:
            raise HTTPException(403, exc.args[0]) from None
    settings = lead_setup.lead_settings(site)
    suggested = lead_convert.suggested_account_name(site, lead)
    matches = lead_convert.accounts_named(site, user, suggested)
    offer_opportunity = lead_convert.has_opportunities(site) and site.access.can(
        user, site.registry.module(lead_convert.OPPORTUNITIES), "edit")
    offer_meeting = lead_convert.has_meetings(site) and site.access.can(
        user, site.registry.module(lead_convert.MEETINGS), "edit")
    errors: dict = {}
    if form is None:
        values = {"create_meeting": "", "meeting_start": "", "meeting_end": "",
                  "meeting_location": "", "meeting_name": str(Message(
                      N_("Meeting with %(name)s"), name=lead.get("name") or "")),
                  "account_mode": "existing" if matches else "new",
                  "account_id": matches[0]["id"] if matches else "",
                  "account_id__label": matches[0]["name"] if matches else "",
                  "account_name": suggested, "create_opportunity": "",
                  "opportunity_name": suggested, "amount": "", "date_closed": "",
                  "sales_stage": ""}
    else:
        values = {key: str(form.get(key) or "").strip() for key in (
            "account_mode", "account_id", "account_id__label", "account_name",
            "create_opportunity", *OPPORTUNITY_INPUTS, "create_meeting", *MEETING_INPUTS)}
        existing = values["account_mode"] == "existing"
        if existing and not values["account_id"]:
            errors["account_id"] = Message(N_("pick an account, or choose to create one"))
        opportunity = None
        if values["create_opportunity"] and offer_opportunity:
            opportunity = {"name": values["opportunity_name"], "amount": values["amount"],
                           "date_closed": values["date_closed"],
                           "sales_stage": values["sales_stage"]}
        meeting = None
        if values["create_meeting"] and offer_meeting:  # the times are in the user's zone
            meeting = {"name": values["meeting_name"], "location": values["meeting_location"]}
            for key, given in (("date_start", "meeting_start"), ("date_end", "meeting_end")):
                try:
                    meeting[key] = request.state.fmt.from_local_input(values[given]) \
                        if values[given] else None
                except ValueError:
                    errors[given] = Message(N_("is not a date and time"))
        if not errors:
            try:
                done = lead_convert.convert(
                    site, user, lead_id, account_id=values["account_id"] if existing else None,
                    account_name=None if existing else values["account_name"],
                    opportunity=opportunity, meeting=meeting)
            except lead_convert.ConvertRefused as exc:
                if exc.forbidden:
                    raise HTTPException(403, exc.args[0]) from None
                return _back(request, lead_id, exc.args[0])
            except ValidationError as exc:
                errors = {_input_of(key): message for key, message in exc.errors.items()}
            else:
                flash(request, Message(N_("%(lead)s converted: account %(account)s, contact "
                                          "%(contact)s."), lead=lead["name"],
                                       account=done.account["name"],
                                       contact=done.contact["name"]), "info")
                to = f"/m/accounts/{done.account['id']}" if settings.b2c \
                    else f"/m/contacts/{done.contact['id']}"
                return RedirectResponse(to, 303)
    known = {"account_id", "account_name", *OPPORTUNITY_INPUTS, *MEETING_INPUTS}
    general = [f"{key}: {message}" for key, message in errors.items() if key not in known]
    return _render(request, "leads_convert.html", status=422 if errors else 200, lead=lead,
                   values=values, errors=errors, general=general, matches=matches,
                   b2c=settings.b2c, offer_opportunity=offer_opportunity,
                   offer_meeting=offer_meeting,
                   stages=_stages(site))


def _input_of(key: str) -> str:
    """The page's input for an error's key (``opportunity.amount`` -> ``amount``)."""
    return {"account.name": "account_name", "opportunity.name": "opportunity_name",
            "opportunity.amount": "amount", "opportunity.date_closed": "date_closed",
            "opportunity.sales_stage": "sales_stage", "meeting.name": "meeting_name",
            "meeting.date_start": "meeting_start", "meeting.date_end": "meeting_end",
            "meeting.location": "meeting_location"}.get(key, key)


@page()
def admin_view(request: Request, form):
    user = request.state.user
    if not user.is_admin:
        raise HTTPException(403, Message(N_("Only administrators can change the lead "
                                            "settings.")))
    site = request.app.state.site
    errors: dict = {}
    if form is None:
        values = lead_setup.lead_settings(site).to_json()
    else:
        values, errors = lead_setup.clean_settings(site, form)
        if not errors:
            site.set_setting(lead_setup.SETTING, values)
            log.info("lead settings changed by %r", user.username)
            flash(request, N_("The lead settings were saved."), "info")
            return RedirectResponse(ADMIN_URL, 303)
        values["assign_new_leads_to"] = str(form.get("assign_new_leads_to") or "")
    example = lead_setup.account_name(
        values["account_name_format"] if "account_name_format" not in errors
        else lead_setup.DEFAULT_FORMAT,
        {"salutation": "Mr.", "first_name": "John", "last_name": "Doe"})
    return _render(request, "admin_leads.html", status=400 if errors else 200, values=values,
                   errors=errors, models=list(lead_setup.MODELS.items()), example=example,
                   assignee_label=lead_setup.user_label(site, values.get("assign_new_leads_to")))


routes = [
    Route("/leads/{record_id}/convert", convert_view, methods=["GET", "POST"]),
    Route(ADMIN_URL, admin_view, methods=["GET", "POST"]),
]
