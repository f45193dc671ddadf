"""Emails: the messages the CRM sent, kept in the history of what they were about.

Provides the ``emails`` module (modules/emails.yaml: subject, from, to, cc, body, date sent,
status, direction, message id, the record it was about in ``parent_id``, its account, the
first attachment as a file), the ``email_status_dom`` and ``email_direction_dom`` lists,
the account's "Emails" subpanel (extends/accounts.yaml), and a place in the History panel
of the record an email is about (``features.activity`` in modules/emails.yaml; core.apps.activities).

Every message sent with ``core.apps.documents.mail.send_record_mail`` reaches ``crbm_mail_sent`` here and
becomes an email record with status "sent":
- ``parent_id`` is the record the mail was about, when its module is one the field allows;
- ``account_id`` is the record itself for an account, else the record's own ``account_id``
  when its module has one (a contact's, a quote's...), so the account's Emails and History show
  the mail whichever of its records it was sent from.

The modules whose records CRBM mails (the shipped order documents) are listed in
``parent_id``'s ``modules``; a pack that mails records of its own overlays that list.
Purchase documents go to a supplier: their account is their ``supplier_id``.
"""
from __future__ import annotations

import secrets
from pathlib import Path, PurePosixPath, PureWindowsPath

from core.kernel.errors import N_, NotFoundError
from core.kernel.hookspecs import for_modules, hookimpl
from core.kernel.hooktypes import AdminLink
from plugins.emails import (
    attachments,
    fetch,
    folders,
    group_actions,
    linking,
    mailboxes,
    outbound,
    settings_web,
    tracking,
)

__version__ = "0.1.0"

MODULE = "emails"
ACCOUNTS = "accounts"


# (one hookimpl per hook name in this module: a second function of the same name would
# replace the first; use @hookimpl(specname=...) with a name of its own)

@hookimpl
def crbm_tables(metadata):
    folders.tables(metadata)
    attachments.tables(metadata)
    tracking.tables(metadata)


@hookimpl
def crbm_web_routes(site):
    return [*attachments.routes, *tracking.routes]


@hookimpl
def crbm_file_references(site):
    return [(attachments.TABLE, "file_key")]  # the attachments' files are in use


@hookimpl
def crbm_jinja_environment(site, env):
    attachments.jinja(site, env)
    tracking.jinja(site, env)


@hookimpl
def crbm_job_handlers(site):
    return outbound.job_handlers()


@hookimpl
def crbm_scheduled_tasks(site):
    return outbound.scheduled_tasks()


@hookimpl(specname="crbm_before_save")
@for_modules(MODULE)
def emails_link_and_thread(site, batch, user, connection):
    """New emails: their contacts, account, lead and thread (linking.py), then the contacts
    a group inbox makes for unknown senders (group_actions.py) — in that order."""
    linking.before_save(site, batch, user, connection)
    group_actions.create_contacts(site, batch, user, connection)


@hookimpl(specname="crbm_after_save")
@for_modules(MODULE)
def emails_group_inbox_actions(site, batch, user, connection):
    """New emails of a group inbox: its action (create case, bug, bounce handling)."""
    group_actions.run_actions(site, batch, user, connection)


@hookimpl(specname="crbm_web_routes")
def emails_settings_routes(site):
    return settings_web.routes


@hookimpl(specname="crbm_admin_links")
def emails_settings_link(site):
    return [AdminLink(N_("Email settings"), settings_web.URL,
                      N_("Linking received mail, ignored domains, batches, tracking, group "
                         "folders."))]


# -- fetching mail (mailboxes.py: sealed secrets, connections; fetch.py: the job) ----------

@hookimpl(specname="crbm_tables")
def fetching_tables(metadata):
    mailboxes.tables(metadata)
    fetch.tables(metadata)


@hookimpl
def crbm_field_types(site):
    # named so (not specname): a disabled plugin's types are found by this name
    # (Site.provided), to keep its tables' columns
    return mailboxes.field_types()


@hookimpl(specname="crbm_before_save")
@for_modules(*mailboxes.MODULES)
def seal_mailbox_secrets(site, module, batch, connection):
    mailboxes.before_save(site, module, batch, connection)


@hookimpl(specname="crbm_scheduled_tasks")
def fetching_tasks(site):
    return fetch.scheduled_tasks()


@hookimpl(specname="crbm_job_handlers")
def fetching_jobs(site):
    return fetch.job_handlers()


@hookimpl(specname="crbm_record_actions")
@for_modules(*mailboxes.MODULES)
def mailbox_actions(site, module, record, user):
    return mailboxes.record_actions(site, module, record, user)


@hookimpl(specname="crbm_web_routes")
def mailbox_routes(site):
    return mailboxes.routes()


