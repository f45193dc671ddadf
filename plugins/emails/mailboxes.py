"""Mailboxes — users' mail accounts (``mail_accounts``) and group inboxes
(``group_inboxes``): their secrets, and how to connect to their servers.

**Secrets.** A mailbox's ``password`` and ``smtp_password`` (an app password or an OAuth2
token) must be sent to another server, so they cannot be hashed: they are sealed with the
site key (``core.kernel.crypto.seal``) — and kept out of the record itself. The save hook
(``before_save``) takes each non-empty value out of the record before it is written, seals
it (a value already sealed is not sealed twice) and stores it in ``emails_mailbox_secrets``
(module, record id, field); the record's column stays empty. So no generic path that shows
records — the detail page, the edit form (an empty password field: leaving it empty keeps
the stored one), lists, exports, the change log, the REST API — can ever show or log it,
and a copy of the database shows only the sealed text. ``credentials`` reads them back,
unsealed, for the code that connects (fetching here, sending through the user's own SMTP
server); ``has_secret`` says whether one is stored.

**Connecting.** ``imap(box)`` and ``pop3(box)`` return a signed-in session (imapclient;
the standard library's poplib), over SSL/TLS, STARTTLS or neither (``security``), with
the certificate checked as the implementation guide's three options say
(``certificate_validation``):

- ``none``: no verification at all (encryption without knowing who answers);
- ``self_signed``: checked normally first; when that fails only because the certificate
  is self-signed, a second connection accepts it if it really is (its own issuer, its
  signature checked against its own key) — a certificate is still required;
- ``third_party``: the normal verification (a trusted authority, the host name).

A failure is a ``MailboxError`` whose message says what went wrong (the server refused the
sign-in, the certificate is not trusted, nobody answers), never the password.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import poplib
import ssl
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography import x509

from core.kernel import crypto
from core.kernel.database import ID
from core.kernel.errors import N_, Message
from core.kernel.fields import FieldType, UTCDateTime

MAIL_ACCOUNTS = "mail_accounts"
GROUP_INBOXES = "group_inboxes"
MODULES = (MAIL_ACCOUNTS, GROUP_INBOXES)
SECRET_FIELDS = ("password", "smtp_password")
SECRETS = "emails_mailbox_secrets"
TIMEOUT = 30  # seconds a server may take to answer
PORTS = {("imap", "ssl"): 993, ("imap", "starttls"): 143, ("imap", "none"): 143,
         ("pop3", "ssl"): 995, ("pop3", "starttls"): 110, ("pop3", "none"): 110}


class MailboxError(Exception):
    """The mailbox cannot be reached or signed into; ``message`` says why (translatable)."""

    def __init__(self, message: Message):
        super().__init__(str(message))
        self.message = message


def tables(metadata) -> None:
    sa.Table(SECRETS, metadata,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("module", sa.String(60), nullable=False),
             sa.Column("record_id", ID, nullable=False),
             sa.Column("field", sa.String(60), nullable=False),
             sa.Column("sealed", sa.Text, nullable=False),
             sa.Column("changed_at", UTCDateTime(), nullable=False),
             sa.UniqueConstraint("module", "record_id", "field", name="uq_emails_mailbox_secrets"))


# -- secrets -------------------------------------------------------------------------------

class SecretType(FieldType):
    """A secret typed into a form and never shown back (``password``, ``smtp_password``): a
    password input left empty, nothing on the detail page or in lists. Its value never
    reaches the column anyway (``before_save``); this type keeps the form from asking the
    browser to remember it or to show it."""

    name = "secret"
    default_size = 2000
    json_kind = "string"
    input_type = "password"
    input_attrs = ' autocomplete="new-password"'
    searchable = False

    def display_text(self, fmt, f, value, record, options):
        return ""

    def form_text(self, value, fmt):
        return ""


def field_types() -> list[FieldType]:
    return [SecretType()]


def before_save(site, module, batch, connection) -> None:
    """Take the secrets out of the records being saved: sealed into ``SECRETS``, the
    record's own value emptied (an empty value on an edit keeps the stored secret)."""
    table = site.tables.tables[SECRETS]
    now = dt.datetime.now(dt.UTC)
    for name in SECRET_FIELDS:
        if name not in module.fields:
            continue
        given = {}
        for change in batch:
            value = change.record.get(name)
            if value:
                given[str(change.record["id"])] = value if crypto.is_sealed(value) \
                    else crypto.seal(site, str(value))
            change.record[name] = None  # never written to the record
        if given:
            connection.execute(table.delete().where(
                table.c.module == module.name, table.c.field == name,
                table.c.record_id.in_(list(given))))
            connection.execute(table.insert(), [
                {"module": module.name, "record_id": record_id, "field": name,
                 "sealed": sealed, "changed_at": now} for record_id, sealed in given.items()])


