"""Upgrades & Customization: the administrator's page over the pack loader (``core.apps.packs.packs``).

Administrators only (everyone else gets 403, before anything is looked up). The flow:

    /admin/packs                      installed packs, queued uploads, the upload form
    POST /admin/packs/upload          queue a zip -> /admin/packs/upload/{id}
    /admin/packs/upload/{id}          the dry run: each check, what would change, conflicts
    POST .../upload/{id}/install      install; the result lists every step (or the failing one)
    /admin/packs/{name}/remove        disable / uninstall / purge, each with its dry run
    /admin/packs/{name}/enable        turn a disabled pack back on
    /admin/packs/history              everything that happened, newest first

The loader does the work and keeps the site unchanged when it refuses or fails; this module
only shows what it reports. The loader's own lines (step details, changes, problems) are
English text from the loader; the words around them are translated here.
"""
from __future__ import annotations

import datetime as dt
import re

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse
from starlette.routing import Route

from core.apps.admin import access_admin
from core.apps.packs.pack_archive import MAX_ARCHIVE_BYTES, PackError, upload_name
from core.apps.packs.packs import CHECK_STEPS, REMOVAL_MODES, STEPS
from core.kernel.errors import N_, Message
from core.web.pages import page
from core.web.templating import flash

NO_STORE = {"Cache-Control": "no-store"}
# The loader refuses archives above MAX_ARCHIVE_BYTES; the request may carry a little more
# (the multipart envelope and the CSRF field), never an unbounded body.
MAX_UPLOAD_REQUEST = MAX_ARCHIVE_BYTES + 2**20
HISTORY_LIMIT = 500
PACK_NAME = re.compile(r"^[a-z][a-z0-9_]{1,59}$")
EXPORT_NAME = re.compile(r"^[a-z][a-z0-9_]{1,59}-[A-Za-z0-9.+!_-]+\.zip$")

FORBIDDEN = N_("You are not allowed to open this page.")
TOO_LARGE = N_("The upload is larger than %(size)s MB; packs may be at most %(size)s MB.")

STEP_LABELS = {"unpack": N_("Unpack"), "validate": N_("Validate"),
               "compatibility": N_("Compatibility"), "permission": N_("Permission"),
               "files": N_("Files"), "registry": N_("Registry"), "schema": N_("Database schema"),
               "hook": N_("Pack hook"), "history": N_("History"), "cleanup": N_("Cleanup")}
assert set(STEP_LABELS) == set(STEPS)
KIND_LABELS = {"module": N_("Module"), "language": N_("Language"), "theme": N_("Theme"),
               "holiday": N_("Holidays"), "personality": N_("Personality"),
               "upgrade": N_("Upgrade")}
STATUS_LABELS = {"enabled": N_("Enabled"), "disabled": N_("Disabled"),
                 "uninstalled": N_("Uninstalled (data kept)")}
MODE_LABELS = {"disable": N_("Disable"), "uninstall": N_("Uninstall"), "purge": N_("Purge")}
MODE_HINTS = {
    "disable": N_("Turn the pack off: what it adds disappears from the site, but its files, "
                  "tables and data are kept. Enable brings it back as it was."),
    "uninstall": N_("Remove the pack's files and what it adds. Its tables and data are kept; "
                    "installing the pack again brings them back."),
    "purge": N_("Remove the pack and delete its data: its tables and columns are exported to "
                "a zip file, then dropped. This cannot be undone."),
}
assert set(MODE_LABELS) == set(MODE_HINTS) == set(REMOVAL_MODES)
DONE = {"disable": N_("Pack %(name)s was disabled."),
        "uninstall": N_("Pack %(name)s was uninstalled."),
        "purge": N_("Pack %(name)s was purged.")}
ACTION_LABELS = {"upload": N_("Upload"), "install": N_("Install"), "upgrade": N_("Upgrade"),
                 "enable": N_("Enable"), **MODE_LABELS}
OUTCOME_LABELS = {"ok": N_("Done"), "refused": N_("Refused"), "failed": N_("Failed"),
                  "interrupted": N_("Interrupted")}  # the process stopped mid-way (killed)
LABELS = {"steps": STEP_LABELS, "kinds": KIND_LABELS, "statuses": STATUS_LABELS,
          "modes": MODE_LABELS, "mode_hints": MODE_HINTS, "actions": ACTION_LABELS,
          "outcomes": OUTCOME_LABELS}


# -- helpers ------------------------------------------------------------------------------

def _admin_only(request: Request):
    user = request.state.user
    if not user.is_admin:
        raise HTTPException(403, Message(FORBIDDEN))
    return user


def _packs(request: Request):
    return request.app.state.site.packs


