"""Templates: lookup order, the Jinja environments, and the context every page gets.

A template is looked up in the site's own ``templates/`` folder, then the page's theme
pack's, then each plugin's, then the kernel's — so a plugin or theme overrides one
template without copying the rest. Static files follow the same order without the theme
(``/static/...``); a theme's own files are served under ``/theme/<pack>/...`` and its
``static/theme.css`` is linked after ``crbm.css``.

The theme of a page is the reader's choice (``Preferences.theme``) if that theme pack is
enabled, else the site's ``theme`` setting if enabled, else none: the kernel's look.

A theme pack that carries templates gets a sandboxed environment (``core.web.sandbox``):
its pages, kernel templates included, render under rules that keep a template from
running code, reaching the site or the file system. When such a page fails (refused by
the sandbox, or any error), it is rendered again in the kernel's look with a notice, and
the reason is logged: a broken theme never costs anyone a page, the administrator's
pages to remove it included.
"""
from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    pass_context,
    pass_eval_context,
    select_autoescape,
)
from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from core.kernel import i18n
from core.kernel.errors import N_, Message
from core.web import display, icons
from core.web.sandbox import PackSandbox
from core.web.security import csrf_token

if TYPE_CHECKING:
    from core.kernel.site import EnabledPack

_UNREAD = object()
NAVIGATION_KEPT = 10_000  # users' tab groups kept at once (then they are worked out anew)
log = logging.getLogger(__name__)
THEME_FAILED = N_("The theme %(theme)s could not show this page, so it is shown in the "
                  "standard look.")


def lookup_dirs(site, kind: str, theme: EnabledPack | None = None) -> list[Path]:
    """Where ``kind`` ("templates" or "static") files are looked for, first match wins:
    the site's folder, ``theme`` (an enabled theme pack, or None), plugins, the kernel."""
    dirs = [site.folder / kind]
    if theme is not None:
        dirs.append(theme.folder / kind)
    dirs += [p.folder / kind for p in site.plugins]
    dirs.append(Path(__file__).parent / kind)
    return [d for d in dirs if d.is_dir()]


def carries_templates(pack: EnabledPack) -> bool:
    """Whether a pack has template files (a theme of stylesheets only renders unsandboxed)."""
    folder = pack.folder / "templates"
    return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))


def enabled_theme(site, name) -> EnabledPack | None:
    """The enabled theme pack called ``name`` (an ``EnabledPack``), or None."""
    if not name or not isinstance(name, str):
        return None
    return next((p for p in site.packs_of_kind("theme") if p.name == name), None)


def theme_label(pack) -> str:
    """What a theme is called in a preferences list (its manifest's label)."""
    provided = (pack.manifest.get("provides") or {}).get("theme") or {}
    return provided.get("label") or pack.manifest.get("title") or pack.name


class LayeredStaticFiles(StaticFiles):
    """Static files with the same lookup order as templates (the theme aside)."""

    def __init__(self, directories: list[Path]):
        super().__init__(directory=directories[-1])
        self.all_directories = [str(d) for d in directories]


class ThemeFiles:
    """``/theme/{name}/<path>``: the ``static/`` folder of an enabled theme pack.

    Read at request time, so a theme installed or removed while the site runs is served
    or refused at once. StaticFiles resolves the path and refuses one that leaves the
    folder (``..``, symbolic links out of it)."""

    def __init__(self, site):
        self.site = site
        self._served: dict[Path, StaticFiles] = {}

    async def __call__(self, scope, receive, send):
        pack = enabled_theme(self.site, scope.get("path_params", {}).get("name"))
        folder = pack.folder / "static" if pack else None
        if folder is None or not folder.is_dir():
            raise HTTPException(404)
        files = self._served.get(folder)
        if files is None:
            files = self._served[folder] = StaticFiles(directory=folder)
        await files(scope, receive, send)


def formatter(prefs: i18n.Preferences, locale_dirs=()) -> i18n.Formatter:
    """The reader's Formatter with the site's pack catalogs (``site.locale_dirs``): one per
    distinct (preferences, folders), both immutable; ``i18n.reload_translations`` renews it."""
    return i18n.formatter(prefs, locale_dirs)