def credentials(site, conn, module: str, record_ids) -> dict[str, dict[str, str]]:
    """record id -> {field: secret in clear} for the mailboxes' stored secrets."""
    table = site.tables.tables[SECRETS]
    out: dict[str, dict[str, str]] = {}
    ids = [str(i) for i in record_ids]
    if not ids:
        return out
    for row in conn.execute(sa.select(table.c.record_id, table.c.field, table.c.sealed).where(
            table.c.module == module, table.c.record_id.in_(ids))):
        out.setdefault(row.record_id, {})[row.field] = crypto.unseal(site, row.sealed)
    return out


def has_secret(site, module: str, record_id: str, field: str = "password") -> bool:
    table = site.tables.tables[SECRETS]
    with site.engine.connect() as conn:
        return conn.execute(sa.select(table.c.id).where(
            table.c.module == module, table.c.record_id == str(record_id),
            table.c.field == field)).first() is not None


# -- the mailbox as the fetcher sees it ------------------------------------------------------

@dataclass(frozen=True)
class Mailbox:
    module: str
    id: str
    owner_user_id: str | None
    email_address: str
    protocol: str
    host: str
    port: int | None
    security: str
    certificate_validation: str
    username: str
    password: str
    auth_method: str
    folders: tuple[str, ...]
    sent_folder: str | None
    batch_size: int
    group_folder_id: str | None = None
    cafile: str | None = None  # extra trusted authorities (tests: the test server's)

    @property
    def is_group(self) -> bool:
        return self.module == GROUP_INBOXES

    @property
    def address(self) -> tuple[str, int]:
        return self.host, int(self.port or PORTS.get((self.protocol, self.security), 993))

    @property
    def monitored(self) -> list[str]:
        """The folders to fetch, the sent folder included (once), in order."""
        names = list(dict.fromkeys(self.folders or ("INBOX",)))
        if self.sent_folder and self.sent_folder not in names:
            names.append(self.sent_folder)
        return names


def load(site, conn, module: str, record_id: str) -> Mailbox | None:
    """The mailbox with its password in clear; None if it is gone (deleted)."""
    table = site.records.table(site.registry.module(module))
    row = conn.execute(sa.select(table).where(table.c.id == str(record_id),
                                              table.c.deleted.is_(False))).mappings().first()
    if row is None:
        return None
    secret = credentials(site, conn, module, [row["id"]]).get(row["id"], {})
    folders = tuple(line.strip() for line in str(row.get("folders") or "").splitlines()
                    if line.strip())
    return Mailbox(
        module=module, id=row["id"], owner_user_id=row.get("assigned_user_id"),
        email_address=row.get("email_address") or "", protocol=row.get("protocol") or "imap",
        host=(row.get("host") or "").strip(), port=row.get("port"),
        security=row.get("security") or "ssl",
        certificate_validation=row.get("certificate_validation") or "third_party",
        username=row.get("username") or "", password=secret.get("password", ""),
        auth_method=row.get("auth_method") or "password", folders=folders or ("INBOX",),
        sent_folder=(row.get("sent_folder") or "").strip() or None,
        batch_size=int(row.get("batch_size") or 100),
        group_folder_id=row.get("group_folder_id") or None,
        cafile=(site.config.get("emails") or {}).get("imap_cafile"))


