"""PDF documents from form definitions (YAML), drawn with fpdf2.

A *form* (schema ``metadata/schema/pdf_form.json``, guide ``docs/pdf_forms.md``) says what a
document looks like: the page, fonts, a header and a footer repeated on every page, and a
body flowing top to bottom. It is rendered against a *context*: a dict of values already
formatted for display. Text in a form is Jinja (sandboxed; a missing value renders empty),
so the kernel knows nothing about what the documents are: it draws any form with any
context.

Forms are looked up by name (``find_form``) in the site's folder, then the enabled packs',
then the plugins' — so a site or a pack replaces a shipped form by giving its own of the same
name.

Speed matters (documents are made in bulk), hence three caches, all per process:
- parsed forms, by (file, modification time), with every template compiled at load;
- fonts: each font file is parsed once; a document gets a cheap per-document copy of it;
- embedded fonts: what a document embeds is a subset of the font. Subsetting the full font
  decodes its whole glyph table each time, so each font keeps "working" fonts — the common
  Latin characters plus the document's others — and the final subset is cut from one of
  those (a few ms instead of tens).
Decoded images are kept too, by (file, modification time).
"""
from __future__ import annotations

import copy
import json
import logging
import os
import threading
import time
import unicodedata
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
import jsonschema
import yaml
from fontTools import subset as ftsubset
from fontTools import ttLib
from fpdf import FPDF
from fpdf import output as fpdf_output
from fpdf.drawing_primitives import convert_to_device_color
from fpdf.enums import MethodReturnValue, PDFResourceType, TextEmphasis, TextMode
from fpdf.fonts import SubsetMap, TTFFont
from fpdf.image_parsing import preload_image
from fpdf.output import OutputProducer
from fpdf.syntax import Name, PDFArray, PDFContentStream
from jinja2.sandbox import SandboxedEnvironment

from core.kernel.errors import N_, CrbmError, Message, MetadataProblem, NotFoundError

log = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "metadata" / "schema" / "pdf_form.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)



# The fonts every document can use come with CRBM, not with the machine, so a document
# prints the same wherever it is made: DejaVu Sans 2.37 (Latin, Greek, Cyrillic, Armenian,
# Georgian, Hebrew... bundled in core/fonts/dejavu/ with its licence, 2.7 MB) and
# WenQuanYi Micro Hei 0.2.0-beta (Chinese, Japanese, Korean; bundled in core/fonts/wqy/ with
# its licence, 5 MB, the same file as Debian's fonts-wqy-microhei).
DEJAVU = Path(__file__).resolve().parents[2] / "fonts" / "dejavu"
WENQUANYI = Path(__file__).resolve().parents[2] / "fonts" / "wqy" / "wqy-microhei.ttc"
BUILTIN_FAMILIES = {
    "dejavu": {"regular": DEJAVU / "DejaVuSans.ttf", "bold": DEJAVU / "DejaVuSans-Bold.ttf",
               "italic": DEJAVU / "DejaVuSans-Oblique.ttf",
               "bold_italic": DEJAVU / "DejaVuSans-BoldOblique.ttf"},
    "wenquanyi": {"regular": WENQUANYI},
}
# Tried, after a form's own ``fallback`` families, for characters an element's font lacks.
# A character none of them has stops the document (PdfTextError): no blanks in a document.
BUILTIN_FALLBACK = ("dejavu", "wenquanyi")
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
TABLES = ("line_items", "table")


class PdfFormError(CrbmError):
    """A form is invalid, or could not be drawn: each problem names the file, the JSON path
    of the part at fault and why."""

    def __init__(self, problems: list[MetadataProblem]):
        self.problems = problems
        super().__init__("invalid PDF form:\n" + "\n".join(f"  {p}" for p in problems))


