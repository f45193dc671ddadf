"""The OpenAPI 3.1 document of the REST API, built from the merged registry, and the
human-readable docs page.

``GET /api/v1/openapi.json`` needs authentication like every other endpoint: it names the
site's own modules and fields (Studio-made ones too), which are the site's business. It
describes the modules the caller may use (those their roles do not disable). Built once
per registry and set of modules and then served from memory; a Studio change or a pack
installs a new registry object, so the next request sees the new field.

Record, create and update schemas come from core.api.schemas — the same schemas the
endpoints validate input with, so what the document says is what the API does.

``GET /api/v1/docs`` is a server-rendered page for signed-in users (the web session,
no script, no CDN): each module's operations and fields with their JSON types.
"""
from __future__ import annotations

import copy
import threading
import weakref

from starlette.requests import Request
from starlette.routing import Route

from core import __version__
from core.api import listing, resources
from core.api.endpoint import Call, api
from core.api.problems import PROBLEM_SCHEMA
from core.api.schemas import shapes
from core.apps.duplicates import keys as duplicate_keys
from core.apps.notifications import rest as notifications_api
from core.apps.webhooks import api as webhooks_api
from core.kernel.errors import N_, Message
from core.kernel.records import OPERATORS
from core.web.pages import page

PREFIX = resources.PREFIX
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
PROBLEM_TEXT = {
    "400": "Bad request: malformed JSON or an invalid query parameter",
    "401": "No valid credentials", "403": "Not allowed (API off, module disabled, no right)",
    "404": "No such module, record or relationship (or not visible to you)",
    "405": "Method not allowed", "409": "Conflict: refused by a business rule or changed "
                                       "by someone else",
    "412": "If-Match does not match the record's version",
    "413": "The body is larger than 1 MB", "415": "The body is not application/json",
    "422": "Invalid field values (errors name each field)", "429": "Too many requests",
}
ALWAYS = ("401", "403", "429")


def _problems(*codes: str) -> dict:
    return {code: {"description": PROBLEM_TEXT[code], "content": PROBLEM}
            for code in (*codes, *ALWAYS)}


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


ID_PARAM = {"name": "id", "in": "path", "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 36},
            "description": "the record's id"}
IF_MATCH = {"name": "If-Match", "in": "header", "required": False,
            "schema": {"type": "string", "pattern": r'^(W/)?"[0-9]{1,18}"$'},
            "description": 'the ETag you read ("<version>"): 412 if the record changed since'}
LABELS = {"name": "labels", "in": "query", "required": False, "schema": {"type": "boolean"},
          "description": "add the names of related records and users (in _labels)"}
ETAG_HEADER = {"ETag": {"description": 'the record\'s version, "<n>"',
                        "schema": {"type": "string"}}}


def _list_parameters(module, shape) -> list[dict]:
    stored = [n for n in shape.kinds if module.fields[n].stored]
    return [
        {"name": "fields", "in": "query", "schema": {
            "type": "string", "pattern": r"^[a-z][a-z0-9_]*(,[a-z][a-z0-9_]*)*$"},
         "description": "comma-separated fields to return (id always comes)"},
        {"name": "sort", "in": "query", "schema": {
            "type": "string", "pattern": r"^-?[a-z][a-z0-9_]*(,-?[a-z][a-z0-9_]*){0,4}$"},
         "description": "comma-separated fields, - for descending (e.g. -created_at,name)"},
        {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200},
         "description": "quick search (starts with), on the module's search fields"},
        {"name": "limit", "in": "query", "schema": {
            "type": "integer", "minimum": 1, "maximum": listing.MAX_LIMIT,
            "default": listing.DEFAULT_LIMIT}},
        {"name": "page", "in": "query", "schema": {
            "type": "integer", "minimum": 1, "maximum": listing.MAX_PAGE},
         "description": "page number (page mode); without it, use cursor"},
        {"name": "cursor", "in": "query", "schema": {"type": "string", "maxLength": 2000},
         "description": "meta.next_cursor of the previous page (keyset pagination)"},
        LABELS,
        {"name": "count", "in": "query", "schema": {"type": "boolean"},
         "description": "add meta.total in cursor mode (page mode always has it)"},
        {"name": "filter", "in": "query", "style": "deepObject", "explode": True,
         "schema": {"type": "object", "additionalProperties": False,
                    "properties": {n: {"type": "string", "maxLength": 255} for n in stored}},
         "description": "filter[field]=value (equals) or filter[field][op]=value with op one "
                        f"of {', '.join(OPERATORS)}; in takes comma-separated values, empty "
                        "and not_empty take none"},
    ]


