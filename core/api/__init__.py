"""The JSON REST API under /api/v1/, generated from the merged metadata.

``core.web.app`` mounts ``openapi.routes`` and ``resources.routes``, after the
applications' fixed paths (``/api/v1/webhooks``, from the webhooks application's
``crbm_web_routes``) and before the web views: the generic ``/api/v1/{module}`` ones would
otherwise take them for module names. This ``__init__`` imports nothing.
"""