class PdfTextError(CrbmError):
    """Text that no available font can draw: the document is not made rather than made
    with blanks where that text should be. ``message`` (a translatable Message) names the
    characters, the text and the value of the context it came from (``field``)."""

    def __init__(self, characters: list[str], text: str, field: str):
        self.characters, self.text, self.field = characters, text, field
        shown = ", ".join(f"“{c}” (U+{ord(c):04X} {unicodedata.name(c, 'unnamed')})"
                          for c in characters[:5]) + (" …" if len(characters) > 5 else "")
        excerpt = text if len(text) <= 60 else text[:57] + "..."
        self.message = Message(N_("This document was not made: no font here can print "
                                  "%(characters)s in “%(text)s” (%(field)s). Change that "
                                  "text, or ask an administrator to add a font that has "
                                  "these characters to the PDF form."),
                               characters=shown, text=excerpt, field=field)
        super().__init__(str(self.message))

    def at(self, field: str) -> PdfTextError:
        """The same error naming the value's place in the caller's words."""
        return PdfTextError(self.characters, self.text, field)


# -- expressions ---------------------------------------------------------------------------

def _finalize(value):
    """How a value prints: nothing for None, one line per item for a list (so an address's
    ``lines`` can take ``{{ record.billing_address_lines }}`` as it is)."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "\n".join("" if item is None else str(item) for item in value)
    return value


ENV = SandboxedEnvironment(autoescape=False, undefined=jinja2.ChainableUndefined,
                           finalize=_finalize)
# keys whose string value is a template ("No. {{ record.number }}"), or an expression
# ("record.due_date"); "lines" is an expression in a table and a list of templates in an
# address
TEMPLATE_KEYS = {"text", "label", "value", "src", "title", "detail", "group_heading",
                 "comment", "empty_text", "link"}
EXPRESSION_KEYS = {"visible_if", "rows", "groups", "lines", "each", "comment_if"}


def _is_literal(text: str) -> bool:
    return "{{" not in text and "{%" not in text and "{#" not in text


def _expression_source(text: str) -> str:
    """``{{ x }}`` and ``x`` mean the same in an expression key."""
    text = text.strip()
    if text.startswith("{{") and text.endswith("}}"):
        return text[2:-2].strip()
    return text


# -- forms ---------------------------------------------------------------------------------

@dataclass(eq=False)
class PdfForm:
    """A loaded, checked form; its templates are compiled once, here."""

    name: str
    title: str
    source: Path
    definition: dict
    templates: dict[str, Any] = field(default_factory=dict, repr=False)
    expressions: dict[str, Callable] = field(default_factory=dict, repr=False)
    paths: dict[int, str] = field(default_factory=dict, repr=False)  # id(element) -> JSON path

    @property
    def folder(self) -> Path:
        return self.source.parent

    @property
    def module(self) -> str | None:
        """The module whose records this form prints, if it says."""
        return self.definition.get("module")

    def text(self, template: str | None, context: Mapping) -> str:
        """The template rendered (a compiled one, or the literal text)."""
        if not template:
            return ""
        compiled = self.templates.get(template)
        if compiled is None:  # not seen at load: e.g. the default page_number text
            compiled = self.templates[template] = _compile_template(template)
        return compiled if isinstance(compiled, str) else compiled.render(context)

    def value(self, expression: str, context: Mapping):
        compiled = self.expressions.get(expression)
        if compiled is None:
            compiled = self.expressions[expression] = ENV.compile_expression(
                _expression_source(expression), undefined_to_none=True)
        return compiled(context)

    def where(self, element) -> str:
        return self.paths.get(id(element), "$")

    def items(self, expression: str, context: Mapping, node) -> list:
        """The list an expression gives (``rows``, ``lines``, ``each``...); nothing gives
        an empty list, anything but a list is an error naming ``node``."""
        found = self.value(expression, context)
        if found is None or isinstance(found, jinja2.Undefined):
            return []
        if isinstance(found, (str, bytes, Mapping)) or not hasattr(found, "__iter__"):
            raise PdfFormError([MetadataProblem(str(self.source), self.where(node),
                                                f"{expression!r} should give a list, not "
                                                f"{type(found).__name__}")])
        return list(found)


def _compile_template(text: str):
    return text if _is_literal(text) else ENV.from_string(text)


# path -> (its modification time and size, the form or why it is not one): a broken form is
# not read again either until its file changes (detail pages list the forms on every view)
_FORMS: dict[Path, tuple[tuple[int, int], PdfForm | PdfFormError]] = {}


def load_form(path: Path) -> PdfForm:
    """The form in ``path``, read, validated and compiled; kept until the file changes.
    Raises PdfFormError naming every problem (file, JSON path, reason)."""
    return _load(Path(path).resolve())


def _load(path: Path) -> PdfForm:
    """load_form of a resolved path."""
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise PdfFormError([MetadataProblem(str(path), "$", f"cannot read: {exc.strerror}")])
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _FORMS.get(path)
    if cached is None or cached[0] != stamp:
        try:
            cached = (stamp, _read_form(path))
        except PdfFormError as exc:
            cached = (stamp, exc)
        _FORMS[path] = cached
    if isinstance(cached[1], PdfFormError):
        raise PdfFormError(cached[1].problems)
    return cached[1]


def _read_form(path: Path) -> PdfForm:
    source = str(path)
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "$"
        raise PdfFormError([MetadataProblem(source, where, f"not valid YAML: "
                                            f"{getattr(exc, 'problem', None) or exc}")])
    except (OSError, UnicodeDecodeError) as exc:
        raise PdfFormError([MetadataProblem(source, "$", f"cannot read: {exc}")])
    errors = sorted(VALIDATOR.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    problems = [MetadataProblem(source, _json_path(e.absolute_path), e.message) for e in errors]
    if problems:
        raise PdfFormError(problems)
    form = PdfForm(name=document["name"], title=document.get("title") or document["name"],
                   source=path, definition=document)
    if document["name"] != path.stem:
        problems.append(MetadataProblem(source, "$.name", f"the name {document['name']!r} must "
                                        f"be the file's name ({path.stem!r})"))
    _check_fonts(form, problems)
    for part in ("header", "footer", "body"):
        for index, element in enumerate(document.get(part, [])):
            _check_element(form, element, f"$.{part}[{index}]", part, problems)
    if problems:
        raise PdfFormError(problems)
    return form


def _json_path(parts) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _families(form: PdfForm) -> dict[str, dict]:
    """Every family the form may use: the built-in ones and its own (which win)."""
    return {**BUILTIN_FAMILIES, **form.definition.get("fonts", {})}


def _font_path(form: PdfForm, file) -> Path:
    path = Path(file)
    return path if path.is_absolute() else form.folder / path


def _check_fonts(form: PdfForm, problems: list) -> None:
    source, families = str(form.source), _families(form)
    for name, files in form.definition.get("fonts", {}).items():
        for style in ("regular", "bold", "italic", "bold_italic"):
            if style in files and not _font_path(form, files[style]).is_file() \
                    and name not in form.definition.get("fallback", []):
                problems.append(MetadataProblem(source, f"$.fonts.{name}.{style}",
                                                f"font file not found: {files[style]}"))
    for index, name in enumerate(form.definition.get("fallback", [])):
        if name not in families:
            problems.append(MetadataProblem(source, f"$.fallback[{index}]",
                                            f"unknown font family {name!r}"))
    _check_font_names(form, form.definition, "$", families, problems)


def _check_font_names(form, node, where, families, problems) -> None:
    """Every ``font:`` anywhere in the form names a known family."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "font" and isinstance(value, str) and value not in families:
                problems.append(MetadataProblem(str(form.source), f"{where}.font",
                                                f"unknown font family {value!r} (known: "
                                                f"{', '.join(sorted(families))})"))
            elif key != "fonts":
                _check_font_names(form, value, f"{where}.{key}", families, problems)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _check_font_names(form, item, f"{where}[{index}]", families, problems)


