"""Administration → Backups (``/admin/backups``), 1CRM's Backup Management (guide §7.2.2).

Administrators only (403 before anything is read). The page:

- **Settings** (the site setting ``backup``, ``scheduled.settings_of``): the local folder,
  what a backup holds besides the database, how many to keep, an age public key to encrypt
  to, and a remote copy — SFTP (host, port, user, directory, the server's host key, a
  private key) or S3-compatible storage (endpoint, bucket, prefix, keys) — with how many
  to keep there. Secrets are stored sealed and never shown: a blank field keeps the stored
  one. A refused form comes back with the errors at their fields (422), nothing saved.
  *Test the remote* lists what is there with the values in the form, without saving.
- **Back up now** queues the Scheduler's "Back up the site" task (its result shows on the
  Scheduler page, where it is scheduled too).
- **The local backups**, newest first, each one a download (administrators only: an
  archive holds the whole database). Above them, a warning names the leftovers of
  backups that were interrupted (killed, or the server stopped, mid-way: a ``.partial``
  no running backup holds, ``backup.partials``) with their time, and says the next backup
  removes them; a backup being written now is shown as such, not as interrupted.
Restoring: *Restore a backup…* (``restore_web``: behind a proof of access to the server),
or ``crbm restore`` on the server.
"""
from __future__ import annotations

import datetime as dt
import logging
import re

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse
from starlette.routing import Route

from core.apps.admin.web import _admin_only, _render
from core.apps.backup import backup as backups
from core.apps.backup import scheduled
from core.kernel.errors import N_, CrbmError, Message
from core.web.pages import page
from core.web.templating import flash

log = logging.getLogger(__name__)

URL = "/admin/backups"
SCOPES = {"none": N_("The database only (and the site's keys)"),
          "config": N_("The database, packs and settings files"),
          "all": N_("Everything: also uploaded files and attachments")}
KINDS = {"": N_("No remote copy"), "sftp": N_("SFTP (SSH)"), "s3": N_("S3-compatible storage")}
REMOTE_FIELDS = {"sftp": ("host", "port", "username", "directory", "host_key", "private_key"),
                 "s3": ("endpoint_url", "bucket", "prefix", "region", "access_key",
                        "secret_key")}
NAME = re.compile(r"^crbm-backup-[0-9-]+\.zip(\.age)?$")


def _values(settings: scheduled.BackupSettings) -> dict:
    remote = settings.remote or {}
    values = {"folder": str(settings.folder), "files": settings.files,
              "keep": str(settings.keep), "recipient": settings.recipient or "",
              "kind": remote.get("kind", ""), "keep_remote": str(settings.keep_remote)}
    for names in REMOTE_FIELDS.values():
        for name in names:
            if name not in scheduled.SECRETS:
                values[name] = str(remote.get(name) or "")
    return values


def _read(form, stored: scheduled.BackupSettings) -> tuple[dict, dict, dict]:
    """(the form's values, the setting they make, errors {field: message})."""
    values = {k: str(form.get(k) or "").strip() for k in
              ("folder", "files", "keep", "recipient", "kind", "keep_remote",
               *(n for names in REMOTE_FIELDS.values() for n in names))}
    errors: dict = {}
    if values["files"] not in SCOPES:
        errors["files"] = N_("Choose one of the options.")
    for name in ("keep", "keep_remote"):
        if not values[name].isdigit() or not 1 <= int(values[name]) <= 1000:
            errors[name] = N_("A number from 1 to 1000.")
    if values["recipient"]:
        try:
            backups.check_recipient(values["recipient"])
        except CrbmError:
            errors["recipient"] = N_("An age public key, which starts with age1.")
    setting = {"folder": values["folder"] or None, "files": values["files"],
               "keep": values["keep"], "recipient": values["recipient"] or None,
               "keep_remote": values["keep_remote"], "remote": None}
    if values["kind"] not in KINDS:
        errors["kind"] = N_("Choose one of the options.")
    elif values["kind"]:
        kept = stored.remote or {}
        remote = {"kind": values["kind"]}
        for name in REMOTE_FIELDS[values["kind"]]:
            given = values[name]
            if name in scheduled.SECRETS and not given and kept.get("kind") == values["kind"]:
                given = kept.get(name) or ""  # blank: the stored secret stays
            remote[name] = given
        setting["remote"] = remote
    return values, setting, errors


