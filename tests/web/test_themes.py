"""Themes chosen per user, their files under /theme/<pack>/, and the login page's language
choice, through real HTTP requests (TestClient).

Packs: the shipped personality_packs/theme_nocturne, and two test packs in tests/packs/:
theme_tiny (a stylesheet and a home.html override) and lang_tiny (a few German strings).
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from core.kernel.users import create_user, save_preferences
from core.web.app import create_app
from tests.pack_util import install_folder

PASSWORD = "correct horse battery"
TEST_PACKS = Path(__file__).resolve().parents[1] / "packs"
NOCTURNE = "theme_nocturne"
NOCTURNE_CSS = "/theme/theme_nocturne/theme.css"
TINY_CSS = "/theme/theme_tiny/theme.css"


def csrf_of(page_html: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', page_html).group(1)


def log_in(client, username="admin", **extra):
    page = client.get("/login")
    return client.post("/login", follow_redirects=False, data={
        "_csrf": csrf_of(page.text), "username": username, "password": PASSWORD, **extra})


def post(client, path, data):
    token = csrf_of(client.get(path).text)
    return client.post(path, data={"_csrf": token, **data}, follow_redirects=False)


def stylesheets(response) -> list[str]:
    """The theme stylesheets a page links (the kernel's crbm.css aside)."""
    return [href.split("?")[0] for href in
            re.findall(r'<link rel="stylesheet" href="([^"]+)"', response.text)
            if href.startswith("/theme/")]


def text_of(response) -> str:
    return html.unescape(response.text)


def stored_preferences(site, username) -> dict:
    table = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        raw = conn.execute(sa.select(table.c.preferences)
                           .where(table.c.username == username)).scalar()
    return json.loads(raw) if raw else {}


def set_preferences(site, user, **prefs) -> None:
    save_preferences(site, user.id, {"language": "en", **prefs})


def disable(site, name: str, *, remove_files: bool = False) -> None:
    """Disable the pack (its files stay) or uninstall it (they go), with the pack loader."""
    site.packs.remove(name, "uninstall" if remove_files else "disable")


pytestmark = pytest.mark.usefixtures("quick_hashes")  # conftest: cheap argon2, many sign-ins


@pytest.fixture
def app(site, admin):
    return create_app(site)


@pytest.fixture
def client(app):
    with TestClient(app) as client:
        yield client


@pytest.fixture
def plain(site):
    return create_user(site, "plain", PASSWORD)


# -- the theme's files -----------------------------------------------------------------------

def test_theme_files_are_served_only_while_the_theme_pack_is_enabled(site, client):
    assert client.get(NOCTURNE_CSS).status_code == 404  # not installed
    install_folder(site, NOCTURNE)  # while the app runs
    response = client.get(NOCTURNE_CSS)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")  # nosniff needs it
    assert "Nocturne" in response.text
    image = client.get("/theme/theme_nocturne/moon.svg")
    assert image.status_code == 200 and image.headers["content-type"] == "image/svg+xml"
    # the security headers stay on theme files, and the stylesheet is the site's own
    assert "style-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert client.get("/theme/theme_nocturne/missing.css").status_code == 404

    disable(site, NOCTURNE)
    assert site.pack_folder(NOCTURNE).is_dir()
    assert client.get(NOCTURNE_CSS).status_code == 404  # files still there, pack disabled
    site.packs.enable(NOCTURNE)
    assert client.get(NOCTURNE_CSS).status_code == 200
    disable(site, NOCTURNE, remove_files=True)
    assert client.get(NOCTURNE_CSS).status_code == 404


def test_only_theme_packs_serve_files(site, client):
    install_folder(site, TEST_PACKS / "lang_tiny")
    (site.pack_folder("lang_tiny") / "static").mkdir()
    (site.pack_folder("lang_tiny") / "static" / "x.css").write_text("p {}")
    assert client.get("/theme/lang_tiny/x.css").status_code == 404  # a language pack
    assert client.get("/theme/nonesuch/theme.css").status_code == 404


@pytest.mark.parametrize("path", [
    "/theme/theme_nocturne/%2e%2e/pack.yaml",          # the pack's folder, above static/
    "/theme/theme_nocturne/..%2fpack.yaml",
    "/theme/theme_nocturne/%2e%2e/%2e%2e/%2e%2e/site.yaml",  # the site's secret key
    "/theme/theme_nocturne/..%2f..%2f..%2fsite.yaml",
    "/theme/%2e%2e/%2e%2e/site.yaml",
    "/theme/theme_nocturne//etc/passwd",
    "/theme/theme_nocturne/link.css",                  # a symbolic link out of static/
])
def test_no_path_leaves_the_theme_folder(site, client, path):
    install_folder(site, NOCTURNE)
    (site.pack_folder(NOCTURNE) / "static" / "link.css").symlink_to(site.folder / "site.yaml")
    response = client.get(path)
    assert response.status_code == 404
    assert "secret_key" not in response.text and "name: theme_nocturne" not in response.text


# -- who sees which theme ----------------------------------------------------------------------

def test_the_theme_stylesheet_is_linked_only_for_its_users(site, client, admin, plain):
    install_folder(site, NOCTURNE)
    set_preferences(site, admin, theme=NOCTURNE)
    assert stylesheets(client.get("/login")) == []  # signed out: the site's look (none set)
    log_in(client)
    for path in ("/", "/m/accounts", "/preferences", "/admin", "/nowhere"):
        assert stylesheets(client.get(path)) == [NOCTURNE_CSS], path
    assert "/theme/theme_nocturne/theme.css?v=1.0.0" in client.get("/").text  # fresh after upgrades
    client.post("/logout", data={"_csrf": csrf_of(client.get("/").text)})
    log_in(client, "plain")
    for path in ("/", "/m/accounts", "/preferences", "/nowhere"):
        assert stylesheets(client.get(path)) == [], path


def test_the_site_default_theme_applies_to_everyone_else(site, app, client, admin, plain):
    install_folder(site, NOCTURNE)
    install_folder(site, TEST_PACKS / "theme_tiny")
    site.set_setting("theme", NOCTURNE)
    app.state.templates.clear()  # what changing the setting while the site runs needs
    assert stylesheets(client.get("/login")) == [NOCTURNE_CSS]
    assert stylesheets(client.get("/password/forgot")) == [NOCTURNE_CSS]
    log_in(client, "plain")
    assert stylesheets(client.get("/")) == [NOCTURNE_CSS]
    assert 'id="tiny-home"' not in client.get("/").text

    set_preferences(site, plain, theme="theme_tiny")  # their own choice wins
    home = client.get("/")
    assert stylesheets(home) == [TINY_CSS]
    assert 'id="tiny-home"' in home.text  # the theme's own template
    assert 'id="tiny-home"' not in client.get("/nowhere").text


def test_a_removed_theme_in_someones_preferences_falls_back(site, app, client, admin):
    install_folder(site, NOCTURNE)
    install_folder(site, TEST_PACKS / "theme_tiny")
    set_preferences(site, admin, theme="theme_tiny")
    log_in(client)
    assert 'id="tiny-home"' in client.get("/").text

    disable(site, "theme_tiny", remove_files=True)  # no clear(): it stops applying at once
    home = client.get("/")
    assert home.status_code == 200 and stylesheets(home) == []
    assert 'id="tiny-home"' not in home.text  # the kernel's home page again
    page = client.get("/preferences")
    assert page.status_code == 200
    assert re.search(r'<option value="">Site default</option>', page.text)  # nothing selected
    assert "theme_tiny" not in page.text

    site.set_setting("theme", NOCTURNE)
    app.state.templates.clear()
    assert stylesheets(client.get("/")) == [NOCTURNE_CSS]  # then the site's theme
    assert stored_preferences(site, "admin")["theme"] == "theme_tiny"  # kept if it comes back


def test_a_site_default_that_is_not_enabled_is_ignored(site, client, plain):
    site.set_setting("theme", "theme_gone")
    with TestClient(create_app(site)) as fresh:
        assert fresh.get("/login").status_code == 200
        assert stylesheets(fresh.get("/login")) == []


# -- preferences -----------------------------------------------------------------------------

def preference_values(**changes) -> dict:
    return {"language": "en", "timezone": "UTC", "date_format": "medium",
            "time_format": "short", "number_locale": "", **changes}


def test_the_theme_is_chosen_in_preferences(site, client, admin):
    install_folder(site, NOCTURNE)
    install_folder(site, TEST_PACKS / "theme_tiny")
    log_in(client)
    page = client.get("/preferences")
    options = re.search(r'<select id="pref-theme" name="theme"[^>]*>(.*?)</select>', page.text,
                        re.DOTALL).group(1)
    assert re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', options) == [
        ("", "Site default"), ("theme_nocturne", "Nocturne (dark)"), ("theme_tiny", "Tiny")]

    response = post(client, "/preferences", preference_values(theme=NOCTURNE))
    assert response.status_code == 303
    assert stored_preferences(site, "admin")["theme"] == NOCTURNE
    page = client.get("/preferences")
    assert stylesheets(page) == [NOCTURNE_CSS]
    assert '<option value="theme_nocturne" selected>' in page.text

    response = post(client, "/preferences", preference_values(theme=""))
    assert response.status_code == 303
    assert stored_preferences(site, "admin")["theme"] is None
    assert stylesheets(client.get("/")) == []