def _check_element(form: PdfForm, element: dict, where: str, part: str, problems: list,
                   in_row: bool = False) -> None:
    """Compile the element's templates and expressions (reporting syntax errors where they
    are) and check what the schema cannot say."""
    form.paths[id(element)] = where
    kind = element["type"]
    if kind in TABLES and (part != "body" or in_row):
        problems.append(MetadataProblem(str(form.source), where,
                                        f"a {kind} belongs directly in the body (it flows "
                                        f"onto new pages), not in a {'row or column' if in_row else part}"))
    _compile_strings(form, element, where, problems)
    for index, child in enumerate(element.get("items", [])):
        _check_element(form, child, f"{where}.items[{index}]", part, problems, in_row=True)


def _compile_strings(form: PdfForm, node, where: str, problems: list) -> None:
    if isinstance(node, dict):
        form.paths.setdefault(id(node), where)  # columns, summary rows: named in errors too
        for key, value in node.items():
            at = f"{where}.{key}"
            if key == "items" and node.get("type") in ("row", "column"):
                continue  # checked as elements
            if isinstance(value, str) and key in EXPRESSION_KEYS:
                try:
                    form.expressions[value] = ENV.compile_expression(
                        _expression_source(value), undefined_to_none=True)
                except jinja2.TemplateSyntaxError as exc:
                    problems.append(MetadataProblem(str(form.source), at,
                                                    f"bad Jinja expression: {exc.message}"))
            elif isinstance(value, str) and key in TEMPLATE_KEYS:
                _compile_into(form, value, at, problems)
            elif key == "lines" and isinstance(value, list):
                for index, line in enumerate(value):
                    _compile_into(form, line, f"{at}[{index}]", problems)
            else:
                _compile_strings(form, value, at, problems)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _compile_strings(form, item, f"{where}[{index}]", problems)


