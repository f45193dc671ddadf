"""A received message, read: what fetching files as an email record and its attachments.

Contract: ``parse(raw)`` takes the bytes a server gave (RFC 5322) and returns a ``Parsed``,
or raises ``ParseError`` for something that is not a message at all (empty, or no header
and no body); it never raises anything else, so one bad message cannot stop a mailbox's
fetch. Everything is read with the standard library's ``email`` package and its modern
policy (``policy.default``) — no MIME of our own:

- headers decoded (RFC 2047 encoded words, any charset), addresses as ``Name <addr>``
  joined with ", "; a header the library cannot make sense of is kept as its raw text;
- the text and HTML bodies are the ones ``get_body`` prefers (multipart/alternative,
  multipart/related nested in it...), decoded from their charset (ISO-8859-1, Shift_JIS,
  windows-1252...); an unknown or lying charset is decoded with replacement characters
  rather than refused;
- every other leaf part with a file name, a Content-ID (inline images of
  multipart/related), an "attachment" disposition or a non-text type is a ``File``; an
  attached message (message/rfc822) is one file, ``<subject>.eml``;
- ``key_source``: what identifies the message when it has no Message-ID (its header block,
  the same bytes wherever the server files it).
"""
from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from email import policy
from email.header import decode_header, make_header
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from email.parser import BytesParser

from plugins.emails.attachments import File


class _Headers(HeaderRegistry):
    """The modern policy's header objects, each parsed once: the parser and the content
    methods ask for a part's Content-Type a dozen times, and each ask would parse it anew
    (most of the time a message took). The objects are immutable, so sharing is safe."""

    @functools.lru_cache(maxsize=2048)  # noqa: B019 - one registry, for the process's life
    def __call__(self, name, value):
        return super().__call__(name, value)


POLICY = policy.default.clone(header_factory=_Headers())
_PARSER = BytesParser(policy=POLICY)


class ParseError(ValueError):
    """Not a message at all."""


@dataclass
class Parsed:
    subject: str = ""
    from_address: str = ""
    to: str = ""
    cc: str = ""
    date: dt.datetime | None = None
    message_id: str = ""
    in_reply_to: str = ""
    references: str = ""
    text: str = ""
    html: str = ""
    files: list[File] = field(default_factory=list)
    key_source: bytes = b""
    defects: int = 0  # how many defects the parser noted (a malformed message still reads)


def parse(raw: bytes) -> Parsed:
    if not raw or not raw.strip():
        raise ParseError("an empty message")
    try:
        message = _PARSER.parsebytes(raw)
    except Exception as error:  # noqa: BLE001 - a bad message is read best-effort, never raised
        raise ParseError(f"not a readable message: {error}") from None
    if not list(message.keys()) and not message.get_payload():
        raise ParseError("no header and no body")
    out = Parsed(key_source=raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0])
    out.subject = " ".join(_header(message, "subject").split())
    out.from_address = _addresses(message, "from")
    out.to = _addresses(message, "to")
    out.cc = _addresses(message, "cc")
    out.date = _date(message)
    out.message_id = _header(message, "message-id").strip()
    out.in_reply_to = _header(message, "in-reply-to").strip()
    out.references = " ".join(_header(message, "references").split())
    text_part, html_part = _body(message, "plain"), _body(message, "html")
    out.text = _text(text_part) if text_part is not None else ""
    out.html = _text(html_part) if html_part is not None else ""
    out.files = list(_files(message, {id(p) for p in (text_part, html_part) if p is not None}))
    out.defects = len(message.defects) + sum(len(p.defects) for p in message.walk())
    return out


def _header(message: EmailMessage, name: str) -> str:
    """A header's decoded text; its raw text when the library cannot parse it."""
    try:
        value = message.get(name)
        return "" if value is None else str(value)
    except Exception:  # noqa: BLE001 - a bad message is read best-effort, never raised
        for key, raw in message.raw_items():
            if key.lower() == name:
                try:
                    return str(make_header(decode_header(raw)))
                except Exception:  # noqa: BLE001 - a bad message is read best-effort, never raised
                    return str(raw)
        return ""


def _addresses(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
        if value is None:
            return ""
        found = [str(a) for a in getattr(value, "addresses", ()) if a.addr_spec]
        return ", ".join(found) if found else " ".join(str(value).split())
    except Exception:  # noqa: BLE001 - a bad message is read best-effort, never raised
        return " ".join(_header(message, name).split())


def _date(message: EmailMessage) -> dt.datetime | None:
    try:
        value = message.get("date")
        when = getattr(value, "datetime", None)
    except Exception:  # noqa: BLE001 - a bad message is read best-effort, never raised
        when = None
    if when is None:
        return None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _body(message: EmailMessage, kind: str):
    try:
        return message.get_body(preferencelist=(kind,))
    except Exception:  # noqa: BLE001 - a bad message is read best-effort, never raised
        return None


def _text(part) -> str:
    """A text part's content, decoded from its charset; replacement characters where the
    charset is unknown or the bytes do not fit it."""
    try:
        text = part.get_content()
    except Exception:  # noqa: BLE001 - a bad message is read best-effort, never raised
        data = part.get_payload(decode=True) or b""
        charset = part.get_content_charset() or "utf-8"
        try:
            text = data.decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know
            text = data.decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n")


def _files(message: EmailMessage, bodies: set[int]):
    """The attachments and inline images: leaf parts other than the bodies shown."""
    stack = [message]
    while stack:
        part = stack.pop(0)
        content_type = part.get_content_type()
        if content_type == "message/rfc822" and part is not message:
            yield _attached_message(part)
            continue
        if part.is_multipart():
            stack[0:0] = list(part.iter_parts())
            continue
        if id(part) in bodies:
            continue
        name = _filename(part)
        content_id = (_header(part, "content-id").strip().strip("<>") or None)
        disposition = part.get_content_disposition()
        if not (name or content_id or disposition == "attachment"
                or part.get_content_maintype() not in ("text", "multipart")):
            continue  # another rendering of the body (an alternative not preferred)
        data = part.get_payload(decode=True) or b""
        yield File(name or _default_name(part), data, content_type, content_id,
                   inline=bool(content_id) and disposition != "attachment")


def _filename(part) -> str:
    try:
        return part.get_filename() or ""
    except Exception:  # noqa: BLE001 - a bad message is read best-effort, never raised
        return ""


def _default_name(part) -> str:
    sub = part.get_content_subtype()
    return f"part.{sub if sub.isalnum() and len(sub) < 10 else 'bin'}"


def _attached_message(part) -> File:
    inner = part.get_payload()
    inner = inner[0] if isinstance(inner, list) and inner else inner
    try:
        data = inner.as_bytes(policy=POLICY.clone(linesep="\r\n"))
        subject = " ".join(_header(inner, "subject").split())
    except Exception:  # noqa: BLE001 - a bad message is read best-effort, never raised
        data, subject = (part.get_payload(decode=True) or b""), ""
    name = _filename(part) or f"{subject[:90] or 'message'}.eml"
    return File(name, data, "message/rfc822")
