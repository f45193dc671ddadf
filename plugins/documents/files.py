"""A document's files: what is accepted, what its text is, and the plugin's settings.

Contract:

- **Settings** (the site setting ``documents``, Admin → Documents; ``settings(site)`` never
  raises): ``max_upload_mb`` (20 by default: the largest file a document takes, on every
  path), ``default_category`` and ``default_status`` (what a document made by dropping a
  file on a record's Documents subpanel gets).
- **Accepted** (``check``): a document may hold a file of any type, as 1CRM's documents do
  ("documents in any format") — a type this plugin cannot read is stored and listed, only
  its text is not extracted. Refused, with a sentence naming the file and nothing stored:
  an empty file, a file over the limit, and **programs** — recognised by their content
  (Windows, Linux, macOS executables, ``#!`` scripts) or by a name that runs when opened
  (``.exe``, ``.bat``, ``.js``, ``.vbs``…). The type recorded is sniffed from the content,
  never the browser's word or the name.
- **Text** (``extract``): PDF with pypdf (already a CRBM dependency: the PDF forms), DOCX
  with python-docx, ODT (and the other OpenDocument text formats) with odfpy — libraries
  that read the formats' own structure (pages, paragraphs and tables) rather than
  stripping tags from XML; plain text decoded as UTF-8 (else Latin-1). A file a library
  cannot read (damaged, encrypted) gives no text and is still stored. Zip-based formats
  are refused for extraction when they would unpack to more than ``MAX_UNPACKED`` (a zip
  bomb); the text kept is capped at ``MAX_TEXT`` characters.
"""
from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core.kernel.errors import N_, Message, ValidationError

SETTING = "documents"
DEFAULT_MAX_MB = 20
MAX_TEXT = 1_000_000  # characters of a file's text kept for search
MAX_UNPACKED = 100 * 2**20  # a DOCX/ODT that unpacks to more is not read (a zip bomb)
PDF, DOCX = "application/pdf", \
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODT = "application/vnd.oasis.opendocument.text"
TEXT, BINARY = "text/plain", "application/octet-stream"
PROGRAM_SUFFIXES = frozenset({
    "exe", "com", "bat", "cmd", "msi", "msp", "scr", "pif", "cpl", "dll", "sys", "ps1",
    "psm1", "vbs", "vbe", "js", "jse", "wsf", "wsh", "hta", "jar", "app", "sh", "bash",
    "run", "bin", "elf", "apk", "deb", "rpm", "dmg", "pkg", "reg", "lnk", "scf", "gadget"})
_PROGRAMS = (b"MZ", b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe",
             b"\xfe\xed\xfa\xcf", b"\xfe\xed\xfa\xce", b"\xca\xfe\xba\xbe", b"#!")
_SIGNATURES = [(b"%PDF-", PDF), (b"\xd0\xcf\x11\xe0", "application/x-ole-storage"),
               (b"\x1f\x8b", "application/gzip"), (b"\x89PNG\r\n\x1a\n", "image/png"),
               (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"),
               (b"Rar!", "application/vnd.rar"), (b"7z\xbc\xaf", "application/x-7z-compressed")]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    max_upload_mb: float = DEFAULT_MAX_MB
    default_category: str = ""
    default_status: str = "draft"

    @property
    def max_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)


def settings(site) -> Settings:
    stored = site.settings.get(SETTING)
    stored = stored if isinstance(stored, dict) else {}
    values: dict = {}
    size = stored.get("max_upload_mb")
    if isinstance(size, int | float) and not isinstance(size, bool) and 0 < size <= 2048:
        values["max_upload_mb"] = size
    options = {o["value"] for o in site.registry.dropdowns.get("document_category_dom", ())}
    if stored.get("default_category") in options:
        values["default_category"] = stored["default_category"]
    statuses = {o["value"] for o in site.registry.dropdowns.get("document_status_dom", ())}
    if stored.get("default_status") in statuses:
        values["default_status"] = stored["default_status"]
    return Settings(**values)


def clean(site, form) -> tuple[dict, dict[str, Message]]:
    """The admin page's post as the JSON to store, and the problems by field."""
    errors: dict[str, Message] = {}
    text = str(form.get("max_upload_mb") or "").strip().replace(",", ".")
    try:
        size = float(text)
    except ValueError:
        size = 0.0
    if not 0 < size <= 2048:
        errors["max_upload_mb"] = Message(N_("%(value)s is not a size in MB from 0.01 to 2048"),
                                          value=repr(text))
    out: dict = {"max_upload_mb": int(size) if size == int(size) else size}
    for name, dom in (("default_category", "document_category_dom"),
                      ("default_status", "document_status_dom")):
        value = str(form.get(name) or "")
        allowed = {o["value"] for o in site.registry.dropdowns.get(dom, ())}
        if value and value not in allowed:
            errors[name] = Message(N_("%(value)s is not one of the choices"), value=repr(value))
        out[name] = value
    if not out["default_status"]:
        errors["default_status"] = Message(N_("Choose a status"))
    return out, errors