def _compile_into(form: PdfForm, text: str, where: str, problems: list) -> None:
    try:
        form.templates[text] = _compile_template(text)
    except jinja2.TemplateSyntaxError as exc:
        problems.append(MetadataProblem(str(form.source), where,
                                        f"bad Jinja template (line {exc.lineno}): {exc.message}"))


# -- lookup --------------------------------------------------------------------------------

def form_dirs(site) -> list[Path]:
    """Where forms are looked for, first match wins: the site's ``pdf/`` folder, each enabled
    pack's, then each plugin's (the order templates follow, core/web/templating.py)."""
    return list(_lookup(site).dirs)


def _plugin_folder(plugin) -> Path:
    """A loaded plugin's folder (a core.kernel.plugins.Plugin, or a plain module)."""
    folder = getattr(plugin, "folder", None)
    return Path(folder) if folder is not None else Path(plugin.__file__).parent


@dataclass(eq=False)
class _Lookup:
    """Which file each form name resolves to, for one registry (packs and plugins) and one
    state of the site's own ``pdf/`` folder."""

    held: tuple  # the registry, packs and plugins it was made for (their ids are the key)
    site_stamp: int | None  # the site's pdf/ folder's mtime (None: no folder)
    trusted: bool  # False while that mtime is too recent to tell a later change from it
    dirs: tuple[Path, ...]
    paths: dict[str, Path]  # name -> the file that wins

    def __post_init__(self):
        self.sorted_paths = [self.paths[name] for name in sorted(self.paths)]


# One per site (a few more for tests): made again when the site rebuilds its registry (a
# pack installed or removed, a plugin turned off), and when a file appears in or leaves the
# site's own pdf/ folder (an administrator adds a form without any rebuild). An edited form
# file is seen by load_form (its own modification time).
_LOOKUPS: OrderedDict[tuple, _Lookup] = OrderedDict()
_LOOKUPS_KEPT = 16
_LOOKUPS_LOCK = threading.Lock()
_RACY_NS = 2_000_000_000  # a folder changed this recently may change again within its mtime