def _check_remote(site, setting: dict, errors: dict) -> object | None:
    """The remote the setting describes, or None with the reason in ``errors``."""
    if not setting["remote"] or errors:
        return None
    from core.apps.backup import remote as remotes
    try:
        return scheduled.remote_of(site, scheduled.BackupSettings(
            folder=None, remote=scheduled.seal_secrets(site, setting["remote"])))
    except remotes.RemoteError as exc:
        errors["remote"] = Message(N_("The remote copy's settings: %(reason)s"),
                                   reason=str(exc))
        return None


def _page(request: Request, values: dict, status: int = 200, errors: dict | None = None,
          tested: tuple[bool, Message] | None = None):
    site = request.app.state.site
    settings = scheduled.settings_of(site)
    stored = settings.remote or {}
    made, interrupted, running = [], [], []
    if settings.folder.is_dir():
        made = _described(backups.backups_in(settings.folder))
        killed, writing = backups.partials(settings.folder)
        interrupted, running = _described(killed), _described(writing)
    return _render(request, "admin_backups.html", status=status, values=values,
                   errors=errors or {}, tested=tested, scopes=SCOPES, kinds=KINDS,
                   stored_secrets={n for n in scheduled.SECRETS if stored.get(n)},
                   made=made, interrupted=interrupted, running=running)


def _described(paths) -> list[tuple[str, int, dt.datetime]]:
    """(name, size, last written) of each file still there."""
    found = []
    for path in paths:
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed meanwhile (a backup finished or cleaned it)
            continue
        found.append((path.name, stat.st_size, dt.datetime.fromtimestamp(stat.st_mtime,
                                                                            dt.UTC)))
    return found


@page()
def backups_page(request: Request, form):
    user = _admin_only(request)
    site = request.app.state.site
    stored = scheduled.settings_of(site)
    if form is None:
        return _page(request, _values(stored))
    if form.get("action") == "now":
        from core.jobs import scheduler
        scheduler.run_now(site, scheduled.TASK)
        log.info("backup started by %r", user.username)
        flash(request, N_("A backup was started. Its result shows on the Scheduler page."),
              "info")
        return RedirectResponse(URL, 303)
    values, setting, errors = _read(form, stored)
    target = _check_remote(site, setting, errors)
    if errors:
        return _page(request, values, status=422, errors=errors)
    if form.get("action") == "test":
        return _page(request, values, tested=_test(target))
    if setting["remote"]:
        setting["remote"] = scheduled.seal_secrets(site, setting["remote"])
    site.set_setting(scheduled.SETTING, setting)
    log.info("backup settings changed by %r (remote: %s)", user.username,
             (setting["remote"] or {}).get("kind") or "none")
    flash(request, N_("The backup settings were saved."), "info")
    return RedirectResponse(URL, 303)


def _test(target) -> tuple[bool, Message]:
    if target is None:
        return False, Message(N_("No remote copy is set."))
    from core.apps.backup import remote as remotes
    try:
        found = remotes.listing(target)
    except remotes.RemoteError as exc:
        return False, Message(N_("The remote could not be reached: %(reason)s"),
                              reason=str(exc))
    return True, Message(N_("The remote answered. Backups there: %(num)d."), num=len(found))


@page()
def download(request: Request, form):
    _admin_only(request)
    name = request.path_params["name"]
    folder = scheduled.settings_of(request.app.state.site).folder
    path = folder / name
    if not NAME.match(name) or not path.is_file():
        raise HTTPException(404, Message(N_("No such backup.")))
    log.info("backup %s downloaded by %r", name, request.state.user.username)
    return FileResponse(path, filename=name, media_type="application/octet-stream",
                        headers={"Cache-Control": "no-store"})


routes = [Route(URL, backups_page, methods=["GET", "POST"]),
          Route(URL + "/{name}", download, methods=["GET"])]