def test_the_site_default_is_named_in_the_theme_list(site, app, client, admin):
    install_folder(site, NOCTURNE)
    site.set_setting("theme", NOCTURNE)
    app.state.templates.clear()
    log_in(client)
    assert '<option value="">Site default (Nocturne (dark))</option>' in client.get("/preferences").text


@pytest.mark.parametrize("theme", ["theme_gone", "theme_tiny", "../../etc", "lang_tiny"])
def test_a_theme_that_is_not_enabled_is_refused(site, client, admin, theme):
    install_folder(site, NOCTURNE)
    install_folder(site, TEST_PACKS / "theme_tiny")
    install_folder(site, TEST_PACKS / "lang_tiny")
    disable(site, "theme_tiny")
    set_preferences(site, admin, theme=NOCTURNE, timezone="Europe/Oslo")
    before = stored_preferences(site, "admin")
    log_in(client)
    response = post(client, "/preferences", preference_values(theme=theme, timezone="UTC"))
    assert response.status_code == 400
    assert "That theme is not installed on this site." in text_of(response)
    assert 'id="pref-theme"' in response.text and 'aria-invalid="true"' in response.text
    assert stored_preferences(site, "admin") == before  # nothing saved, not even the time zone


def test_preferences_offer_the_sites_languages(site, client, admin):
    log_in(client)
    assert 'value="de"' not in client.get("/preferences").text
    install_folder(site, TEST_PACKS / "lang_tiny")
    page = client.get("/preferences")
    assert '<option value="de">Deutsch</option>' in page.text
    assert "pref-theme" not in page.text  # no theme installed: nothing to choose
    assert post(client, "/preferences", preference_values(language="de")).status_code == 303
    assert "<h1>Einstellungen</h1>" in client.get("/preferences").text


