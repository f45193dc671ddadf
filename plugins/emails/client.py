"""The mail client in the browser (issue 21 point 5), at ``/email``.

Pages (all through ``core.web.pages.page``: signed in, CSRF-checked posts):

- ``GET /email?folder=<id>&q=&page=`` — the reader's folders (``folders.visible``, with
  their unread counts in one statement), and a folder's emails newest first: read through
  ``site.records`` with a ``folder_id`` filter, so access is the record service's SQL; a
  folder id that is not the reader's own nor a group folder is a 404 (``folders.find``).
- ``GET /email/{id}`` — the same page with the message open: opening marks it read. Its HTML
  (already nh3-clean, ``body_html``) is shown in a sandboxed ``<iframe srcdoc>`` (no
  scripts, a CSP of its own), remote images rewritten away server-side until the reader
  asks (``?images=1``); ``cid:`` images point at the email's own attachments.
- ``POST /email/mass`` — ticked emails: move to another visible folder (personal ⇄ group,
  §7.4.3), mark read/unread, delete (to the reader's Trash; from the Trash for good).
- ``POST /email/folders`` — a folder of one's own; ``POST /email/trash-rule`` — how many
  days the reader's Trash keeps emails (``trash.py``: their rule and the scheduled task).
- ``GET/POST /email/compose`` — new, reply (``?reply=``: quotes, In-Reply-To/References),
  forward (``?forward=``: the attachments come along), a draft (``?draft=``), or "Email"
  from a record (``?module=&record=``: its address in To, the email Related to it).
  Addresses are checked with ``parse_addresses``; Save draft → Drafts, Send → status
  "queued" (the outbound queue sends it and files it in Sent), Send later → ``send_at``.
  Files (drag-and-drop or picked) are stored with ``attachments.add`` in the email's
  transaction; nothing is half-stored.
- ``GET /email/template/{id}?module=&record=`` (glue_email_templates.py, while the
  email_templates plugin is active) — a template rendered for the record the message is
  about (JSON: subject and HTML), for the compose page's "Insert template".
"""
from __future__ import annotations

import datetime as dt
import html as htmllib
import json
import re
from email.utils import parseaddr

import nh3
import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.apps.documents.mail import MailError, parse_addresses
from core.kernel import i18n
from core.kernel.errors import N_, CrbmError, Message, NotFoundError, ValidationError
from core.kernel.records import Query
from core.web import paging
from core.web.pages import page
from core.web.templating import flash
from plugins.emails import attachments, folders, outbound, trash
from plugins.emails import compose as compose_extras

MODULE = "emails"
PAGE_SIZE = 50
LIST_FIELDS = ["id", "name", "from_address", "to_addresses", "date_sent", "is_read", "status",
               "direction", "send_at", "folder_id"]
MASS_ACTIONS = ("move", "read", "unread", "delete")
SEND_ACTIONS = ("draft", "send", "later")
_REMOTE_IMG = re.compile(r"""(<img\b[^>]*?\ssrc=)(["'])\s*(?:https?:)?//[^"']*\2""", re.IGNORECASE)
_CID_IMG = re.compile(r"""(<img\b[^>]*?\ssrc=)(["'])\s*cid:([^"']*)\2""", re.IGNORECASE)


def indexes(metadata) -> None:
    """A folder's page, newest first, is read from (folder, date sent, id) alone, and its
    unread count from (folder, read): however many emails the folder holds."""
    table = metadata.tables.get(MODULE)
    if table is None or not {"folder_id", "date_sent", "is_read"} <= set(table.c.keys()):
        return
    sa.Index("ix_emails_folder_date", table.c.folder_id, table.c.date_sent, table.c.id)
    sa.Index("ix_emails_folder_unread", table.c.folder_id, table.c.is_read, table.c.deleted)


def _site_user(request):
    return request.app.state.site, request.state.user


def _render(request, name: str, status: int = 200, csp: str | None = None, **context):
    response = request.app.state.templates.render(request, name, status=status, **context)
    if csp:  # the page's own policy (SecurityHeadersMiddleware keeps a page's own)
        response.headers["Content-Security-Policy"] = csp
    return response


