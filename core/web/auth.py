"""Signing in and out, passwords (change, forgotten, reset) and personal preferences.

A sign-in starts a session with a server-side row (``core.kernel.users.start_session``); logging
out deletes it, and "Log out everywhere" deletes all of the user's. Failed sign-ins and
reset requests are throttled per client address (``core.web.throttle``, shared by every
worker). Reset links are made only from the configured ``base_url``.

Messages are English marked with ``N_`` and translated when the page is rendered, in the
language of whoever reads it (the signed-in user; on signed-out pages the language chosen
on the login page, else English; a reset email goes out in its recipient's language).
Flashes are stored untranslated and translated by the page that shows them.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from babel import dates
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.apps.calendar import holidays
from core.apps.calendar.settings import WEEKDAYS
from core.apps.documents.mail import MailError, is_configured, send_mail
from core.apps.notifications import assignment
from core.kernel import i18n, users
from core.kernel.i18n import N_
from core.kernel.identity import client_ip, load_user
from core.web import reset_links, throttle
from core.web.pages import page
from core.web.templating import enabled_theme, flash, signed_out_preferences, theme_label

log = logging.getLogger(__name__)

WRONG_LOGIN = N_("Wrong user name or password.")
NOT_PROVISIONED = N_("Your directory account is not set up in CRBM; ask an administrator.")
WRONG_CURRENT = N_("That is not your current password.")
MISMATCH = N_("The two new passwords are not the same.")
UNCHANGED = N_("The new password must be different from the current one.")
REQUIRED = N_("Required")
THEME_NOT_INSTALLED = N_("That theme is not installed on this site.")
HOLIDAYS_NOT_INSTALLED = N_("That holiday calendar is not installed on this site.")
PREFERENCE_FIELDS = ("language", "timezone", "date_format", "time_format", "number_locale",
                     "theme", "holidays", "week_start")
NO_STORE = {"Cache-Control": "no-store"}


def safe_next(target: str | None) -> str:
    """Only local paths: a login link must not send anyone to another site."""
    if (not target or not target.startswith("/") or target.startswith(("//", "/\\"))
            or any(ord(c) < 32 for c in target)):
        return "/"
    return target


def translator(request: Request):
    """The reader's translations: the signed-in user's language, else the one chosen on
    the login page, else English."""
    user = getattr(request.state, "user", None)
    prefs = user.preferences if user else signed_out_preferences(request)
    return i18n.gettext_for(prefs, request.app.state.site.locale_dirs)


def login_languages(site) -> list[tuple[str, str]]:
    """The languages the login page offers: the site's, when it has more than English."""
    languages = i18n.available_languages(site.locale_dirs)
    return languages if len(languages) > 1 else []


def _choose_language(request: Request, form, languages: list[tuple[str, str]]) -> str | None:
    """The language picked on the login form (kept in the session for the signed-out
    pages), or None when none was picked. An unknown code counts as none."""
    if "language" not in form:
        return None
    chosen = str(form.get("language", "")).strip()
    if chosen and chosen in dict(languages):
        request.session["language"] = chosen
        return chosen
    if not chosen:  # "as in my preferences"
        request.session.pop("language", None)
    return None


def _save_language(request: Request, language: str) -> None:
    """Make the language chosen on the login page the signed-in user's own."""
    user = load_user(request)
    if user is not None and user.preferences.language != language:
        prefs = dataclasses.replace(user.preferences, language=language)
        users.save_preferences(request.app.state.site, user.id, prefs.to_dict())


def locked_message(tr, minutes: int) -> str:
    return tr.ngettext("This account is locked after too many failed attempts. "
                       "Try again in %(num)d minute.",
                       "This account is locked after too many failed attempts. "
                       "Try again in %(num)d minutes.", minutes) % {"num": minutes}


def password_errors(tr, username: str, new: str, confirm: str) -> dict[str, str]:
    """Field -> translated message for the new-password pair."""
    problem = users.password_problem(new, username)
    if problem:
        return {"new": tr.gettext(problem) % {"min": users.MIN_PASSWORD}}
    if new != confirm:
        return {"confirm": tr.gettext(MISMATCH)}
    return {}


def render(request: Request, name: str, status: int = 200, **context):
    response = request.app.state.templates.render(request, name, status=status,
                                                  min_password=users.MIN_PASSWORD, **context)
    response.headers.update(NO_STORE)
    return response


# -- the per-address throttles (core.web.throttle: counted by every worker alike) --------------

def address_throttled(site, rule: throttle.Rule, address: str) -> int:
    """Seconds until ``address`` may try again under ``rule`` (0: it may now)."""
    verdict = throttle.counters(site).check(rule, address)
    return 0 if verdict.allowed else verdict.retry_after