def _render(request: Request, name: str, status: int = 200, **context):
    response = request.app.state.templates.render(request, name, status=status, labels=LABELS,
                                                  **context)
    response.headers.update(NO_STORE)
    return response


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _site_changed(request: Request) -> None:
    """The loader has reloaded the site; pages built from the old one (templates of a theme
    or module pack, the site's theme) must be built afresh on the next request."""
    templates = request.app.state.templates
    if hasattr(templates, "clear"):
        templates.clear()


def _installed_pack(request: Request):
    """The pack named in the URL (any status), or 404."""
    name = request.path_params["name"]
    pack = _packs(request).get(name) if PACK_NAME.match(name) else None
    if pack is None:
        raise HTTPException(404, Message(N_("No pack called %(name)s is installed."), name=name))
    return pack


def _upload(request: Request) -> tuple[dict, bytes]:
    """The queued upload named in the URL (its description and its bytes), or 404."""
    upload_id = request.path_params["id"]
    found = next((u for u in _packs(request).uploads() if u["id"] == upload_id), None)
    try:
        data = _packs(request).upload_data(upload_id) if found else None
    except PackError:  # discarded or installed meanwhile
        data = None
    if data is None:
        raise HTTPException(404, Message(N_("No such upload: it was installed or discarded "
                                            "already.")))
    return found, data


def _steps(report, names) -> list[dict]:
    """Every step of ``names`` with its outcome: passed, failed, or not run (after a failure)."""
    done = {step.name: step for step in report.steps} if report else {}
    return [{"name": name, "state": ("passed" if done[name].ok else "failed") if name in done
             else "skipped", "detail": done[name].detail if name in done else ""}
            for name in names]


def _modules_of(request: Request, name: str) -> list:
    """The modules a pack brought that the site now shows: links on the result page."""
    modules = request.app.state.site.registry.modules
    return [modules[n] for kind, n, _ in _packs(request).objects(name)
            if kind == "module" and n in modules]


def _usernames(request: Request) -> dict[str, str]:
    return {u["id"]: u["username"] for u in access_admin.user_choices(request.app.state.site)}


def _when(upload: dict) -> dict:
    """An upload's description with its time as a datetime (it is kept as ISO text)."""
    try:
        at = dt.datetime.fromisoformat(upload.get("at") or "")
    except ValueError:
        at = None
    return {**upload, "at": at}


