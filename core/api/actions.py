"""Module actions a plugin exposes through the REST API (``crbm_api_actions``).

An action is ``POST /api/v1/<module>/<id>/actions/<name>`` with a JSON body; conversions
(quote -> sales order) and business operations (invoice part of an order, allocate a
payment) arrive this way, each from the plugin that owns the business.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ApiAction:
    module: str  # the module whose records it acts on
    name: str  # URL segment: /api/v1/<module>/<id>/actions/<name>
    summary: str  # one line for the OpenAPI document
    # handler(site, user, record_id, body) -> the JSON result (e.g. the record it made).
    # Raise core.kernel.errors ValidationError/VetoError/NotFoundError: they become 422/409/404.
    handler: Callable
    # JSON Schema of the body (validated before the handler runs; unknown keys refused)
    input_schema: dict = field(default_factory=lambda: {"type": "object",
                                                        "additionalProperties": False})
    # the module of the record the result describes, if it is one (OpenAPI's response)
    result_module: str | None = None