def _list_schema(record: str) -> dict:
    return {"type": "object", "required": ["data", "meta", "links"], "properties": {
        "data": {"type": "array", "items": _ref(record)},
        "meta": {"type": "object", "required": ["limit"], "properties": {
            "total": {"type": "integer", "description": "matching records, counted up to "
                                                         f"{resources.COUNT_CAP:,} (page "
                                                         "mode, or count=1)"},
            "total_capped": {"type": "boolean", "description": "true: there are more"},
            "limit": {"type": "integer"}, "page": {"type": "integer"},
            "next_cursor": {"type": "string"}}},
        "links": {"type": "object", "additionalProperties": {"type": "string"}}}}


BULK_RESULT = {"type": "object", "required": ["data", "meta"], "properties": {
    "data": {"type": "array", "items": {"type": "object", "required": ["index", "status"],
                                        "properties": {
        "index": {"type": "integer"}, "status": {"type": "integer"},
        "id": {"type": "string"}, "record": {"type": "object"},
        "detail": {"type": "string"}, "errors": PROBLEM_SCHEMA["properties"]["errors"]}}},
    "meta": {"type": "object", "properties": {"succeeded": {"type": "integer"},
                                              "failed": {"type": "integer"}}}}}


def _module_paths(site, module, shape, paths: dict, schemas: dict) -> None:
    name, label, one = module.name, str(module.label), str(module.label_singular)
    tag = [name]
    schemas[name] = shape.record
    schemas[f"{name}_create"] = shape.create
    schemas[f"{name}_update"] = shape.update
    schemas[f"{name}_bulk_update"] = {
        **shape.update, "required": ["id"],
        "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 36},
                       **shape.update["properties"]}}
    record = _json(_ref(name))
    base = f"{PREFIX}/{name}"
    paths[base] = {
        "get": {"operationId": f"{name}_list", "summary": f"List {label}", "tags": tag,
                "parameters": _list_parameters(module, shape),
                "responses": {"200": {"description": f"A page of {label}",
                                      "content": _json(_list_schema(name))},
                              **_problems("400", "404")}},
        "post": {"operationId": f"{name}_create", "summary": f"Create a {one}", "tags": tag,
                 "requestBody": {"required": True, "content": _json(_ref(f"{name}_create"))},
                 "responses": {"201": {"description": "Created", "content": record,
                                       "headers": {**ETAG_HEADER, "Location": {
                                           "schema": {"type": "string"}}}},
                               **_problems("400", "404", "409", "413", "415", "422")}},
    }
    if duplicate_keys.plan_of(module) is not None:  # the module flags merge_duplicates fields
        paths[base]["post"]["parameters"] = [{
            "name": "duplicates", "in": "query", "required": False,
            "schema": {"enum": ["check", "ignore"], "default": "check"},
            "description": "check: a likely duplicate of an existing record is refused with "
                           "409, its problem listing them as `duplicates`; ignore: create "
                           "anyway"}]
    paths[f"{base}/bulk"] = {"post": {
        "operationId": f"{name}_bulk", "summary": f"Create or update up to "
                                                  f"{resources.MAX_BULK} {label}", "tags": tag,
        "description": "Each item stands alone (its own transaction); the answer is 207 "
                       "with a status per item.",
        "requestBody": {"required": True, "content": _json({
            "type": "object", "minProperties": 1, "maxProperties": 1,
            "additionalProperties": False, "properties": {
                # items are checked one by one (a bad one is its own 422 in the 207)
                "create": {"type": "array", "minItems": 1, "maxItems": resources.MAX_BULK,
                           "items": {"type": "object", "description":
                                     f"as #/components/schemas/{name}_create"}},
                "update": {"type": "array", "minItems": 1, "maxItems": resources.MAX_BULK,
                           "items": {"type": "object", "description":
                                     f"as #/components/schemas/{name}_bulk_update"}}}})},
        "responses": {"207": {"description": "Per-item results", "content": _json(BULK_RESULT)},
                      **_problems("400", "404", "413", "415", "422")}}}
    paths[f"{base}/{{id}}"] = {
        "parameters": [ID_PARAM],
        "get": {"operationId": f"{name}_get", "summary": f"Get a {one}", "tags": tag,
                "parameters": [LABELS],
                "responses": {"200": {"description": one, "content": record,
                                      "headers": ETAG_HEADER}, **_problems("400", "404")}},
        "patch": {"operationId": f"{name}_update", "summary": f"Change a {one}", "tags": tag,
                  "parameters": [IF_MATCH],
                  "requestBody": {"required": True, "content": _json(_ref(f"{name}_update"))},
                  "responses": {"200": {"description": one, "content": record,
                                        "headers": ETAG_HEADER},
                                **_problems("400", "404", "409", "412", "413", "415", "422")}},
        "delete": {"operationId": f"{name}_delete", "summary": f"Delete a {one}", "tags": tag,
                   "responses": {"204": {"description": "Deleted"},
                                 **_problems("404", "409")}},
    }
    for feature, _options in site.registry.features_of(module):  # GET/PUT .../<feature>
        schemas = feature.api_component_schemas()
        if not schemas:
            continue
        output, given = list(schemas)[:2]  # the data as read, the body PUT takes
        words = feature.name.replace("_", " ")
        paths[f"{base}/{{id}}/{feature.name}"] = {
            "parameters": [ID_PARAM],
            "get": {"operationId": f"{name}_{feature.name}", "summary": words.capitalize(),
                    "tags": tag, "responses": {
                        "200": {"description": words.capitalize(),
                                "content": _json(_ref(output))}, **_problems("404")}},
            "put": {"operationId": f"{name}_{feature.name}_put",
                    "summary": f"Replace the {words}",
                    "tags": tag, "parameters": [IF_MATCH],
                    "requestBody": {"required": True, "content": _json(_ref(given))},
                    "responses": {"200": {"description": words.capitalize(),
                                          "content": _json(_ref(output)),
                                          "headers": ETAG_HEADER},
                                  **_problems("400", "404", "409", "412", "413", "415",
                                              "422")}}}
    for (module_name, action_name), (action, _) in sorted(resources.actions(site).items()):
        if module_name != name:
            continue
        result = _json(_ref(action.result_module)) \
            if action.result_module in site.registry.modules else _json({})
        paths[f"{base}/{{id}}/actions/{action_name}"] = {"post": {
            "operationId": f"{name}_action_{action_name}", "summary": action.summary,
            "tags": tag, "parameters": [ID_PARAM],
            "requestBody": {"required": False, "content": _json(action.input_schema)},
            "responses": {"200": {"description": "The result", "content": result},
                          **_problems("400", "404", "409", "413", "415", "422")}}}
    for rel_name, rel in module.relationships.items():
        other = site.registry.modules.get(rel["module"])
        if other is None or rel_name in ("actions", "bulk") or \
                rel_name in site.registry.features:
            continue
        other_shape = shapes(site.registry, other)
        paths[f"{base}/{{id}}/{rel_name}"] = {
            "parameters": [ID_PARAM],
            "get": {"operationId": f"{name}_{rel_name}_list",
                    "summary": f"{rel.get('label') or other.label} of a {one}", "tags": tag,
                    "parameters": _list_parameters(other, other_shape),
                    "responses": {"200": {"description": str(other.label),
                                          "content": _json(_list_schema(other.name))},
                                  **_problems("400", "404")}},
            "post": {"operationId": f"{name}_{rel_name}_link",
                     "summary": f"Link a {other.label_singular}", "tags": tag,
                     "requestBody": {"required": True, "content": _json(resources.LINK_SCHEMA)},
                     "responses": {"204": {"description": "Linked"},
                                   **_problems("400", "404", "409", "413", "415", "422")}}}
        paths[f"{base}/{{id}}/{rel_name}/{{other_id}}"] = {"delete": {
            "operationId": f"{name}_{rel_name}_unlink",
            "summary": f"Unlink a {other.label_singular}", "tags": tag,
            "parameters": [ID_PARAM, {**ID_PARAM, "name": "other_id",
                                      "description": "the linked record's id"}],
            "responses": {"204": {"description": "Unlinked"}, **_problems("404", "409")}}}


