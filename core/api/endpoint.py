"""The ``api`` decorator every REST endpoint goes through (the API's ``pages.page``).

For every request, whatever the handler: authenticate the caller (``core.api.auth``,
in the thread pool: the database layer is synchronous), resolve the module in the URL
(404 unknown, 403 when the caller's roles disable it), read a JSON body strictly
(415 not JSON, 413 over ``MAX_BODY`` — counted while it arrives, never read whole first —,
400 malformed), run the sync handler, turn kernel errors into problem objects with exact
status codes, never show a traceback (a 500 is logged), and add the principal's headers
(rate limits) to every response, errors included.

Handlers are ``fn(call) -> Response | (status, data[, headers])``; ``call`` carries the
request, the user, the module and the body.
"""
from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from core.api import auth
from core.api.problems import ApiProblem
from core.kernel.errors import (
    ConflictError,
    CrbmError,
    InUseError,
    NotFoundError,
    ValidationError,
    VetoError,
)
from core.kernel.registry import ModuleDef

MAX_BODY = 1_048_576  # bytes; bulk requests of 500 records fit easily
JSON_TYPES = ("application/json",)
log = logging.getLogger("crbm.api")


@dataclass
class Call:
    request: Request
    principal: auth.Principal
    body: Any = None
    module: ModuleDef | None = None
    extra_headers: dict = field(default_factory=dict)

    @property
    def site(self):
        return self.request.app.state.site

    @property
    def user(self):
        return self.principal.user

    @property
    def params(self):
        return self.request.path_params


class JSONBody(Response):
    """Compact UTF-8 JSON (what Starlette's JSONResponse writes, without re-checking)."""

    media_type = "application/json"
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    def render(self, content) -> bytes:
        return self.encoder.encode(content).encode("utf-8")


def api(*, body: bool = False, module: bool = True, optional_body: bool = False):
    """Wrap ``fn(call)``. ``body``: the request carries JSON (``optional_body``: may be
    empty); ``module``: the path names a module the caller must be allowed to use."""

    def decorate(fn):
        @functools.wraps(fn)
        async def endpoint(request: Request):
            principal = None
            try:
                if body:
                    principal = await run_in_threadpool(auth.authenticate, request)
                    data = await read_json(request, optional_body)
                    call = Call(request, principal, data)
                    response = await run_in_threadpool(_run, fn, call, module)
                else:  # one trip to the thread pool
                    response = await run_in_threadpool(_authenticated_run, fn, request, module)
                    principal = request.state.api_principal
            except ApiProblem as exc:
                response = exc.response()
            except Exception:  # the client gets a problem, the log the trace
                log.exception("API %s %s failed", request.method, request.url.path)
                response = ApiProblem(500, "The server failed to answer this request; "
                                           "it has been logged.").response()
            if principal is not None and principal.headers:
                response.headers.update(principal.headers)
            return response

        return endpoint

    return decorate


def _authenticated_run(fn, request: Request, module: bool):
    principal = auth.authenticate(request)
    request.state.api_principal = principal
    return _run(fn, Call(request, principal), module)


def _run(fn, call: Call, needs_module: bool) -> Response:
    try:
        if needs_module:
            call.module = module_for(call)
        result = fn(call)
    except ApiProblem as exc:
        return exc.response()
    except CrbmError as exc:
        return problem_of(exc).response()
    if isinstance(result, Response):
        return result
    status, data, *rest = result
    headers = {**call.extra_headers, **(rest[0] if rest else {})}
    if data is None:
        return Response(status_code=status, headers=headers)
    return JSONBody(data, status_code=status, headers=headers)


def module_for(call: Call) -> ModuleDef:
    """The module in the URL, if it exists and the caller's roles do not disable it."""
    site = call.site
    name = call.params["module"]
    found = site.registry.modules.get(name)
    if found is None:
        raise ApiProblem(404, f"There is no module named {name[:60]!r}.")
    if site.access.mode(call.user, found) == "disabled":
        raise ApiProblem(403, f"You do not have access to {found.label}.")
    return found


def problem_of(exc: CrbmError) -> ApiProblem:
    """A kernel error as the problem a client gets."""
    if isinstance(exc, ValidationError):
        count = len(exc.errors)
        return ApiProblem(422, "1 field is invalid" if count == 1 else
                          f"{count} fields are invalid", errors=exc.errors)
    if isinstance(exc, NotFoundError):
        return ApiProblem(404, str(exc))
    if isinstance(exc, ConflictError):
        return ApiProblem(409, str(exc), errors={f: "was changed by someone else"
                                                 for f in exc.fields})
    if isinstance(exc, InUseError):  # a delete refused: what depends on the record
        return ApiProblem(409, str(exc), extensions={"dependents": [
            {"module": module, "label": label, "count": count}
            for used in exc.in_use for module, label, count in used.dependents]})
    if isinstance(exc, VetoError):
        return ApiProblem(409, str(exc))
    return ApiProblem(400, str(exc))


# -- reading a JSON body ---------------------------------------------------------------------

async def read_json(request: Request, optional: bool = False):
    """The parsed body: strict JSON (no NaN, no duplicate keys, decimals exact)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiProblem(400, "Content-Length is not a number.")
        if int(declared) > MAX_BODY:
            raise ApiProblem(413, f"The body is larger than {MAX_BODY:,} bytes.")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    is_json = media in JSON_TYPES or media.endswith("+json")
    if media and not is_json and not (optional and declared == "0"):
        raise ApiProblem(415, "Send the body as application/json.",
                         headers={"Accept": "application/json"})
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiProblem(413, f"The body is larger than {MAX_BODY:,} bytes.")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        if optional:
            return {}
        raise ApiProblem(400, "A JSON body is required.")
    if not is_json:
        raise ApiProblem(415, "Send the body as application/json.",
                         headers={"Accept": "application/json"})
    try:
        text = raw.decode("utf-8")
        data = json.loads(text, parse_float=Decimal, parse_constant=_no_constant,
                          object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:
        raise ApiProblem(400, f"The body is not valid JSON: {str(exc)[:200]}") from None
    _check_strings(data)
    return data


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key[:60]!r} appears twice")
        out[key] = value
    return out


def _check_strings(data, depth: int = 0) -> None:
    """No NUL characters or lone surrogates: no database stores them."""
    if isinstance(data, str):
        if "\x00" in data:
            raise ApiProblem(400, "Strings may not contain NUL characters.")
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiProblem(400, "Strings may not contain unpaired surrogates.") from None
    elif isinstance(data, dict):
        for key, value in data.items():
            _check_strings(key, depth + 1)
            _check_strings(value, depth + 1)
    elif isinstance(data, list):
        for value in data:
            _check_strings(value, depth + 1)
