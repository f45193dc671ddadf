"""A cell's text -> a field's value, as the file's author wrote it.

Dates and numbers are read in the locale the user chose for the file ("05/03/2024" is
5 March in en_GB, May 3rd in en_US; "1.234,50" is a number in de_DE), with ISO dates and
plain numbers always accepted, through Babel (CLDR's patterns and symbols, the same data
the UI formats with). Dropdown values are matched by value or by label in any language,
without case or accents ("Customer", "customer", "Client"); a source's own values are
translated first (SugarCRM's ``Closed Won`` is our ``closed_won``). Everything else goes
through the field type's own ``from_text``, so a plugin's field type reads its cells too.

Related and user fields are not parsed here: their values are names or ids that only a
query can resolve, which ``run`` does once per batch.
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import InvalidOperation
from zoneinfo import ZoneInfo

from babel import Locale, dates, numbers

from core.apps.imports.mapping import fold
from core.kernel import i18n
from core.kernel.errors import N_, Message
from core.kernel.fields import UTC, FieldError

NUMBER_TYPES = ("integer", "decimal", "currency", "percentage")
DEFERRED_TYPES = ("related", "user")  # resolved per batch by a query
CHOSEN_MAX = 10_000  # dropdown cells remembered (a bound: a free-text column mapped to one)
_PLAIN_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{1,2}:\d{2}(:\d{2})?)(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")


class Reader:
    """Parses cells for one import: its locale and timezone, the module's dropdowns."""

    def __init__(self, site, module, locale: str = "en_US", timezone: str = "UTC",
                 source_values: dict | None = None):
        self.site, self.module = site, module
        self.locale = Locale.parse(locale)
        self.tz = ZoneInfo(timezone)
        self.source_values = source_values or {}
        self._options: dict[str, dict[str, str]] = {}
        self._chosen: dict[tuple[str, str], str] = {}  # (field, cell) -> a dropdown's value

    def options(self, f) -> dict[str, str]:
        """Folded value or label (every installed language) -> stored value."""
        if f.name not in self._options:
            registry = self.site.registry
            found: dict[str, str] = {}
            languages = ["en", *[c for c, _ in i18n.available_languages(self.site.locale_dirs)
                                 if c != "en"]]
            for language in languages:
                token = i18n.activate(i18n.translations(language, self.site.locale_dirs))
                try:
                    for value, label in registry.choices(f):
                        found.setdefault(fold(str(label)), value)
                finally:
                    i18n.deactivate(token)
            for value, _ in registry.choices(f):  # a value wins over another's label
                found[fold(value)] = value
            self._options[f.name] = found
        return self._options[f.name]

    def value(self, f, text: str):
        """The stored value for ``text`` (not blank), or FieldError saying why not."""
        text = text.strip()
        kind = f.type.name
        theirs = self.source_values.get(f.name)
        if theirs and text in theirs:
            text = theirs[text]
        if f.type.has_options:
            return self._choice(f, text)
        if kind in NUMBER_TYPES:
            return f.type.from_text(self._number(text), f.spec)
        if kind == "date":
            return self._date(text)
        if kind == "datetime":
            return self._datetime(text)
        return f.type.from_text(text, f.spec)

    def _choice(self, f, text: str):
        if (f.name, text) in self._chosen:  # a column repeats a handful of values
            return self._chosen[f.name, text]
        options = self.options(f)
        if f.type.name == "multiselect":
            parts = [p.strip() for p in re.split(r"[,^]+", text) if p.strip()]
            bad = [p for p in parts if fold(p) not in options]
            if bad:
                raise FieldError(Message(N_("%(value)s is not one of the list's values"),
                                         value=repr(bad[0])))
            return [options[fold(p)] for p in parts]
        folded = fold(text)
        if folded not in options:
            raise FieldError(Message(N_("%(value)s is not one of the list's values"),
                                     value=repr(text)))
        if len(self._chosen) > CHOSEN_MAX:
            self._chosen.clear()
        self._chosen[f.name, text] = options[folded]
        return options[folded]

    def _number(self, text: str) -> str:
        text = text.replace("\u00a0", " ").replace("\u202f", " ").strip()
        text = re.sub(r"[^\d,.\-+' ]", "", text).strip()  # currency symbols, % signs
        if _PLAIN_NUMBER.match(text):
            return text
        try:
            return str(numbers.parse_decimal(text.replace(" ", ""), locale=self.locale))
        except (numbers.NumberFormatError, InvalidOperation, ValueError):
            raise FieldError(Message(N_("%(value)s is not a number in %(locale)s"),
                                     value=repr(text), locale=str(self.locale))) from None

    def _date(self, text: str) -> dt.date:
        head = text.split(" ")[0].split("T")[0]
        try:
            return dt.date.fromisoformat(head)
        except ValueError:
            pass
        try:
            found = dates.parse_date(head, locale=self.locale, format="short")
            if found.year < 100:
                found = found.replace(year=found.year + 2000)
            return found
        except (ValueError, IndexError):
            raise FieldError(Message(N_("%(value)s is not a date in %(locale)s"),
                                     value=repr(text), locale=str(self.locale))) from None

    def _datetime(self, text: str) -> dt.datetime:
        iso = _DATETIME.match(text)
        try:
            if iso:
                value = dt.datetime.fromisoformat(text.replace(" ", "T", 1))
            else:
                day, _, clock = text.partition(" ")
                value = dt.datetime.combine(
                    self._date(day),
                    dates.parse_time(clock, locale=self.locale, format="short")
                    if clock.strip() else dt.time())
        except (ValueError, IndexError, FieldError):
            raise FieldError(Message(N_("%(value)s is not a date and time in %(locale)s"),
                                     value=repr(text), locale=str(self.locale))) from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.tz)
        return value.astimezone(UTC)