def build(site, modules: list) -> dict:
    """The document for these modules (the caller's)."""
    paths: dict = {f"{PREFIX}": {"get": {
        "operationId": "modules", "summary": "The modules you may use", "tags": ["api"],
        "responses": {"200": {"description": "Modules", "content": _json({
            "type": "object", "required": ["data"], "properties": {"data": {
                "type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string"}, "label": {"type": "string"},
                    "label_singular": {"type": "string"},
                    "can_create": {"type": "boolean"},
                    "links": {"type": "object"}}}}}})},
            **_problems()}}}}
    schemas: dict = {"Problem": PROBLEM_SCHEMA}
    for feature in site.registry.features.values():  # what GET/PUT .../<feature> carry
        schemas.update(feature.api_component_schemas())
    for module in modules:
        _module_paths(site, module, shapes(site.registry, module), paths, schemas)
    for module in site.registry.modules.values():  # targets of actions, relationships
        if module.name not in schemas:
            schemas[module.name] = shapes(site.registry, module).record
    for app in (webhooks_api, notifications_api):  # the applications' fixed paths
        app_paths, app_schemas = app.openapi(_problems, _json)
        paths.update(app_paths)
        schemas.update(app_schemas)
    document = {
        "openapi": "3.1.0",
        "info": {"title": "CRBM REST API", "version": __version__,
                 "description": "Every module of this site, generated from its metadata. "
                                "Errors are RFC 9457 problem objects. See docs/api.md."},
        "servers": [{"url": "/"}],
        "security": [{"oauth2": []}, {"bearer": []}, {"basic": []}],
        "tags": [*({"name": m.name, "description": str(m.label)} for m in modules),
                 {"name": "webhooks", "description": "Webhook subscriptions"},
                 {"name": "notifications", "description": "Your notifications"}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY},
    }
    return copy.deepcopy(document)  # shared pieces (parameters) become plain JSON


