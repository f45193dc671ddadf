"""The web application: server-rendered pages built from the metadata registry."""
from core.web.app import create_app

__all__ = ["create_app"]