# -- the login page's language -----------------------------------------------------------------

def test_the_login_page_offers_languages_only_beyond_english(site, client):
    assert 'name="language"' not in client.get("/login").text
    install_folder(site, TEST_PACKS / "lang_tiny")
    page = client.get("/login")
    assert '<select id="login-language" name="language">' in page.text
    assert '<option value="de" lang="de">Deutsch</option>' in page.text
    assert '<option value="en" lang="en">English</option>' in page.text


def test_the_language_chosen_at_login_is_kept_and_saved(site, client, admin):
    install_folder(site, TEST_PACKS / "lang_tiny")
    page = client.get("/login")
    switched = client.post("/login", data={
        "_csrf": csrf_of(page.text), "username": "admin", "password": "", "next": "/m/accounts",
        "language": "de", "switch_language": "1"})
    assert switched.status_code == 200  # the same page, not a login attempt
    assert "<h1>Anmelden</h1>" in switched.text and '<html lang="de">' in switched.text
    assert 'name="username" value="admin"' in switched.text  # what was typed stays
    assert '<option value="de" lang="de" selected>' in switched.text
    assert stored_preferences(site, "admin").get("language", "en") == "en"  # not signed in

    # the other signed-out pages follow
    assert "Passwort vergessen?" in text_of(client.get("/password/forgot"))
    wrong = client.post("/login", data={"_csrf": csrf_of(switched.text), "username": "admin",
                                        "password": "wrong", "language": "de"})
    assert wrong.status_code == 401
    assert "Falscher Benutzername oder falsches Passwort." in text_of(wrong)

    response = log_in(client, language="de", next="/preferences")
    assert response.status_code == 303 and response.headers["location"] == "/preferences"
    assert stored_preferences(site, "admin")["language"] == "de"
    assert "<h1>Einstellungen</h1>" in client.get("/preferences").text


def test_signing_in_without_choosing_keeps_the_users_language(site, client, admin):
    install_folder(site, TEST_PACKS / "lang_tiny")
    set_preferences(site, admin, language="en_GB", timezone="Europe/London")
    for extra in ({"language": ""}, {"language": "xx"}, {}):
        assert log_in(client, **extra).status_code == 303
        assert stored_preferences(site, "admin")["language"] == "en_GB"
        assert stored_preferences(site, "admin")["timezone"] == "Europe/London"
        client.post("/logout", data={"_csrf": csrf_of(client.get("/").text)})


