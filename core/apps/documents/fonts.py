"""Fonts for PDF documents: the ones CRBM ships, and fpdf2's TrueType fonts parsed once per
process and written into each document without fpdf2's per-document cost.

Why: documents are made in bulk (issue 17 asks >= 50 invoices a second). fpdf2 2.8 parses
a font file again for every document that adds it (``add_font``: glyph table, character
map, widths); at output it cuts the embedded subset from the full font (decoding its whole
glyph table: tens of ms), compresses it, and builds the glyph maps string by string (131,072
strings for CIDToGIDMap) — half of the output time, for every document.

The contract:
- ``SharedFontsPDF`` is fpdf2's ``FPDF`` whose TrueType fonts come from ``add_font_file``
  instead of ``add_font``. Each (file, face) is a ``FontFile`` parsed once per process and
  shared by every document and thread (read-only after parsing; its caches take a lock); a
  document gets a cheap per-document copy (``FontFile.instance``) that records the glyphs
  it uses.
- Its ``output()`` writes through ``Producer``: first ``prepare_fonts`` drops the fonts no
  page uses and gives each used one its embedded subset (``EmbeddedFont``), cut from a
  per-file "working font" (the common Latin characters plus the document's others,
  without hinting) and kept per set of glyphs, so the same characters are cut and
  compressed once per process; then ``Producer._add_embedded`` writes fpdf2's font
  objects (the same objects, in the same order, as fpdf2's own ``output._add_fonts``)
  from that cut. Anything this does not cover (PDF/A compliance, colour or CFF fonts)
  goes through fpdf2's own code, from a fresh copy of the cut font.
- Kept per process: the parsed font files (a few, never dropped), up to 64 working fonts
  and 128 embedded subsets per font file (10-30 KB each).

Tied to fpdf2 2.8: it fills ``TTFFont``'s slots and follows the steps of 2.8's
``output._add_fonts`` (setup.cfg pins ``fpdf2>=2.8.9,<2.9``). Before moving that pin,
run tests/apps/documents/test_pdf.py: ``test_fonts_are_written_as_fpdf2_writes_them``
renders documents both ways (this module's and fpdf2's own font writing) and asserts the
same text, fonts, widths and glyph maps, and the other tests there read the documents back.
"""
from __future__ import annotations

import copy
import threading
import zlib
from collections import OrderedDict
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace

from fontTools import subset as ftsubset
from fontTools import ttLib
from fpdf import FPDF
from fpdf import output as fpdf_output
from fpdf.enums import PDFResourceType, TextEmphasis
from fpdf.fonts import SubsetMap, TTFFont
from fpdf.output import OutputProducer
from fpdf.syntax import Name, PDFArray, PDFContentStream

from core.apps.documents.forms import BUILTIN_FAMILIES, DEJAVU, WENQUANYI  # noqa: F401

# Tried, after a form's own ``fallback`` families, for characters an element's font lacks.
# A character none of them has stops the document (PdfTextError): no blanks in a document.
BUILTIN_FALLBACK = ("dejavu", "wenquanyi")

# -- fonts parsed once per process --------------------------------------------------------

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


class EmbeddedFont:
    """A font already cut to a document's glyphs: the bytes a document embeds (compressed
    once) and the glyph ids of the cut. Producer embeds it as fpdf2 would have after
    cutting it, so the same glyphs are cut once per process, not once per document."""

    def __init__(self, data: bytes, glyph_ids: dict[str, int]):
        self.data, self.glyph_ids = data, glyph_ids
        self.flated = zlib.compress(data, level=PDFContentStream._COMPRESSION_LEVEL)

    def ttfont(self) -> ttLib.TTFont:
        """As a fontTools font (for fpdf2 to cut again, when it embeds the fonts itself)."""
        return ttLib.TTFont(BytesIO(self.data), lazy=True, recalcTimestamp=False,
                            recalcBBoxes=False)




class FontFile:
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
        self._embedded: OrderedDict[frozenset, EmbeddedFont] = OrderedDict()
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
        found = EmbeddedFont(out.getvalue(), dict(font.getReverseGlyphMap()))
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


FONT_FILES: dict[tuple[Path, int], FontFile] = {}  # (file, face) -> parsed: never dropped
FONT_LOCK = threading.Lock()


def font_file(path: Path, index: int) -> FontFile:
    key = (path, index)
    found = FONT_FILES.get(key)
    if found is None:
        with FONT_LOCK:
            found = FONT_FILES.get(key)
            if found is None:
                found = FONT_FILES[key] = FontFile(path, index)
    return found


class SharedFontsPDF(FPDF):
    """fpdf2's document, with fonts from ``add_font_file`` and written by ``Producer``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.font_files: dict[str, FontFile] = {}  # fontkey -> its font file

    def add_font_file(self, path: Path, index: int, fontkey: str, style: str) -> FontFile:
        """What fpdf2's ``add_font`` does, from the font file parsed once per process."""
        found = font_file(path, index)
        self.fonts[fontkey] = found.instance(len(self.fonts) + 1, fontkey, style)
        self.font_files[fontkey] = found
        return found

    def prepare_fonts(self) -> None:
        """Before output: leave out fonts no page uses (an unused fallback font would be
        embedded for nothing) and give each used one its subset, cut once per process."""
        used = {index for (_, kind), indexes in self._resource_catalog.resources_per_page.items()
                if kind == PDFResourceType.FONT for index in indexes}
        for fontkey, font in list(self.fonts.items()):
            if font.i not in used and len(font.subset) <= 2:
                del self.fonts[fontkey]
            elif fontkey in self.font_files:
                font.ttfont = self.font_files[fontkey].embedded(
                    font.subset.get_all_glyph_names())

    def output(self, *args, **kwargs):
        kwargs.setdefault("output_producer_class", Producer)
        return super().output(*args, **kwargs)


class Producer(OutputProducer):
    """fpdf2's output, after the document has chosen the fonts to embed (footers are drawn
    by then)."""

    def bufferize(self):
        self.fpdf.prepare_fonts()
        return super().bufferize()

    def _add_fonts(self, *args):
        """fpdf2's fonts, the same objects in the same order, from fonts cut already (see
        EmbeddedFont): fpdf2 would cut each again, compress it again, and build its glyph
        map string by string — half the output time. Anything else, fpdf2 does it all."""
        fonts = sorted(self.fpdf.fonts.values(), key=lambda font: font.i)
        if self.fpdf._compliance is None and all(
                isinstance(getattr(font, "ttfont", None), EmbeddedFont)
                and not font.color_font and not font.is_cff for font in fonts):
            return {font.i: self._add_embedded(font) for font in fonts}
        for font in fonts:
            if isinstance(getattr(font, "ttfont", None), EmbeddedFont):
                font.ttfont = font.ttfont.ttfont()
        return super()._add_fonts(*args)

    def _add_embedded(self, font: TTFFont):
        """fpdf2 2.8's output._add_fonts for one TrueType font (its steps, in its order)."""
        embedded: EmbeddedFont = font.ttfont
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
        font_file = fpdf_output.PDFFontStream(b"")  # the font, compressed once (EmbeddedFont)
        font_file._contents, font_file.length = embedded.flated, len(embedded.flated)
        font_file.length1 = len(embedded.data)
        self._add_pdf_obj(font_file, "fonts")
        descriptor.font_file2 = font_file
        font.subset.pick.cache_clear()
        font.subset.get_glyph.cache_clear()
        return composite
