"""The generic REST resources under /api/v1/: every module of the merged registry, none
named here (a Studio-made module has its API the moment it exists).

    GET    /api/v1                                     the modules the caller may use
    GET    /api/v1/{module}                            list (listing.py: filters, sort, pages)
    POST   /api/v1/{module}                            create -> 201 + Location
    POST   /api/v1/{module}/bulk                       {"create": [...]} | {"update": [...]} -> 207
    GET    /api/v1/{module}/{id}                       one record (ETag: "<version>")
    PATCH  /api/v1/{module}/{id}                       partial update (If-Match -> 412 if stale)
    DELETE /api/v1/{module}/{id}                       204
    GET    /api/v1/{module}/{id}/{feature}             a module feature's data (line_items:
    PUT    /api/v1/{module}/{id}/{feature}             groups, lines, totals; PUT {"groups"})
    POST   /api/v1/{module}/{id}/actions/{name}        a plugin's action (crbm_api_actions)
    GET    /api/v1/{module}/{id}/{relationship}        related records (list parameters)
    POST   /api/v1/{module}/{id}/{relationship}        {"id": other} links
    DELETE /api/v1/{module}/{id}/{relationship}/{other} unlinks

Access is the UI's, through the same record service: list/view/edit/delete predicates in
SQL, creating needs "edit" on the module, a module the caller's roles disable is 403, a
record they may not see is 404 (and absent from lists, counts and related lists); a record
they see but may not change is 403.
"""
from __future__ import annotations

import re
import threading
import weakref

import jsonschema
from starlette.routing import Route

from core.api import listing
from core.api.actions import ApiAction
from core.api.endpoint import Call, api, problem_of
from core.api.problems import ApiProblem
from core.api.schemas import shapes, to_json
from core.apps.duplicates import api as duplicates_api
from core.kernel.errors import ConflictError, CrbmError, NotFoundError, ValidationError

PREFIX = "/api/v1"
COUNT_CAP = 1_000  # as the UI's lists: past it, meta.total_capped
MAX_BULK = 500
BULK_SCHEMA = {
    "type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
    "properties": {verb: {"type": "array", "minItems": 1, "maxItems": MAX_BULK,
                          "items": {"type": "object"}} for verb in ("create", "update")}}
LINK_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["id"],
               "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 36}}}
_VALIDATORS = {"bulk": jsonschema.Draft202012Validator(BULK_SCHEMA),
               "link": jsonschema.Draft202012Validator(LINK_SCHEMA)}
ETAG = re.compile(r'^(W/)?"?([0-9]{1,18})"?$')


def _url(module: str, *parts: str) -> str:
    return "/".join([PREFIX, module, *parts])


def _check(which: str, body) -> None:
    from core.api.schemas import describe
    errors = {}
    for error in _VALIDATORS[which].iter_errors(body):
        errors.update(describe(error))
    if errors:
        raise ApiProblem(422, "The body is not what this endpoint takes.", errors=errors)


def _labels_param(call: Call) -> bool:
    value = call.request.query_params.get("labels", "0").lower()
    if value not in listing.TRUE | listing.FALSE:
        raise ApiProblem(400, "labels must be true or false.", errors={"labels": "must be 1 or 0"})
    return value in listing.TRUE


def _only_params(call: Call, allowed: set[str]) -> None:
    unknown = [k for k in call.request.query_params if k not in allowed]
    if unknown:
        raise ApiProblem(400, "Unknown query parameter.",
                         errors={k[:100]: "is not a parameter here" for k in unknown})


def _refused(call: Call, module, record_id: str, what: str) -> ApiProblem:
    """A write found no record it may change: 403 if the caller can see it, else 404."""
    if call.site.records.allowed(module.name, [record_id], call.user, "view"):
        return ApiProblem(403, f"You may not {what} this {module.label_singular}.")
    return ApiProblem(404, f"No {module.label_singular} with id {record_id[:40]}.")


def _etag(record: dict) -> dict:
    return {"ETag": f'"{record["version"]}"'}


def _if_match(call: Call) -> int | None:
    header = call.request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    match = ETAG.match(header.strip())
    if not match:
        raise ApiProblem(400, 'If-Match takes the ETag you read, like "3".',
                         errors={"If-Match": "is not an ETag of this API"})
    return int(match.group(2))