def test_choosing_as_in_my_preferences_goes_back_to_english(site, client):
    install_folder(site, TEST_PACKS / "lang_tiny")
    page = client.get("/login")
    client.post("/login", data={"_csrf": csrf_of(page.text), "language": "de",
                                "switch_language": "1"})
    assert "<h1>Anmelden</h1>" in client.get("/login").text
    back = client.post("/login", data={"_csrf": csrf_of(page.text), "language": "",
                                       "switch_language": "1"})
    assert "<h1>Log in</h1>" in back.text and "<h1>Log in</h1>" in client.get("/login").text


# -- a theme's templates run in a sandbox ----------------------------------------------------

THEME_FAILED = "The theme Evil could not show this page, so it is shown in the standard look."
KERNEL_TEMPLATES = Path(__file__).resolve().parents[2] / "core" / "web" / "templates"


def theme_pack(tmp_path, templates: dict[str, str], name: str = "theme_evil") -> Path:
    folder = tmp_path / name
    (folder / "templates").mkdir(parents=True)
    (folder / "pack.yaml").write_text(f"name: {name}\nkind: theme\nversion: '1.0.0'\n"
                                      "title: Evil\nprovides: {theme: {label: Evil}}\n")
    for rel, text in templates.items():
        (folder / "templates" / rel).write_text(text)
    return folder


def escapes(marker: Path) -> dict[str, str]:
    """Ways out of a template, each of which would create ``marker`` (or change the site)."""
    shell = f"touch {marker}"
    popen = f"os.popen('{shell}').read()"
    return {
        "lipsum globals": f"{{{{ lipsum.__globals__['os'].popen('{shell}').read() }}}}",
        "subclasses": ("{% for c in ''.__class__.__mro__[1].__subclasses__() %}"
                       "{% if c.__name__ == 'Popen' %}{{ c(['touch', '" + str(marker) +
                       "']).wait() }}{% endif %}{% endfor %}"),
        "cycler globals": f"{{{{ cycler.__init__.__globals__.os.{popen.replace('os.', '')} }}}}",
        "template context": ("{{ self._TemplateReference__context.cycler.__init__.__globals__"
                             f".{popen} }}}}"),
        "attr filter": ("{{ (cycler|attr('__init__')|attr('__globals__'))['os']"
                        f".popen('{shell}').read() }}}}"),
        "format": "{{ '{0.__init__.__globals__[os]}'.format(cycler) }}",
        "app state": "{{ request.app.state.site.set_setting('allow_code_packs', true) }}",
        "scope item": "{{ request['app'].state.site.set_setting('allow_code_packs', true) }}",
        "scope attribute": "{{ request.scope.app.state.site.config.secret_key }}",
        "theme folder": f"{{{{ theme.folder.joinpath('{marker}').write_text('x') }}}}",
        "session": "{{ request.session.update({'uid': 'someone else'}) }}",
        "huge power": "{{ 10 ** (user.id|length * 10000000) }}",  # hours of one core
    }


@pytest.mark.parametrize("escape", list(escapes(Path("m"))))
def test_no_template_escape_runs_anything(site, client, admin, tmp_path, escape):
    marker = tmp_path / "ran"
    payload = escapes(marker)[escape]
    install_folder(site, theme_pack(tmp_path, {
        "home.html": "{% extends 'base.html' %}{% block content %}<h1 id='evil'>" + payload +
                     "</h1>{% endblock %}"}))
    set_preferences(site, admin, theme="theme_evil")
    log_in(client)
    home = client.get("/")
    assert not marker.exists()
    assert home.status_code == 200  # the page, in the kernel's look, saying why
    assert THEME_FAILED in text_of(home) and "id='evil'" not in home.text
    assert "Traceback" not in home.text and site.config["secret_key"] not in home.text
    assert "allow_code_packs" not in site.settings
    assert client.get("/preferences").status_code == 200  # still signed in, as admin
    assert 'href="/admin"' in client.get("/m/accounts").text


