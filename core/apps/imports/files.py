"""Reading an uploaded file as a header and rows of text, a row at a time.

``open_table(path)`` gives a ``Table``: its ``header`` (the first row's cells), its
``encoding`` and ``delimiter`` as detected, and ``rows()``, an iterator of (line number,
cells) that reads the file as it goes, so a file of a million rows costs what one row
costs. What people export from spreadsheets and other CRMs is taken as they write it:

- **CSV** with any common delimiter (``,`` ``;`` TAB ``|``, guessed from the first lines by
  ``csv.Sniffer``), quoted cells with line breaks inside, a byte-order mark, and the
  encoding found by ``charset-normalizer`` on the first 64 KiB. A UTF-8 file with a
  stray Windows-1252 line (two files pasted together) still reads: that line alone is
  decoded as Windows-1252 and ``Table.mixed_lines`` counts it.
- **vCard** (.vcf, 3.0 or 4.0, through vobject, a card at a time): each card a row under
  ``VCARD_HEADER`` (the card's own property names), which the ``vcard`` source maps.
- **XLSX** through openpyxl's read-only mode (the sheet is streamed, not loaded): the
  first sheet, cells turned into text (dates ISO, numbers without a spreadsheet's float
  noise).
- Excel's protections of a cell are taken off: ``="00123"`` (keep leading zeros) gives
  ``00123``, and a leading ``'`` before ``+ - = @`` or a digit (``'+44 20…``, SugarCRM's
  and spreadsheets' way of keeping a phone number text) is dropped.

What cannot be read is refused before any row is imported, with ``FileProblem``: a file
over the size limit (checked on the size, before reading), an empty file, a file without
a header, or a binary file (NUL bytes, or an XLSX that is not one).
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from charset_normalizer import from_bytes

from core.kernel.errors import N_, CrbmError, Message

MAX_BYTES = 100 * 1024 * 1024  # the default upload limit (site setting imports_max_mb)
SAMPLE_BYTES = 64 * 1024
LINES_BLOCK = 256 * 1024  # bytes of lines decoded at once
DELIMITERS = ",;\t|"
csv.field_size_limit(10 * 1024 * 1024)  # a long description, not a runaway quote
_EXCEL_TEXT = re.compile(r'^="(.*)"$', re.DOTALL)
_APOSTROPHE = re.compile(r"^'(?=[-+=@0-9(])")


class FileProblem(CrbmError):
    """The file as a whole cannot be imported; the message says why."""


def unescape(text: str) -> str:
    """A cell as its author meant it: Excel's ``="..."`` and ``'`` protections taken off."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if not text.startswith(("=", "'")):  # most cells: nothing to take off (no regex)
        return text
    found = _EXCEL_TEXT.match(text)
    if found:
        return found.group(1).replace('""', '"')
    return _APOSTROPHE.sub("", text, count=1)


