"""The leads plugin's REST API action (``crbm_api_actions``), over the convert page's function:

    POST /api/v1/leads/{id}/actions/convert
    {"account_id": "..."}                     use an existing account (else a new one is made,
    {"account_name": "Acme Ltd"}              named so, or from the lead's company / person)
    {"opportunity": {"name", "amount", "date_closed", "sales_stage"}}   also an opportunity
    {"meeting": {"name", "date_start", "date_end", "location"}}   and a first meeting
    -> {"lead": {...}, "account": {...}, "contact": {...}, "opportunity": {...} | null,
        "meeting": {...} | null, "account_created": true}

403 when a right is missing, 409 when the lead was converted already, 422 for bad values
(each key names the record: ``account.name``, ``opportunity.amount``).
"""
from __future__ import annotations

from core.api.actions import ApiAction
from core.api.problems import ApiProblem
from core.kernel.errors import VetoError
from plugins.leads import convert as lead_convert

TEXT = {"type": ["string", "null"], "maxLength": 150}
BODY = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "account_id": {"type": ["string", "null"], "maxLength": 36},
        "account_name": TEXT,
        "opportunity": {"type": ["object", "null"], "additionalProperties": False,
                        "properties": {"name": TEXT,
                                       "amount": {"type": ["string", "number", "null"]},
                                       "date_closed": {"type": ["string", "null"],
                                                       "maxLength": 10},
                                       "sales_stage": {"type": ["string", "null"],
                                                       "maxLength": 60}}},
        "meeting": {"type": ["object", "null"], "additionalProperties": False,
                    "properties": {"name": TEXT, "location": TEXT,
                                   "date_start": {"type": ["string", "null"], "maxLength": 40},
                                   "date_end": {"type": ["string", "null"], "maxLength": 40}}},
    },
}


def _convert(site, user, record_id: str, body: dict) -> dict:
    try:
        done = lead_convert.convert(site, user, record_id, account_id=body.get("account_id"),
                                    account_name=body.get("account_name"),
                                    opportunity=body.get("opportunity"),
                                    meeting=body.get("meeting"))
    except lead_convert.ConvertRefused as exc:
        if exc.forbidden:
            raise ApiProblem(403, str(exc)) from None
        raise VetoError(str(exc)) from None
    return {"lead": done.lead, "account": done.account, "contact": done.contact,
            "opportunity": done.opportunity, "meeting": done.meeting,
            "account_created": done.account_created}


def actions() -> list[ApiAction]:
    return [ApiAction("leads", "convert", "Convert the lead into an account (new or existing), "
                      "a contact and optionally an opportunity and a first meeting; the lead becomes "
                      "Converted",
                      _convert, BODY)]
