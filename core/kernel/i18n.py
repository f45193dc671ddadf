"""Locale layer: one user's language, time zone and formats, and the message catalogs.

``Preferences`` is what a user chooses; ``Formatter`` turns stored Python values (aware-UTC
datetimes, Decimals, lists...) into the text that user reads, with Babel/CLDR doing the
locale work. Catalogs are plain ``.po`` files read at run time (no compiled ``.mo`` in
the repository): ``<dir>/<language>/LC_MESSAGES/crbm.po`` in each of ``LOCALE_DIRS``.

Templates: ``install_jinja(env)`` once, then render with the user's ``Formatter`` as ``fmt``
in the context; ``{% trans %}``/``_()`` and ``fmt.date(...)`` etc. then speak that user's
language, while one shared ``Environment`` serves everybody.

Metadata labels (module and field labels, dropdown options, layout sections) are English in
the YAML; ``label(text)`` translates one through the catalog ``activate()`` made current for
this request (a context variable: each request, thread and task has its own; English when
none was set, e.g. in the CLI).
"""
from __future__ import annotations

import contextvars
import copy
import dataclasses
import datetime as dt
import functools
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from gettext import NullTranslations, c2py
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

from babel import Locale, UnknownLocaleError, dates, numbers
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po
from babel.plural import to_gettext
from babel.support import Translations
from jinja2 import pass_context