def _lookup(site) -> _Lookup:
    held = (getattr(site, "registry", None), *getattr(site, "enabled_packs", ()),
            *getattr(site, "plugins", ()))
    folder = str(site.folder)
    key = (folder, *map(id, held))
    try:
        stamp = os.stat(os.path.join(folder, "pdf")).st_mtime_ns
    except OSError:
        stamp = None
    found = _LOOKUPS.get(key)
    if found is not None and found.trusted and found.site_stamp == stamp:
        return found
    site_dir = Path(folder) / "pdf"
    dirs = [site_dir]
    dirs += [Path(pack.folder) / "pdf" for pack in getattr(site, "enabled_packs", ())]
    dirs += [_plugin_folder(plugin) / "pdf" for plugin in getattr(site, "plugins", ())]
    dirs = [d for d in dirs if d.is_dir()]
    paths: dict[str, Path] = {}
    for folder in dirs:
        for path in sorted(folder.glob("*.yaml")):
            if path.stem not in paths and path.is_file():
                paths[path.stem] = path.resolve()  # as load_form keys it
    trusted = stamp is None or time.time_ns() - stamp > _RACY_NS
    # the entry holds what its key names, so no id in the key can be reused meanwhile
    found = _Lookup(held, stamp, trusted, tuple(dirs), paths)
    with _LOOKUPS_LOCK:
        for stale in [k for k in _LOOKUPS if k[0] == folder and k != key]:
            del _LOOKUPS[stale]  # the site's previous registry: let it go
        _LOOKUPS[key] = found
        _LOOKUPS.move_to_end(key)
        while len(_LOOKUPS) > _LOOKUPS_KEPT:
            _LOOKUPS.popitem(last=False)
    return found


def find_form(site, name: str) -> PdfForm:
    """The form called ``name``: the first ``<name>.yaml`` in ``form_dirs(site)``."""
    if not isinstance(name, str) or not name.replace("_", "a").isalnum() \
            or not name[:1].isalpha() or name != name.lower():
        raise NotFoundError(f"no PDF form named {name!r}: a form name is lower-case letters, "
                            f"digits and underscores")
    lookup = _lookup(site)
    path = lookup.paths.get(name)
    if path is None:
        looked = ", ".join(str(d) for d in lookup.dirs) or "no pdf/ folder"
        raise NotFoundError(f"no PDF form named {name!r} (looked in: {looked})")
    return _load(path)


def available_forms(site) -> list[str]:
    """The names of every form the site can use, sorted."""
    return sorted(_lookup(site).paths)


def usable_forms(site) -> list[PdfForm]:
    """Every form the site can use, by name, leaving out the broken ones (they are reported
    where forms are checked): a stat per form when nothing changed."""
    out = []
    for path in _lookup(site).sorted_paths:
        try:
            out.append(_load(path))
        except PdfFormError:
            continue
    return out


# -- fonts ---------------------------------------------------------------------------------

# Characters nearly every Western document uses: a working font always holds them, so most
# documents share one working font per font file.
COMMON_CHARACTERS = [*range(0x20, 0x7F), *range(0xA0, 0x100), 0x152, 0x153, 0x160, 0x161,
                     0x178, 0x17D, 0x17E, 0x2013, 0x2014, 0x2018, 0x2019, 0x201A, 0x201C,
                     0x201D, 0x201E, 0x2022, 0x2026, 0x2030, 0x20AC, 0x2122]
# the tables fpdf2 drops when it embeds a font (its output.py), dropped from working fonts too
UNUSED_TABLES = ["FFTM", "GDEF", "GPOS", "GSUB", "MATH", "hdmx", "meta", "sbix", "CBDT",
                 "CBLC", "EBDT", "EBLC", "EBSC", "SVG ", "CPAL", "COLR", "kern", "gasp"]
WORKING_FONTS_KEPT = 64  # per font file
# fpdf2's own subsetting options (its output.py): what it embeds, we cut the same way
EMBED_TABLES_DROPPED = ["FFTM", "GDEF", "GPOS", "GSUB", "MATH", "hdmx", "meta", "sbix", "CBDT",
                        "CBLC", "EBDT", "EBLC", "EBSC", "SVG ", "CPAL", "COLR"]
EMBEDDED_KEPT = 128  # subsets kept per font file (10-30 KB each)


class _EmbeddedFont:
    """A font already cut to a document's glyphs: the bytes a document embeds (compressed
    once) and the glyph ids of the cut. _Producer embeds it as fpdf2 would have after
    cutting it, so the same glyphs are cut once per process, not once per document."""

    def __init__(self, data: bytes, glyph_ids: dict[str, int]):
        self.data, self.glyph_ids = data, glyph_ids
        self.flated = zlib.compress(data, level=PDFContentStream._COMPRESSION_LEVEL)

    def ttfont(self) -> ttLib.TTFont:
        """As a fontTools font (for fpdf2 to cut again, when it embeds the fonts itself)."""
        return ttLib.TTFont(BytesIO(self.data), lazy=True, recalcTimestamp=False,
                            recalcBBoxes=False)