class Templates:
    """Renders pages: one Jinja environment per theme, built on first use and kept until
    ``clear()`` (a pack install or removal calls it)."""

    def __init__(self, site):
        self.site = site
        self._environments: dict[str | None, Environment] = {}
        self._stylesheets: dict[str, str | None] = {}
        self._site_theme = _UNREAD  # the setting, read once (until clear())
        self._navigation: tuple = (None, {})  # (registry, {(user, epoch...): tab groups})
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget the environments and the site's theme setting: after installing or
        removing a pack, or changing the setting, the next page is built afresh."""
        with self._lock:
            self._environments = {}
            self._stylesheets = {}
            self._site_theme = _UNREAD
            self._navigation = (None, {})

    def site_theme(self) -> str | None:
        """The site's ``theme`` setting (read from the database once, until ``clear()``)."""
        if self._site_theme is _UNREAD:
            value = self.site.settings.get("theme")
            self._site_theme = value if isinstance(value, str) else None
        return self._site_theme

    def theme_for(self, user) -> EnabledPack | None:
        """The theme pack of this reader's pages, or None for the kernel's look. Enabled
        packs are read from ``site.enabled_packs`` each time, so a removed theme stops
        applying at once (a preference naming it falls back to the site's theme)."""
        chosen = user.preferences.theme if user is not None else None
        return enabled_theme(self.site, chosen) or enabled_theme(self.site, self.site_theme())

    def environment(self, theme: EnabledPack | None = None) -> Environment:
        """The Jinja environment of ``theme`` (an enabled theme pack, or None)."""
        key = theme.name if theme is not None else None
        env = self._environments.get(key)
        if env is None:
            with self._lock:
                env = self._environments.get(key)
                if env is None:
                    env = self._environments[key] = self._build(theme)
        return env

    def _build(self, theme: EnabledPack | None) -> Environment:
        sandboxed = theme is not None and carries_templates(theme)
        env = (PackSandbox if sandboxed else Environment)(
            loader=ChoiceLoader([FileSystemLoader(str(d))
                                 for d in lookup_dirs(self.site, "templates", theme)]),
            autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True,
            # templates change with a deploy or a pack install (which calls clear()): no
            # need to stat every template file on every page
            auto_reload=False)
        i18n.install_jinja(env)  # {% trans %} and _() follow each request's `fmt`
        env.filters["nl2br"] = lambda text: Markup("<br>").join((text or "").splitlines())
        env.globals["tr"] = translate
        env.globals["show"] = display.show
        env.globals["icon"] = icons.icon
        env.globals["option_tags"] = display.option_tags
        env.globals["field_stylesheets"] = display.field_stylesheets
        env.globals["list_actions"] = self.list_actions
        # the cards plugins add beside a record's fields (env.globals["detail_cards"]: a
        # template and a data function each): called through this global, which a theme's
        # sandbox trusts like every global, not from inside a list it does not
        env.globals["detail_card_data"] = lambda card, *args: card["data"](*args)
        self.site.hook.crbm_jinja_environment(site=self.site, env=env)
        return env

    def list_actions(self, module, user) -> list:
        """The plugins' mass actions on ``module``'s list page (crbm_list_actions)."""
        return [action for actions in self.site.hook.crbm_list_actions(
            site=self.site, module=module, user=user) for action in actions or ()]

    def nav_entries(self, user) -> list:
        """The top bar's links beside the user's name (crbm_navigation)."""
        return [entry for entries in self.site.hook.crbm_navigation(site=self.site, user=user)
                for entry in entries or ()]

    def stylesheet(self, theme: EnabledPack | None) -> str | None:
        """URL of the theme's ``static/theme.css`` (None without a theme or that file); the
        version makes browsers fetch it anew after an upgrade."""
        if theme is None:
            return None
        if theme.name not in self._stylesheets:
            found = (theme.folder / "static" / "theme.css").is_file()
            version = theme.manifest.get("version", "")
            self._stylesheets[theme.name] = (
                f"/theme/{theme.name}/theme.css?v={version}" if found else None)
        return self._stylesheets[theme.name]

    def render(self, request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
        user = getattr(request.state, "user", None)
        prefs = user.preferences if user else signed_out_preferences(request)
        theme = self.theme_for(user)
        fmt = getattr(request.state, "fmt", None) or formatter(prefs, self.site.locale_dirs)
        # module, field and section labels in the reader's language, on error pages too
        # (rendered outside page()); the context is this request's own
        i18n.activate(fmt.translations)
        context.update(request=request, user=user, csrf=csrf_token(request), fmt=fmt,
                       nav=self.navigation(user) if user and not user.must_change_password else [],
                       nav_entries=self.nav_entries(user) if user else [],
                       flash=request.session.pop("flash", None),
                       theme=theme, theme_css=self.stylesheet(theme),
                       **gettext_callables(fmt.translations))
        env = self.environment(theme)
        try:
            page = env.get_template(name).render(context)
        except Exception as exc:  # a pack's template failed, whatever the error
            if not isinstance(env, PackSandbox):
                raise
            log.warning("theme %s could not render %s: %s: %s", theme.name, name,
                        type(exc).__name__, exc)
            context.update(theme=None, theme_css=None, theme_failed={
                "message": Message(THEME_FAILED, theme=theme_label(theme)),
                "reason": f"{type(exc).__name__}: {exc}"[:300]})
            page = self.environment(None).get_template(name).render(context)
        return HTMLResponse(page, status_code=status)

    def navigation(self, user) -> list[tuple[str, list]]:
        """Tab groups, each with the modules the user has access to, in the Studio's tab
        order (modules without one follow in registry order); hidden modules left out.
        Worked out once per registry, user, access epoch and language: every page shows it."""
        registry, epoch = self.site.registry, getattr(user, "access_epoch", None)
        key = (user.id, user.is_admin, epoch, i18n.language())
        known = self._navigation
        if known[0] is not registry:
            known = self._navigation = (registry, {})
        found = known[1].get(key)
        if found is None:
            groups: dict[str, list] = {}
            for module in sorted(registry.modules.values(),
                                 key=lambda m: m.definition.get("tab_order", 1_000_000)):
                if not module.definition.get("hidden") and \
                        self.site.access.mode(user, module) != "disabled":
                    groups.setdefault(module.tab_group, []).append(module)
            found = list(groups.items())
            if epoch is not None:  # a user not loaded with the epoch: worked out each time
                if len(known[1]) >= NAVIGATION_KEPT:
                    known[1].clear()
                known[1][key] = found
        return found


@functools.lru_cache(maxsize=64)
def gettext_callables(translations) -> dict:
    """``_``, ``gettext`` and ``ngettext`` bound to one catalog, for a page's context. They
    do what the i18n extension's (``i18n.install_jinja``) do — the text marked safe when
    autoescaping, then formatted with the (escaped) variables — without looking the
    catalog up in the context at each call: a list page says some forty strings."""
    translate, plural = translations.gettext, translations.ngettext

    @pass_eval_context
    def gettext(eval_ctx, __string: str, **variables):
        text = translate(__string)
        if eval_ctx.autoescape:
            text = Markup(text)
        return text % variables if variables or "%" in text else text  # "%%" is "%" too

    @pass_eval_context
    def ngettext(eval_ctx, __singular: str, __plural: str, __num: int, **variables):
        variables.setdefault("num", __num)
        text = plural(__singular, __plural, __num)
        return (Markup(text) if eval_ctx.autoescape else text) % variables

    return {"_": gettext, "gettext": gettext, "ngettext": ngettext}


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


def signed_out_preferences(request: Request) -> i18n.Preferences:
    """Someone not signed in reads pages in the language chosen on the login page (kept
    in the session), else English."""
    language = request.session.get("language") if "session" in request.scope else None
    prefs = i18n.Preferences.from_dict({"language": language} if language else None)
    return i18n.effective_preferences(prefs, request.app.state.site.locale_dirs)


def flash(request: Request, message: str, kind: str = "info") -> None:
    """A one-time message shown on the next page (a ``Message`` is translated there)."""
    params = getattr(message, "params", {})
    request.session["flash"] = {"message": {"template": getattr(message, "template", message),
                                            "params": params}, "kind": kind}
