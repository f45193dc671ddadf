"""Holiday sets: the public holidays of a country (or one of its subdivisions) that a holiday
pack names, resolved with the ``holidays`` library, plus the pack's own extra days.

A holiday pack's ``pack.yaml`` says, under ``provides``::

    holidays:
      country: CA                 # ISO 3166 code the holidays library knows (CA, US, GB, FI...)
      subdivision: "ON"           # optional: a province, state... (quoted: YAML reads ON as true)
      label: "Canada (Ontario)"   # optional: shown in the Holidays preference (else the pack title)
      extra:                      # optional: the organisation's own days
        - {date: "2027-02-15", name: "Company day"}

``problems(section)`` checks such a section (the pack loader calls it at install and in
``crbm validate``); ``HolidaySet.from_section`` builds the set; ``for_user`` finds the set a
user chose in their preferences. Holiday names come in the user's language where the library
has a translation for that country, else in the country's own default language; extra days
are named as the pack names them.
"""
from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

import holidays as holidays_lib

KIND = "holiday"  # the pack kind that provides a holiday set
# pack.yaml is YAML 1.1: ON, NO, YES, Y, N... unquoted are booleans (Ontario, Norway...)
YAML_BOOLEAN = 'YAML read this as true/false: put the code in quotes, e.g. "ON" or "NO"'
SECTION_KEYS = ("country", "subdivision", "label", "extra")  # as metadata/schema/pack.json


@dataclass(frozen=True)
class HolidaySet:
    country: str  # as the library spells it, e.g. "CA"
    subdivision: str | None = None
    label: str = ""
    extra: tuple[tuple[dt.date, str], ...] = ()

    @classmethod
    def from_section(cls, section: Mapping, label: str = "") -> HolidaySet:
        """The set a (valid: see ``problems``) ``provides.holidays`` section describes;
        ``label`` is used when the section has none (e.g. the pack's title)."""
        country = _country_code(section["country"])
        subdivision = section.get("subdivision")
        if subdivision not in (None, ""):
            subdivision = _subdivision_code(country, subdivision)
        extra = tuple((_as_date(item["date"]), str(item["name"]).strip())
                      for item in section.get("extra") or ())
        return cls(country, subdivision or None, str(section.get("label") or label or country),
                   extra)

    def days(self, year: int, language: str = "en") -> list[tuple[dt.date, str]]:
        """Every holiday of ``year`` as (date, name), by date. Two holidays on one day share
        one entry, their names joined with "; " (as the library does)."""
        named: dict[dt.date, list[str]] = {}
        for day, name in _library_days(self.country, self.subdivision, year,
                                       library_language(self.country, language)):
            named.setdefault(day, []).append(name)
        for day, name in self.extra:
            if day.year == year and name not in named.get(day, []):
                named.setdefault(day, []).append(name)
        return [(day, "; ".join(names)) for day, names in sorted(named.items())]


# -- the library, asked once per question --------------------------------------------------

@functools.lru_cache(maxsize=1)
def _supported() -> dict[str, tuple[str, ...]]:
    """Country code -> its subdivision codes, as the library lists them."""
    return {code: tuple(subdivs) for code, subdivs in holidays_lib.list_supported_countries().items()}


@functools.lru_cache(maxsize=256)
def _entity(country: str):
    """An empty holiday object of ``country``: what it supports (its languages)."""
    return holidays_lib.country_holidays(country, years=())


@functools.lru_cache(maxsize=512)
def _library_days(country: str, subdivision: str | None, year: int,
                  language: str | None) -> tuple[tuple[dt.date, str], ...]:
    found = holidays_lib.country_holidays(country, subdiv=subdivision, years=year,
                                          language=language)
    return tuple(sorted(found.items()))


def _country_code(text) -> str | None:
    code = text.strip().upper() if isinstance(text, str) else None
    return code if code in _supported() else None


def _subdivision_code(country: str, text) -> str | None:
    if not isinstance(text, str):
        return None
    wanted = str(text).strip().upper()
    return next((code for code in _supported()[country] if code.upper() == wanted), None)