# -- connecting ------------------------------------------------------------------------------

def ssl_context(validation: str, cafile: str | None = None, *,
                trust_self_signed: bool = False) -> ssl.SSLContext:
    """The TLS context of a certificate validation option (see the module's docstring);
    ``trust_self_signed``: the second attempt of ``self_signed``, checked afterwards."""
    context = ssl.create_default_context()
    if cafile:
        context.load_verify_locations(cafile=cafile)
    if validation == "none" or trust_self_signed:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


# OpenSSL's "self-signed certificate" and "self-signed certificate in chain"
SELF_SIGNED_CODES = (18, 19)


def _self_signed_retry(error: BaseException, box: Mailbox) -> bool:
    return (box.certificate_validation == "self_signed" and box.security != "none"
            and isinstance(error, ssl.SSLCertVerificationError)
            and error.verify_code in SELF_SIGNED_CODES)


def check_self_signed(sock) -> None:
    """The server showed a certificate and it is its own issuer (its signature checks
    with its own key): what ``self_signed`` accepts after the normal check refused it."""
    der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
    if not der:
        raise MailboxError(Message(N_("The server presented no certificate.")))
    certificate = x509.load_der_x509_certificate(der)
    try:
        certificate.verify_directly_issued_by(certificate)
    except Exception:  # noqa: BLE001 - any failure becomes a MailboxError
        raise MailboxError(Message(N_("The server's certificate is not self-signed and "
                                      "is not trusted."))) from None


def failure(error: BaseException, box: Mailbox, signing_in: bool) -> MailboxError:
    """What a connection error means to the user, naming the server (never a secret)."""
    host, port = box.address
    where = f"{host}:{port}"
    if isinstance(error, MailboxError):
        return error
    if signing_in and not isinstance(error, OSError):
        return MailboxError(Message(N_("%(server)s refused the sign-in of %(user)s: "
                                       "%(reason)s"), server=where, user=box.username,
                                    reason=reason(error)))
    if isinstance(error, ssl.SSLCertVerificationError):
        return MailboxError(Message(N_("The certificate of %(server)s is not trusted "
                                       "(%(reason)s)."), server=where,
                                    reason=error.verify_message or reason(error)))
    if isinstance(error, ssl.SSLError):
        return MailboxError(Message(N_("The secure connection to %(server)s failed "
                                       "(%(reason)s)."), server=where,
                                    reason=error.reason or reason(error)))
    if isinstance(error, TimeoutError):
        return MailboxError(Message(N_("%(server)s did not answer in time."), server=where))
    if isinstance(error, OSError):
        return MailboxError(Message(N_("Cannot connect to %(server)s (%(reason)s)."),
                                    server=where, reason=reason(error)))
    return MailboxError(Message(N_("%(server)s answered with an error: %(reason)s"),
                                server=where, reason=reason(error)))


def reason(error: BaseException) -> str:
    text = error.args[0] if error.args else type(error).__name__
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    text = str(text)
    if text.startswith(("b'", 'b"')):  # imapclient quotes the server's bytes
        text = text[2:-1]
    return " ".join(text.split())[:200]


def imap(box: Mailbox):
    """A signed-in imapclient session (a context manager: logs out at the end)."""
    import imapclient

    host, port = box.address
    for trust_self_signed in (False, True):
        context = ssl_context(box.certificate_validation, box.cafile,
                              trust_self_signed=trust_self_signed)
        client, signing_in = None, False
        try:
            client = imapclient.IMAPClient(host, port=port, ssl=box.security == "ssl",
                                           ssl_context=context, timeout=TIMEOUT)
            if box.security == "starttls":
                client.starttls(context)
            if trust_self_signed:
                check_self_signed(client.socket())
            signing_in = True
            if box.auth_method == "oauth2":
                client.oauth2_login(box.username, box.password)
            else:
                client.login(box.username, box.password)
            return client
        except Exception as error:  # noqa: BLE001 - any failure becomes a MailboxError
            if client is not None:
                with contextlib.suppress(Exception):
                    client.shutdown()
            if not trust_self_signed and _self_signed_retry(error, box):
                continue
            raise failure(error, box, signing_in) from None
    raise AssertionError("unreachable")


