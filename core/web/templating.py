"""Templates: lookup order, the Jinja environment, and the context every page gets.

A template (or static file) is looked up in the site's own ``templates/`` (``static/``)
folder, then the active theme pack's, then each plugin's, then the kernel's — so a
plugin or theme overrides one template or ``crbm.css`` without copying the rest.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, pass_context, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from core import i18n
from core.errors import Message
from core.web import display
from core.web.security import csrf_token


def lookup_dirs(site, kind: str) -> list[Path]:
    """Where ``kind`` ("templates" or "static") files are looked for, first match wins."""
    dirs = [site.folder / kind]
    theme = site.settings.get("theme")
    if theme:
        dirs.append(site.folder / "packs" / theme / kind)
    dirs += [p.folder / kind for p in site.plugins]
    dirs.append(Path(__file__).parent / kind)
    return [d for d in dirs if d.is_dir()]


class LayeredStaticFiles(StaticFiles):
    """Static files with the same lookup order as templates."""

    def __init__(self, directories: list[Path]):
        super().__init__(directory=directories[-1])
        self.all_directories = [str(d) for d in directories]


@lru_cache(maxsize=256)
def formatter(prefs: i18n.Preferences) -> i18n.Formatter:
    """One Formatter per distinct set of preferences (they are immutable)."""
    return i18n.Formatter(prefs)


class Templates:
    def __init__(self, site):
        self.site = site
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader(str(d)) for d in lookup_dirs(site, "templates")]),
            autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True,
            # templates change with a deploy or a pack install, which rebuild the app: no
            # need to stat every template file on every page
            auto_reload=False)
        i18n.install_jinja(self.env)  # {% trans %} and _() follow each request's `fmt`
        self.env.filters["nl2br"] = lambda text: Markup("<br>").join((text or "").splitlines())
        self.env.globals["tr"] = translate
        self.env.globals["show"] = display.show
        self.env.globals["option_tags"] = display.option_tags

    def render(self, request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
        user = getattr(request.state, "user", None)
        prefs = user.preferences if user else i18n.Preferences()
        context.update(request=request, user=user, csrf=csrf_token(request),
                       fmt=getattr(request.state, "fmt", None) or formatter(prefs),
                       nav=self.navigation(user) if user and not user.must_change_password else [],
                       flash=request.session.pop("flash", None))
        return HTMLResponse(self.env.get_template(name).render(context), status_code=status)

    def navigation(self, user) -> list[tuple[str, list]]:
        """Tab groups, each with the modules the user has access to, in registry order."""
        groups: dict[str, list] = {}
        for module in self.site.registry.modules.values():
            if self.site.access.mode(user, module) == "disabled":
                continue
            groups.setdefault(module.definition.get("tab_group", "Other"), []).append(module)
        return list(groups.items())


@pass_context
def translate(context, message) -> str:
    """A kernel ``Message`` in the user's language (other text as it is)."""
    if isinstance(message, Message):
        template, params = message.template, message.params
    elif isinstance(message, dict) and "template" in message:  # a flash, kept in the session
        template, params = message["template"], message["params"]
    else:
        return "" if message is None else str(message)
    text = context["fmt"].gettext(template)
    return text % params if params else text


def flash(request: Request, message: str, kind: str = "info") -> None:
    """A one-time message shown on the next page (a ``Message`` is translated there)."""
    params = getattr(message, "params", {})
    request.session["flash"] = {"message": {"template": getattr(message, "template", message),
                                            "params": params}, "kind": kind}
