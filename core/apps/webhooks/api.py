"""Webhook subscriptions through the REST API (core.apps.webhooks.webhooks does the work).

    GET    /api/v1/webhooks                   the caller's subscriptions (administrators: all)
    POST   /api/v1/webhooks                   subscribe: 201, with the secret (shown once)
    GET    /api/v1/webhooks/{id}              one subscription
    DELETE /api/v1/webhooks/{id}              unsubscribe: 204
    GET    /api/v1/webhooks/{id}/deliveries   its delivery log, newest first (?limit=, max 100)

Administrators may subscribe to any module; other users to modules they may list, and
their deliveries carry only the records they may view. Someone else's subscription
answers 404, like one that does not exist. These routes come before the generic
``/api/v1/{module}`` ones (core.api includes them first). Endpoints go through the
API's own ``core.api.endpoint.api`` wrapper (authentication, strict JSON, problems).
"""
from __future__ import annotations

import jsonschema
from starlette.routing import Route

from core.api.endpoint import Call, api
from core.api.problems import ApiProblem
from core.api.schemas import describe, to_json
from core.apps.webhooks import webhooks


def _subscription_json(sub: dict, secret: bool = False) -> dict:
    out = to_json({key: sub[key] for key in ("id", "url", "module", "events", "fields",
                                             "active", "user_id", "created_at",
                                             "last_status", "last_delivery_at")})
    if secret:
        out["secret"] = sub["secret"]
    return out


def _delivery_json(row: dict) -> dict:
    return to_json({key: row[key] for key in (
        "id", "event", "module", "record_id", "status", "attempts", "next_attempt_at",
        "last_status_code", "last_error", "created_at", "delivered_at")})


def _checked(data) -> dict:
    """The posted subscription, checked against the schema the OpenAPI document
    publishes (SUBSCRIBE, below): known keys of the right types, every problem at once."""
    errors: dict[str, str] = {}
    for error in _SUBSCRIBE_VALIDATOR.iter_errors(data):
        errors.update(describe(error))
    if errors:
        raise ApiProblem(422, f"{len(errors)} field(s) are invalid", errors=errors)
    return data


def _mine(call: Call) -> dict:
    """The subscription named in the path, if the caller may see it (else 404)."""
    return webhooks.get_subscription(call.site, call.params["id"],
                                     None if call.user.is_admin else call.user)


@api(module=False)
def list_subscriptions(call: Call):
    subs = webhooks.subscriptions(call.site, None if call.user.is_admin else call.user)
    return 200, {"data": [_subscription_json(s) for s in subs]}


@api(body=True, module=False)
def create_subscription(call: Call):
    data = _checked(call.body)
    sub = webhooks.subscribe(call.site, call.user, data.get("url", ""), data.get("module", ""),
                             data.get("events"), data.get("fields"),
                             active=data.get("active", True))
    return 201, _subscription_json(sub, secret=True), \
        {"Location": f"/api/v1/webhooks/{sub['id']}"}


@api(module=False)
def get_subscription(call: Call):
    return 200, _subscription_json(_mine(call))


@api(module=False)
def delete_subscription(call: Call):
    webhooks.delete_subscription(call.site, _mine(call)["id"])
    return 204, None


@api(module=False)
def delivery_log(call: Call):
    sub = _mine(call)
    raw = call.request.query_params.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise ApiProblem(422, "limit must be a number from 1 to 100",
                         errors={"limit": "must be a number from 1 to 100"})
    rows = webhooks.deliveries(call.site, sub["id"], int(raw))
    return 200, {"data": [_delivery_json(r) for r in rows]}


# -- their part of the OpenAPI document (core.api.openapi adds it) ---------------------------