NOT_FIELDS = ("teams", "version")  # in a body, but not a record's fields (features' too)


def _input(call: Call, body, which: str, module=None, current=None) -> None:
    """422 naming every invalid field: what the schema refuses and, for the fields it lets
    through, what the record service would refuse, so a caller fixes everything in one go
    (docs/api.md). ``current``: () -> the record an update changes (read only when the
    schema found something; None when the caller may not edit it: the schema's say)."""
    module = module or call.module
    errors = shapes(call.site.registry, module).input_errors(body, which)
    if errors and which in ("create", "update") and isinstance(body, dict):
        record = current() if current else None
        if which == "create" or record is not None:
            features = {f.name for f, _options in call.site.registry.features_of(module)}
            rest = {k: v for k, v in body.items() if k not in errors and k not in NOT_FIELDS
                    and k not in features}
            for name, message in call.site.records.validate(module.name, rest,
                                                            record).items():
                errors.setdefault(name, str(message))
    if errors:
        raise ApiProblem(422, f"{len(errors)} field{'s are' if len(errors) > 1 else ' is'} "
                              "invalid", errors=errors)


# -- the modules -----------------------------------------------------------------------------

@api(module=False)
def index(call: Call):
    site = call.site
    data = []
    for module in site.registry.modules.values():
        if site.access.mode(call.user, module) == "disabled":
            continue
        data.append({"name": module.name, "label": str(module.label),
                     "label_singular": str(module.label_singular),
                     "can_create": site.access.can(call.user, module, "edit"),
                     "links": {"self": _url(module.name),
                               "schema": f"{PREFIX}/openapi.json#/components/schemas/"
                                         f"{module.name}"}})
    return 200, {"data": data, "links": {"openapi": f"{PREFIX}/openapi.json",
                                         "docs": f"{PREFIX}/docs"}}


# -- lists -----------------------------------------------------------------------------------

def _page_of(call: Call, module, rows: list[dict], request: listing.ListRequest,
             total: int | None) -> dict:
    shape = shapes(call.site.registry, module)
    more = len(rows) > request.limit
    rows = rows[:request.limit]
    data = shape.records_json(rows, request.shown)
    meta: dict = {"limit": request.limit}
    links = {"self": listing.link(call.request)}
    if total is not None:
        meta |= {"total": min(total, COUNT_CAP), "total_capped": total > COUNT_CAP}
    if request.page is not None:
        meta["page"] = request.page
        if more:
            links["next"] = listing.link(call.request, page=request.page + 1)
    elif more:
        meta["next_cursor"] = listing.encode_cursor(rows[-1], request.sort_keys, shape)
        links["next"] = listing.link(call.request, cursor=meta["next_cursor"])
    return {"data": data, "meta": meta, "links": links}


def _bad_filters(exc: ValidationError) -> ApiProblem:
    """The record service refused a filter value: name the parameter, as a 400."""
    return ApiProblem(400, "Some query parameters are invalid.",
                      errors={f"filter[{name}]": message for name, message in exc.errors.items()})


@api()
def list_records(call: Call):
    module = call.module
    request = listing.parse(call.request.query_params, module,
                            shapes(call.site.registry, module), call.site.records)
    try:
        if request.count:
            rows, total = call.site.records.page(module.name, call.user, request.query,
                                                 cap=COUNT_CAP)
        else:
            rows, total = call.site.records.list(module.name, call.user, request.query), None
    except ValidationError as exc:
        raise _bad_filters(exc) from None
    return 200, _page_of(call, module, rows, request, total)


@api()
def related_list(call: Call):
    module, site = call.module, call.site
    record_id, name = call.params["record_id"], call.params["relationship"]
    rel = module.relationships.get(name)
    if rel is None and name in site.registry.features:  # a module feature's data
        return _feature_get(call, _feature(call, name))
    if rel is None:
        raise ApiProblem(404, f"{module.label} have no relationship {name[:60]!r}.")
    if not site.records.allowed(module.name, [record_id], call.user, "view"):
        raise ApiProblem(404, f"No {module.label_singular} with id {record_id[:40]}.")
    other = site.registry.module(rel["module"])
    if site.access.mode(call.user, other) == "disabled":
        raise ApiProblem(403, f"You do not have access to {other.label}.")
    request = listing.parse(call.request.query_params, other,
                            shapes(site.registry, other), site.records)
    try:
        rows = site.records.related(module.name, record_id, name, call.user, request.query)
    except ValidationError as exc:
        raise _bad_filters(exc) from None
    return 200, _page_of(call, other, rows, request, None)