def _list_page(request: Request, status: int = 200, problems=None, message=None):
    packs = _packs(request)
    return _render(request, "admin_packs.html", status=status, installed=packs.installed(True),
                   uploads=[_when(u) for u in packs.uploads()], usernames=_usernames(request),
                   problems=problems or [], message=message,
                   max_mb=MAX_ARCHIVE_BYTES // 2**20)


# -- the list and uploads -----------------------------------------------------------------

@page()
def pack_list(request: Request, form):
    _admin_only(request)
    return _list_page(request)


def _limited(endpoint):
    """Refuse a request body above MAX_UPLOAD_REQUEST bytes, whether it says its length or
    streams in chunks, before the form is parsed: the multipart parser would otherwise
    spool any size to disk."""

    async def limited(request: Request):
        most = MAX_UPLOAD_REQUEST
        too_large = HTTPException(413, Message(TOO_LARGE, size=MAX_ARCHIVE_BYTES // 2**20))
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > most:
            raise too_large
        received = 0

        async def receive():
            nonlocal received
            message = await request.receive()
            received += len(message.get("body", b""))
            if received > most:
                raise too_large
            return message

        return await endpoint(Request(request.scope, receive))

    return limited


@page()
def upload(request: Request, form):
    user = _admin_only(request)
    sent = form.get("pack")
    if not isinstance(sent, UploadFile) or not sent.filename:
        return _list_page(request, status=400, message=Message(N_("Choose a pack file (.zip) "
                                                                  "to upload.")))
    data = sent.file.read(MAX_ARCHIVE_BYTES + 1)  # one byte more: the loader says "too large"
    try:
        upload_id = _packs(request).upload(data, sent.filename, user)
    except PackError as exc:  # a hostile name, not a zip, unsafe, bad manifest: in history
        return _list_page(request, status=400, problems=exc.problems, message=Message(
            N_("%(file)s was refused; nothing was changed."),
            file=upload_name(sent.filename)[0]))
    return _redirect(f"/admin/packs/upload/{upload_id}")


@page()
def upload_check(request: Request, form):
    user = _admin_only(request)
    described, data = _upload(request)
    report = _packs(request).check(data, user, described["filename"])
    current = _packs(request).get(report.manifest.name) if report.manifest else None
    return _render(request, "admin_packs_check.html", upload=_when(described), report=report,
                   steps=_steps(report, CHECK_STEPS), current=current)


@page()
def upload_install(request: Request, form):
    user = _admin_only(request)
    described, data = _upload(request)
    overwrite = str(form.get("overwrite_newer", "")) in ("1", "on", "true")
    try:
        report = _packs(request).install(data, user, described["filename"],
                                         overwrite_newer=overwrite)
    except PackError as exc:  # refused or failed: the loader put the site back as it was
        report = getattr(exc, "report", None)
        return _render(request, "admin_packs_result.html", status=400, action="install",
                       ok=False, upload=described, report=report, failed_step=exc.step,
                       problems=exc.problems, steps=_steps(report, STEPS))
    _packs(request).discard_upload(described["id"])
    _site_changed(request)
    return _render(request, "admin_packs_result.html", action="install", ok=True,
                   upload=described, report=report, problems=[], steps=_steps(report, STEPS),
                   modules=_modules_of(request, report.manifest.name))


@page()
def upload_discard(request: Request, form):
    _admin_only(request)
    described, _ = _upload(request)
    _packs(request).discard_upload(described["id"])
    flash(request, Message(N_("The upload %(file)s was discarded."), file=described["filename"]))
    return _redirect("/admin/packs")


# -- removing and enabling ----------------------------------------------------------------

def _remove_page(request: Request, pack, status: int = 200, errors=None):
    packs = _packs(request)
    plans = [(mode, packs.plan_removal(pack.name, mode)) for mode in REMOVAL_MODES]
    return _render(request, "admin_packs_remove.html", status=status, pack=pack, plans=plans,
                   errors=errors or {})


@page()
def remove(request: Request, form):
    user = _admin_only(request)
    pack = _installed_pack(request)
    if form is None:
        return _remove_page(request, pack)
    mode = str(form.get("mode", ""))
    if mode not in REMOVAL_MODES:  # destructive choices are never assumed
        return _remove_page(request, pack, status=400, errors={"mode": Message(
            N_("Choose what to do: disable, uninstall or purge."))})
    try:
        report = _packs(request).remove(pack.name, mode, user)
    except PackError as exc:  # refused (e.g. required by another pack) or failed: unchanged
        return _remove_page(request, pack, status=400, errors={"problems": exc.problems})
    _site_changed(request)
    export = report.export.name if report.export else None
    return _render(request, "admin_packs_result.html", action=mode, ok=True, pack=pack,
                   report=report, problems=[], export=export,
                   done=Message(DONE[mode], name=pack.name))


@page()
def enable(request: Request, form):
    user = _admin_only(request)
    pack = _installed_pack(request)
    if form is None:
        return _render(request, "admin_packs_enable.html", pack=pack, problems=[])
    try:
        _packs(request).enable(pack.name, user)
    except PackError as exc:
        return _render(request, "admin_packs_enable.html", status=400, pack=pack,
                       problems=exc.problems)
    _site_changed(request)
    flash(request, Message(N_("Pack %(name)s was enabled."), name=pack.name))
    return _redirect("/admin/packs")


@page()
def export_download(request: Request, form):
    """A purge's data export (CSV files in a zip), kept in the pack store."""
    _admin_only(request)
    name = request.path_params["file"]
    path = _packs(request).store / ".exports" / name
    if not EXPORT_NAME.match(name) or not path.is_file():
        raise HTTPException(404, Message(N_("No such export.")))
    return FileResponse(path, media_type="application/zip", filename=name, headers=NO_STORE)


# -- history ------------------------------------------------------------------------------

@page()
def history(request: Request, form):
    _admin_only(request)
    return _render(request, "admin_packs_history.html",
                   rows=_packs(request).history(HISTORY_LIMIT), limit=HISTORY_LIMIT)


# ``{name}/remove`` and ``{name}/enable`` come before ``upload/{id}``: upload ids are hex,
# never "remove" or "enable", so a pack called "upload" can still be removed.
routes = [
    Route("/admin/packs", pack_list),
    Route("/admin/packs/history", history),
    Route("/admin/packs/upload", _limited(upload), methods=["POST"]),
    Route("/admin/packs/{name}/remove", remove, methods=["GET", "POST"]),
    Route("/admin/packs/{name}/enable", enable, methods=["GET", "POST"]),
    Route("/admin/packs/upload/{id}", upload_check),
    Route("/admin/packs/upload/{id}/install", upload_install, methods=["POST"]),
    Route("/admin/packs/upload/{id}/discard", upload_discard, methods=["POST"]),
    Route("/admin/packs/exports/{file}", export_download),
]