NULLABLE_TEXT = {"type": ["string", "null"]}
SUBSCRIPTION = {"type": "object", "required": ["id", "url", "module", "events", "active"],
                "properties": {
                    "id": {"type": "string"}, "url": {"type": "string"},
                    "module": {"type": "string"},
                    "events": {"type": "array", "items": {"enum": list(webhooks.EVENTS)}},
                    "fields": {"type": ["array", "null"], "items": {"type": "string"}},
                    "active": {"type": "boolean"}, "user_id": {"type": "string"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "last_status": NULLABLE_TEXT, "last_delivery_at": NULLABLE_TEXT,
                    "secret": {"type": "string", "description": "only when subscribing"}}}
SUBSCRIBE = {"type": "object", "additionalProperties": False,
             "required": ["url", "module", "events"], "properties": {
                 "url": {"type": "string", "maxLength": webhooks.MAX_URL,
                         "description": "an absolute https:// (or http://) address"},
                 "module": {"type": "string", "maxLength": 60},
                 "events": {"type": "array", "minItems": 1,
                            "items": {"enum": list(webhooks.EVENTS)}},
                 "fields": {"type": ["array", "null"], "items": {"type": "string"},
                            "description": "updates only when one of these changed"},
                 "active": {"type": "boolean"}}}
DELIVERY = {"type": "object", "required": ["id", "event", "status", "attempts"], "properties": {
    "id": {"type": "string"}, "event": {"enum": list(webhooks.EVENTS)},
    "module": {"type": "string"}, "record_id": {"type": "string"},
    "status": {"type": "string"}, "attempts": {"type": "integer"},
    "next_attempt_at": NULLABLE_TEXT, "last_status_code": {"type": ["integer", "null"]},
    "last_error": NULLABLE_TEXT, "created_at": {"type": "string"},
    "delivered_at": NULLABLE_TEXT}}


_SUBSCRIBE_VALIDATOR = jsonschema.Draft202012Validator(SUBSCRIBE)


def openapi(problems, content) -> tuple[dict, dict]:
    """(paths, component schemas) of these endpoints, in the document's own terms:
    ``problems(*codes)`` the problem responses, ``content(schema)`` a JSON body."""
    ref = {"$ref": "#/components/schemas/Webhook"}
    one = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    listed = {"type": "object", "required": ["data"],
              "properties": {"data": {"type": "array", "items": ref}}}
    tag = ["webhooks"]
    paths = {
        "/api/v1/webhooks": {
            "get": {"operationId": "webhooks_list", "summary": "Your webhook subscriptions "
                    "(administrators: all)", "tags": tag,
                    "responses": {"200": {"description": "Subscriptions",
                                          "content": content(listed)}, **problems()}},
            "post": {"operationId": "webhooks_create", "summary": "Subscribe a URL to a "
                     "module's record events", "tags": tag,
                     "requestBody": {"required": True, "content": content(SUBSCRIBE)},
                     "responses": {"201": {"description": "Subscribed (with its secret)",
                                           "content": content(ref)},
                                   **problems("400", "413", "415", "422")}}},
        "/api/v1/webhooks/{id}": {
            "get": {"operationId": "webhooks_get", "summary": "One subscription",
                    "tags": tag, "parameters": [one],
                    "responses": {"200": {"description": "The subscription",
                                          "content": content(ref)}, **problems("404")}},
            "delete": {"operationId": "webhooks_delete", "summary": "Unsubscribe",
                       "tags": tag, "parameters": [one],
                       "responses": {"204": {"description": "Deleted"}, **problems("404")}}},
        "/api/v1/webhooks/{id}/deliveries": {
            "get": {"operationId": "webhooks_deliveries", "summary": "The delivery log, "
                    "newest first", "tags": tag,
                    "parameters": [one, {"name": "limit", "in": "query", "schema": {
                        "type": "integer", "minimum": 1, "maximum": 100, "default": 50}}],
                    "responses": {"200": {"description": "Deliveries", "content": content({
                        "type": "object", "required": ["data"], "properties": {
                            "data": {"type": "array", "items": DELIVERY}}})},
                        **problems("404", "422")}}},
    }
    return paths, {"Webhook": SUBSCRIPTION}


routes = [
    Route("/api/v1/webhooks", list_subscriptions, methods=["GET"]),
    Route("/api/v1/webhooks", create_subscription, methods=["POST"]),
    Route("/api/v1/webhooks/{id}", get_subscription, methods=["GET"]),
    Route("/api/v1/webhooks/{id}", delete_subscription, methods=["DELETE"]),
    Route("/api/v1/webhooks/{id}/deliveries", delivery_log, methods=["GET"]),
]