# -- one record ------------------------------------------------------------------------------

@api(body=True)
def create_record(call: Call):
    module, site = call.module, call.site
    if not site.access.can(call.user, module, "edit"):
        raise ApiProblem(403, f"You may not create {module.label}.")
    record = _create(call, module, call.body, check_duplicates=True)
    return 201, shapes(site.registry, module).record_json(record), \
        {"Location": _url(module.name, record["id"]), **_etag(record)}


def _create(call: Call, module, body, check_duplicates: bool = False) -> dict:
    if not isinstance(body, dict):
        raise ApiProblem(422, "The body must be a JSON object of field values.")
    _input(call, body, "create", module)
    values = dict(body)
    teams = values.pop("teams", None) or ()
    if check_duplicates:  # likely duplicates: 409 with them, unless ?duplicates=ignore
        duplicates_api.check_create(call.site, module, values, call.user,
                                      call.request.query_params)
    return call.site.records.create(module.name, values, call.user, teams=teams)


@api()
def get_record(call: Call):
    module = call.module
    _only_params(call, {"labels"})
    record = call.site.records.get(module.name, call.params["record_id"], call.user,
                                   labels=_labels_param(call))
    return 200, shapes(call.site.registry, module).record_json(record), _etag(record)


@api(body=True)
def update_record(call: Call):
    record = _update(call, call.module, call.params["record_id"], call.body, _if_match(call))
    return 200, shapes(call.site.registry, call.module).record_json(record), _etag(record)


def _current(call: Call, module, record_id: str) -> dict | None:
    """The record as the caller may edit it, or None."""
    try:
        return call.site.records.get(module.name, record_id, call.user, action="edit")
    except NotFoundError:
        return None


def _update(call: Call, module, record_id: str, body, if_match: int | None) -> dict:
    if not isinstance(body, dict):
        raise ApiProblem(422, "The body must be a JSON object of field values.")
    _input(call, body, "update", module, lambda: _current(call, module, record_id))
    values = dict(body)
    version = values.pop("version", None)
    teams = values.pop("teams", None)
    if if_match is not None and version is not None and if_match != version:
        raise ApiProblem(400, "If-Match and version disagree.",
                         errors={"version": "is not the version If-Match gives"})
    expected = if_match if if_match is not None else version
    try:
        return call.site.records.update(
            module.name, record_id, values, call.user, teams=teams,
            base=None if expected is None else {"version": expected})
    except NotFoundError:
        raise _refused(call, module, record_id, "change") from None
    except ConflictError as exc:
        if expected is not None and not exc.fields:  # stale version: a precondition
            raise ApiProblem(412, f"The {module.label_singular} has changed since version "
                                  f"{expected}; read it again.") from None
        raise


@api()
def delete_record(call: Call):
    module, record_id = call.module, call.params["record_id"]
    try:
        call.site.records.delete(module.name, record_id, call.user)
    except NotFoundError:
        raise _refused(call, module, record_id, "delete") from None
    return 204, None


# -- relationships ---------------------------------------------------------------------------

def _relationship(call: Call):
    module, name = call.module, call.params["relationship"]
    rel = module.relationships.get(name)
    if rel is None:
        raise ApiProblem(404, f"{module.label} have no relationship {name[:60]!r}.")
    other = call.site.registry.module(rel["module"])
    if call.site.access.mode(call.user, other) == "disabled":
        raise ApiProblem(403, f"You do not have access to {other.label}.")
    return rel, other


