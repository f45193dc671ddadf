"""Admin → Email settings (``/admin/email``): the site's email settings (settings.py —
linking received mail to contacts and accounts, ignored domains, fetch and send batches,
raw messages kept, sent email tracking, auto-Bcc; implementation guide §7.4.1) and the
group email folders (§7.4.4: the standard ones and those administrators add, folders.py).

Administrators only (403 for anyone else, on every route). A post is checked whole by
``settings.clean``: a refused value is shown beside its field and nothing is saved; a good
one is stored as the site setting ``email`` and said in a flash. Adding a group folder is a
form of its own (``/admin/email/folders``): an empty or taken name is refused, beside it.
"""
from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.kernel.errors import N_, Message
from core.web.pages import page
from core.web.templating import flash
from plugins.emails import folders
from plugins.emails import settings as email

URL = "/admin/email"
FOLDERS_URL = "/admin/email/folders"
log = logging.getLogger(__name__)


def _admin(request: Request):
    if not request.state.user.is_admin:
        raise HTTPException(403, Message(N_("Only administrators can change the email "
                                            "settings.")))
    return request.state.user


def _render(request: Request, *, values: dict, errors: dict, folder_name: str = "",
            folder_errors: dict | None = None):
    site = request.app.state.site
    gettext = request.state.fmt.gettext
    group = [(f.label(gettext), f.kind) for f in folders.visible(site, request.state.user)
             if f.is_group]
    folder_errors = folder_errors or {}
    response = request.app.state.templates.render(
        request, "admin_email_settings.html", status=422 if errors or folder_errors else 200,
        values=values, errors=errors, group_folders=group, folder_name=folder_name,
        folder_errors=folder_errors)
    response.headers["Cache-Control"] = "no-store"
    return response


def _shown(values: dict) -> dict:
    """The stored settings as the form shows them (the domains one a line)."""
    return {**values, "ignore_domains": "\n".join(values["ignore_domains"])}


@page()
def settings_page(request: Request, form):
    user = _admin(request)
    site = request.app.state.site
    if form is None:
        return _render(request, values=_shown(email.email_settings(site).to_json()), errors={})
    values, errors = email.clean(form)
    if errors:  # the form as posted, for the admin to correct
        posted = {name: str(form.get(name) or "") for name in values}
        posted.update({name: bool(form.get(name)) for name in ("link_account", "keep_raw",
                                                                "tracking")})
        return _render(request, values=posted, errors=errors)
    site.set_setting(email.SETTING, values)
    log.info("email settings changed by %r", user.username)
    flash(request, N_("The email settings were saved."), "info")
    return RedirectResponse(URL, 303)


@page()
def add_folder(request: Request, form):
    user = _admin(request)
    site = request.app.state.site
    if form is None:
        return RedirectResponse(URL, 303)
    name = " ".join(str(form.get("folder_name") or "").split())
    problem = None
    if not name:
        problem = Message(N_("A folder needs a name."))
    elif len(name) > 100:
        problem = Message(N_("At most 100 characters, on one line."))
    else:
        try:
            folders.create(site, user, name, group=True)
        except ValueError:  # taken (an empty name was caught above)
            problem = Message(N_("There is already a group folder called %(name)s."),
                              name=name)
    if problem is not None:
        return _render(request, values=_shown(email.email_settings(site).to_json()), errors={},
                       folder_name=name, folder_errors={"folder_name": problem})
    log.info("group email folder %r added by %r", name, user.username)
    flash(request, Message(N_("The group folder %(name)s was added."), name=name), "info")
    return RedirectResponse(URL, 303)


routes = [Route(URL, settings_page, methods=["GET", "POST"]),
          Route(FOLDERS_URL, add_folder, methods=["GET", "POST"])]
