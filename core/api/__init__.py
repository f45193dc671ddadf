"""The JSON REST API under /api/v1/, generated from the merged metadata.

``routes`` is what core.web.app mounts, before the web views. Order matters: the fixed
paths (webhooks, the OpenAPI document, the docs page) come before the generic
``/api/v1/{module}`` ones, which would otherwise take them for module names.
"""
from core.api import openapi, resources
from core.apps.webhooks import api as webhooks_api

routes = [*webhooks_api.routes, *openapi.routes, *resources.routes]