class _FontFile:
    """One font (one face of a collection), parsed once per process.

    ``instance()`` makes the per-document font object fpdf2 uses: it shares this parse's
    character widths and maps, and has its own record of the characters used."""

    def __init__(self, path: Path, index: int):
        self.path, self.index = path, index
        # fpdf2's parser only asks its document for the fonts already added and whether
        # colour fonts are drawn
        self.parsed = TTFFont(SimpleNamespace(fonts={}, render_color_fonts=False), path,
                              "prototype", "", collection_font_number=index)
        self.has_outlines = "glyf" in self.parsed.ttfont  # TrueType (working fonts apply)
        cmap = self.parsed.cmap
        self.common_glyphs = frozenset(cmap[c] for c in COMMON_CHARACTERS if c in cmap)
        self.covers_ascii = all(c in cmap for c in range(0x20, 0x7F))
        self._working: OrderedDict[frozenset, bytes] = OrderedDict()
        self._embedded: OrderedDict[frozenset, _EmbeddedFont] = OrderedDict()
        self._lock = threading.Lock()

    def instance(self, number: int, fontkey: str, style: str) -> TTFFont:
        font = TTFFont.__new__(TTFFont)
        for slot in TTFFont.__slots__:
            if hasattr(self.parsed, slot):
                setattr(font, slot, getattr(self.parsed, slot))
        font.i, font.fontkey = number, fontkey
        font.emphasis = TextEmphasis.coerce(style)
        font.desc = copy.copy(self.parsed.desc)  # a PDF object: its number is the document's
        font.missing_glyphs, font.biggest_size_pt = [], 0
        font._hbfont, font.color_font = None, None
        font.subset = SubsetMap(font)
        return font

    def embedded(self, glyph_names):
        """What fpdf2 embeds for a document using ``glyph_names``: the subset cut from a
        working font, kept (a document printed again, or another with the same characters,
        costs nothing more); fonts without TrueType outlines go the usual way."""
        if not self.has_outlines:
            return self.font_for_output(glyph_names)
        key = frozenset(glyph_names)
        with self._lock:
            found = self._embedded.get(key)
            if found is not None:
                self._embedded.move_to_end(key)
                return found
        font = self.font_for_output(key)
        options = ftsubset.Options(notdef_outline=True, recommended_glyphs=True)
        options.drop_tables += EMBED_TABLES_DROPPED
        subsetter = ftsubset.Subsetter(options)
        subsetter.populate(glyphs=glyph_names)
        subsetter.subset(font)
        out = BytesIO()
        font.save(out)
        found = _EmbeddedFont(out.getvalue(), dict(font.getReverseGlyphMap()))
        font.close()
        with self._lock:
            self._embedded[key] = found
            while len(self._embedded) > EMBEDDED_KEPT:
                self._embedded.popitem(last=False)
        return found

    def font_for_output(self, glyph_names) -> ttLib.TTFont:
        """A fresh font for fpdf2 to cut the embedded subset from: a working font holding
        ``glyph_names`` (cached), or the whole file for fonts without TrueType outlines."""
        if not self.has_outlines:
            return ttLib.TTFont(self.path, fontNumber=self.index, lazy=True,
                                recalcTimestamp=False)
        extra = frozenset(glyph_names) - self.common_glyphs
        with self._lock:
            data = self._working.get(extra)
            if data is None:
                data = self._working[extra] = self._make_working(self.common_glyphs | extra)
                while len(self._working) > WORKING_FONTS_KEPT:
                    self._working.popitem(last=False)
            else:
                self._working.move_to_end(extra)
        return ttLib.TTFont(BytesIO(data), lazy=True, recalcTimestamp=False, recalcBBoxes=False)

    def _make_working(self, glyphs: frozenset) -> bytes:
        font = ttLib.TTFont(self.path, fontNumber=self.index, lazy=True, recalcTimestamp=False)
        # fpdf2 finds glyphs by name; hinting is left out (PDF viewers scale outlines
        # themselves), which also leaves fewer tables for fpdf2 to subset on every document
        options = ftsubset.Options(notdef_outline=True, recommended_glyphs=True,
                                   glyph_names=True, hinting=False)
        options.drop_tables += UNUSED_TABLES
        subsetter = ftsubset.Subsetter(options)
        subsetter.populate(glyphs=sorted(glyphs & set(font.getGlyphOrder())))
        subsetter.subset(font)
        out = BytesIO()
        font.save(out)
        return out.getvalue()