SECURITY = {
    "oauth2": {"type": "oauth2", "description": "Authorization code with PKCE (S256), "
               "client credentials (the client's configured user) and refresh tokens.",
               "flows": {
                   "authorizationCode": {"authorizationUrl": "/oauth/authorize",
                                         "tokenUrl": "/oauth/token",
                                         "refreshUrl": "/oauth/token", "scopes": {}},
                   "clientCredentials": {"tokenUrl": "/oauth/token",
                                         "refreshUrl": "/oauth/token", "scopes": {}}}},
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": "an access token from /oauth/token (RS256)"},
    "basic": {"type": "http", "scheme": "basic",
              "description": "user name and password, only when the site enables it"},
}

# (registry id, module names) -> (the registry, the document)
_documents: dict[tuple, tuple[weakref.ref, dict]] = {}
_lock = threading.Lock()


def document_for(site, user) -> dict:
    modules = [m for m in site.registry.modules.values()
               if site.access.mode(user, m) != "disabled"]
    key = (id(site.registry), tuple(m.name for m in modules))
    found = _documents.get(key)
    if found is not None and found[0]() is site.registry:
        return found[1]
    document = build(site, modules)
    with _lock:
        if len(_documents) > 32:
            _documents.clear()
        _documents[key] = (weakref.ref(site.registry), document)
    return document


@api(module=False)
def openapi_json(call: Call):
    return 200, document_for(call.site, call.user)


# -- the docs page ---------------------------------------------------------------------------

KIND_WORDS = {"string": "string", "integer": "integer", "decimal": "decimal string",
              "boolean": "boolean", "date": "date (YYYY-MM-DD)",
              "datetime": "date-time (ISO 8601, UTC)", "list": "array of strings",
              "any": "any"}


def _operations(registry, module, all_actions) -> list[tuple[str, str, Message | str]]:
    """(methods, path, what) of each of the module's endpoints, for the docs page."""
    base = f"{PREFIX}/{module.name}"
    out = [("GET", base, Message(N_("list"))), ("POST", base, Message(N_("create"))),
           ("POST", f"{base}/bulk", Message(N_("create or update many"))),
           ("GET PATCH DELETE", f"{base}/{{id}}", Message(N_("read, change, delete one")))]
    for feature, _options in registry.features_of(module):
        if feature.api_component_schemas():
            out.append(("GET PUT", f"{base}/{{id}}/{feature.name}",
                        Message(feature.label or feature.name)))
    for name, rel in module.relationships.items():
        out.append(("GET POST", f"{base}/{{id}}/{name}", Message(
            N_("related %(module)s (%(kind)s)"), module=rel["module"], kind=rel["kind"])))
        out.append(("DELETE", f"{base}/{{id}}/{name}/{{other_id}}", Message(N_("unlink"))))
    out += [("POST", f"{base}/{{id}}/actions/{a.name}", a.summary)
            for (m, _), (a, _) in sorted(all_actions.items()) if m == module.name]
    return out


@page()
def docs_page(request: Request, form):
    site, user = request.app.state.site, request.state.user
    registry = site.registry
    all_actions = resources.actions(site)
    modules = []
    for module in registry.modules.values():
        if site.access.mode(user, module) == "disabled":
            continue
        shape = shapes(registry, module)
        writable = set(shape.writable)
        required = set(shape.create.get("required", []))
        fields = []
        for name, kind in shape.kinds.items():
            f = module.fields[name]
            options = [o["value"] for o in registry.dropdowns.get(f.spec.get("options", ""), [])]
            fields.append({"name": name, "label": f.label, "type": f.type.name,
                           "json": KIND_WORDS[kind], "required": name in required,
                           "writable": name in writable,
                           "size": shape.create["properties"].get(name, {}).get("maxLength"),
                           "options": options,
                           "related": f.spec.get("module") if f.type.is_link else None})
        modules.append({
            "name": module.name, "label": module.label, "fields": fields,
            "team_owned": bool(module.features.get("team_owned")),
            "operations": _operations(registry, module, all_actions),
        })
    return request.app.state.templates.render(
        request, "api_docs.html", modules=modules, prefix=PREFIX, operators=list(OPERATORS),
        max_limit=listing.MAX_LIMIT, count_cap=resources.COUNT_CAP,
        max_bulk=resources.MAX_BULK)


routes = [
    Route(f"{PREFIX}/openapi.json", openapi_json, methods=["GET"]),
    Route(f"{PREFIX}/docs", docs_page, methods=["GET"]),
]