# -- the folders and the list ----------------------------------------------------------------

UNREAD_CAP = 999  # "999+": a count past it is not worth reading a big folder's index for


def unread_counts(site, folder_ids: list[str]) -> dict[str, int]:
    """folder id -> unread emails in it (at most UNREAD_CAP + 1), for all the reader's
    folders in one statement: each folder's unread rows capped, then counted."""
    if not folder_ids:
        return {}
    table = site.records.table(site.registry.module(MODULE))
    unread = sa.or_(table.c.is_read.is_(False), table.c.is_read.is_(None))
    capped = [sa.select(table.c.folder_id).where(
        table.c.folder_id == folder_id, table.c.deleted.is_(False), unread)
        .limit(UNREAD_CAP + 1).subquery() for folder_id in folder_ids]
    rows = sa.union_all(*(sa.select(sub.c.folder_id) for sub in capped)).subquery()
    with site.engine.connect() as conn:
        found = conn.execute(sa.select(rows.c.folder_id, sa.func.count())
                             .group_by(rows.c.folder_id)).all()
    return {folder_id: count for folder_id, count in found}


def visible_folders(site, user) -> list[folders.Folder]:
    """``folders.visible`` in one statement once the standard folders exist (every page
    shows them; making them is the first visit's job)."""
    table = site.tables.tables[folders.TABLE]
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(table).where(sa.or_(
            table.c.owner_user_id == user.id, table.c.owner_user_id.is_(None)))
            .order_by(table.c.owner_user_id.is_(None), table.c.position, table.c.name)).all()
    found = [folders.Folder(r.id, r.owner_user_id, r.kind, r.name, r.position) for r in rows]
    kinds = {f.kind for f in found if not f.is_group}
    groups = {f.name for f in found if f.is_group}
    if folders.STANDARD_KINDS <= kinds and set(folders.GROUP) <= groups:
        return found
    return folders.visible(site, user)


def _folder_of(site, user, folder_id: str | None, kind: str = "inbox",
               visible: list[folders.Folder] | None = None) -> folders.Folder:
    """The folder asked for (404 if it is not the reader's to open), else their ``kind``."""
    visible = visible if visible is not None else visible_folders(site, user)
    for folder in visible:
        if (folder.id == str(folder_id)) if folder_id else \
                (folder.kind == kind and not folder.is_group):
            return folder
    raise HTTPException(404, Message(N_("There is no such folder.")))


def display_name(addresses: str | None) -> str:
    """The first address's name, else the address: what a list row shows of a sender."""
    name, address = parseaddr((addresses or "").split(",")[0])
    return name or address or (addresses or "")


def _mailbox(request, folder: folders.Folder, visible: list[folders.Folder],
             opened: dict | None = None, **extra):
    """The three panes: folders, ``folder``'s list, and the ``opened`` email."""
    site, user = _site_user(request)
    gettext = i18n.active().gettext
    counts = unread_counts(site, [f.id for f in visible])
    params = request.query_params
    search = (params.get("q") or "").strip()[:100]
    query = Query(filters=[("folder_id", "eq", folder.id)], search=search or None,
                  sort="-date_sent", fields=list(LIST_FIELDS))
    module = site.registry.module(MODULE)
    try:
        pager = paging.read(site.records, site.registry, module, user, query, params,
                            PAGE_SIZE, cap=10_000)
    except ValidationError:
        raise HTTPException(400, Message(N_("This list cannot be shown so."))) from None
    keep = {"folder": folder.id, **({"q": search} if search else {})}
    return _render(request, "email_client.html", folder=folder, folders=visible,
                   counts=counts, unread_cap=UNREAD_CAP, label=lambda f: f.label(gettext), pager=pager,
                   page_url=lambda changes: "/email?" + paging.url(keep, changes),
                   search=search, opened=opened, display_name=display_name,
                   today=request.state.fmt.date(dt.datetime.now(dt.UTC)), trash_days=trash.keep_days(site, user),
                   csp=extra.pop("csp", None), **extra)


@page()
def mailbox(request, form):
    site, user = _site_user(request)
    visible = visible_folders(site, user)
    folder = _folder_of(site, user, request.query_params.get("folder"), visible=visible)
    return _mailbox(request, folder, visible)