def pop3(box: Mailbox) -> poplib.POP3:
    """A signed-in POP3 session (``quit()`` at the end)."""
    host, port = box.address
    if box.auth_method == "oauth2":
        raise MailboxError(Message(N_("POP3 mailboxes sign in with a password only.")))
    for trust_self_signed in (False, True):
        context = ssl_context(box.certificate_validation, box.cafile,
                              trust_self_signed=trust_self_signed)
        session, signing_in = None, False
        try:
            if box.security == "ssl":
                session = poplib.POP3_SSL(host, port, timeout=TIMEOUT, context=context)
            else:
                session = poplib.POP3(host, port, timeout=TIMEOUT)
                if box.security == "starttls":
                    session.stls(context)
            if trust_self_signed:
                check_self_signed(session.sock)
            signing_in = True
            session.user(box.username)
            session.pass_(box.password)
            return session
        except Exception as error:  # noqa: BLE001 - any failure becomes a MailboxError
            if session is not None:
                with contextlib.suppress(Exception):
                    session.close()
            if not trust_self_signed and _self_signed_retry(error, box):
                continue
            raise failure(error, box, signing_in) from None
    raise AssertionError("unreachable")


def test_connection(box: Mailbox) -> Message:
    """Sign in and out; what the "Test connection" action shows. Raises MailboxError."""
    if box.protocol == "pop3":
        session = pop3(box)
        count, _size = session.stat()
        with contextlib.suppress(Exception):
            session.quit()
        return Message(N_("Connected: %(count)s messages waiting."), count=count)
    client = imap(box)
    try:
        found = [name for _flags, _sep, name in client.list_folders()]
    finally:
        with contextlib.suppress(Exception):
            client.logout()
    missing = [name for name in box.monitored if name not in found
               and not (name.upper() == "INBOX" and "INBOX" in found)]
    if missing:
        raise MailboxError(Message(N_("Connected, but there is no folder %(folder)s on "
                                      "the server."), folder=", ".join(missing)))
    return Message(N_("Connected: %(count)s folders to fetch."), count=len(box.monitored))


# -- the "Test connection" button -------------------------------------------------------------

def record_actions(site, module, record, user) -> list:
    from core.web.actions import Action

    return [Action(N_("Test connection"), f"/mailboxes/{module.name}/{record['id']}/test",
                   post=True)]


def test_view(request, form):
    """``POST /mailboxes/{module}/{record_id}/test``: sign in to the server and say how it
    went, to a user who may see the mailbox (its owner; an administrator for a group
    inbox) — 404 otherwise."""
    from starlette.exceptions import HTTPException
    from starlette.responses import RedirectResponse

    from core.web.templating import flash

    site, user = request.app.state.site, request.state.user
    module, record_id = request.path_params["module"], request.path_params["record_id"]
    if module not in MODULES:
        raise HTTPException(404)
    record = site.records.get(module, record_id, user)  # NotFound: someone else's
    with site.engine.connect() as conn:
        box = load(site, conn, module, record["id"])
    try:
        flash(request, test_connection(box), "info")
    except MailboxError as error:
        flash(request, error.message, "error")
    return RedirectResponse(f"/m/{module}/{record['id']}", 303)


def routes() -> list:
    from starlette.routing import Route

    from core.web.pages import page

    return [Route("/mailboxes/{module}/{record_id}/test", page()(test_view),
                  methods=["POST"])]