@pytest.mark.parametrize("template", ["base.html", "_fields.html"])
def test_a_theme_overriding_what_kernel_pages_extend_or_import_is_sandboxed(
        site, client, admin, tmp_path, template):
    marker = tmp_path / "ran"
    payload = escapes(marker)["cycler globals"]
    kernel = (KERNEL_TEMPLATES / template).read_text()
    install_folder(site, theme_pack(tmp_path, {template: payload + kernel}))
    set_preferences(site, admin, theme="theme_evil")
    log_in(client)
    account = site.records.create("accounts", {"name": "Acme"}, admin)
    for path in ("/", "/m/accounts", f"/m/accounts/{account['id']}/edit", "/admin/packs"):
        page = client.get(path)
        assert page.status_code == 200, path
        if template == "base.html" or path.startswith("/m/"):  # lists and forms import it
            assert THEME_FAILED in text_of(page), path
        assert "Acme" in page.text or not path.startswith("/m/"), path
    assert not marker.exists()


def test_a_theme_with_templates_renders_the_kernels_pages_in_its_sandbox(site, app, client,
                                                                        admin, tmp_path):
    """A theme may restyle every page through base.html: the kernel's templates then all run
    sandboxed, and must not trip over the sandbox themselves."""
    base = (KERNEL_TEMPLATES / "base.html").read_text().replace(
        '<main>', '<main data-theme-base="evil">')
    install_folder(site, theme_pack(tmp_path, {"base.html": base}))
    assert isinstance(app.state.templates.environment(site.packs_of_kind("theme")[0]),
                      __import__("core.web.sandbox", fromlist=["PackSandbox"]).PackSandbox)
    set_preferences(site, admin, theme="theme_evil")
    log_in(client)
    account = site.records.create("accounts", {"name": "Acme"}, admin)
    paths = ["/", "/m/accounts", f"/m/accounts/{account['id']}",
             f"/m/accounts/{account['id']}/edit", "/m/accounts/new", "/m/quotes/new",
             "/preferences", "/calendar", "/admin", "/admin/users", "/admin/roles",
             "/admin/packs", "/admin/packs/history", "/admin/studio",
             "/admin/studio/modules/accounts", "/admin/studio/dropdowns", "/nowhere"]
    for path in paths:
        page = client.get(path)
        assert page.status_code in (200, 404), path
        assert 'data-theme-base="evil"' in page.text, path
        assert "data-theme-failed" not in page.text, path


def test_themes_without_templates_are_not_sandboxed(site, app, client, admin):
    from core.web.sandbox import PackSandbox

    install_folder(site, NOCTURNE)
    install_folder(site, TEST_PACKS / "theme_tiny")
    nocturne, tiny = sorted(site.packs_of_kind("theme"), key=lambda p: p.name)
    assert not isinstance(app.state.templates.environment(nocturne), PackSandbox)
    assert not isinstance(app.state.templates.environment(None), PackSandbox)
    assert isinstance(app.state.templates.environment(tiny), PackSandbox)
    set_preferences(site, admin, theme=NOCTURNE)
    log_in(client)
    for path in ("/", "/m/accounts", "/admin/packs"):
        page = client.get(path)
        assert page.status_code == 200 and stylesheets(page) == [NOCTURNE_CSS], path
        assert "data-theme-failed" not in page.text
    set_preferences(site, admin, theme="theme_tiny")
    home = client.get("/")
    assert 'id="tiny-home"' in home.text and "data-theme-failed" not in home.text


# -- option colours ----------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
TONES = ("gray", "blue", "teal", "green", "amber", "orange", "red", "purple", "pink")


def tone_variables(css: str) -> dict[str, str]:
    """The --tone-* custom properties a stylesheet sets."""
    return dict(re.findall(r"--(tone-[a-z]+-(?:bg|text)):\s*(#[0-9a-fA-F]{6})", css))


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2's contrast ratio of two #rrggbb colours."""
    def luminance(colour: str) -> float:
        channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("stylesheet", ["core/web/static/crbm.css",
                                        "personality_packs/theme_nocturne/static/theme.css"])
def test_every_option_colour_is_readable_in_the_kernel_and_the_dark_theme(stylesheet):
    tones = tone_variables((ROOT / stylesheet).read_text(encoding="utf-8"))
    for tone in TONES:
        ratio = contrast_ratio(tones[f"tone-{tone}-bg"], tones[f"tone-{tone}-text"])
        assert ratio >= 4.5, f"{stylesheet}: {tone} badges' text is {ratio:.1f}:1"


def test_the_dark_themes_badge_rule_leaves_coloured_options_their_colour():
    # theme.css comes after crbm.css: a plain `.badge` rule there would paint every
    # coloured option's badge its one grey (same specificity, later wins)
    css = (ROOT / "personality_packs/theme_nocturne/static/theme.css").read_text(encoding="utf-8")
    assert not re.search(r"(^|\})\s*\.badge\s*\{[^}]*background", css, re.MULTILINE)