# -- reading -----------------------------------------------------------------------------------

def _email(site, user, email_id: str, visible: list[folders.Folder] | None = None) -> dict:
    """The email if the reader may see it and it is in a folder of theirs (404 otherwise)."""
    try:
        email = site.records.get(MODULE, email_id, user, labels=True)
    except NotFoundError:
        raise HTTPException(404, Message(N_("There is no such email."))) from None
    mine = {f.id for f in visible} if visible is not None else None
    if email.get("folder_id") and (email["folder_id"] not in mine if mine is not None else
                                   folders.find(site, user, email["folder_id"]) is None):
        raise HTTPException(404, Message(N_("There is no such email.")))  # someone else's box
    return email


def blocked_html(email_id: str, html: str, files: list[dict], show_images: bool) -> tuple[str, int]:
    """The body with remote images taken out (unless ``show_images``) and ``cid:`` images
    pointing at the email's attachments; how many remote images were blocked."""
    by_cid = {(f.get("content_id") or "").strip("<>"): f["id"] for f in files}

    def cid(match):
        found = by_cid.get(match[3].strip("<>"))
        target = f"/email/{email_id}/attachments/{found}" if found else ""
        return f"{match[1]}{match[2]}{target}{match[2]}"

    html = _CID_IMG.sub(cid, html)
    if show_images:
        return html, 0
    return _REMOTE_IMG.subn(lambda m: f"{m[1]}{m[2]}{m[2]} data-blocked=\"1\"", html)


def srcdoc(request, body: str, show_images: bool) -> str:
    """The iframe's document: the body under a CSP of its own (no scripts, nothing
    fetched but this site's images and stylesheet; remote images once asked for)."""
    origin = f"{request.url.scheme}://{request.url.netloc}"
    images = f"{origin} data:" + (" https: http:" if show_images else "")
    policy = (f"default-src 'none'; img-src {images}; style-src {origin}; "
              "base-uri 'none'; form-action 'none'")
    return (f'<!doctype html><html><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
            f'<base target="_blank"><link rel="stylesheet" href="{origin}/static/email_body.css">'
            f"</head><body>{body}</body></html>")


