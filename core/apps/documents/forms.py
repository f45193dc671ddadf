"""PDF forms: reading, checking and finding the YAML definitions that documents are drawn
from (core/apps/documents/pdf.py draws them).

A *form* (schema ``metadata/schema/pdf_form.json``, guide ``docs/pdf_forms.md``) says what a
document looks like: the page, fonts, a header and a footer repeated on every page, and a
body flowing top to bottom. Text in a form is Jinja (sandboxed; a missing value renders
empty), compiled once when the form is read.

Forms are looked up by name (``find_form``) in the site's folder, then the enabled packs',
then the plugins' — so a site or a pack replaces a shipped form by giving its own of the same
name.

Nothing here is read per document or per view: a form file is read, validated and compiled
once per modification (a broken one too: the detail page lists the forms on every view), and
which file each name resolves to is found once per registry (packs, plugins) and per state of
the site's own ``pdf/`` folder.
"""
from __future__ import annotations

import json
import os
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jsonschema
import yaml
from jinja2.sandbox import SandboxedEnvironment

from core.kernel.errors import N_, CrbmError, Message, MetadataProblem, NotFoundError

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "metadata" / "schema" / "pdf_form.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
TABLES = ("line_items", "table")  # elements that flow onto new pages


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
# (here, not in fonts.py: forms are read on every detail page, fonts and fpdf2 only
# when a document is made)


class PdfFormError(CrbmError):
    """A form is invalid, or could not be drawn: each problem names the file, the JSON path
    of the part at fault and why."""

    def __init__(self, problems: list[MetadataProblem]):
        self.problems = problems
        super().__init__("invalid PDF form:\n" + "\n".join(f"  {p}" for p in problems))


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

    def families(self) -> dict[str, dict]:
        """Every font family the form may use: the built-in ones and its own (which win)."""
        return {**BUILTIN_FAMILIES, **self.definition.get("fonts", {})}

    def font_path(self, file) -> Path:
        """A font file the form names, relative to the form's folder."""
        path = Path(file)
        return path if path.is_absolute() else self.folder / path

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


def _check_fonts(form: PdfForm, problems: list) -> None:
    source, families = str(form.source), form.families()
    for name, files in form.definition.get("fonts", {}).items():
        for style in ("regular", "bold", "italic", "bold_italic"):
            if style in files and not form.font_path(files[style]).is_file() \
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