def count_event(site, rule: throttle.Rule, address: str) -> None:
    """Count one event (a failed sign-in, a reset request) of ``address``; the log says
    when this one used up its allowance (once, not at every refused attempt after it)."""
    if rule.limit <= 0:  # the throttle is off
        return
    counters = throttle.counters(site)
    if counters.check(rule, address).remaining <= 1:
        log.warning("%s from %s reached the limit (%d in %d minutes): refused for a while",
                    rule.name, address, rule.limit, rule.window // 60)
    counters.record(rule, address)


def failed_sign_in(result: users.LoginResult) -> bool:
    """A refused password (or a locked account's attempt); not a directory outage, nor a
    directory user CRBM does not know yet."""
    return result.user is None and not result.unavailable and not result.not_provisioned


def _minutes(seconds: int) -> int:
    return max(1, -(-seconds // 60))


def too_many_sign_ins(tr, seconds: int) -> str:
    minutes = _minutes(seconds)
    return tr.ngettext("Too many failed sign-ins from your network address. Try again in "
                       "%(num)d minute.",
                       "Too many failed sign-ins from your network address. Try again in "
                       "%(num)d minutes.", minutes) % {"num": minutes}


def too_many_resets(tr, seconds: int) -> str:
    minutes = _minutes(seconds)
    return tr.ngettext("Too many password reset requests from your network address. Try "
                       "again in %(num)d minute.",
                       "Too many password reset requests from your network address. Try "
                       "again in %(num)d minutes.", minutes) % {"num": minutes}


# -- log in / out --------------------------------------------------------------------------

@page(public=True)
def login(request: Request, form):
    if form is None:  # GET (and HEAD)
        if request.state.user:
            return RedirectResponse(safe_next(request.query_params.get("next")), 303)
        ended = request.session.pop("ended", None)
        return render(request, "login.html", next=request.query_params.get("next", ""),
                      ended=ended, languages=login_languages(request.app.state.site),
                      language=request.session.get("language", ""))
    site = request.app.state.site
    username = str(form.get("username", "")).strip()
    languages = login_languages(site)
    language = _choose_language(request, form, languages)
    if form.get("switch_language"):  # "Change": the same page in that language, no sign-in
        return render(request, "login.html", username=username, next=form.get("next", ""),
                      languages=languages, language=language or "")
    address, settings = throttle.ip_subject(client_ip(request)), site.settings
    throttled = address_throttled(site, throttle.login_rule(settings), address)
    if throttled:  # the password is not even checked: no account is tried, none locked
        response = render(request, "login.html", status=429, username=username,
                          next=form.get("next", ""), languages=languages,
                          language=language or "",
                          error=too_many_sign_ins(translator(request), throttled))
        response.headers["Retry-After"] = str(throttled)
        return response
    result = users.check_login(site, username, str(form.get("password", "")))
    if result.user is None:
        tr = translator(request)
        if failed_sign_in(result):
            count_event(site, throttle.login_rule(settings), address)
        if result.locked_minutes:
            status, error = 429, locked_message(tr, result.locked_minutes)
        elif result.unavailable:  # the directory could not be asked
            status, error = 503, tr.gettext(result.unavailable)
        elif result.not_provisioned:  # the directory said yes; CRBM has no such user
            status, error = 403, tr.gettext(NOT_PROVISIONED)
        else:
            status, error = 401, tr.gettext(WRONG_LOGIN)
        return render(request, "login.html", status=status, username=username,
                      next=form.get("next", ""), error=error, languages=languages,
                      language=language or "")
    users.end_session(site, request.session.get("sid"))  # signing in again ends the old one
    request.session.clear()  # a fresh session: no fixation
    request.session.update(uid=result.user.id, epoch=result.session_epoch, ip=client_ip(request),
                           sid=users.start_session(site, result.user.id))
    if language:
        _save_language(request, language)
    if result.must_change_password:
        return RedirectResponse("/password/change", 303)
    return RedirectResponse(safe_next(form.get("next")), 303)


@page(public=True)
def logout(request: Request, form):
    """End this session on the server too: a copy of the cookie is worth nothing after."""
    users.end_session(request.app.state.site, request.session.get("sid"))
    request.session.clear()
    return RedirectResponse("/login", 303)


@page(allow_password_change=True)
def logout_everywhere(request: Request, form):
    """End every session of the user, in every browser, this one included (Preferences)."""
    users.end_all_sessions(request.app.state.site, request.state.user.id)
    request.session.clear()
    flash(request, N_("You were logged out everywhere. Log in again to continue."), "info")
    return RedirectResponse("/login", 303)


# -- passwords -----------------------------------------------------------------------------

@page(allow_password_change=True)
def password_change(request: Request, form):
    user = request.state.user
    if user.auth_source != "local":  # the directory owns this password
        flash(request, N_("Your password is managed by your organisation's directory "
                          "(LDAP); change it there."), "error")
        return RedirectResponse("/", 303)
    if form is None:  # GET (and HEAD)
        return render(request, "password_change.html", errors={})
    site, tr = request.app.state.site, translator(request)
    current, new = str(form.get("current", "")), str(form.get("new", ""))
    errors = password_errors(tr, user.username, new, str(form.get("confirm", "")))
    if not current:
        errors["current"] = tr.gettext(REQUIRED)
    else:
        check = users.check_current_password(site, user.id, current)
        if check.user is None:
            errors["current"] = (locked_message(tr, check.locked_minutes)
                                 if check.locked_minutes else tr.gettext(WRONG_CURRENT))
        elif not errors and new == current:
            errors["new"] = tr.gettext(UNCHANGED)
    if errors:
        return render(request, "password_change.html", status=400, errors=errors)
    request.session["epoch"] = users.change_password(site, user.id, new)  # others end, this stays
    flash(request, N_("Your password was changed."), "info")
    return RedirectResponse("/", 303)


def send_reset_mail(site, target: reset_links.ResetTarget, token: str, base_url: str) -> None:
    """Runs after the response is sent: the page looks and takes the same either way."""
    tr = i18n.gettext_for(i18n.Preferences.from_dict(target.preferences), site.locale_dirs)
    link = f"{base_url.rstrip('/')}/password/reset/{token}"
    text = tr.gettext(
        "Hello %(username)s,\n\n"
        "someone (hopefully you) asked to reset your CRBM password. To choose a new one, "
        "open this link within %(minutes)d minutes:\n\n%(link)s\n\n"
        "The link works only once. If you did not ask for it, ignore this message: "
        "your password stays as it is.\n") % {
        "username": target.username, "minutes": reset_links.RESET_TOKEN_MINUTES, "link": link}
    try:
        send_mail(site, target.email, tr.gettext("Reset your CRBM password"), text)
    except MailError as exc:
        reset_links.discard_reset_token(site, token)
        log.warning("password reset mail for user %r not sent: %s", target.username, exc)


def send_reset_mails(site, mails: list[tuple[reset_links.ResetTarget, str]], base_url: str) -> None:
    for target, token in mails:
        send_reset_mail(site, target, token, base_url)


def reset_by_mail_problem(settings: dict) -> str | None:
    """Why password reset by email cannot work on this site (for the log), or None: no
    mail server, or no site address.

    A reset link must start with the configured ``base_url``: the address a request came
    to is the client's choice (the Host header), and a link built from it would hand the
    token to whoever chose it."""
    if not is_configured(settings):
        return "mail is not configured (Admin → Outgoing mail: mail server, from address)"
    if not settings.get("base_url"):
        return ("the site's address (base_url) is not set, so no reset link can be made "
                "(Admin → Outgoing mail: site address)")
    return None


@page(public=True)
def password_forgot(request: Request, form):
    site = request.app.state.site
    settings = site.settings
    problem = reset_by_mail_problem(settings)
    if problem:  # say so, whoever asks: it tells nothing about any account
        if form is not None:
            log.warning("password reset by email refused: %s", problem)
        return render(request, "password_forgot.html", unavailable=True,
                      status=200 if form is None else 503)
    if form is None:  # GET (and HEAD)
        return render(request, "password_forgot.html")
    address, rule = throttle.ip_subject(client_ip(request)), throttle.reset_rule(settings)
    throttled = address_throttled(site, rule, address)
    if throttled:
        response = render(request, "password_forgot.html", status=429,
                          error=too_many_resets(translator(request), throttled))
        response.headers["Retry-After"] = str(throttled)
        return response
    count_event(site, rule, address)  # every request counts, whatever its answer
    base_url = settings["base_url"]
    targets = reset_links.reset_targets(site, str(form.get("login", "")))
    mails = [(target, reset_links.issue_reset_token(site, target.id)) for target in targets]
    response = render(request, "password_forgot.html", sent=True,
                      reset_minutes=reset_links.RESET_TOKEN_MINUTES)
    if mails:
        response.background = BackgroundTask(send_reset_mails, site, mails, base_url)
    return response


@page(public=True)
def password_reset(request: Request, form):
    site, tr = request.app.state.site, translator(request)
    token = request.path_params["token"]
    target = reset_links.reset_token_user(site, token)
    if target is None:
        return render(request, "password_reset.html", status=410, invalid=True)
    if form is None:  # GET (and HEAD)
        return render(request, "password_reset.html", target=target, errors={})
    new = str(form.get("new", ""))
    errors = password_errors(tr, target.username, new, str(form.get("confirm", "")))
    if errors:
        return render(request, "password_reset.html", status=400, target=target, errors=errors)
    if reset_links.reset_password(site, token, new) is None:  # used meanwhile
        return render(request, "password_reset.html", status=410, invalid=True)
    users.end_session(site, request.session.get("sid"))
    request.session.clear()
    flash(request, N_("Your password was changed. Log in with the new one."), "info")
    return RedirectResponse("/login", 303)


# -- preferences ---------------------------------------------------------------------------

_SAMPLE = dt.datetime(2026, 11, 23, 14, 30)


def date_format_choices(language: str = "en") -> list[tuple[str, str]]:
    """(value, example) pairs for the preferences form, examples in ``language``."""
    return [(p, dates.format_date(_SAMPLE, p, locale=language)) for p in
            ("short", "medium", "long", "dd/MM/yyyy", "MM/dd/yyyy", "dd.MM.yyyy", "yyyy-MM-dd")]


def time_format_choices(language: str = "en") -> list[tuple[str, str]]:
    return [(p, dates.format_time(_SAMPLE.time(), p, locale=language))
            for p in ("short", "medium", "HH:mm", "h:mm a")]


def _choices(current: str, choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Keep a hand-set pattern selectable."""
    return choices if any(v == current for v, _ in choices) else [(current, current), *choices]


def _theme_choices(request: Request) -> dict:
    """The enabled themes (name, label) and the label of the site's default look."""
    site, templates = request.app.state.site, request.app.state.templates
    default = enabled_theme(site, templates.site_theme())
    return {"themes": [(p.name, theme_label(p)) for p in site.packs_of_kind("theme")],
            "default_theme": theme_label(default) if default else None}


@page()
def preferences(request: Request, form):
    user = request.state.user
    holiday_sets = holidays.choices(request.app.state.site)  # (pack name, label)
    site = request.app.state.site
    if form is None:  # GET (and HEAD)
        values, errors, status = user.preferences.to_dict(), {}, 200
        values["assignment_email"] = assignment.email_enabled(site, user.id)
    else:
        values = {k: str(form.get(k, "")).strip() for k in PREFERENCE_FIELDS}
        values["number_locale"] = values["number_locale"] or None
        problems = i18n.validate_preferences(values)
        if "language" not in problems and not i18n.installed_language(
                values["language"], request.app.state.site.locale_dirs):
            problems["language"] = N_("Unknown language or locale")  # only those offered
        if values["theme"] and enabled_theme(request.app.state.site, values["theme"]) is None:
            problems["theme"] = THEME_NOT_INSTALLED  # only the themes offered
        if values["holidays"] and values["holidays"] not in dict(holiday_sets):
            problems.setdefault("holidays", HOLIDAYS_NOT_INSTALLED)  # only the sets offered
        values["assignment_email"] = bool(form.get("assignment_email"))
        if not problems:
            saved = i18n.Preferences.from_dict(values)
            users.save_preferences(site, user.id, saved.to_dict())
            # kept by the notifications application (its table), not in the kernel's prefs
            assignment.set_email(site, user.id, values["assignment_email"])
            flash(request, N_("Preferences saved."), "info")
            return RedirectResponse("/preferences", 303)
        tr = translator(request)
        errors, status = {k: tr.gettext(m) for k, m in problems.items()}, 400
    language = user.preferences.language
    return render(request, "preferences.html", status=status, values=values, errors=errors,
                  languages=_choices(values["language"],
                                     i18n.available_languages(request.app.state.site.locale_dirs)),
                  timezones=i18n.AVAILABLE_TIMEZONES, **_theme_choices(request),
                  holiday_sets=holiday_sets, weekdays=list(enumerate(WEEKDAYS)),
                  date_formats=_choices(values["date_format"], date_format_choices(language)),
                  time_formats=_choices(values["time_format"], time_format_choices(language)))


routes = [
    Route("/login", login, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/logout/everywhere", logout_everywhere, methods=["POST"]),
    Route("/password/change", password_change, methods=["GET", "POST"]),
    Route("/password/forgot", password_forgot, methods=["GET", "POST"]),
    Route("/password/reset/{token}", password_reset, methods=["GET", "POST"]),
    Route("/preferences", preferences, methods=["GET", "POST"]),
]