DEFAULT_LANGUAGE = "en"  # what the site speaks with no language pack
LOCALE_DIRS: list[Path] = [Path(__file__).resolve().parents[1] / "locale"]
DOMAIN = "crbm"
STYLES = ("short", "medium", "long", "full")
AVAILABLE_TIMEZONES: list[str] = sorted(available_timezones() | {"UTC"})
_TIMEZONES = frozenset(AVAILABLE_TIMEZONES)
# The fields a date or time format may use: CLDR's pattern letters (Unicode TR35, "Date
# Field Symbol Table") with the widths CLDR defines for each, less the ones nobody shows a
# person (Julian days, cyclic years...). Checked here rather than by asking Babel: Babel
# accepts widths CLDR does not define (2.19 prints "ddd" as "023"), and that changes between
# its releases.
_W1_2, _W1_4, _W1_5 = range(1, 3), range(1, 5), range(1, 6)
DATE_FIELDS: dict[str, range | tuple[int, ...]] = {
    "G": _W1_5, "y": _W1_4, "Y": _W1_4, "u": _W1_4,  # era, year, week year, extended year
    "Q": _W1_5, "q": _W1_5, "M": _W1_5, "L": _W1_5,  # quarter, month (format, stand-alone)
    "w": _W1_2, "W": (1,), "d": _W1_2, "D": range(1, 4), "F": (1,),  # week, day
    "E": range(1, 7), "e": range(1, 7), "c": (1, 3, 4, 5, 6),  # day of the week
}
TIME_FIELDS: dict[str, range | tuple[int, ...]] = {
    "a": _W1_5, "b": _W1_5, "B": _W1_5,  # AM/PM, noon/midnight, "in the morning"
    "h": _W1_2, "H": _W1_2, "K": _W1_2, "k": _W1_2, "m": _W1_2, "s": _W1_2,
    "S": range(1, 10),  # fractions of a second
    "z": _W1_4, "Z": _W1_5, "O": (1, 4), "v": (1, 4), "V": _W1_4, "X": _W1_5, "x": _W1_5,
}
# A CLDR pattern, piece by piece: quoted text ('' is a quote), a run of one letter (a
# field), or other literal text. A lone ' (unclosed quote) matches nothing.
_PATTERN_TOKEN = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|[^'A-Za-z]+")


def N_(message: str) -> str:
    """Mark a string for extraction only; whoever shows it translates it."""
    return message


# --- preferences -------------------------------------------------------------------------

def _locale_name(text) -> str | None:
    """Canonical Babel name ("en-gb" -> "en_GB"), or None when CLDR does not know it."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return str(Locale.parse(text.strip().replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


def _pattern_fields(text: str) -> list[str] | None:
    """The fields of a CLDR date/time pattern ("dd.MM.yyyy" -> ["dd", "MM", "yyyy"]), or
    None when it does not parse (an unclosed quote)."""
    fields, at = [], 0
    while at < len(text):
        token = _PATTERN_TOKEN.match(text, at)
        if token is None:
            return None
        if token.group(1):
            fields.append(token.group(0))
        at = token.end()
    return fields


def _pattern_ok(text, allowed: Mapping[str, Sequence[int]]) -> bool:
    """A Babel style name, or a CLDR pattern whose every field is one of ``allowed`` at a
    width CLDR defines for it (quoted text aside). An unknown letter would be printed as
    it is, an odd width ("ddd") as whatever the installed Babel makes of it."""
    if text in STYLES:
        return True
    if not isinstance(text, str) or not 0 < len(text) <= 64:
        return False
    fields = _pattern_fields(text)
    return bool(fields) and all(f[0] in allowed and len(f) in allowed[f[0]] for f in fields)


_CHECKS = {
    "language": (lambda v: _locale_name(v) is not None, N_("Unknown language or locale")),
    "timezone": (lambda v: v in _TIMEZONES, N_("Unknown time zone")),
    "date_format": (lambda v: _pattern_ok(v, DATE_FIELDS), N_("Not a valid date format")),
    "time_format": (lambda v: _pattern_ok(v, TIME_FIELDS), N_("Not a valid time format")),
    "number_locale": (lambda v: v in (None, "") or _locale_name(v) is not None,
                      N_("Unknown language or locale")),
    # the pack names of a theme and a holiday set; whether that pack is installed is the
    # site's business (core.apps.packs.packs), checked where the choice is offered
    "theme": (lambda v: v in (None, "") or _pack_name(v), N_("Unknown theme")),
    "holidays": (lambda v: v in (None, "") or _pack_name(v), N_("Unknown holiday set")),
    "week_start": (lambda v: v in (None, "", *"0123456"), N_("Not a day of the week")),
}


def _pack_name(text) -> bool:
    return isinstance(text, str) and re.fullmatch(r"[a-z][a-z0-9_]{1,59}", text) is not None


def validate_preferences(data: Mapping) -> dict[str, str]:
    """Field -> message (English, marked for translation) for each bad value in ``data``."""
    return {key: message for key, (ok, message) in _CHECKS.items()
            if key in data and not ok(data[key])}


@dataclass(frozen=True)
class Preferences:
    language: str = "en"
    timezone: str = "UTC"
    date_format: str = "medium"
    time_format: str = "short"
    number_locale: str | None = None
    theme: str | None = None  # an installed theme pack; None: the site's default look
    holidays: str | None = None  # an installed holiday pack shown on calendars and date pickers
    week_start: str | None = None  # "0" Monday .. "6" Sunday; None: the company's first day

    @classmethod
    def from_dict(cls, data: Mapping | None) -> Preferences:
        """Unknown keys are ignored; a bad value falls back to its default (never raises)."""
        data = data if isinstance(data, Mapping) else {}
        good = {k: data[k] for k in _CHECKS if k in data and _CHECKS[k][0](data[k])}
        for key in ("language", "number_locale"):
            if key in good:
                good[key] = _locale_name(good[key])  # None for "" number_locale
        for key in ("theme", "holidays", "week_start"):
            if key in good:
                good[key] = good[key] or None
        return cls(**good)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --- catalogs ----------------------------------------------------------------------------

def _language_chain(language: str) -> list[str]:
    """"zh_Hant_TW" -> ["zh_Hant_TW", "zh_Hant", "zh"]: most specific catalog first."""
    parts = language.replace("-", "_").split("_")
    return ["_".join(parts[:n]) for n in range(len(parts), 0, -1)]


def _load(language: str, dirs: Sequence[Path]) -> Translations | None:
    """Every dir's catalog for exactly ``language``, merged; later dirs override earlier."""
    merged = None
    for folder in dirs:
        po = Path(folder) / language / "LC_MESSAGES" / f"{DOMAIN}.po"
        if not po.is_file():
            continue
        data = po.read_bytes()
        catalog = read_po(io.BytesIO(data), locale=language, domain=DOMAIN)
        rule = _plural_forms(catalog, language, declared=_declares_plural_forms(data))
        if rule is not None:
            catalog.mime_headers = [("Plural-Forms", rule)]
        buf = io.BytesIO()
        write_mo(buf, catalog)  # compiled in memory: .po files are the only source
        buf.seek(0)
        loaded = Translations(buf, domain=DOMAIN)
        merged = loaded if merged is None else merged.merge(loaded)
    return merged


def _declares_plural_forms(po_data: bytes) -> bool:
    """Whether the .po's header (its first entry, up to the first blank line) says how its
    plurals are chosen."""
    header = po_data.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    return re.search(rb'^\s*"Plural-Forms:', header, re.MULTILINE) is not None


def _plural_forms(catalog: Catalog, language: str, declared: bool) -> str | None:
    """The Plural-Forms a catalog is compiled with, when its own header does not say
    (None: keep what Babel chose).

    A catalog's plural forms are numbered by the rule it was written for. Its header names
    that rule; without one, Babel would take its own table's rule for the language, which
    changes between Babel releases (2.19 gives French three forms) and then picks a form
    the catalog does not have, so the English shows instead. So: the table's rule when the
    catalog has as many forms as it, else for two forms CLDR's "one" against the rest
    (French: 0 and 1 singular), for one form always that one."""
    if declared:
        return None
    # read_po pads each plural to Babel's count with empty forms: count those written
    forms = max((i + 1 for m in catalog if m.id and m.pluralizable
                 and isinstance(m.string, tuple | list) for i, form in enumerate(m.string)
                 if form), default=0)
    if forms == 0:
        return None
    try:
        if forms == get_plural(language).num_plurals:
            return None
        one = Locale.parse(language).plural_form.rules.get("one")
    except (UnknownLocaleError, ValueError):
        one = None
    if forms == 1:
        return "nplurals=1; plural=0;"
    if forms == 2 and one:
        rule = to_gettext({"one": one})
        try:  # Python's gettext compiles it: it must use only n (CLDR's i is n here)
            c2py(rule.split("plural=", 1)[1].rstrip(";"))
        except (ValueError, SyntaxError):
            return "nplurals=2; plural=(n != 1);"
        return rule
    return None


@functools.lru_cache(maxsize=64)
def _translations(language: str, dirs: tuple[Path, ...]):
    result = NullTranslations()
    for code in reversed(_language_chain(language)):  # build "fr" first, "fr_CA" on top
        loaded = _load(code, dirs)
        if loaded is not None:
            loaded.add_fallback(result)
            result = loaded
    result.crbm_language = language  # for the Studio's own per-language labels (language())
    return result


def translations(language: str, extra_dirs: Sequence[Path] = ()) -> Translations | NullTranslations:
    """The catalog for ``language`` from LOCALE_DIRS + ``extra_dirs`` (later dirs override
    earlier ones); unknown text stays as is. Cached: see ``reload_translations``."""
    return _translations(language, tuple(Path(d) for d in (*LOCALE_DIRS, *extra_dirs)))


def reload_translations() -> None:
    """Forget loaded catalogs, e.g. after a pack with .po files is installed."""
    _translations.cache_clear()
    _formatter.cache_clear()
    _installed.cache_clear()


@functools.lru_cache(maxsize=256)
def _formatter(prefs: Preferences, dirs: tuple[Path, ...]) -> Formatter:
    return Formatter(prefs, dirs)


def formatter(prefs: Preferences, extra_dirs: Sequence[Path] = ()) -> Formatter:
    """One shared Formatter per (preferences, catalog folders): both are immutable."""
    return _formatter(prefs, tuple(extra_dirs))


# --- metadata labels ---------------------------------------------------------------------

_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("crbm_translations", default=None)
_ENGLISH = NullTranslations()


def activate(catalog) -> contextvars.Token:
    """Make ``catalog`` (a ``translations()`` object) the one ``label()`` uses in this
    context; ``deactivate(token)`` undoes it."""
    return _ACTIVE.set(catalog)


def deactivate(token: contextvars.Token) -> None:
    _ACTIVE.reset(token)


def active():
    """The catalog ``label()`` translates with here (English when none was activated)."""
    catalog = _ACTIVE.get()
    return _ENGLISH if catalog is None else catalog


def language() -> str:
    """The language code of the active catalog ("en" when none was activated)."""
    return getattr(active(), "crbm_language", "en")


def translating() -> bool:
    """Whether a catalog is active here (False: labels stay as written, skip the work)."""
    return type(active()) is not NullTranslations


def label(text: str) -> str:
    """A metadata label (written in English in YAML) in the active language."""
    return active().gettext(text) if text else text  # "" would give the catalog header


def gettext_for(prefs: Preferences, extra_dirs: Sequence[Path] = ()):
    """The translations object (``.gettext``, ``.ngettext``, ``.pgettext``...) for ``prefs``."""
    return translations(prefs.language, extra_dirs)


@functools.lru_cache(maxsize=64)
def _installed(dirs: tuple[Path, ...]) -> frozenset[str]:
    codes = {DEFAULT_LANGUAGE}
    for folder in (*LOCALE_DIRS, *dirs):
        codes.update(p.parent.parent.name for p in Path(folder).glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    return frozenset(code for code in codes if _locale_name(code))


def available_languages(extra_dirs: Sequence[Path] = ()) -> list[tuple[str, str]]:
    """[("de", "Deutsch"), ("en", "English"), ...]: English plus every language with a catalog."""
    codes = _installed(tuple(Path(d) for d in extra_dirs))
    return sorted((code, Locale.parse(code).get_display_name(code)) for code in codes)


def installed_language(language: str, extra_dirs: Sequence[Path] = ()) -> bool:
    """Whether the site speaks ``language``: English, or a language with a catalog here
    ("fr_CA" through "fr")."""
    codes = _installed(tuple(Path(d) for d in extra_dirs))
    return any(code in codes for code in _language_chain(language))


def effective_preferences(prefs: Preferences, extra_dirs: Sequence[Path] = ()) -> Preferences:
    """``prefs`` as the site can honour them. A language it no longer speaks (its pack was
    removed or disabled) gives way to the site's default for everything that follows the
    language — words, dates, numbers, amounts — rather than English words around French
    dates; and whoever shows the preferences shows what is in effect."""
    if installed_language(prefs.language, extra_dirs):
        return prefs
    return dataclasses.replace(prefs, language=DEFAULT_LANGUAGE)


def install_jinja(env, key: str = "fmt") -> None:
    """Enable ``{% trans %}`` and ``_()`` in ``env``: they translate with the Formatter
    found under ``key`` in the render context (English without one). Macros imported
    without context cannot see it: use ``{% import ... with context %}``."""
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True  # babel.cfg extracts with trimmed = true too

    def catalog(context):
        fmt = context.get(key)
        return fmt.translations if isinstance(fmt, Formatter) else NullTranslations()

    env.install_gettext_callables(
        pass_context(lambda c, s: catalog(c).gettext(s)),
        pass_context(lambda c, s, p, n: catalog(c).ngettext(s, p, n)),
        newstyle=True,
        pgettext=pass_context(lambda c, ctx, s: catalog(c).pgettext(ctx, s)),
        npgettext=pass_context(lambda c, ctx, s, p, n: catalog(c).npgettext(ctx, s, p, n)),
    )


# --- formatting --------------------------------------------------------------------------

def _plain(value: Decimal) -> Decimal:
    """Drop trailing zeros (stored 12.5000 -> 12.5) without going to 1E+2."""
    value = value.normalize()
    return value.quantize(Decimal(1)) if value.as_tuple().exponent > 0 else value


def _round(value, digits: int) -> Decimal:
    """Half up, as fields.py stores them (Babel alone rounds half to even: 0.5 -> 0)."""
    return Decimal(str(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


@functools.lru_cache(maxsize=256)  # format_currency's pattern, the symbol in: Babel looks
def _currency_pattern(locale: str, code: str):  # the plural name up at every amount otherwise
    pattern = Locale.parse(locale).currency_formats["standard"]
    symbol = numbers.get_currency_symbol(code, locale)
    if "¤" in symbol or "¤¤" in "".join((*pattern.prefix, *pattern.suffix)):
        return pattern
    fast = copy.copy(pattern)
    fast.prefix, fast.suffix = (tuple(p.replace("¤", symbol) for p in part)
                                for part in (pattern.prefix, pattern.suffix))
    return fast


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


class Formatter:
    """Everything a template needs to show values to one user."""

    def __init__(self, prefs: Preferences, extra_dirs: Sequence[Path] = ()):
        prefs = Preferences.from_dict(prefs.to_dict())  # a hand-built bad value falls back too
        self.prefs = prefs
        self.locale = Locale.parse(prefs.language)
        self.number_locale = Locale.parse(prefs.number_locale or prefs.language)
        self.tz = ZoneInfo(prefs.timezone)
        self.translations = translations(prefs.language, extra_dirs)
        self.gettext, self.ngettext = self.translations.gettext, self.translations.ngettext
        # Resolve styles to CLDR patterns once, so date and time styles can differ in a datetime.
        style = prefs.date_format if prefs.date_format in STYLES else "short"
        self._date = self._pattern(prefs.date_format, self.locale.date_formats)
        self._time = self._pattern(prefs.time_format, self.locale.time_formats)
        glue = str(self.locale.datetime_formats.get(style, "{1} {0}"))
        self._datetime = glue.replace("{1}", self._date).replace("{0}", self._time)

    @staticmethod
    def _pattern(fmt: str, styles) -> str:
        return styles[fmt].pattern if fmt in STYLES else fmt

    def date(self, value: dt.date | dt.datetime | None) -> str:
        if value is None:
            return ""
        if isinstance(value, dt.datetime):  # the day it is for the user, not in UTC
            value = _utc(value).astimezone(self.tz).date()
        return dates.format_date(value, self._date, locale=self.locale)

    def datetime(self, value: dt.datetime | None) -> str:
        if value is None:
            return ""
        return dates.format_datetime(_utc(value).astimezone(self.tz), self._datetime, locale=self.locale)

    def time(self, value: dt.time | dt.datetime | None) -> str:
        if value is None:
            return ""
        if isinstance(value, dt.datetime):
            value = _utc(value).astimezone(self.tz)
        return dates.format_time(value, self._time, locale=self.locale)

    def number(self, value: Decimal | float | None, digits: int | None = None) -> str:
        if value is None:
            return ""
        value = value if isinstance(value, int | Decimal) else Decimal(str(value))
        pattern = self.number_locale.decimal_formats[None]
        if digits is None:  # every significant digit, however many
            value = _plain(value) if isinstance(value, Decimal) else value
            return pattern.apply(value, self.number_locale, decimal_quantization=False)
        pattern = copy.copy(pattern)  # the locale's own grouping, with fixed fraction digits
        pattern.frac_prec = (digits, digits)
        return pattern.apply(_round(value, digits), self.number_locale)

    def percent(self, value: Decimal | float | None) -> str:
        if value is None:
            return ""
        share = _plain(Decimal(str(value)) / 100)  # stored 12.5 means 12.5 %
        return numbers.format_percent(share, locale=self.number_locale, decimal_quantization=False)

    def currency(self, value: Decimal | float | None, code: str | None) -> str:
        """The amount in ``code``'s digits and symbol; without a code, a plain number."""
        if value is None:
            return ""
        if not code:
            return self.number(value, None)
        value = _round(value, self.currency_digits(code))
        return _currency_pattern(str(self.number_locale), code).apply(
            value, self.number_locale, currency=code)

    def currency_digits(self, code: str) -> int:
        return numbers.get_currency_precision(code)

    def field(self, field_def, value, record: Mapping | None = None, *,
              options: Mapping[str, str] | None = None) -> str:
        """Display text (not HTML-escaped) for any field type; ``options`` maps dropdown
        values to labels. The type says how (``FieldType.display_text``)."""
        if value is None or value == "" or value == []:
            return ""
        return field_def.type.display_text(self, field_def, value, record or {}, options or {})

    def to_local_input(self, value: dt.datetime | None) -> str:
        """``2026-03-01T10:30`` on the user's clock, for ``<input type="datetime-local">``."""
        return "" if value is None else _utc(value).astimezone(self.tz).strftime("%Y-%m-%dT%H:%M")

    def from_local_input(self, text: str) -> dt.datetime | None:
        """The user's wall-clock time -> aware UTC. A time skipped by a DST change (02:30 on
        a spring-forward night) is read with the offset before the change, i.e. one hour
        later on the new clock; a repeated time means its first occurrence."""
        if text is None or not str(text).strip():
            return None
        try:
            value = dt.datetime.fromisoformat(str(text).strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a date and time") from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.tz, fold=0)
        return value.astimezone(dt.UTC)
