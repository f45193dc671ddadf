"""The activities plugin's REST API actions (``crbm_api_actions``): what the meeting's page
shows beside its buttons, for API clients.

    POST /api/v1/meetings/{id}/actions/conflicts   {}  -> {"busy": [...], "meeting_id": id}

A busy invitee is a warning, never a refusal (a double-booked resource is refused at save,
API included: invitees.py). Other meetings are named only when the caller may see them.
"""
from __future__ import annotations

from core.api.actions import ApiAction

NO_BODY = {"type": "object", "additionalProperties": False}


def _conflicts(site, user, record_id: str, body: dict) -> dict:
    from plugins.activities import invitees as inv

    busy = inv.busy_users(site, [record_id]).get(record_id, [])
    visible = site.records.allowed("meetings", [c.meeting_id for c in busy], user, "view")
    return {"meeting_id": record_id, "busy": [
        {"user_id": c.id, "user_name": c.name,
         "meeting_id": c.meeting_id if c.meeting_id in visible else None,
         "meeting_name": c.meeting_name if c.meeting_id in visible else None}
        for c in busy]}


def actions() -> list[ApiAction]:
    return [ApiAction("meetings", "conflicts", "The invited users already busy at the "
                      "meeting's time (a warning: the meeting may still be saved)",
                      _conflicts, NO_BODY)]