@api(body=True)
def link_record(call: Call):
    """many_to_many: a link row; one_to_many: the other record's field points here."""
    module, site, record_id = call.module, call.site, call.params["record_id"]
    rel, other = _relationship(call)
    _check("link", call.body)
    other_id = call.body["id"]
    if rel["kind"] == "many_to_many":
        if not site.records.allowed(module.name, [record_id], call.user, "edit"):
            raise _refused(call, module, record_id, "change")
        if not site.records.allowed(other.name, [other_id], call.user, "view"):
            raise ApiProblem(422, "No such record to link.",
                             errors={"id": f"no {other.label_singular} with this id"})
        site.records.link(module.name, record_id, call.params["relationship"], other_id,
                          call.user)
        return 204, None
    if not site.records.allowed(module.name, [record_id], call.user, "view"):
        raise ApiProblem(404, f"No {module.label_singular} with id {record_id[:40]}.")
    try:
        site.records.update(other.name, other_id, {rel["field"]: record_id}, call.user)
    except NotFoundError:
        raise ApiProblem(422, "No such record to link.", errors={
            "id": f"no {other.label_singular} with this id that you may change"}) from None
    return 204, None


@api()
def unlink_record(call: Call):
    module, site = call.module, call.site
    record_id, other_id = call.params["record_id"], call.params["other_id"]
    rel, other = _relationship(call)
    if rel["kind"] == "many_to_many":
        if not site.records.allowed(module.name, [record_id], call.user, "edit"):
            raise _refused(call, module, record_id, "change")
        site.records.unlink(module.name, record_id, call.params["relationship"], other_id,
                            call.user)
        return 204, None
    try:
        current = site.records.get(other.name, other_id, call.user, action="edit")
    except NotFoundError:
        raise _refused(call, other, other_id, "change") from None
    if current.get(rel["field"]) != record_id:
        raise ApiProblem(404, f"That {other.label_singular} is not linked to this "
                              f"{module.label_singular}.")
    site.records.update(other.name, other_id, {rel["field"]: None}, call.user, base=current)
    return 204, None


# -- module features (line items) -------------------------------------------------------------

def _feature(call: Call, name: str):
    """The feature ``name`` of the call's module (404 when the module has no such one)."""
    module = call.module
    feature = call.site.registry.features.get(name)
    if feature is None or feature not in [f for f, _ in call.site.registry.features_of(module)]:
        raise ApiProblem(404, f"{module.label} have no {name.replace('_', ' ')[:60]}.")
    return feature


def _feature_get(call: Call, feature):
    data = call.site.records.feature_data(feature.name, call.module.name,
                                          call.params["record_id"], call.user)
    return 200, feature.to_json(data)


@api(body=True)
def put_feature(call: Call):
    module, record_id = call.module, call.params["record_id"]
    feature = _feature(call, call.params["feature"])
    if feature.api_input_schema() is None:
        raise ApiProblem(405, f"{feature.name!r} cannot be replaced.")
    errors = shapes(call.site.registry, module).input_errors(call.body, feature.name)
    if errors:
        raise ApiProblem(422, f"The {feature.name.replace('_', ' ')} are not what this "
                              "endpoint takes.", errors=errors)
    record = _update(call, module, record_id, {feature.name: feature.from_json(call.body)},
                     _if_match(call))
    data = call.site.records.feature_data(feature.name, module.name, record_id, call.user)
    return 200, feature.to_json(data), _etag(record)


# -- actions ---------------------------------------------------------------------------------

_actions: dict[int, tuple[weakref.ref, dict]] = {}
_actions_lock = threading.Lock()


def actions(site) -> dict[tuple[str, str], tuple[ApiAction, jsonschema.Validator]]:
    """(module, name) -> the action and its body's validator; asked of the plugins once
    per registry (packs with code come and go with it)."""
    entry = _actions.get(id(site.registry))
    if entry is None or entry[0]() is not site.registry:
        found = {}
        for action in transition_actions(site.registry):  # the modules' declared ones
            found[(action.module, action.name)] = (
                action, jsonschema.Draft202012Validator(action.input_schema))
        for contributed in site.hook.crbm_api_actions(site=site):
            for action in contributed or ():
                found[(action.module, action.name)] = (
                    action, jsonschema.Draft202012Validator(action.input_schema))
        with _actions_lock:
            _actions.clear()  # one site's registry at a time is the common case
            entry = _actions[id(site.registry)] = (weakref.ref(site.registry), found)
    return entry[1]