def sniff(head: bytes, path: Path | None = None) -> str:
    """The content type from the content alone (the first bytes; a zip's parts)."""
    for magic, kind in _SIGNATURES:
        if head.startswith(magic):
            return kind
    if head.startswith(b"PK\x03\x04") and path is not None:
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
                if "word/document.xml" in names:
                    return DOCX
                if "mimetype" in names:
                    kind = archive.read("mimetype")[:100].decode("ascii", "replace").strip()
                    if kind.startswith("application/vnd.oasis.opendocument."):
                        return kind
        except (zipfile.BadZipFile, OSError, KeyError):
            pass
        return "application/zip"
    try:
        head[:4096].decode("utf-8")
    except UnicodeDecodeError as exc:  # a multi-byte character cut at the end is still text
        if exc.start < len(head[:4096]) - 3:
            return BINARY
    return TEXT if head and b"\0" not in head[:4096] else BINARY


def is_program(head: bytes, name: str) -> bool:
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return head.startswith(_PROGRAMS) or suffix in PROGRAM_SUFFIXES


def check(site, name: str, path: Path, size: int) -> str:
    """The sniffed type of a file about to become a revision; ValidationError (on ``file``)
    for an empty file, one over the limit or a program."""
    current = settings(site)
    if size > current.max_bytes:
        raise too_large(name, current)
    if size == 0:
        raise ValidationError({"file": Message(N_("%(file)s is empty; nothing was saved."),
                                               file=name)})
    with open(path, "rb") as handle:
        head = handle.read(8192)
    if is_program(head, name):
        raise ValidationError({"file": Message(
            N_("%(file)s is a program; programs are not accepted as documents. Nothing was "
               "saved."), file=name)})
    return sniff(head, path)


def too_large(name: str, current: Settings) -> ValidationError:
    return ValidationError({"file": Message(
        N_("%(file)s is larger than %(size)s MB, the largest document this site accepts; "
           "nothing was saved."), file=name, size=f"{current.max_upload_mb:g}")})


def extract(path: Path, kind: str) -> str | None:
    """The text of a stored file, or None for a type not read (or a file that cannot be)."""
    try:
        if kind == PDF:
            text = _pdf(path)
        elif kind == DOCX:
            text = _docx(path) if _unpacks_safely(path) else None
        elif kind.startswith("application/vnd.oasis.opendocument.text"):
            text = _odt(path) if _unpacks_safely(path) else None
        elif kind == TEXT:
            data = path.read_bytes()[:MAX_TEXT * 4]
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data.decode("latin-1")
        else:
            return None
    except Exception as exc:  # noqa: BLE001 — a damaged or encrypted file is still a document
        log.info("no text from %s (%s): %s", path.name, kind, exc)
        return None
    if text is None:
        return None
    text = "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n"))
    return text.replace("\0", "").strip()[:MAX_TEXT] or None


def _unpacks_safely(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        return sum(info.file_size for info in archive.infolist()) <= MAX_UNPACKED


def _pdf(path: Path) -> str:
    from pypdf import PdfReader

    reader = PdfReader(path)
    if reader.is_encrypted and not reader.decrypt(""):
        return ""
    parts, total = [], 0
    for page in reader.pages:
        text = page.extract_text() or ""
        parts.append(text)
        total += len(text)
        if total > MAX_TEXT:
            break
    return "\n".join(parts)


def _docx(path: Path) -> str:
    import docx

    document = docx.Document(str(path))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append("\t".join(cell.text for cell in row.cells))
    return "\n".join(parts)


def _odt(path: Path) -> str:
    from odf import teletype
    from odf import text as odf_text
    from odf.opendocument import load

    document = load(str(path))
    parts = []
    for element in document.text.childNodes:  # headings, paragraphs, lists, tables in order
        if element.qname[1] in ("h", "p"):
            parts.append(teletype.extractText(element))
        else:
            parts.extend(teletype.extractText(p) for p in
                         element.getElementsByType(odf_text.P))
    return "\n".join(parts)
