"""PDF documents drawn from PDF forms with fpdf2.

A form (core/apps/documents/forms.py: read, checked and compiled once) is rendered against a
*context*: a dict of values already formatted for display. ``render(form, context)`` gives
the PDF's bytes; the kernel knows nothing about what the documents are: it draws any form
with any context.

The page's header and footer are drawn on every page; the body flows top to bottom and
breaks pages itself (a table repeats its heading row, a long text continues). Each element
is laid out first (its height), then drawn at a y.

Speed matters (documents are made in bulk): fonts are parsed and cut once per process
(core/apps/documents/fonts.py), decoded images are kept by (file, modification time), and
plain text lines skip fpdf2's per-call checks (``_Document._text``). A character no font
has stops the document (PdfTextError) rather than leaving a blank.
"""
from __future__ import annotations

import copy
import logging
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from fpdf.drawing_primitives import convert_to_device_color
from fpdf.enums import MethodReturnValue, TextMode
from fpdf.image_parsing import preload_image

from core.apps.documents.fonts import BUILTIN_FALLBACK, SharedFontsPDF
from core.apps.documents.forms import TABLES, PdfForm, PdfFormError, PdfTextError
from core.kernel.errors import MetadataProblem

log = logging.getLogger(__name__)

PAGE_SIZES = {"A4": (210.0, 297.0), "Letter": (215.9, 279.4), "Legal": (215.9, 355.6)}
DEFAULT_MARGINS = {"top": 15.0, "right": 15.0, "bottom": 22.0, "left": 15.0}
DEFAULT_STYLE = {"font": "dejavu", "size": 9.0, "style": "", "colour": "#000000",
                 "line_spacing": 1.25}
PT = 25.4 / 72  # mm per point
STYLE_FILES = {"": "regular", "B": "bold", "I": "italic", "BI": "bold_italic"}
NEAREST_STYLES = {"": ("",), "B": ("B", ""), "I": ("I", ""), "BI": ("BI", "B", "I", "")}
# fpdf2 reserves the width of one "0" per alias character for the page count: a one-character
# alias (from Unicode's private use area: never in real text) keeps "Page 1 of 2" tight
PAGES_ALIAS = "\ue000"


def render(form: PdfForm, context: Mapping) -> bytes:
    """The PDF of ``form`` filled from ``context`` (display-ready values). Raises
    PdfFormError naming the element at fault when something cannot be drawn, PdfTextError
    when the context holds a character no font has."""
    document = _Document(form, context)
    document.build()
    try:
        return bytes(document.output())
    except (PdfFormError, PdfTextError):
        raise
    except Exception as exc:
        log.debug("PDF output failed", exc_info=True)
        raise PdfFormError([MetadataProblem(str(form.source), "$",
                                            f"cannot write the PDF: {exc}")]) from exc


# decoded images shared between documents: path -> (its mtime, fpdf2's image info)
_IMAGES: dict[str, tuple[int, Any]] = {}
_WARNED: set[tuple[Path, str]] = set()  # (form, family) whose missing file was logged


def _colour(value: str | None) -> tuple[int, int, int] | None:
    if not value:
        return None
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


# -- drawing -------------------------------------------------------------------------------

@dataclass
class _Style:
    family: str
    style: str
    size: float
    colour: tuple | None
    fill: tuple | None
    border: dict | None
    line_spacing: float
    # the document's font style for it and fpdf2's colour: set by _Document.use()
    chosen: tuple | None = field(default=None, compare=False, repr=False)

    @property
    def line_height(self) -> float:
        return self.size * PT * self.line_spacing


@dataclass
class _Block:
    """Something laid out and ready to draw at a y: its height, and how to draw it."""

    height: float
    draw: Callable[[float], None]
    lines: list | None = None  # text lines, for a text block that may continue on a new page
    link: str = ""


