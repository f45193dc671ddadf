"""The web application: server-rendered pages built from the metadata registry.

``core.web.app.create_app`` assembles it. This package's ``__init__`` imports nothing, so
importing one of its helpers (``core.web.pages``) does not load the whole application.
"""
