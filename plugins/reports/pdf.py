"""A report as a PDF: its table — a grouped report's groups, sub-totals and grand total, or a
list report's rows and totals — as the report page shows them, drawn with fpdf2.

``to_pdf(site, definition, user, fmt, title) -> bytes``. The rows are export.table()'s
(the same header, the same rows, the same "Subtotal"/"Total" labels as the CSV and XLSX),
each figure written as the reader reads it: ``fmt`` formats numbers, and a column of
amounts in one currency shows that currency (the rows come from the run's own cells, so a
sum over several currencies stays a plain number, as on the page).

- **Fonts**: DejaVu Sans (regular, bold) with WenQuanYi Micro Hei as fallback for what
  DejaVu lacks (Chinese, Japanese, Korean), through ``core.apps.documents.fonts`` — parsed
  once per process, subsets cut once per set of glyphs. A character neither font has is
  drawn as "?" rather than failing a scheduled mail at 7 in the morning.
- **Layout**: A4, landscape when the columns do not fit upright (more than ``PORTRAIT_MAX``
  columns or their natural widths wider than the page); each column as wide as its widest
  text (measured on the first ``MEASURED`` rows), scaled to the page; a cell too long for
  its column is cut with "…". The header row (bold, shaded) is repeated at the top of each
  page; sub-total and total rows are bold. Numbers are right-aligned. Footer: the title, the
  time it was made (reader's time zone) and "page n of m".
- At most ``MAX_ROWS`` rows (a list report can hold hundreds of thousands): the PDF then
  says how many were left out and that the XLSX export has them all.
"""
from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterator
from decimal import Decimal

from core.apps.documents.fonts import BUILTIN_FAMILIES, SharedFontsPDF
from plugins.reports import export

PORTRAIT_MAX = 6
MAX_ROWS = 10_000
MEASURED = 200
FONT_SIZE, HEADER_SIZE, LINE = 8.5, 8.5, 5.2  # pt, pt, mm
MARGIN = 12.0  # mm
PADDING = 1.2  # mm each side of a cell's text
MIN_WIDTH = 14.0  # mm
ELLIPSIS = "…"
PAGES = "{nb}"


Row = tuple[list[str], list[bool], bool]  # the cells' texts, which are numbers, a total?


def texts(site, definition, user, fmt) -> tuple[list[str], Iterator[Row]]:
    """export.cells()'s header and rows, each cell as the text the report page shows."""
    header, rows = export.cells(site, definition, user, fmt)
    return header, (([c.text for c in row], [_numeric(c) for c in row], total)
                    for row, total in rows)


def _numeric(cell) -> bool:
    return isinstance(cell.value, int | float | Decimal) and not isinstance(cell.value, bool)


class _Document(SharedFontsPDF):
    def __init__(self, landscape: bool, title: str, made: str):
        super().__init__(orientation="L" if landscape else "P", unit="mm", format="A4")
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(False, MARGIN)
        self.c_margin = PADDING
        self.set_creator("CRBM")
        self.set_title(title)
        self.alias_nb_pages(PAGES)
        self.title_text, self.made = title, made
        dejavu = BUILTIN_FAMILIES["dejavu"]
        self.add_font_file(dejavu["regular"], 0, "dejavu", "")
        self.add_font_file(dejavu["bold"], 0, "dejavuB", "B")
        self.fallback: list[str] = []
        cjk = BUILTIN_FAMILIES["wenquanyi"]["regular"]
        if cjk.is_file():
            self.add_font_file(cjk, 0, "wenquanyi", "")
            self.set_fallback_fonts(["wenquanyi"], exact_match=False)
            self.fallback = list(self._fallback_font_ids)
        self.header_row: tuple | None = None  # (texts, widths) drawn atop each page
        self.header_numeric: list[bool] = []  # its columns of numbers, right-aligned too

    def drawable(self, text: str) -> str:
        """``text`` with what no font has as "?" (control characters dropped)."""
        cmap = self.current_font.cmap
        if text.isascii() and text.isprintable():
            return text
        out = []
        for char in text:
            if unicodedata.category(char) in ("Cc", "Cf"):  # invisible: dropped
                continue
            if ord(char) in cmap or any(ord(char) in self.fonts[f].cmap for f in self.fallback):
                out.append(char)
            else:
                out.append("?")
        return "".join(out)

    def fitted(self, text: str, width: float) -> str:
        """``text`` cut with "…" to fit ``width`` mm (its padding taken off)."""
        room = width - 2 * PADDING
        if self.get_string_width(text) <= room:
            return text
        low, high = 0, len(text)
        while low < high:  # the longest prefix that fits with the ellipsis
            mid = (low + high + 1) // 2
            if self.get_string_width(text[:mid] + ELLIPSIS) <= room:
                low = mid
            else:
                high = mid - 1
        return text[:low].rstrip() + ELLIPSIS

    def header(self):
        self.set_font("dejavu", "B", 12)
        self.cell(0, 7, self.drawable(self.title_text), new_x="LMARGIN", new_y="NEXT")
        self.ln(1)
        if self.header_row is not None:
            self.row(*self.header_row, bold=True, fill=True)

    def footer(self):
        self.set_y(-MARGIN + 2)
        self.set_font("dejavu", "", 7)
        self.set_text_color(110)
        self.cell(0, 4, self.drawable(f"{self.title_text} · {self.made}"), align="L")
        self.set_x(self.l_margin)
        self.cell(0, 4, f"{self.page_no()} / {PAGES}", align="R")
        self.set_text_color(0)

    def row(self, cells: list[str], widths: list[float], numeric: list[bool] | None = None,
            bold: bool = False, fill: bool = False) -> None:
        if self.get_y() + LINE > self.h - MARGIN - 1:
            self.add_page()
        self.set_font("dejavu", "B" if bold else "", HEADER_SIZE if fill else FONT_SIZE)
        if fill:
            self.set_fill_color(232, 236, 241)
        y = self.get_y()
        x = self.l_margin
        for i, (text, width) in enumerate(zip(cells, widths, strict=True)):
            self.set_xy(x, y)
            text = self.fitted(self.drawable(text), width)
            right = bool(numeric and numeric[i]) or (fill and self.header_numeric[i])
            self.cell(width, LINE, text, border="B", align="R" if right else "L", fill=fill)
            if self.fallback:  # fpdf2 may have switched to the fallback font mid-text
                self.current_font_is_set_on_page = False
            x += width
        self.set_xy(self.l_margin, y + LINE)