class _Document(SharedFontsPDF):
    """One document being drawn: fpdf2 plus the form's elements. fpdf2's own page breaking
    is off; the body breaks pages itself (tables repeat their heading row)."""

    def __init__(self, form: PdfForm, context: Mapping):
        page = form.definition.get("page", {})
        size = page.get("size", "A4")
        size = PAGE_SIZES[size] if isinstance(size, str) else tuple(size)
        super().__init__(orientation="L" if page.get("orientation") == "landscape" else "P",
                         unit="mm", format=size)
        margins = {**DEFAULT_MARGINS, **page.get("margins", {})}
        self.set_margins(margins["left"], margins["top"], margins["right"])
        self.set_auto_page_break(False, margins["bottom"])
        self.c_margin = 0
        self.set_creator("CRBM")
        self.alias_nb_pages(PAGES_ALIAS)
        self.form, self.context = form, context
        self.body_top = self.t_margin
        self._styles: dict[str, tuple[str, ...]] = {}  # family -> styles it has
        self._used: tuple | None = None  # the style use() set last, and fpdf2's state then
        self._widths: dict[tuple, float] = {}  # (font, size, text) -> width (text_width)
        self._colour: tuple = (None, "")  # fpdf2's text colour and its operator (_text)
        self.base = self._style_of(DEFAULT_STYLE, form.definition.get("default", {}))
        chain = dict.fromkeys([*form.definition.get("fallback", []), *BUILTIN_FALLBACK])
        fallback = [name for name in chain if self._add_family(name, fallback=True)]
        self.fallback_fonts: list[str] = []  # fpdf2's ids of the fallback fonts, when any
        if fallback:
            self.set_fallback_fonts(fallback, exact_match=False)
            self.fallback_fonts = list(self._fallback_font_ids)

    # -- fonts -----------------------------------------------------------------------------
    def _add_family(self, family: str, fallback: bool = False) -> bool:
        """Register the family's styles that have a file; False if it has none."""
        if family in self._styles:
            return bool(self._styles[family])
        files = self.form.families()[family]
        index = files.get("collection_index", 0)
        styles = []
        for style, key in STYLE_FILES.items():
            if key not in files:
                continue
            path = self.form.font_path(files[key])
            if not path.is_file():
                if key == "regular" and not fallback:
                    raise PdfFormError([MetadataProblem(str(self.form.source),
                                                        f"$.fonts.{family}.regular",
                                                        f"font file not found: {path}")])
                continue
            self.add_font_file(path, index, f"{family}{style}", style)
            styles.append(style)
        if fallback and not styles and (self.form.source, family) not in _WARNED:
            _WARNED.add((self.form.source, family))  # once, not at every document
            log.warning("PDF form %s: fallback font family %s has no file on this machine",
                        self.form.source, family)
        self._styles[family] = tuple(styles)
        return bool(styles)

    def use(self, style: _Style) -> None:
        """Select the style's font, size and colour (the nearest style the family has).
        Nothing to do when that style is still the one in use (most lines of a table)."""
        used = self._used
        if used is not None and used[0] is style and used[1] is self.current_font \
                and used[2] == self.font_size_pt and used[3] is self.text_color:
            return
        chosen = style.chosen
        if chosen is None:
            if style.family not in self._styles:
                self._add_family(style.family)
            have = self._styles[style.family]
            if not have:
                raise PdfFormError([MetadataProblem(str(self.form.source),
                                                    f"$.fonts.{style.family}",
                                                    "no file of this font family is on this "
                                                    "machine")])
            emphasis = next((s for s in NEAREST_STYLES[style.style] if s in have), have[0])
            chosen = style.chosen = (emphasis,
                                     convert_to_device_color(*(style.colour or (0, 0, 0))))
        self.set_font(style.family, chosen[0], style.size)
        self.text_color = chosen[1]  # what set_text_color() sets, converted once per style
        self._used = (style, self.current_font, self.font_size_pt, self.text_color)

    # -- styles ----------------------------------------------------------------------------
    def _style_of(self, base, *overrides: Mapping | None) -> _Style:
        """``base`` (a _Style or a style mapping) with each override's keys on top."""
        if isinstance(base, _Style):
            merged = {"font": base.family, "style": base.style, "size": base.size,
                      "colour": base.colour, "fill": None, "border": None,
                      "line_spacing": base.line_spacing}
        else:
            merged = {**base, "colour": _colour(base.get("colour"))}
        for override in overrides:
            for key in ("font", "size", "style", "colour", "fill", "border", "line_spacing"):
                if override and key in override:
                    value = override[key]
                    merged[key] = _colour(value) if key in ("colour", "fill") else value
        return _Style(merged["font"], merged.get("style", ""), float(merged["size"]),
                      merged.get("colour"), merged.get("fill"), merged.get("border"),
                      float(merged.get("line_spacing", 1.25)))

    def _box(self, x, y, w, h, fill, border, radius: float = 0) -> None:
        """Fill and border of a box (the border's sides as asked)."""
        if fill is not None:
            self.set_fill_color(*fill)
        if border is not None:
            self.set_draw_color(*(_colour(border.get("colour")) or (0, 0, 0)))
            self.set_line_width(border.get("width", 0.2))
        sides = border.get("sides", "LTRB") if border is not None else ""
        if fill is not None or len(sides) == 4:
            style = ("F" if fill is not None else "") + ("D" if len(sides) == 4 else "")
            self.rect(x, y, w, h, style=style, round_corners=radius > 0,
                      corner_radius=radius)
        if 0 < len(sides) < 4:
            for side in sides:
                if side == "T":
                    self.line(x, y, x + w, y)
                elif side == "B":
                    self.line(x, y + h, x + w, y + h)
                elif side == "L":
                    self.line(x, y, x, y + h)
                else:
                    self.line(x + w, y, x + w, y + h)

    def wrap(self, text: str, width: float) -> list[str]:
        """``text`` as the lines it takes in ``width`` mm with the current font; newlines in
        it are kept."""
        lines: list[str] = []
        for paragraph in text.split("\n"):
            paragraph = paragraph.rstrip()
            if not paragraph or self.text_width(paragraph) <= width:
                lines.append(paragraph)
            else:
                lines += self.multi_cell(width, 1, paragraph, dry_run=True,
                                         output=MethodReturnValue.LINES)
        return lines

    def text_width(self, text: str) -> float:
        """Width in mm of ``text`` in the current font; straight from the font's widths
        unless fallback fonts take part. Kept for the document: a cell is measured to lay
        its row out, then again to align it."""
        key = (self.current_font.fontkey, self.font_size_pt, text)
        known = self._widths.get(key)
        if known is not None:  # its font has every character (no fallback: see below)
            if self.fallback_fonts:
                self._fallback_font_ids = []
            return known
        if self._fallback_if_needed(text):
            return self.get_string_width(text)
        width = self._widths[key] = \
            self.current_font.get_text_width(text, self.font_size_pt, None)[1] / self.k
        return width

    def _print_lines(self, lines, x, y, w, style: _Style, align, link: str = "") -> None:
        self.use(style)
        height = style.line_height
        for line in lines:
            if line:
                self._line(line, x, y, w, height, align, link)
            y += height

    def _line(self, line: str, x, y, w, height, align, link) -> None:
        """One line of text in a w x height box. Plain text (no link, no page count, no
        fallback font) goes straight to ``text()``: ``cell()`` costs several times more."""
        fallback = self._fallback_if_needed(line.replace(PAGES_ALIAS, ""))
        if link or PAGES_ALIAS in line or fallback:
            self.set_xy(x, y)
            self.cell(w, height, line, align=align, link=link)
            if self.fallback_fonts:
                # fpdf2 2.8 may switch to the fallback font inside the text object, then
                # believe the page is still on the main font: make it name it again
                self.current_font_is_set_on_page = False
            return
        if align != "L":
            free = w - self.text_width(line)
            x += free if align == "R" else free / 2
        self._text(x, y + 0.5 * height + 0.3 * self.font_size, line)

    def _text(self, x: float, y: float, text: str) -> None:
        """fpdf2 2.8's ``text()``, the same operators, for plain filled text in an embedded
        font (anything else goes to ``text()``): without its checks and wrappers, and with
        the colour operator written once per colour. A table's lines are most of the
        drawing time."""
        if self.text_mode != TextMode.FILL or self.underline or self.strikethrough \
                or self._record_text_quad_points or not self.page or not self.is_ttf_font:
            self.text(x, y, text)
            return
        if not self.current_font_is_set_on_page:
            self._out(self._set_font_for_page(self.current_font, self.font_size_pt))
        out = (f"BT {x * self.k:.2f} {(self.h - y) * self.k:.2f} Td "
               f"{self.current_font.encode_text(text)} ET")
        colour = self.text_color
        if self.fill_color != colour:
            if self._colour[0] is not colour:
                self._colour = (colour, colour.serialize().lower())
            out = f"q {self._colour[1]} {out} Q"
        self._out(out)

    def _fallback_if_needed(self, text: str) -> bool:
        """Turn fpdf2's fallback fonts on only for text the current font cannot draw: its
        character-by-character search for them is a quarter of the drawing time. Text
        that no font has a glyph for raises PdfTextError (fpdf2 would leave it blank)."""
        font_file = self.font_files.get(self.current_font.fontkey)
        if text.isascii() and font_file is not None and font_file.covers_ascii:
            lacking = None
        else:
            lacking = set(map(ord, text)) - self.current_font.cmap.keys()
            if lacking:
                self._check_printable(lacking, text)
        if not self.fallback_fonts:
            return False
        self._fallback_font_ids = self.fallback_fonts if lacking else []
        return bool(lacking)

    def _check_printable(self, lacking: set[int], text: str) -> None:
        """Raise PdfTextError for the characters of ``lacking`` no fallback font has
        (invisible control and format characters aside)."""
        missing = sorted(c for c in lacking
                         if unicodedata.category(chr(c)) not in ("Cc", "Cf")
                         and not any(c in self.fonts[f].cmap for f in self.fallback_fonts))
        if missing:
            characters = [chr(c) for c in missing]
            raise PdfTextError(characters, text, self._field_of(characters[0]))

    def _field_of(self, character: str) -> str:
        """Where a character comes from: the path of the first context value holding it
        ("account.name"), else the form itself."""
        stack = [("", self.context)]
        while stack:
            path, value = stack.pop(0)
            if isinstance(value, str):
                if character in value:
                    return path
            elif isinstance(value, Mapping):
                stack += [(f"{path}.{k}" if path else str(k), v) for k, v in value.items()]
            elif isinstance(value, (list, tuple)):
                stack += [(f"{path}[{i}]", v) for i, v in enumerate(value)]
        return f"PDF form {self.form.name}"

    # -- pages -----------------------------------------------------------------------------
    @property
    def content_width(self) -> float:
        return self.w - self.l_margin - self.r_margin

    def header(self) -> None:
        context = {**self.context, "page": self.page_no()}
        bottom = self._band(self.form.definition.get("header", []), context, self.t_margin)
        self.body_top = max(self.t_margin, bottom)
        self.y = self.body_top

    def footer(self) -> None:
        context = {**self.context, "page": self.page_no()}
        self._band(self.form.definition.get("footer", []), context, self.page_break_trigger)

    def _band(self, elements, context, top: float) -> float:
        """Header or footer: elements flowing from ``top``, never breaking the page."""
        y = top
        for element in elements:
            if not self._visible(element, context):
                continue
            block = self._guarded(element, self._layout, element, context)
            at = element.get("y", y)
            self._guarded(element, block.draw, at)
            y = max(y, at + block.height)
        return y

    def room(self) -> float:
        """How much of the body is left on this page, in mm."""
        return self.page_break_trigger - self.y

    def at_top(self) -> bool:
        """Nothing drawn in the body of this page yet (a new page would not help)."""
        return self.y <= self.body_top + 0.01

    def new_page(self) -> None:
        self.add_page()  # header() puts y at the body's top

    def build(self) -> None:
        self.add_page()
        for element in self.form.definition["body"]:
            if not self._visible(element, self.context):
                continue
            if element["type"] in TABLES:
                self._guarded(element, _Table(self, element).draw)
                continue
            block = self._guarded(element, self._layout, element, self.context)
            cursor = self.y  # drawing moves fpdf2's cursor: the flow goes on from here
            if "y" in element:  # placed on the page; the flow goes on under it
                self._guarded(element, block.draw, element["y"])
                self.y = max(cursor, element["y"] + block.height)
                continue
            if element["type"] == "spacer" and block.height > self.room():
                self.new_page()  # space at the foot of a page is not carried over
                continue
            if block.height > self.room() and not self.at_top():
                # a long text starts here if a few of its lines fit; anything else moves on
                line = block.height / max(len(block.lines or ()), 1)
                if not block.lines or self.room() < 3 * line:
                    self.new_page()
            if block.lines and block.height > self.room():
                self._guarded(element, self._flow_text, element, block)
                continue
            top = self.y
            self._guarded(element, block.draw, top)
            self.y = top + block.height

    def _guarded(self, element, action, *args):
        """Run a drawing step; any failure names the element it happened in."""
        try:
            return action(*args)
        except (PdfFormError, PdfTextError):
            raise
        except Exception as exc:  # Jinja (sandbox, filters), fpdf2 (no room for a character)
            log.debug("PDF form element failed", exc_info=True)
            reason = exc.message if isinstance(exc, jinja2.TemplateError) else str(exc)
            raise PdfFormError([MetadataProblem(
                str(self.form.source), self.form.where(element),
                f"cannot draw this {element.get('type', 'element')}: "
                f"{type(exc).__name__}: {reason}")]) from exc

    def _visible(self, node: Mapping, context: Mapping) -> bool:
        condition = node.get("visible_if")
        if condition is None:
            return True
        try:
            return bool(self.form.value(condition, context))
        except Exception as exc:
            raise PdfFormError([MetadataProblem(str(self.form.source), self.form.where(node),
                                                f"visible_if failed: {type(exc).__name__}: "
                                                f"{exc}")]) from exc

    # -- elements --------------------------------------------------------------------------
    def _layout(self, element: dict, context: Mapping, frame=None) -> _Block:
        """Lay the element out in ``frame`` (x, width: the page's content, or a container's)
        without drawing it yet: containers and page breaks need its height first."""
        return getattr(self, f"_layout_{element['type']}")(element, context, frame)

    def _frame(self, element: dict, frame=None) -> tuple[float, float]:
        left, width = frame or (self.l_margin, self.content_width)
        x = element.get("x", left)
        return x, element.get("w", max(left + width - x, 1))

    def _text_block(self, element, lines: list[str], style: _Style, x, w, pad,
                    link: str = "") -> _Block:
        height = max(element.get("h", 0), len(lines) * style.line_height + 2 * pad)
        align = element.get("align", "L")

        def draw(y):
            self._box(x, y, w, height, style.fill, style.border)
            self._print_lines(lines, x + pad, y + pad, w - 2 * pad, style, align, link)
        return _Block(height, draw, lines, link)

    def _flow_text(self, element, block: _Block) -> None:
        """A text too long for what is left of the page: as many lines as fit, then the rest
        on the next page(s)."""
        x, w = self._frame(element)
        style = self._style_of(self.base, element)
        pad = element.get("padding", 0)
        lines = block.lines
        while lines:
            fit = max(1, int((self.room() - 2 * pad) // style.line_height))
            part, lines = lines[:fit], lines[fit:]
            piece = self._text_block({**element, "h": 0}, part, style, x, w, pad, block.link)
            top = self.y
            piece.draw(top)
            self.y = top + piece.height
            if lines:
                self.new_page()

    def _layout_text(self, element, context, frame=None) -> _Block:
        x, w = self._frame(element, frame)
        style = self._style_of(self.base, element)
        pad = element.get("padding", 0)
        text = self.form.text(element["text"], context)
        self.use(style)
        lines = self.wrap(text, w - 2 * pad) if text.strip() else []
        link = self.form.text(element.get("link"), context).strip()
        return self._text_block(element, lines, style, x, w, pad, link)

    def _layout_page_number(self, element, context, frame=None) -> _Block:
        template = element.get("text", "Page {page} of {pages}")
        text = self.form.text(template, context)
        text = text.replace("{page}", str(self.page_no())).replace("{pages}", PAGES_ALIAS)
        x, w = self._frame(element, frame)
        style = self._style_of(self.base, element)
        return self._text_block(element, [text], style, x, w, element.get("padding", 0))

    def _layout_field(self, element, context, frame=None) -> _Block:
        value = self.form.text(element["value"], context).strip()
        if not value and element.get("hide_empty", True):
            return _Block(0, lambda y: None)
        label = self.form.text(element.get("label"), context).strip()
        x, w = self._frame(element, frame)
        style = self._style_of(self.base, element)
        label_style = self._style_of(style, element.get("label_style"))
        label_style.fill = label_style.border = None
        pad = element.get("padding", 0)
        inner = w - 2 * pad
        stacked = element.get("layout") == "stacked"
        label_w = inner if stacked else element.get("label_w", inner * 0.45)
        value_w = inner if stacked else inner - label_w
        self.use(label_style)
        label_lines = self.wrap(label, label_w) if label else []
        self.use(style)
        value_lines = self.wrap(value, value_w)
        label_h = len(label_lines) * label_style.line_height
        value_h = len(value_lines) * style.line_height
        content = label_h + value_h if stacked else max(label_h, value_h)
        height = max(element.get("h", 0), content + 2 * pad)
        align, label_align = element.get("align", "L"), element.get("label_align", "L")

        def draw(y):
            self._box(x, y, w, height, style.fill, style.border)
            self._print_lines(label_lines, x + pad, y + pad, label_w, label_style, label_align)
            if stacked:
                self._print_lines(value_lines, x + pad, y + pad + label_h, value_w, style, align)
            else:
                self._print_lines(value_lines, x + pad + label_w, y + pad, value_w, style, align)
        return _Block(height, draw)

    def _layout_address(self, element, context, frame=None) -> _Block:
        lines = []
        for template in element["lines"]:
            lines += [line.strip() for line in self.form.text(template, context).split("\n")]
        lines = [line for line in lines if line]
        if not lines:
            return _Block(0, lambda y: None)
        x, w = self._frame(element, frame)
        style = self._style_of(self.base, element)
        title_style = self._style_of(style, {"style": "B"}, element.get("title_style"))
        title_style.fill = title_style.border = None
        pad = element.get("padding", 0)
        title = self.form.text(element.get("title"), context).strip()
        self.use(title_style)
        title_lines = self.wrap(title, w - 2 * pad) if title else []
        self.use(style)
        body = [wrapped for line in lines for wrapped in self.wrap(line, w - 2 * pad)]
        title_h = len(title_lines) * title_style.line_height
        if title_lines:
            title_h += 0.25 * style.line_height
        height = max(element.get("h", 0), title_h + len(body) * style.line_height + 2 * pad)
        align = element.get("align", "L")

        def draw(y):
            self._box(x, y, w, height, style.fill, style.border)
            self._print_lines(title_lines, x + pad, y + pad, w - 2 * pad, title_style, align)
            self._print_lines(body, x + pad, y + pad + title_h, w - 2 * pad, style, align)
        return _Block(height, draw)

    def _layout_image(self, element, context, frame=None) -> _Block:
        source = self.form.text(element["src"], context).strip()
        if not source:
            return _Block(0, lambda y: None)
        path = Path(source)
        if not path.is_absolute():
            path = self.form.folder / path
        if not path.is_file():
            raise PdfFormError([MetadataProblem(str(self.form.source), self.form.where(element),
                                                f"image file not found: {path}")])
        info = self._image_info(str(path))
        x, _ = self._frame(element, frame)
        natural_w, natural_h = info["w"] * 25.4 / 96, info["h"] * 25.4 / 96  # 96 dpi
        box_w = element.get("w", natural_w)
        box_h = element.get("h", natural_h if "w" not in element
                            else box_w * natural_h / natural_w)
        scale = min(box_w / natural_w, box_h / natural_h)
        drawn_w, drawn_h = natural_w * scale, natural_h * scale
        left = {"L": x, "C": x + (box_w - drawn_w) / 2, "R": x + box_w - drawn_w}[
            element.get("align", "L")]

        def draw(y):
            self.image(str(path), left, y, drawn_w, drawn_h)
        return _Block(max(element.get("h", 0), drawn_h), draw)

    def _image_info(self, path: str):
        """The decoded image, shared between documents while the file is unchanged."""
        known = self.image_cache.images.get(path)
        if known is not None:
            return known
        mtime = Path(path).stat().st_mtime_ns
        cached = _IMAGES.get(path)
        if cached is not None and cached[0] == mtime:
            info = copy.copy(cached[1])
            info["i"], info["usages"] = len(self.image_cache.images) + 1, 0
            self.image_cache.images[path] = info
            return info
        _, _, info = preload_image(self.image_cache, path)
        if path.lower().endswith(".svg"):
            return info
        info["usages"] = 0
        if info.get("iccp_i") is None:  # an ICC profile is numbered per document
            _IMAGES[path] = (mtime, copy.copy(info))
        return info

    def _layout_line(self, element, context, frame=None) -> _Block:
        x, w = self._frame(element, frame)
        thickness = element.get("thickness", 0.2)
        colour = _colour(element.get("colour")) or (0, 0, 0)

        def draw(y):
            self.set_draw_color(*colour)
            self.set_line_width(thickness)
            if "x2" in element:
                self.line(x, y, element["x2"], element["y2"])
            else:
                self.line(x, y + thickness / 2, x + w, y + thickness / 2)
        return _Block(0 if "x2" in element else thickness, draw)

    def _layout_rect(self, element, context, frame=None) -> _Block:
        x, w = self._frame(element, frame)
        fill, border = _colour(element.get("fill")), element.get("border")
        if fill is None and border is None:
            border = {}

        def draw(y):
            self._box(x, y, w, element["h"], fill, border, element.get("radius", 0))
        return _Block(element["h"], draw)

    def _layout_spacer(self, element, context, frame=None) -> _Block:
        return _Block(element["h"], lambda y: None)

    def _layout_row(self, element, context, frame=None) -> _Block:
        """Items side by side, each from the row's top (plus its own ``y``)."""
        inner = self._frame(element, frame)
        parts = []
        for item in element["items"]:
            if self._visible(item, context):
                block = self._guarded(item, self._layout, item, context, inner)
                parts.append((item, item.get("y", 0), block))
        height = max((offset + block.height for _, offset, block in parts), default=0)
        return self._container(max(height, element.get("h", 0)), parts)

    def _layout_column(self, element, context, frame=None) -> _Block:
        """Items one under the other in the column's width (an item's ``y`` puts it that far
        from the column's top)."""
        inner = self._frame(element, frame)
        parts, height = [], 0.0
        for item in element["items"]:
            if self._visible(item, context):
                block = self._guarded(item, self._layout, item, context, inner)
                offset = item.get("y", height)
                parts.append((item, offset, block))
                height = max(height, offset + block.height)
        return self._container(max(height, element.get("h", 0)), parts)

    def _container(self, height: float, parts) -> _Block:
        def draw(y):
            for item, offset, block in parts:
                self._guarded(item, block.draw, y + offset)
        return _Block(height, draw)


class _Table:
    """A ``line_items`` or ``table`` element, drawn row by row into the body: a row that does
    not fit goes to the next page, under the heading row again."""

    def __init__(self, doc: _Document, element: dict):
        self.doc, self.element, self.form = doc, element, doc.form
        self.x, self.width = doc._frame(element)
        base = doc._style_of(doc.base, {k: element[k] for k in ("font", "size", "colour")
                                        if k in element})
        self.row_style = doc._style_of(base, element.get("row_style"))
        self.header_style = doc._style_of(base, {"style": "B"}, element.get("header"))
        self.detail_style = doc._style_of(base, {"size": base.size * 0.85,
                                                 "colour": "#666666"},
                                          element.get("detail_style"))
        self.heading_style = doc._style_of(base, {"style": "B"},
                                           element.get("group_heading_style"))
        self.comment_style = doc._style_of(base, {"style": "I"}, element.get("comment_style"))
        self.summary_base = base
        self.zebra = _colour(element.get("zebra"))
        self.pad = element.get("padding", 1.2)
        self.columns = self._columns(element["columns"], self.width)
        self.header = [(self.form.text(c.get("label"), doc.context), c.get("align", "L"))
                       for c, _ in self.columns]

    def _columns(self, columns: list, width: float) -> list[tuple[dict, float]]:
        shown = [c for c in columns if self.doc._visible(c, self.doc.context)]
        fixed = sum(c.get("width", 0) for c in shown)
        flexible = [c for c in shown if "width" not in c]
        rest = width - fixed
        if rest < -0.01 or (flexible and rest <= 1):
            raise PdfFormError([MetadataProblem(
                str(self.form.source), self.form.where(self.element),
                f"the columns' widths ({fixed:g} mm) leave no room in the table's "
                f"{width:g} mm")])
        share = rest / len(flexible) if flexible else 0
        return [(c, c.get("width", share)) for c in shown]

    # -- rows ------------------------------------------------------------------------------
    def _cells(self, columns, row, context) -> list[tuple[str, str]]:
        cells = []
        for column, _ in columns:
            if "key" in column:
                value = row.get(column["key"]) if isinstance(row, Mapping) \
                    else getattr(row, column["key"], None)
                text = "" if value is None else str(value)
            else:
                text = self.form.text(column["value"], context)
            detail = self.form.text(column["detail"], context) if "detail" in column else ""
            cells.append((text.strip(), detail.strip()))
        return cells

    def _measure(self, columns, cells, style: _Style):
        doc, pad = self.doc, self.pad
        doc.use(style)
        mains = [doc.wrap(text, width - 2 * pad) if text else []
                 for (text, _), (_, width) in zip(cells, columns)]
        details: list[list[str]] = [[] for _ in cells]
        if any(detail for _, detail in cells):
            doc.use(self.detail_style)
            details = [doc.wrap(detail, width - 2 * pad) if detail else []
                       for (_, detail), (_, width) in zip(cells, columns)]
        height = max(len(m) * style.line_height + len(d) * self.detail_style.line_height
                     for m, d in zip(mains, details))
        return mains, details, max(height, style.line_height) + 2 * pad

    def _row(self, columns, cells, style: _Style, fill=None, keep_with_next: float = 0) -> None:
        """One row of cells; first a new page (under the heading row again) if it does not
        fit, with ``keep_with_next`` mm more (a group heading is not left alone at the foot
        of a page)."""
        mains, details, height = self._measure(columns, cells, style)
        if height + keep_with_next > self.doc.room() and not self.doc.at_top():
            self.doc.new_page()
            if self.element.get("repeat_header", True):
                self._header_row()
        self._draw(columns, mains, details, height, style, fill)

    def _draw(self, columns, mains, details, height, style, fill) -> None:
        doc, pad, y = self.doc, self.pad, self.doc.y
        doc._box(self.x, y, self.width, height, fill if fill is not None else style.fill,
                 style.border)
        x = self.x
        for (column, width), main, detail in zip(columns, mains, details):
            align = column.get("align", "L")
            doc._print_lines(main, x + pad, y + pad, width - 2 * pad, style, align)
            if detail:
                doc._print_lines(detail, x + pad, y + pad + len(main) * style.line_height,
                                 width - 2 * pad, self.detail_style, align)
            x += width
        doc.y = y + height

    def _header_row(self) -> None:
        columns = [(dict(c, align=align), w) for (c, w), (_, align) in
                   zip(self.columns, self.header)]
        cells = [(label, "") for label, _ in self.header]
        mains, details, height = self._measure(columns, cells, self.header_style)
        self._draw(columns, mains, details, height, self.header_style, None)

    def _spanning(self, text: str, style: _Style, keep_with_next: float = 0) -> None:
        """A row across the whole width (a group heading, a comment)."""
        self._row([({"align": "L"}, self.width)], [(text, "")], style,
                  keep_with_next=keep_with_next)

    def _summary(self, rows: list[dict], context: Mapping) -> None:
        """Label/value rows at the right (totals), kept together on one page."""
        doc, pad = self.doc, self.pad
        value_w = self.element.get("summary_value_w", min(self.columns[-1][1], 40))
        label_w = min(self.element.get("summary_label_w", 50), self.width - value_w)
        drawn = []
        for row in rows:
            if not doc._visible(row, context):
                continue
            items = [None]
            if "each" in row:
                items = self.form.items(row["each"], context, row)
            for item in items:
                scope = context if item is None else {**context, "item": item}
                value = self.form.text(row["value"], scope).strip()
                if not value:
                    continue
                label = self.form.text(row["label"], scope).strip()
                style = doc._style_of(self.summary_base, row)
                columns = [({"align": "R"}, label_w), ({"align": "R"}, value_w)]
                measured = self._measure(columns, [(label, ""), (value, "")], style)
                drawn.append((columns, measured, style))
        total = sum(measured[2] for _, measured, _ in drawn)
        if total > doc.room() and not doc.at_top():
            doc.new_page()
        left = self.x + self.width - label_w - value_w
        for columns, (mains, details, height), style in drawn:
            y = doc.y
            doc._box(left, y, label_w + value_w, height, style.fill, style.border)
            doc._print_lines(mains[0], left + pad, y + pad, label_w - 2 * pad, style, "R")
            doc._print_lines(mains[1], left + label_w + pad, y + pad, value_w - 2 * pad,
                             style, "R")
            doc.y = y + height

    # -- the table -------------------------------------------------------------------------
    def draw(self) -> None:
        doc, element, context = self.doc, self.element, self.doc.context
        if doc.room() < 3 * self.row_style.line_height + 4 * self.pad:
            doc.new_page()
        self._header_row()
        if element["type"] == "line_items":
            count = self._groups(context)
        else:
            count = self._rows(context)
        if count == 0 and element.get("empty_text"):
            self._spanning(self.form.text(element["empty_text"], context), self.comment_style)
        self._summary(element.get("summary", []), context)

    def _data_row(self, index: int, row, scope) -> None:
        fill = self.zebra if self.zebra is not None and index % 2 == 1 else None
        self._row(self.columns, self._cells(self.columns, row, scope), self.row_style, fill)

    def _groups(self, context) -> int:
        element, count = self.element, 0
        groups = self.form.items(element["groups"], context, element) \
            if "groups" in element else [None]
        one_line = self.row_style.line_height + 2 * self.pad
        for group in groups:
            scope = context if group is None else {**context, "group": group}
            heading = self.form.text(element.get("group_heading"), scope).strip()
            if heading:
                self._spanning(heading, self.heading_style, keep_with_next=one_line)
            for line in self.form.items(element["lines"], scope, element):
                line_scope = {**scope, "line": line}
                if "comment_if" in element and self.form.value(element["comment_if"],
                                                               line_scope):
                    text = self.form.text(element.get("comment"), line_scope).strip()
                    if text:
                        self._spanning(text, self.comment_style)
                    continue
                self._data_row(count, line, line_scope)
                count += 1
            if element.get("group_summary"):
                self._summary(element["group_summary"], scope)
        return count

    def _rows(self, context) -> int:
        element, count = self.element, 0
        name = element.get("as", "row")
        children = element.get("children")
        if children:
            child_columns = self._columns(children["columns"], self.width)
            child_style = self.doc._style_of(self.row_style, {
                "size": self.row_style.size * 0.9, "colour": "#555555"},
                children.get("row_style"))
            child_name = children.get("as", "child")
        for row in self.form.items(element["rows"], context, element):
            scope = {**context, name: row}
            self._data_row(count, row, scope)
            count += 1
            if children:
                for child in self.form.items(children["rows"], scope, children):
                    child_scope = {**scope, child_name: child}
                    self._row(child_columns, self._cells(child_columns, child, child_scope),
                              child_style)
        return count
