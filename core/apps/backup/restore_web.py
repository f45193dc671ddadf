"""Administration → Backups → Restore (``/admin/backups/restore``): restoring a backup from
the browser, guarded as 1CRM's restore.php is (implementation guide §7.2.2, "Restoring a
Backup") — by a **proof of access to the server**.

Being signed in as an administrator is not enough to replace the whole site (a stolen
session would be): the page shows a key made for this session, and goes on only once the
file ``restore_key.txt`` in the site folder holds it — which only someone who can write on
the server can do. The file is removed when a restore is done (a proof serves once).

Then, administrators only and CSRF-checked:

1. **Choose** a backup of the local folder, one fetched from the remote copy (*Fetch* downloads
   it into the local folder first), or an uploaded archive (saved into the local folder);
   an encrypted one needs its age private key pasted — used for this request only, never
   stored or logged.
2. **Check** it: ``restore.inspect`` — every checksum, the CRBM version, the plugins it
   needs — and show what it holds (when made, by which version, its tables and rows).
   Nothing changes.
3. **Restore** with the confirmation ticked: ``restore.restore(..., replace=True)``, the
   same all-or-nothing restore as ``crbm restore`` (the current site kept aside). This
   process and every other one then answer "restart CRBM" (``core.site_restart``) until
   they are restarted on the restored site.

A large site restores faster and without a proxy's time limit on the server:
``crbm restore FILE --replace`` (the page says so).
"""
from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
import shutil
from pathlib import Path

from starlette.requests import Request
from starlette.routing import Route

from core.apps.admin.web import _admin_only, _render
from core.apps.backup import backup as backups
from core.apps.backup import remote as remotes
from core.apps.backup import restore as restores
from core.apps.backup import scheduled
from core.apps.backup.archive import ArchiveError
from core.apps.backup.web import SCOPES
from core.kernel.errors import N_, CrbmError, Message
from core.web.pages import page

log = logging.getLogger(__name__)

URL = "/admin/backups/restore"
PROOF = "restore_key.txt"
SESSION_KEY = "restore_key"


def _proof_key(request: Request) -> str:
    key = request.session.get(SESSION_KEY)
    if not key:
        key = request.session[SESSION_KEY] = secrets.token_hex(16)
    return key


def proven(request: Request) -> bool:
    """Whether the site folder's restore_key.txt holds this session's key."""
    path = request.app.state.site.folder / PROOF
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 1024:
            return False
        written = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return False
    return hmac.compare_digest(written.encode(), _proof_key(request).encode())


def _local(site) -> list[Path]:
    folder = scheduled.settings_of(site).folder
    return backups.backups_in(folder) if folder.is_dir() else []


def _remote_names(site) -> tuple[list[str], Message | None]:
    settings = scheduled.settings_of(site)
    if not settings.remote:
        return [], None
    try:
        return remotes.listing(scheduled.remote_of(site, settings)), None
    except remotes.RemoteError as exc:
        return [], Message(N_("The remote could not be reached: %(reason)s"), reason=str(exc))


def _page(request: Request, status: int = 200, **context):
    site = request.app.state.site
    if not proven(request):
        return _render(request, "admin_restore.html", status=status, proven=False,
                       key=_proof_key(request), proof_path=str(site.folder / PROOF), **context)
    remote, remote_error = _remote_names(site) if context.pop("list_remote", False) \
        else ([], None)
    return _render(request, "admin_restore.html", status=status, proven=True,
                   local=[p.name for p in _local(site)], remote=remote,
                   remote_error=remote_error, **context)


def _when(manifest: dict) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(manifest.get("created_at")))
    except ValueError:
        return None


def _chosen(site, name: str) -> Path | None:
    return next((p for p in _local(site) if p.name == name), None)


def _save_upload(site, upload) -> Path:
    """An uploaded archive, saved into the local backup folder under its own name."""
    name = Path(upload.filename or "").name
    if not remotes.is_backup_name(name):
        raise CrbmError(Message(N_("%(file)s is not the name of a CRBM backup "
                                   "(crbm-backup-….zip or .zip.age)."), file=name or "?"))
    folder = scheduled.settings_of(site).folder
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    partial = target.with_name(name + ".upload")
    with partial.open("wb") as out:
        shutil.copyfileobj(upload.file, out, 2**20)
    partial.replace(target)
    return target


@page()
def restore_page(request: Request, form):
    user = _admin_only(request)
    site = request.app.state.site
    if form is None:
        return _page(request, list_remote=request.query_params.get("remote") == "1")
    if not proven(request):
        return _page(request, status=403, error=Message(N_(
            "Prove access to the server first: the key file is missing or does not match.")))
    action = form.get("action")
    identity = str(form.get("identity") or "").strip() or None
    try:
        if action == "fetch":
            name = str(form.get("remote_name") or "")
            settings = scheduled.settings_of(site)
            settings.folder.mkdir(parents=True, exist_ok=True)
            remotes.download(scheduled.remote_of(site, settings), name, settings.folder / name)
            log.info("backup %s fetched from the remote by %r", name, user.username)
            return _page(request, chosen=name, notice=Message(
                N_("%(file)s was fetched from the remote copy."), file=name))
        upload = form.get("upload")
        if getattr(upload, "filename", None):
            archive = _save_upload(site, upload)
        else:
            archive = _chosen(site, str(form.get("name") or ""))
        if archive is None:
            return _page(request, status=422, error=Message(N_("Choose a backup.")))
        extra = [c.load() for c in site.plugin_candidates if c.source == "extra"]
        manifest = restores.inspect(archive, identity=identity, extra_plugins=extra)
        shown = {"chosen": archive.name, "manifest": manifest, "made": _when(manifest),
                 "scopes": SCOPES}
        if action != "restore":
            return _page(request, **shown)
        if form.get("confirm") != "yes":
            return _page(request, status=422, **shown, error=Message(
                N_("Tick the confirmation to replace this site.")))
        log.warning("restore of %s started from the web by %r", archive.name, user.username)
        done = restores.restore(archive, site.folder, replace=True, identity=identity,
                                extra_plugins=extra)
    except (CrbmError, ArchiveError) as exc:
        return _page(request, status=422, error=Message(
            N_("%(reason)s. Nothing was changed."), reason=str(exc).rstrip(".")))
    (site.folder / PROOF).unlink(missing_ok=True)  # a proof serves once
    request.session.pop(SESSION_KEY, None)
    log.warning("restore of %s done by %r: %d tables, %d rows", archive.name, user.username,
                done.tables, done.rows)
    return _render(request, "admin_restore.html", proven=True, done=done,
                   archive_name=archive.name, restored_at=dt.datetime.now(dt.UTC))


routes = [Route(URL, restore_page, methods=["GET", "POST"])]
