"""Errors as RFC 9457 problem objects (``application/problem+json``).

Every API error a client can get — bad JSON, a field that fails validation, no access,
too many requests — is one of these, with the exact status code and, for fields, where:

    {"type": "about:blank", "title": "Unprocessable Content", "status": 422,
     "detail": "2 fields are invalid",
     "errors": [{"field": "name", "message": "is required"}, ...]}

``errors`` is present only when something can be pinned to a field (or a JSON path such
as ``line_items.1.2.quantity``, or ``items.3.name`` in a bulk request). Some problems carry
members of their own (RFC 9457 extensions), such as a refused delete's ``dependents``.
"""
from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from starlette.responses import JSONResponse

MEDIA_TYPE = "application/problem+json"


class ApiProblem(Exception):
    """Raised anywhere under an API endpoint; becomes the problem response."""

    def __init__(self, status: int, detail: str | None = None, *,
                 errors: Mapping[str, str] | None = None, title: str | None = None,
                 headers: Mapping[str, str] | None = None,
                 extensions: Mapping[str, object] | None = None):
        self.status = status
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.errors = dict(errors or {})
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})
        super().__init__(detail or self.title)

    def body(self) -> dict:
        body = {"type": "about:blank", "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = str(self.detail)
        if self.errors:
            body["errors"] = [{"field": str(f), "message": str(m)}
                              for f, m in self.errors.items()]
        return {**self.extensions, **body}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers,
                            media_type=MEDIA_TYPE)


# The schema of a problem body, referenced by every operation in the OpenAPI document.
PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["field", "message"],
            "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}},
        "dependents": {"type": "array", "description": "a refused delete: the records that "
                       "refer to the record, by module", "items": {
                           "type": "object", "required": ["module", "label", "count"],
                           "properties": {"module": {"type": "string"},
                                          "label": {"type": "string"},
                                          "count": {"type": "integer"}}}},
    },
}