def transition_actions(registry) -> list[ApiAction]:
    """A module's declared status transitions (``features.transitions``) as API actions:
    ``POST /api/v1/<module>/<id>/actions/<name>`` performs ``records.transition``."""
    out = []
    for module in registry.modules.values():
        spec = module.features.get("transitions")
        for t in spec["actions"] if spec else ():
            def handler(site, user, record_id, body, module=module.name, name=t["name"]):
                return site.records.transition(module, record_id, name, user)
            out.append(ApiAction(module.name, t["name"],
                                 f"{t['label']}: {spec['field']} from "
                                 f"{', '.join(map(str, t['from']))} to {t['to']}", handler,
                                 result_module=module.name))
    return out


@api(body=True, optional_body=True)
def run_action(call: Call):
    module, site, record_id = call.module, call.site, call.params["record_id"]
    found = actions(site).get((module.name, call.params["name"]))
    if found is None:
        raise ApiProblem(404, f"{module.label} have no action {call.params['name'][:60]!r}.")
    action, validator = found
    if not site.records.allowed(module.name, [record_id], call.user, "view"):
        raise ApiProblem(404, f"No {module.label_singular} with id {record_id[:40]}.")
    from core.api.schemas import describe
    errors = {}
    for error in validator.iter_errors(call.body):
        errors.update(describe(error))
    if errors:
        raise ApiProblem(422, "The body is not what this action takes.", errors=errors)
    result = action.handler(site, call.user, record_id, call.body)
    if action.result_module and isinstance(result, dict) and "id" in result:
        target = site.registry.module(action.result_module)
        return 200, shapes(site.registry, target).record_json(result)
    return 200, to_json(result)


# -- bulk ------------------------------------------------------------------------------------

@api(body=True)
def bulk(call: Call):
    """Each item stands alone (its own transaction): 207 with a status per item."""
    module, site = call.module, call.site
    _check("bulk", call.body)
    [(verb, items)] = call.body.items()
    if verb == "create" and not site.access.can(call.user, module, "edit"):
        raise ApiProblem(403, f"You may not create {module.label}.")
    shape = shapes(site.registry, module)
    results = []
    for index, item in enumerate(items):
        try:
            if verb == "create":
                record = _create(call, module, item)
                results.append({"index": index, "status": 201, "id": record["id"],
                                "record": shape.record_json(record)})
            else:
                item = dict(item)
                record_id = item.pop("id", None)
                if not isinstance(record_id, str) or not record_id:
                    raise ApiProblem(422, "Each update names its record.",
                                     errors={"id": "is required"})
                record = _update(call, module, record_id, item, None)
                results.append({"index": index, "status": 200, "id": record["id"],
                                "record": shape.record_json(record)})
        except (ApiProblem, CrbmError) as exc:
            problem = exc if isinstance(exc, ApiProblem) else problem_of(exc)
            body = problem.body()
            results.append({"index": index, "status": problem.status,
                            **{k: body[k] for k in ("detail", "errors") if k in body}})
    failed = sum(1 for r in results if r["status"] >= 400)
    return 207, {"data": results, "meta": {"succeeded": len(results) - failed,
                                           "failed": failed}}


routes = [
    Route(PREFIX, index, methods=["GET"]),
    Route(PREFIX + "/", index, methods=["GET"]),
    Route(PREFIX + "/{module}", list_records, methods=["GET"]),
    Route(PREFIX + "/{module}", create_record, methods=["POST"]),
    Route(PREFIX + "/{module}/bulk", bulk, methods=["POST"]),
    Route(PREFIX + "/{module}/{record_id}", get_record, methods=["GET"]),
    Route(PREFIX + "/{module}/{record_id}", update_record, methods=["PATCH"]),
    Route(PREFIX + "/{module}/{record_id}", delete_record, methods=["DELETE"]),
    Route(PREFIX + "/{module}/{record_id}/{feature}", put_feature, methods=["PUT"]),
    Route(PREFIX + "/{module}/{record_id}/actions/{name}", run_action, methods=["POST"]),
    Route(PREFIX + "/{module}/{record_id}/{relationship}", related_list, methods=["GET"]),
    Route(PREFIX + "/{module}/{record_id}/{relationship}", link_record, methods=["POST"]),
    Route(PREFIX + "/{module}/{record_id}/{relationship}/{other_id}", unlink_record,
          methods=["DELETE"]),
]
