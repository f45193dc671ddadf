"""The ``page`` decorator every web handler goes through.

Handlers are plain (synchronous) functions ``handler(request, form)`` run in the thread
pool, because the database layer is synchronous. The decorator does, for every route:
read the form (verifying its CSRF token on any state-changing method), find the signed-in
user, and enforce login, the forced first-login password change and the IP check. A
handler cannot forget any of these. It also makes the user's language the one metadata
labels (modules, fields, dropdown options, sections) are shown in while the handler runs.
"""
from __future__ import annotations

import functools
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse

from core.kernel import i18n
from core.kernel.identity import (  # noqa: F401  (the names pages have always offered)
    WebUser,
    catch_up,
    client_ip,
    load_user,
    load_user_by_id,
    user_query,
    web_user,
)
from core.web.security import checked_form
from core.web.templating import formatter

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def page(*, public: bool = False, allow_password_change: bool = False):
    """Wrap a sync handler ``fn(request, form)`` into a Starlette endpoint."""

    def decorate(fn):
        @functools.wraps(fn)
        async def endpoint(request: Request):
            form = None if request.method in SAFE_METHODS else await checked_form(request)
            return await run_in_threadpool(_run, fn, request, form, public, allow_password_change)

        return endpoint

    return decorate


def _run(fn, request: Request, form, public: bool, allow_password_change: bool):
    user = load_user(request)
    request.state.user = user
    if not public:
        if user is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        if user.must_change_password and not allow_password_change:
            return RedirectResponse("/password/change", status_code=303)
    if user is None:  # signed-out pages choose their language themselves (templating)
        return fn(request, form)
    request.state.fmt = formatter(user.preferences, request.app.state.site.locale_dirs)
    # Labels a handler reads (module.label, choices...) follow; the worker thread runs in
    # a copy of the request's context, and the token puts it back all the same.
    token = i18n.activate(request.state.fmt.translations)
    try:
        return fn(request, form)
    finally:
        i18n.deactivate(token)
