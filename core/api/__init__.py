"""The JSON REST API under /api/v1/, generated from the merged metadata (placeholder:
the API helper fills this in). ``routes`` is what core.web.app mounts."""
routes: list = []