_FONT_FILES: dict[tuple[Path, int], _FontFile] = {}
_FONT_LOCK = threading.Lock()


def _font_file(path: Path, index: int) -> _FontFile:
    key = (path, index)
    found = _FONT_FILES.get(key)
    if found is None:
        with _FONT_LOCK:
            found = _FONT_FILES.get(key)
            if found is None:
                found = _FONT_FILES[key] = _FontFile(path, index)
    return found


# -- images --------------------------------------------------------------------------------

_IMAGES: dict[str, tuple[int, Any]] = {}  # path -> (mtime, decoded image info)


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


class _Producer(OutputProducer):
    """fpdf2's output, after the document has chosen the fonts to embed (footers are drawn
    by then)."""

    def bufferize(self):
        self.fpdf.prepare_fonts()
        return super().bufferize()

    def _add_fonts(self, *args):
        """fpdf2's fonts, the same objects in the same order, from fonts cut already (see
        _EmbeddedFont): fpdf2 would cut each again, compress it again, and build its glyph
        map string by string — half the output time. Anything else, fpdf2 does it all."""
        fonts = sorted(self.fpdf.fonts.values(), key=lambda font: font.i)
        if self.fpdf._compliance is None and all(
                isinstance(getattr(font, "ttfont", None), _EmbeddedFont)
                and not font.color_font and not font.is_cff for font in fonts):
            return {font.i: self._add_embedded(font) for font in fonts}
        for font in fonts:
            if isinstance(getattr(font, "ttfont", None), _EmbeddedFont):
                font.ttfont = font.ttfont.ttfont()
        return super()._add_fonts(*args)

    def _add_embedded(self, font: TTFFont):
        """fpdf2 2.8's output._add_fonts for one TrueType font (its steps, in its order)."""
        embedded: _EmbeddedFont = font.ttfont
        fontname = f"MPDFAA+{font.name}"
        if font.missing_glyphs:
            msg = ", ".join(f"'{chr(x)}' ({chr(x).encode('unicode-escape').decode()})"
                            for x in font.missing_glyphs[:10])
            if len(font.missing_glyphs) > 10:
                msg += f", ... (and {len(font.missing_glyphs) - 10} others)"
            fpdf_output.LOGGER.warning("Font %s is missing the following glyphs: %s",
                                       fontname, msg)
        code_to_glyph = {char_id: embedded.glyph_ids[glyph.glyph_name]
                         for glyph, char_id in font.subset.items() if glyph is not None}
        composite = fpdf_output.PDFFont(subtype="Type0", base_font=fontname,
                                        encoding="Identity-H")
        self._add_pdf_obj(composite, "fonts")
        cid_font = fpdf_output.PDFFont(subtype="CIDFontType2", base_font=fontname,
                                       d_w=font.desc.missing_width,
                                       w=fpdf_output._tt_font_widths(font))
        self._add_pdf_obj(cid_font, "fonts")
        composite.descendant_fonts = PDFArray([cid_font])

        def format_code(unicode: int) -> str:
            if unicode > 0xFFFF:
                return f"{0xD800 | (unicode - 0x10000) >> 10:04X}{0xDC00 | (unicode & 0x3FF):04X}"
            return f"{unicode:04X}"
        bf_char = [f'<{code:04X}> <{"".join(format_code(c) for c in glyph.unicode)}>\n'
                   for glyph, code in font.subset.items()
                   if glyph is not None and isinstance(glyph.unicode, tuple) and glyph.unicode]
        to_unicode = PDFContentStream((
            "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n/CIDSystemInfo\n"
            "<</Registry (Adobe)\n/Ordering (UCS)\n/Supplement 0\n>> def\n"
            "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
            "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
            f"{fpdf_output._build_cmap_blocks(bf_char, 'bfchar')}"
            "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend"
        ).encode("latin-1"))
        self._add_pdf_obj(to_unicode, "fonts")
        composite.to_unicode = to_unicode
        system_info = fpdf_output.CIDSystemInfo()
        self._add_pdf_obj(system_info, "fonts")
        cid_font.c_i_d_system_info = system_info
        descriptor = font.desc
        descriptor.font_name = Name(fontname)
        self._add_pdf_obj(descriptor, "fonts")
        cid_font.font_descriptor = descriptor
        # CIDToGIDMap: two bytes per code, built as bytes rather than as 131,072 strings
        cid_to_gid = bytearray(256 * 256 * 2)
        for code, glyph_id in code_to_glyph.items():
            cid_to_gid[code * 2], cid_to_gid[code * 2 + 1] = glyph_id >> 8, glyph_id & 0xFF
        cid_map = PDFContentStream(bytes(cid_to_gid), compress=True)
        self._add_pdf_obj(cid_map, "fonts")
        cid_font.c_i_d_to_g_i_d_map = cid_map
        font_file = fpdf_output.PDFFontStream(b"")  # the font, compressed once (_EmbeddedFont)
        font_file._contents, font_file.length = embedded.flated, len(embedded.flated)
        font_file.length1 = len(embedded.data)
        self._add_pdf_obj(font_file, "fonts")
        descriptor.font_file2 = font_file
        font.subset.pick.cache_clear()
        font.subset.get_glyph.cache_clear()
        return composite