def page_policy(show_images: bool) -> str:
    """The reading page's CSP: the site's, remote images allowed only once asked for (the
    iframe inherits the page's policy, so theirs must allow them too)."""
    images = "'self' data:" + (" https: http:" if show_images else "")
    return (f"default-src 'self'; img-src {images}; style-src 'self'; script-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def _links_of(site, user, email: dict) -> list[dict]:
    """The records the email is linked to: its contact, account and Related to."""
    module = site.registry.module(MODULE)
    out = []
    for field, target in (("contact_id", "contacts"), ("account_id", "accounts"),
                          ("parent_id", email.get(module.fields["parent_id"].spec.get(
                              "type_field", "parent_type")))):
        if field in module.fields and email.get(field) and target in site.registry.modules:
            out.append({"label": module.fields[field].label, "url":
                        f"/m/{target}/{email[field]}", "name": email.get(f"{field}__label")
                        or email[field]})
    return out


@page()
def read_email(request, form):
    site, user = _site_user(request)
    visible = visible_folders(site, user)
    email = _email(site, user, request.path_params["email_id"], visible)
    if not email.get("is_read"):
        site.records.update(MODULE, email["id"], {"is_read": True}, user)
        email["is_read"] = True
    folder = _folder_of(site, user, email.get("folder_id"), visible=visible)
    files = attachments.listed(site, [email["id"]]).get(email["id"], [])
    show = request.query_params.get("images") == "1"
    body, blocked = None, 0
    if email.get("body_html"):
        body, blocked = blocked_html(email["id"], email["body_html"], files, show)
    return _mailbox(request, folder, visible, opened=email, body_doc=srcdoc(request, body, show)
                    if body is not None else None, blocked=blocked, show_images=show,
                    files=[f for f in files if not f["inline"]],
                    links=_links_of(site, user, email), csp=page_policy(show))


# -- mass actions and folders -----------------------------------------------------------------

def _mine(site, user, ids: list[str]) -> list[dict]:
    """Of ``ids``, the emails the reader may see that are in folders they may open (SQL)."""
    ids = [str(i) for i in ids if i][:500]
    if not ids:
        return []
    visible = [f.id for f in visible_folders(site, user)]
    return site.records.list(MODULE, user, Query(
        filters=[("id", "in", ids), ("folder_id", "in", visible)], limit=None,
        fields=["id", "folder_id"]))


@page()
def mass_action(request, form):
    site, user = _site_user(request)
    action, back = form.get("action"), form.get("folder") or ""
    if action not in MASS_ACTIONS:
        raise HTTPException(400, Message(N_("Choose what to do with the ticked emails.")))
    emails = _mine(site, user, form.getlist("ids"))
    target = f"/email?folder={back}" if folders.find(site, user, back) else "/email"
    if not emails:
        flash(request, Message(N_("Tick the emails first.")), "error")
        return RedirectResponse(target, 303)
    ids = [e["id"] for e in emails]
    if action == "move":
        into = folders.find(site, user, form.get("target"))
        if into is None:
            raise HTTPException(404, Message(N_("There is no such folder.")))
        # a group folder shares them with every user (modules/emails.yaml: private)
        site.records.update_many(MODULE, ids, {"folder_id": into.id, "shared_at": (
            dt.datetime.now(dt.UTC) if into.is_group else None)}, user)
        done = Message(N_("%(count)s emails moved to %(folder)s."), count=len(ids),
                       folder=into.label(i18n.active().gettext))
    elif action in ("read", "unread"):
        site.records.update_many(MODULE, ids, {"is_read": action == "read"}, user)
        done = Message(N_("%(count)s emails marked."), count=len(ids))
    else:
        bin_id = _folder_of(site, user, None, "trash").id
        gone = [e["id"] for e in emails if e["folder_id"] == bin_id]
        moved = [i for i in ids if i not in gone]
        if moved:
            site.records.update_many(MODULE, moved, {"folder_id": bin_id}, user)
        if gone:
            site.records.delete_many(MODULE, gone, user)
        done = Message(N_("%(count)s emails deleted."), count=len(ids))
    flash(request, done, "info")
    return RedirectResponse(target, 303)


@page()
def new_folder(request, form):
    site, user = _site_user(request)
    try:
        folder = folders.create(site, user, form.get("name") or "",
                                group=bool(form.get("group")) and user.is_admin)
    except ValueError:
        flash(request, Message(N_("A folder needs a name of its own: %(name)s is empty or "
                                  "taken."), name=repr(str(form.get("name") or ""))), "error")
        return RedirectResponse("/email", 303)
    return RedirectResponse(f"/email?folder={folder.id}", 303)


@page()
def trash_rule(request, form):
    site, user = _site_user(request)
    text = str(form.get("days") or "").strip()
    if not text.isdigit() or not trash.MIN_DAYS <= int(text) <= trash.MAX_DAYS:
        flash(request, Message(N_("Days to keep: %(value)s is not a whole number from "
                                  "%(low)s to %(high)s."), value=repr(text),
                               low=trash.MIN_DAYS, high=trash.MAX_DAYS), "error")
    else:
        trash.set_keep_days(site, user, int(text))
        flash(request, Message(N_("Your Trash keeps emails %(days)s days."), days=int(text)),
              "info")
    return RedirectResponse("/email?folder=" + _folder_of(site, user, None, "trash").id, 303)


# -- compose ------------------------------------------------------------------------------------

def _quote(email: dict, fmt) -> str:
    """The original under a reply or forward, as HTML."""
    when = fmt.datetime(email["date_sent"]) if email.get("date_sent") else ""
    head = htmllib.escape(f"{when} — {email.get('from_address') or ''}")
    body = email.get("body_html") or "<p>{}</p>".format(
        htmllib.escape(email.get("body") or "").replace("\n", "<br>"))
    return f"<p><br></p><p>{head}</p><blockquote>{body}</blockquote>"


def _record_address(site, user, module_name: str, record_id: str) -> tuple[dict, str | None]:
    """The record (as the reader may see it) and its first email address."""
    module = site.registry.modules.get(module_name)
    if module is None:
        raise HTTPException(404)
    try:
        record = site.records.get(module_name, record_id, user)
    except NotFoundError:
        raise HTTPException(404, Message(N_("There is no such record."))) from None
    for f in module.fields.values():
        if f.type.name == "email" and record.get(f.name):
            name = record.get("name") or " ".join(filter(None, (record.get("first_name"),
                                                                 record.get("last_name"))))
            address = record[f.name]
            return record, f'"{name}" <{address}>' if name else address
    return record, None


def _related(site, user, module_name: str | None, record_id: str | None) -> dict:
    """parent_id/parent_type, account_id and contact_id for an email about the record."""
    from plugins.emails.plugin import _links

    if not module_name or not record_id or module_name not in site.registry.modules:
        return {}
    emails = site.registry.module(MODULE)
    out = _links(site, emails, user, module_name, record_id)
    if module_name == "contacts":
        out["contact_id"] = record_id
    return out


def _templates(site, user) -> list[dict]:
    if "email_templates" not in site.registry.modules:
        return []
    return site.records.list("email_templates", user, Query(
        filters=[("variant_of_id", "empty", None)], sort="name", limit=200,
        fields=["id", "name", "for_module"]))


def _draft_values(site, user, params, fmt) -> dict:
    """What the compose page starts with, from the query string."""
    values: dict = {"to": "", "cc": "", "bcc": "", "subject": "", "html": "",
                    "carry": [], "related": {}}
    if params.get("reply") or params.get("reply_all"):
        original = _email(site, user, params.get("reply") or params.get("reply_all"))
        values["to"] = original.get("from_address") or ""
        if params.get("reply_all"):
            values["cc"] = ", ".join(filter(None, (original.get("to_addresses"),
                                                   original.get("cc_addresses"))))
        subject = original.get("name") or ""
        values["subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
        values["html"] = _quote(original, fmt)
        values["in_reply_to"] = original.get("message_id") or ""
        values["references"] = " ".join(filter(None, (original.get("references"),
                                                      original.get("message_id"))))
        values["thread_id"] = original.get("thread_id") or original.get("message_id") or ""
        values["related"] = _related_of(original)
    elif params.get("forward"):
        original = _email(site, user, params["forward"])
        subject = original.get("name") or ""
        values["subject"] = subject if subject.lower().startswith("fwd:") else f"Fwd: {subject}"
        values["html"] = _quote(original, fmt)
        values["forward_of"] = original["id"]
        values["carry"] = attachments.listed(site, [original["id"]]).get(original["id"], [])
        values["related"] = _related_of(original)
    elif params.get("draft"):
        draft = _email(site, user, params["draft"])
        if draft.get("status") != "draft":
            raise HTTPException(404, Message(N_("There is no such draft.")))
        values.update(to=draft.get("to_addresses") or "", cc=draft.get("cc_addresses") or "",
                      bcc=draft.get("bcc_addresses") or "", subject=draft.get("name") or "",
                      html=draft.get("body_html") or "", draft_id=draft["id"],
                      in_reply_to=draft.get("in_reply_to") or "",
                      references=draft.get("references") or "",
                      thread_id=draft.get("thread_id") or "", related=_related_of(draft))
        values["carry"] = attachments.listed(site, [draft["id"]]).get(draft["id"], [])
    elif params.get("module") and params.get("record"):
        record, address = _record_address(site, user, params["module"], params["record"])
        values["to"] = address or ""
        values["related"] = _related(site, user, params["module"], record["id"])
        extra = compose_extras.extras(site, user, params["module"], record["id"])
        values["to"] = values["to"] or extra.to or ""
        values["subject"] = extra.subject or ""
    return values


def _extras(site, user, related: dict) -> compose_extras.ComposeExtras:
    """What other plugins add to composing an email about its "Related to" record."""
    type_field = site.registry.module(MODULE).fields["parent_id"].spec.get("type_field",
                                                                          "parent_type")
    return compose_extras.extras(site, user, related.get(type_field), related.get("parent_id"))


def _related_of(email: dict) -> dict:
    return {k: email[k] for k in ("parent_id", "parent_type", "account_id", "contact_id")
            if email.get(k)}


def _compose_page(request, values: dict, errors: dict | None = None, status: int = 200):
    site, user = _site_user(request)
    related = values.get("related") or {}
    about = None
    module = site.registry.module(MODULE)
    type_field = module.fields["parent_id"].spec.get("type_field", "parent_type")
    if related.get("parent_id") and related.get(type_field) in site.registry.modules:
        about = {"module": related[type_field], "id": related["parent_id"]}
    elif related.get("contact_id") and "contacts" in site.registry.modules:
        about = {"module": "contacts", "id": related["contact_id"]}
    if about:
        about["label"] = site.registry.module(about["module"]).label_singular
    return _render(request, "email_compose.html", status=status, values=values,
                   errors=errors or {}, templates=_templates(site, user), about=about,
                   extras=_extras(site, user, related).fields,
                   related_json=json.dumps(related), max_mb=attachments.max_bytes(site) // 2**20)


def _files(form) -> list[attachments.File]:
    out = []
    for upload in form.getlist("files"):
        if not hasattr(upload, "file") or not upload.filename:
            continue
        data = upload.file.read()
        out.append(attachments.File(upload.filename, data,
                                    upload.content_type or "application/octet-stream"))
    return out


def _send_at(fmt, text: str) -> dt.datetime | None:
    """The "send later" time typed on the reader's clock, as UTC; None if unreadable."""
    try:
        return fmt.from_local_input(text)
    except ValueError:
        return None


@page()
def compose(request, form):
    site, user = _site_user(request)
    if form is None:  # GET (and HEAD)
        return _compose_page(request, _draft_values(site, user, request.query_params, request.state.fmt))
    action = form.get("action")
    if action not in SEND_ACTIONS:
        raise HTTPException(400, Message(N_("Choose Save draft, Send or Send later.")))
    related = {}
    try:
        related = json.loads(form.get("related") or "{}")
    except ValueError:
        related = {}
    values = {"to": form.get("to") or "", "cc": form.get("cc") or "", "bcc": form.get("bcc")
              or "", "subject": form.get("subject") or "", "html": form.get("html") or "",
              "in_reply_to": form.get("in_reply_to") or "", "references":
              form.get("references") or "", "thread_id": form.get("thread_id") or "",
              "draft_id": form.get("draft_id") or "", "forward_of": form.get("forward_of") or "",
              "send_at": form.get("send_at") or "", "carry": [],
              "related": related if isinstance(related, dict) else {}}
    errors: dict = {}
    parsed = {}
    for field in ("to", "cc", "bcc"):
        try:
            parsed[field] = parse_addresses(values[field], field)
        except MailError as exc:
            errors[field] = exc.args[0]
    if action != "draft" and not parsed.get("to") and "to" not in errors:
        errors["to"] = Message(N_("Write at least one address to send to."))
    if action != "draft" and not values["subject"].strip():
        errors["subject"] = Message(N_("Write a subject."))
    send_at = None
    if action == "later":
        send_at = _send_at(request.state.fmt, values["send_at"])
        if send_at is None:
            errors["send_at"] = Message(N_("%(value)s is not a date and time."),
                                        value=repr(values["send_at"]))
    values["extra"] = compose_extras.posted(_extras(site, user, _clean_related(
        site, user, values["related"])), form)
    files = _files(form)
    try:
        attachments.check(site, files)
    except ValidationError as exc:
        errors.update(exc.errors)
    if errors:
        return _compose_page(request, values, errors, status=400)
    try:
        email = save(site, user, values, parsed, action, send_at, files)
    except (ValidationError, CrbmError) as exc:
        errors = getattr(exc, "errors", None) or {"to": exc.args[0] if exc.args else str(exc)}
        return _compose_page(request, values, errors, status=400)
    if action == "draft":
        flash(request, Message(N_("Draft saved.")), "info")
        return RedirectResponse(f"/email/compose?draft={email['id']}", 303)
    flash(request, Message(N_("Your email is on its way.")) if action == "send" else
          Message(N_("Your email will be sent at the time you chose.")), "info")
    return RedirectResponse(f"/email?folder={email['folder_id']}", 303)


def _clean_related(site, user, related: dict) -> dict:
    """The links a compose form carries back, kept only when the reader may see them."""
    module = site.registry.module(MODULE)
    type_field = module.fields["parent_id"].spec.get("type_field", "parent_type")
    out: dict = {}
    checks = [("contact_id", "contacts"), ("account_id", "accounts")]
    if related.get(type_field) in module.fields[type_field].spec.get("allowed", ()):
        checks.append(("parent_id", related[type_field]))
    for field, target in checks:
        value = related.get(field)
        if not value or target not in site.registry.modules:
            continue
        try:
            site.records.get(target, str(value), user)
        except NotFoundError:
            continue
        out[field] = str(value)
        if field == "parent_id":
            out[type_field] = target
    return out


def save(site, user, values: dict, parsed: dict, action: str, send_at, files) -> dict:
    """Store the email (a draft, or queued to send) with its files, in one transaction."""
    standard = None
    with site.engine.begin() as conn:
        standard = folders.ensure_personal(site, conn, user.id)
    html = nh3.clean(values["html"] or "")
    account = _account(site, user)
    record = {
        "name": (values["subject"].strip() or "-")[:255],
        "from_address": account["email_address"] if account else _sender(site, user),
        "mail_account_id": account["id"] if account else None,
        "to_addresses": ", ".join(parsed.get("to") or []) or None,
        "cc_addresses": ", ".join(parsed.get("cc") or []) or None,
        "bcc_addresses": ", ".join(parsed.get("bcc") or []) or None,
        "body_html": html or None,
        "body": nh3.clean(re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>", "\n", html),
                          tags=set()).strip() or None,
        "direction": "outbound",
        "status": "draft" if action == "draft" else "queued",
        "send_at": send_at,
        "date_sent": dt.datetime.now(dt.UTC),
        "is_read": True,
        "folder_id": standard["drafts" if action == "draft" else "sent"],
        "in_reply_to": values.get("in_reply_to")[:255] or None,
        "references": values.get("references") or None,
        "thread_id": values.get("thread_id")[:255] or values.get("in_reply_to")[:255] or None,
        "assigned_user_id": user.id,
        **_clean_related(site, user, values.get("related") or {}),
        **(values.get("extra") or {}),
    }
    carried = []
    if values.get("forward_of"):
        original = _email(site, user, values["forward_of"])
        carried = [attachments.File(row["name"], attachments.read(site, row),
                                    row["content_type"], row["content_id"], row["inline"])
                   for row in attachments.listed(site, [original["id"]]).get(original["id"], [])]
    keys: list[str] = []
    try:
        with site.engine.begin() as conn:
            draft_id = values.get("draft_id")
            if draft_id:
                draft = _email(site, user, draft_id)
                if draft.get("status") != "draft":
                    raise HTTPException(404, Message(N_("There is no such draft.")))
                email = site.records.update(MODULE, draft_id, record, user, connection=conn)
            else:
                email = site.records.create(MODULE, record, user, connection=conn)
            keys = attachments.add(site, conn, email["id"], carried + files)
    except Exception:
        attachments.discard(site, keys)
        raise
    if action != "draft":
        outbound.enqueue(site)  # after the commit above: the queue finds it
    return email


def _account(site, user) -> dict | None:
    """The user's mail account to send from (their first active one, by name): the outbound
    queue sends through its own SMTP server when it says so, From its address."""
    if "mail_accounts" not in site.registry.modules:
        return None
    found = site.records.list("mail_accounts", user, Query(
        filters=[("active", "eq", True)], fields=["id", "email_address"], sort="name", limit=1))
    return found[0] if found else None


def _sender(site, user) -> str | None:
    """The From: the user's email address, else the site's from address."""
    return getattr(user, "email", None) or (site.settings.get("smtp") or {}).get("from_address")


routes = [
    Route("/email", mailbox),
    Route("/email/compose", compose, methods=["GET", "POST"]),
    Route("/email/mass", mass_action, methods=["POST"]),
    Route("/email/folders", new_folder, methods=["POST"]),
    Route("/email/trash-rule", trash_rule, methods=["POST"]),
    Route("/email/{email_id}", read_email),
]