@dataclass
class Table:
    path: Path
    kind: str  # "csv" or "xlsx"
    header: list[str]
    encoding: str | None = None
    delimiter: str | None = None
    mixed_lines: int = 0
    _skip: int = field(default=1, repr=False)

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(line number in the file, cells) for every row after the header; blank rows
        are left out. Line numbers are those a text editor or spreadsheet shows (a
        vCard's: the card's number)."""
        reader = {"csv": self._csv_rows, "xlsx": self._xlsx_rows,
                  "vcard": self._vcard_rows}[self.kind]()
        for line_no, cells in reader:
            if any(c.strip() for c in cells):
                yield line_no, [unescape(c) for c in cells]

    def count(self) -> int:
        """How many rows ``rows`` gives (the progress bar's total), a pass over the file
        that keeps no cells (about half the time of ``rows``)."""
        reader = {"csv": self._csv_rows, "xlsx": self._xlsx_rows,
                  "vcard": self._vcard_rows}[self.kind]()
        mixed = self.mixed_lines  # counted by the pass that reads the rows, not by this one
        try:
            return sum(1 for _, cells in reader if any(unescape(c).strip() for c in cells))
        finally:
            self.mixed_lines = mixed

    def samples(self, count: int = 2) -> list[list[str]]:
        """The first ``count`` rows (the mapping screen's sample values)."""
        out = []
        for _, cells in self.rows():
            out.append(cells)
            if len(out) == count:
                break
        return out

    # -- CSV --------------------------------------------------------------------------------

    def _lines(self) -> Iterator[str]:
        """The file's text a line at a time, each line decoded on its own (mixed files):
        a block of lines at once, and line by line only in a block that has a line the
        encoding cannot decode."""
        with open(self.path, "rb") as raw:
            first = raw.readline().removeprefix(codecs.BOM_UTF8)
            block = [first]
            while block:
                try:
                    yield from [line.decode(self.encoding) for line in block]
                except UnicodeDecodeError:
                    yield from map(self._decode, block)
                block = raw.readlines(LINES_BLOCK)

    def _decode(self, line: bytes) -> str:
        try:
            return line.decode(self.encoding)
        except UnicodeDecodeError:
            self.mixed_lines += 1
            return line.decode("cp1252", errors="replace")

    def _csv_rows(self) -> Iterator[tuple[int, list[str]]]:
        reader = csv.reader(self._lines(), delimiter=self.delimiter, quotechar='"')
        start = 1  # a row's first line: the one after the last line of the row before
        for index, cells in enumerate(reader):
            if index >= self._skip:
                yield start, cells
            start = reader.line_num + 1

    # -- XLSX -------------------------------------------------------------------------------

    def _xlsx_rows(self) -> Iterator[tuple[int, list[str]]]:
        import openpyxl
        book = openpyxl.load_workbook(open(self.path, "rb"), read_only=True, data_only=True)  # noqa: SIM115
        try:
            sheet = book.worksheets[0]
            for index, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                if index > self._skip:
                    yield index, [_text_of(v) for v in values]
        finally:
            book.close()


    # -- vCard -------------------------------------------------------------------------------

    def _vcard_rows(self) -> Iterator[tuple[int, list[str]]]:
        import vobject
        with open(self.path, encoding="utf-8-sig", errors="replace") as text:
            cards = vobject.readComponents(text, ignoreUnreadable=True)
            number = 1
            while True:
                number += 1
                try:
                    card = next(cards)
                except StopIteration:
                    return
                except Exception:  # noqa: BLE001 — vobject raises bare errors on bad cards
                    yield number, ["!"]  # a row too short to map: skipped with its number
                    return
                yield number, _card_cells(card)


VCARD_HEADER = ["FN", "N:prefix", "N:given", "N:family", "ORG", "TITLE", "EMAIL:1",
                "EMAIL:2", "TEL:work", "TEL:cell", "TEL:home", "TEL:fax", "TEL:other",
                "ADR:street", "ADR:city", "ADR:region", "ADR:code", "ADR:country", "BDAY",
                "NOTE", "URL", "UID"]


def _card_cells(card) -> list[str]:
    """A card as cells under VCARD_HEADER: what the card says, no field names of ours
    (the vcard source, sources/vcard.yaml, maps them)."""
    def values(name):
        return card.contents.get(name.lower(), [])

    def kinds(line):
        return {t.strip().lower() for v in line.params.get("TYPE", []) for t in str(v).split(",")}

    cells = dict.fromkeys(VCARD_HEADER, "")
    fn = values("FN")
    cells["FN"] = str(fn[0].value) if fn else ""
    n = values("N")
    if n and hasattr(n[0].value, "family"):
        cells["N:prefix"] = str(n[0].value.prefix or "")
        cells["N:given"] = str(n[0].value.given or "")
        cells["N:family"] = str(n[0].value.family or "")
    org = values("ORG")
    if org:
        value = org[0].value
        cells["ORG"] = str(value[0] if isinstance(value, list) and value else value or "")
    for name in ("TITLE", "NOTE", "URL", "UID", "BDAY"):
        found = values(name)
        cells[name] = str(found[0].value) if found else ""
    for index, line in enumerate(values("EMAIL")[:2], start=1):
        cells[f"EMAIL:{index}"] = str(line.value)
    for line in values("TEL"):
        kind = next((k for k in ("cell", "fax", "home", "work") if k in kinds(line)), "other")
        key = f"TEL:{kind}"
        cells[key] = cells[key] or str(line.value)
    adr = values("ADR")
    if adr and hasattr(adr[0].value, "street"):
        a = adr[0].value
        for key, part in (("street", a.street), ("city", a.city), ("region", a.region),
                          ("code", a.code), ("country", a.country)):
            cells[f"ADR:{key}"] = str(part if not isinstance(part, list) else "\n".join(part))
    return [cells[h] for h in VCARD_HEADER]


def _text_of(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else \
            value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        text = format(Decimal(repr(value)).normalize(), "f")
        return text.removesuffix(".0")
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def open_table(path: Path, max_bytes: int = MAX_BYTES) -> Table:
    """The file at ``path`` as a ``Table`` (its header read), or ``FileProblem``."""
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise FileProblem(Message(N_("The file is %(size)s MB; files up to %(limit)s MB "
                                     "can be imported."), size=round(size / 2**20, 1),
                                  limit=round(max_bytes / 2**20)))
    if size == 0:
        raise FileProblem(Message(N_("The file is empty.")))
    with open(path, "rb") as raw:
        sample = raw.read(SAMPLE_BYTES)
    if sample.startswith(b"PK\x03\x04"):
        table = _open_xlsx(path)
    elif sample.removeprefix(codecs.BOM_UTF8).lstrip()[:11].upper() == b"BEGIN:VCARD":
        table = Table(path, "vcard", list(VCARD_HEADER))
    else:
        table = _open_csv(path, sample)
    if not any(h.strip() for h in table.header):
        raise FileProblem(Message(N_("The file has no header row.")))
    return table


def _open_xlsx(path: Path) -> Table:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException
    try:
        book = openpyxl.load_workbook(open(path, "rb"), read_only=True, data_only=True)  # noqa: SIM115 (closed with the book)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, InvalidFileException) as exc:
        raise FileProblem(Message(N_("The file is not a spreadsheet that can be read "
                                     "(%(reason)s)."), reason=str(exc)[:200])) from None
    try:
        rows = book.worksheets[0].iter_rows(values_only=True, max_row=1)
        header = [_text_of(v).strip() for v in next(rows, ())]
    finally:
        book.close()
    while header and not header[-1]:
        header.pop()
    return Table(path, "xlsx", header)


def _open_csv(path: Path, sample: bytes) -> Table:
    if b"\x00" in sample and not sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileProblem(Message(N_("The file is not a text (CSV) file or a spreadsheet.")))
    encoding = _encoding(sample)
    if encoding.startswith(("utf_16", "utf-16")):
        raise FileProblem(Message(N_("The file is UTF-16 text; save it as UTF-8 CSV.")))
    text = sample.removeprefix(codecs.BOM_UTF8).decode(encoding, errors="replace")
    if len(sample) == SAMPLE_BYTES:  # a cut last line would confuse the sniffer
        text = text[:text.rfind("\n") + 1] or text
    table = Table(path, "csv", [], encoding=encoding, delimiter=_delimiter(text))
    first = next(csv.reader(io.StringIO(text), delimiter=table.delimiter), None)
    if first is None:
        raise FileProblem(Message(N_("The file has no header row.")))
    table.header = [unescape(h).strip() for h in first]
    return table


def _encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8"
    utf8 = other = 0  # lines with non-ASCII bytes that are, and are not, UTF-8
    for line in sample.split(b"\n")[:-1] if len(sample) == SAMPLE_BYTES else sample.split(b"\n"):
        if not line.isascii():
            try:
                line.decode("utf-8")
                utf8 += 1
            except UnicodeDecodeError:
                other += 1
    if utf8 >= other and (utf8 or not other):  # a mixed file: its odd lines alone differ
        return "utf-8"
    matches = list(from_bytes(sample))
    if not matches:
        raise FileProblem(Message(N_("The file is not a text (CSV) file or a spreadsheet.")))
    best = matches[0]
    # Short samples fit several code pages equally; of those, prefer what spreadsheets
    # write (Windows-1252, then another Windows page) to the old DOS pages
    plausible = [m for m in matches if m.chaos <= best.chaos + 0.05]
    for wanted in ("cp1252", "cp125"):
        for m in plausible:
            found = next((c for c in m.could_be_from_charset if c.startswith(wanted)), None)
            if found:
                return found
    return best.encoding


def _delimiter(text: str) -> str:
    head = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(head, delimiters=DELIMITERS).delimiter
    except csv.Error:
        first = head.split("\n", 1)[0]
        return max(DELIMITERS, key=first.count) if any(d in first for d in DELIMITERS) else ","