def library_language(country: str, language: str) -> str | None:
    """The library's language for ``country`` closest to the user's ``language`` (a Babel
    name such as "fr", "fr_CA", "en"), else the country's default language."""
    entity = _entity(country)
    supported = entity.supported_languages
    wanted = (language or "").replace("-", "_")
    base = wanted.split("_")[0].lower()
    if wanted in supported:
        return wanted
    if base in supported:  # "fr_CA" -> "fr"
        return base
    same = [code for code in supported if code.split("_")[0].lower() == base]
    if same:  # "en" -> "en_CA" for Canada, "en_US" for Finland
        preferred = [entity.default_language, f"{base}_{country[:2]}", f"{base}_US"]
        return next((code for code in preferred if code in same), min(same))
    return entity.default_language


def _as_date(value) -> dt.date:
    """A pack's "YYYY-MM-DD" (ValueError for anything else, e.g. "2027-02-30")."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value  # YAML reads an unquoted 2027-02-15 as a date
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        raise ValueError(f"{value!r} is not written YYYY-MM-DD")
    return dt.date.fromisoformat(value.strip())


# -- checking a pack's section -------------------------------------------------------------

def problems(section) -> list[str]:
    """What is wrong with a ``provides.holidays`` section, one clear English sentence per
    problem ([] when it is usable), each starting with where it is inside the section
    ("extra[0].date: ..."): the caller says which file and section."""
    if not isinstance(section, Mapping):
        return ["must be a mapping with at least a country, e.g. {country: CA}"]
    found = [f"unknown key {key!r} (allowed: {', '.join(SECTION_KEYS)})"
             for key in section if key not in SECTION_KEYS]
    country = _country_code(section.get("country"))
    if "country" not in section:
        found.append("country: missing (an ISO 3166 country code such as CA, US or GB)")
    elif isinstance(section["country"], bool):
        found.append(f"country: {YAML_BOOLEAN}")
    elif country is None:
        found.append(f"country: {section['country']!r} is not a country the holidays "
                     f"library knows (use an ISO 3166 code such as CA, US or GB)")
    subdivision = section.get("subdivision")
    if isinstance(subdivision, bool):
        found.append(f"subdivision: {YAML_BOOLEAN}")
    elif country and subdivision not in (None, "") and _subdivision_code(country, subdivision) is None:
        known = _supported()[country]
        found.append(f"subdivision: {subdivision!r} is not a subdivision of {country}"
                     + (f" (known: {', '.join(known)})" if known else
                        f" ({country} has no subdivisions in the holidays library)"))
    label = section.get("label")
    if label is not None and (not isinstance(label, str) or not label.strip()):
        found.append("label: must be a non-empty text")
    found += _extra_problems(section.get("extra"))
    return found


def _extra_problems(extra) -> list[str]:
    if extra is None:
        return []
    if not isinstance(extra, list):
        return ['extra: must be a list of {date: "YYYY-MM-DD", name: ...} entries']
    found = []
    for i, item in enumerate(extra):
        where = f"extra[{i}]"
        if not isinstance(item, Mapping):
            found.append(f'{where}: must be a mapping {{date: "YYYY-MM-DD", name: ...}}')
            continue
        found += [f"{where}: unknown key {key!r} (allowed: date, name)"
                  for key in item if key not in ("date", "name")]
        if "date" not in item:
            found.append(f"{where}.date: missing")
        else:
            try:
                _as_date(item["date"])
            except ValueError:
                found.append(f"{where}.date: {item['date']!r} is not a date "
                             f"(write it YYYY-MM-DD, e.g. 2027-02-15)")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            found.append(f"{where}.name: missing (the name shown for that day)")
    return found


# -- the site's holiday packs and a user's choice ------------------------------------------

def pack_set(pack) -> HolidaySet | None:
    """The set an enabled holiday pack provides (None if its section is unusable)."""
    section = (pack.manifest.get("provides") or {}).get("holidays")
    if problems(section):
        return None  # refused at install; a pack changed by hand must not break a page
    return HolidaySet.from_section(section, pack.manifest.get("title") or pack.name)


def choices(site) -> list[tuple[str, str]]:
    """(pack name, label) of every enabled holiday pack with a usable set, by label."""
    sets = ((pack.name, pack_set(pack)) for pack in site.packs_of_kind(KIND))
    return sorted(((name, s.label) for name, s in sets if s is not None),
                  key=lambda pair: pair[1].casefold())


def for_user(site, prefs) -> HolidaySet | None:
    """The set named by the user's Holidays preference, if it is an enabled holiday pack."""
    name = getattr(prefs, "holidays", None)
    if not name:
        return None
    pack = next((p for p in site.packs_of_kind(KIND) if p.name == name), None)
    return pack_set(pack) if pack else None
