"""The caller's notifications through the REST API (core.apps.notifications.inbox does the
work).

    GET  /api/v1/notifications              the caller's own, newest first
                                            (?unread=true, ?limit= 1-100, ?before=<id>)
    POST /api/v1/notifications/read         mark read: {"ids": [..]} or {"all": true}
    POST /api/v1/notifications/{id}/read    mark one read: 204 (404: not the caller's)

Only ever the caller's own: someone else's notification answers 404 like one that does not
exist. ``url`` is where a notification leads, null when it is about a record the caller may
no longer view. These routes come before the generic ``/api/v1/{module}`` ones (the
application's ``crbm_web_routes`` is ``tryfirst``), and "notifications" is a name the
Studio refuses for a module.
"""
from __future__ import annotations

import jsonschema
from starlette.routing import Route

from core.api.endpoint import Call, api
from core.api.problems import ApiProblem
from core.api.schemas import describe, to_json
from core.apps.notifications import inbox

MAX_LIMIT = 100
MAX_ID = 2**62  # ids fit a BIGINT; beyond is refused (422), never a database error


def _json(n: inbox.Notification) -> dict:
    return to_json({"id": n.id, "message": n.message, "module": n.module,
                    "record_id": n.record_id, "url": n.link, "unread": n.unread,
                    "created_at": n.created_at, "read_at": n.read_at})


def _whole(call: Call, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = call.request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiProblem(422, f"{name} must be a number from {low} to {high}",
                         errors={name: f"must be a number from {low} to {high}"})
    return int(raw)


@api(module=False)
def list_notifications(call: Call):
    unread = call.request.query_params.get("unread", "false")
    if unread not in ("true", "false", "1", "0"):
        raise ApiProblem(422, "unread must be true or false",
                         errors={"unread": "must be true or false"})
    limit = _whole(call, "limit", inbox.PAGE_SIZE, 1, MAX_LIMIT)
    before = _whole(call, "before", None, 1, MAX_ID)
    found = inbox.page(call.site, call.user, before=before, unread_only=unread in ("true", "1"),
                       size=limit)
    return 200, {"data": [_json(n) for n in found.items], "unread": found.unread,
                 "next_before": found.older}


def _checked(data) -> dict:
    errors: dict[str, str] = {}
    for error in _MARK_VALIDATOR.iter_errors(data):
        errors.update(describe(error))
    if not errors and ("ids" in data) == bool(data.get("all")):
        errors["ids"] = "give either ids or all: true"
    if errors:
        raise ApiProblem(422, f"{len(errors)} field(s) are invalid", errors=errors)
    return data


@api(body=True, module=False)
def mark_read(call: Call):
    data = _checked(call.body)
    done = inbox.mark_read(call.site, call.user, data.get("ids") if "ids" in data else None)
    return 200, {"marked": done, "unread": inbox.unread_count(call.site, call.user)}


@api(module=False)
def mark_one_read(call: Call):
    raw = call.params["id"]
    if not raw.isdigit() or len(raw) > 18 or not inbox.owns(call.site, call.user, int(raw)):
        raise ApiProblem(404, "no such notification")
    inbox.mark_read(call.site, call.user, [int(raw)])
    return 204, None


# -- their part of the OpenAPI document (core.api.openapi adds it) ---------------------------

NULLABLE_TEXT = {"type": ["string", "null"]}
NOTIFICATION = {"type": "object", "required": ["id", "message", "unread", "created_at"],
                "properties": {
                    "id": {"type": "integer"}, "message": {"type": "string",
                                                           "description": "plain text"},
                    "module": NULLABLE_TEXT, "record_id": NULLABLE_TEXT,
                    "url": {"type": ["string", "null"], "description": "where it leads; null "
                            "when it is about a record you may no longer view"},
                    "unread": {"type": "boolean"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "read_at": {"type": ["string", "null"], "format": "date-time"}}}
MARK = {"type": "object", "additionalProperties": False, "properties": {
    "ids": {"type": "array", "maxItems": 500, "items": {"type": "integer", "minimum": 1,
                                                           "maximum": MAX_ID}},
    "all": {"type": "boolean"}},
    "description": "either the ids to mark read, or all: true for every unread one"}
_MARK_VALIDATOR = jsonschema.Draft202012Validator(MARK)


def openapi(problems, content) -> tuple[dict, dict]:
    """(paths, component schemas) of these endpoints, in the document's own terms:
    ``problems(*codes)`` the problem responses, ``content(schema)`` a JSON body."""
    ref = {"$ref": "#/components/schemas/Notification"}
    tag = ["notifications"]
    listed = {"type": "object", "required": ["data", "unread"], "properties": {
        "data": {"type": "array", "items": ref},
        "unread": {"type": "integer", "description": "your unread notifications, all pages"},
        "next_before": {"type": ["integer", "null"],
                        "description": "the `before` of the next (older) page; null: last"}}}
    query = [{"name": "unread", "in": "query", "schema": {"type": "boolean", "default": False}},
             {"name": "limit", "in": "query", "schema": {
                 "type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                 "default": inbox.PAGE_SIZE}},
             {"name": "before", "in": "query", "schema": {"type": "integer", "minimum": 1},
              "description": "only notifications older than this id (paging)"}]
    paths = {
        "/api/v1/notifications": {
            "get": {"operationId": "notifications_list", "summary": "Your notifications, "
                    "newest first", "tags": tag, "parameters": query,
                    "responses": {"200": {"description": "Notifications",
                                          "content": content(listed)}, **problems("422")}}},
        "/api/v1/notifications/read": {
            "post": {"operationId": "notifications_mark_read", "summary": "Mark some or all "
                     "of your notifications read", "tags": tag,
                     "requestBody": {"required": True, "content": content(MARK)},
                     "responses": {"200": {"description": "How many were marked, and how "
                                           "many are still unread", "content": content({
                                               "type": "object", "properties": {
                                                   "marked": {"type": "integer"},
                                                   "unread": {"type": "integer"}}})},
                                   **problems("400", "413", "415", "422")}}},
        "/api/v1/notifications/{id}/read": {
            "post": {"operationId": "notifications_mark_one_read", "summary": "Mark one "
                     "notification read", "tags": tag,
                     "parameters": [{"name": "id", "in": "path", "required": True,
                                     "schema": {"type": "integer"}}],
                     "responses": {"204": {"description": "Marked read"},
                                   **problems("404")}}},
    }
    return paths, {"Notification": NOTIFICATION}


routes = [
    Route("/api/v1/notifications", list_notifications, methods=["GET"]),
    Route("/api/v1/notifications/read", mark_read, methods=["POST"]),
    Route("/api/v1/notifications/{id}/read", mark_one_read, methods=["POST"]),
]