@hookimpl
def crbm_mail_sent(site, mail, user, module, record_id):
    """File a sent message as an email record of the record it was about."""
    emails = site.registry.modules.get(MODULE)
    if emails is None or user is None:
        return  # the module was removed, or nobody to file it as
    values = {
        "name": _fit(emails, "name", mail.subject) or "-",
        "from_address": _fit(emails, "from_address", mail.from_address),
        "to_addresses": ", ".join(mail.to),
        "cc_addresses": ", ".join(mail.cc) or None,
        "body": mail.text,
        "date_sent": mail.sent_at,
        "status": "sent",
        "direction": "outbound",
        "message_id": mail.message_id,
        "assigned_user_id": user.id,
    }
    if module and record_id:
        values.update(_links(site, emails, user, module, record_id))
    files_dir, key = site.folder / "files", None
    if mail.attachments:
        first = mail.attachments[0]
        key = values["attachment"] = store_file(files_dir, first.filename, first.content)
    try:
        site.records.create(MODULE, values, user)
    except Exception:
        if key:  # no record points at the file: do not leave it behind
            (files_dir / key).unlink(missing_ok=True)
            (files_dir / key).parent.rmdir()
        raise


def _fit(emails, field: str, text: str) -> str:
    """``text`` cut to the field's size (a long subject is still filed)."""
    size = emails.fields[field].spec.get("max_size")
    return text[:size] if size else text


# the field naming a record's account: a customer's, else a supplier's
ACCOUNT_FIELDS = ("account_id", "supplier_id")


def _links(site, emails, user, module: str, record_id: str) -> dict:
    """parent_id/parent_type and account_id for a mail about ``module``/``record_id``."""
    links = {}
    parent = emails.fields.get("parent_id")
    type_field = parent.spec.get("type_field") if parent else None
    if type_field and module in emails.fields[type_field].spec["allowed"]:
        links.update({"parent_id": record_id, type_field: module})
    if module == ACCOUNTS:
        links["account_id"] = record_id
        return links
    source = site.registry.modules.get(module)
    field = next((name for name in ACCOUNT_FIELDS if source and name in source.fields), None)
    account_field = source.fields[field] if field else None
    if account_field and account_field.type.is_link \
            and account_field.spec.get("module") == ACCOUNTS:
        # The sender was allowed to mail this record (the caller checked), so its link to
        # the account is read without the view check.
        try:
            record = site.records.get(module, record_id, user, action=None)
        except NotFoundError:
            return links  # deleted meanwhile: the mail is still filed, without its account
        if record.get(field):
            links["account_id"] = record[field]
    return links


def store_file(files_dir: Path, filename: str, content: bytes) -> str:
    """Save bytes under a random key in the site's file store; the key is what a file
    field stores (as ``core.web.forms.store_upload`` does for uploads)."""
    name = PureWindowsPath(PurePosixPath(filename).name).name[:100] or "file"
    key = f"{secrets.token_hex(8)}/{name}"
    target = files_dir / key
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    return key


# -- the mail client (client.py, trash.py, demo.py) -------------------------------------------

@hookimpl(specname="crbm_tables")
def client_tables(metadata):
    from plugins.emails import client, trash

    trash.tables(metadata)
    client.indexes(metadata)


@hookimpl(specname="crbm_web_routes")
def client_web_routes(site):
    from plugins.emails import client

    return client.routes


@hookimpl(specname="crbm_navigation")
def client_navigation(site, user):
    from core.kernel.hooktypes import NavEntry

    if MODULE not in site.registry.modules or not site.access.can(
            user, site.registry.module(MODULE), "list"):
        return []
    return [NavEntry(N_("Email"), "/email", icon="mail")]


@hookimpl(specname="crbm_record_actions")
def client_record_actions(site, module, record, user):
    """"Email" on the page of any record whose module has an email address field."""
    from core.web.actions import Action

    if MODULE not in site.registry.modules or not any(
            f.type.name == "email" and record.get(f.name) for f in module.fields.values()):
        return []
    return [Action(N_("Email"), f"/email/compose?module={module.name}&record={record['id']}")]


@hookimpl(specname="crbm_scheduled_tasks")
def client_scheduled_tasks(site):
    from core.kernel.hooktypes import ScheduledTask
    from plugins.emails import trash

    return [ScheduledTask(trash.TASK, N_("Empty each user's Trash by their rule"),
                          trash.run_task, "@every 1h")]


@hookimpl(specname="crbm_demo_data", trylast=True)  # the contacts and accounts come first
def client_demo_data(site, user, size, rng, progress):
    from plugins.emails import demo

    demo.load(site, user, size, rng, progress)