_WARNED: set[tuple[Path, str]] = set()  # (form, family) whose missing file was logged


class _Document(FPDF):
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
        self._files: dict[str, _FontFile] = {}  # fontkey -> its font file
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
        files = _families(self.form)[family]
        index = files.get("collection_index", 0)
        styles = []
        for style, key in STYLE_FILES.items():
            if key not in files:
                continue
            path = _font_path(self.form, files[key])
            if not path.is_file():
                if key == "regular" and not fallback:
                    raise PdfFormError([MetadataProblem(str(self.form.source),
                                                        f"$.fonts.{family}.regular",
                                                        f"font file not found: {path}")])
                continue
            fontkey = f"{family}{style}"
            font_file = _font_file(path, index)
            self.fonts[fontkey] = font_file.instance(len(self.fonts) + 1, fontkey, style)
            self._files[fontkey] = font_file
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

    def prepare_fonts(self) -> None:
        """Before output: leave out fonts no page uses (an unused fallback font would be
        embedded for nothing) and give each used one a working font to subset."""
        used = {index for (_, kind), indexes in self._resource_catalog.resources_per_page.items()
                if kind == PDFResourceType.FONT for index in indexes}
        for fontkey, font in list(self.fonts.items()):
            if font.i not in used and len(font.subset) <= 2:
                del self.fonts[fontkey]
            elif fontkey in self._files:
                font.ttfont = self._files[fontkey].embedded(font.subset.get_all_glyph_names())

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
        font_file = self._files.get(self.current_font.fontkey)
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


def render(form: PdfForm, context: Mapping) -> bytes:
    """The PDF of ``form`` filled from ``context`` (display-ready values). Raises
    PdfFormError naming the element at fault when something cannot be drawn, PdfTextError
    when the context holds a character no font has."""
    document = _Document(form, context)
    document.build()
    try:
        return bytes(document.output(output_producer_class=_Producer))
    except (PdfFormError, PdfTextError):
        raise
    except Exception as exc:
        log.debug("PDF output failed", exc_info=True)
        raise PdfFormError([MetadataProblem(str(form.source), "$",
                                            f"cannot write the PDF: {exc}")]) from exc