def to_pdf(site, definition, user, fmt, title: str) -> bytes:
    """The report's table as a PDF (the module docstring)."""
    header, rows = texts(site, definition, user, fmt)
    head: list[Row] = []
    for item in rows:
        head.append(item)
        if len(head) >= MEASURED:
            break
    landscape_guess = len(header) > PORTRAIT_MAX
    made = fmt.datetime(dt.datetime.now(dt.UTC))
    doc = _Document(landscape_guess, title, made)
    widths = _widths(doc, header, head)
    usable = doc.w - 2 * MARGIN
    if not landscape_guess and sum(widths) > usable:
        doc = _Document(True, title, made)
        widths = _widths(doc, header, head)
        usable = doc.w - 2 * MARGIN
    widths = _scaled(widths, usable)
    numeric_columns = [any(r[1][i] for r in head) for i in range(len(header))]
    doc.header_numeric = numeric_columns
    doc.header_row = (header, widths)
    doc.add_page()
    shown = 0
    left_out = 0
    for texts_, numeric, total in _chain(head, rows):
        if shown >= MAX_ROWS:
            left_out += 1
            continue
        doc.row(texts_, widths, numeric, bold=total)
        shown += 1
    if left_out:
        doc.header_row = None
        doc.ln(3)
        doc.set_font("dejavu", "", FONT_SIZE)
        doc.multi_cell(0, LINE, doc.drawable(fmt.gettext(
            "The first %(shown)s rows are shown; %(more)s more are in the Excel export.")
            % {"shown": fmt.number(shown), "more": fmt.number(left_out)}))
    if not shown:
        doc.set_font("dejavu", "", FONT_SIZE)
        doc.cell(0, LINE * 2, doc.drawable(fmt.gettext("No records.")))
    return bytes(doc.output())


def _chain(head, rows):
    yield from head
    yield from rows


def _widths(doc: _Document, header: list[str], head: list) -> list[float]:
    """Each column's natural width: its widest text among the header and the first rows."""
    widths = []
    for i, name in enumerate(header):
        doc.set_font("dejavu", "B", HEADER_SIZE)
        widest = doc.get_string_width(doc.drawable(name))
        doc.set_font("dejavu", "", FONT_SIZE)
        for texts_, _numeric, _total in head:
            widest = max(widest, doc.get_string_width(doc.drawable(texts_[i])))
        widths.append(max(MIN_WIDTH, widest + 2 * PADDING + 0.5))
    return widths


def _scaled(widths: list[float], usable: float) -> list[float]:
    """Widths that fill the page: narrower than the page, each column as wide as its text;
    wider, every column shrunk in proportion (never under MIN_WIDTH while they fit)."""
    total = sum(widths)
    if total <= usable:
        return widths
    floor = min(MIN_WIDTH, usable / len(widths))
    extra = [max(w - floor, 0) for w in widths]
    room = usable - floor * len(widths)
    share = sum(extra) or 1
    return [floor + e * room / share for e in extra]
