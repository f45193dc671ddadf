"""Duplicate keys: what two likely duplicates have in common, kept in one indexed table.

A module opts in by flagging fields ``merge_duplicates: true`` in its YAML. What a
flagged field contributes depends on its type (``Plan``):

- an **email** field: the address lowercased and trimmed (``email``); for Gmail
  addresses also without the dots and ``+tag`` of the mailbox, which Gmail ignores
  (``jane.doe+crm@gmail.com`` is ``janedoe@gmail.com``) — a rule of one provider,
  cheap and certain, where guessing at others' would merge different people;
- a **phone** field: the number in E.164 (``phonenumbers``), read in the region of the
  record's country (its first ``*_country`` field: a name such as "France" or a code
  such as "FR") or else the site's (setting ``phone_region``, default ``US``), with its
  extension if it has one (colleagues behind one switchboard are not duplicates);
- the **name** (a ``name`` field, or a composed name's text parts): its words
  normalized (accents, case and punctuation dropped: ``fields.search_key``) and sorted,
  compared fuzzily (rapidfuzz's token_sort_ratio) — but only with the names of the same
  **bucket**: the record's company, given by any other flagged field (a contact's
  ``account_id``, a lead's ``account_name`` text); a module with no such field (accounts)
  buckets its names by their first three letters.

Keys live in ``crbm_duplicate_keys`` (module, record id, kind, key), indexed by (module,
kind, key), so a check is a few index lookups and fuzzy matching over one bucket, never a
scan. The record service's saves keep them: ``refresh`` runs in ``crbm_after_save``, in
the save's transaction, one DELETE and one executemany INSERT per batch. A row of kind
``*`` holds a signature of the module's flags: ``backfill`` (after every schema sync)
keys the records whose signature is missing or stale — a site upgraded from before this
app, a field the Studio has just flagged. Deleted records keep their keys (an undelete
finds them keyed); readers join the live rows.
"""
from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
import sqlalchemy as sa

from core.kernel.database import ID
from core.kernel.fields import SEARCH_KEY, search_key

TABLE = "crbm_duplicate_keys"
EMAIL, PHONE, NAME, BUCKET, SIGNATURE = "email", "phone", "name", "bucket", "*"
BUCKET_PREFIX = 3  # letters of a name that make its bucket where there is no company
DEFAULT_REGION = "US"
GMAIL = frozenset({"gmail.com", "googlemail.com"})
_NOT_WORD = re.compile(r"[^\w]+")


def tables(metadata: sa.MetaData) -> None:
    sa.Table(
        TABLE, metadata,
        sa.Column("module", sa.String(60), primary_key=True),
        sa.Column("record_id", ID, primary_key=True),
        sa.Column("kind", sa.String(8), primary_key=True),
        # byte-compared, as quick search's keys: equality is exact on every database
        sa.Column("key", SEARCH_KEY, primary_key=True),
        sa.Index("ix_crbm_duplicate_keys_key", "module", "kind", "key", "record_id"),
    )


# -- normalizing ---------------------------------------------------------------------------

def email_key(value) -> str | None:
    text = str(value or "").strip().lower()
    if "@" not in text:
        return None
    mailbox, _, domain = text.rpartition("@")
    if domain in GMAIL:
        mailbox = mailbox.split("+", 1)[0].replace(".", "")
        domain = "gmail.com"
    return f"{mailbox}@{domain}"[:255] if mailbox and domain else None


@lru_cache(maxsize=1)
def _country_codes() -> dict[str, str]:
    """Country names (English, as addresses hold them) and ISO codes -> ISO code."""
    from babel import Locale
    names = {name.casefold(): code for code, name in Locale("en").territories.items()
             if len(code) == 2}
    names |= {code.casefold(): code for code in names.values()}
    names |= {"usa": "US", "united states of america": "US", "uk": "GB",
              "great britain": "GB", "england": "GB"}
    return names


def region_of(value, default: str = DEFAULT_REGION) -> str:
    """The ISO region of a country as a record holds it ("France", "fr"), else ``default``."""
    return _country_codes().get(str(value or "").strip().casefold(), default)


@functools.lru_cache(maxsize=8192)  # a company's number comes back on each of its people
def phone_key(value, region: str) -> str | None:
    """The number in E.164, or None when it cannot be a phone number."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    key = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # an extension tells colleagues behind one switchboard apart
    return f"{key}x{number.extension}" if number.extension else key


def name_key(text) -> str:
    """A name's words normalized and sorted: "Doe, Jane" and "jane DOE" are one key."""
    return " ".join(sorted(_NOT_WORD.sub(" ", search_key(text)).replace("_", " ").split()))[:200]


# -- what a module's flags ask for ---------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """The flagged fields of one module, by what they give."""
    module: str
    emails: tuple[str, ...]
    phones: tuple[str, ...]
    names: tuple[str, ...]  # the text fields that make the name (a composed name's parts)
    buckets: tuple[str, ...]  # the company: other flagged fields
    countries: tuple[str, ...]  # where a phone's region is read
    signature: str

    @property
    def sources(self) -> frozenset[str]:
        """The fields whose change changes the keys."""
        return frozenset((*self.emails, *self.phones, *self.names, *self.buckets,
                          *self.countries))


_PLANS: dict[tuple[int, str], Plan | None] = {}


def plan_of(module) -> Plan | None:
    """The module's plan, None when it flags no field (cached per module definition)."""
    cache_key = (id(module), module.name)
    if cache_key not in _PLANS:
        if len(_PLANS) > 500:  # registries come and go (Studio changes): keep it bounded
            _PLANS.clear()
        _PLANS[cache_key] = _make_plan(module)
    return _PLANS[cache_key]


def _make_plan(module) -> Plan | None:
    flagged = [f for f in module.fields.values() if f.spec.get("merge_duplicates")]
    if not flagged:
        return None
    emails, phones, names, buckets = [], [], [], []
    for f in flagged:
        kind = f.type.name
        if kind == "email":
            emails.append(f.name)
        elif kind == "phone":
            phones.append(f.name)
        elif kind == "name" or f.name == module.name_field:
            parts = f.spec.get("parts")  # a composed name: its text parts (a form gives those)
            names.extend(p for p in parts or [f.name] if p in module.fields
                         and module.fields[p].type.name not in ("dropdown", "status"))
        else:
            buckets.append(f.name)
    countries = tuple(n for n, f in module.fields.items()
                      if n.endswith("_country") and f.stored) if phones else ()
    described = repr((emails, phones, names, buckets, countries, BUCKET_PREFIX))
    return Plan(module.name, tuple(emails), tuple(phones), tuple(names), tuple(buckets),
                countries, hashlib.sha1(described.encode()).hexdigest()[:16])


def default_region(site) -> str:
    code = str((site.settings or {}).get("phone_region") or "").upper()
    return code if len(code) == 2 and code.isalpha() else DEFAULT_REGION


def keys_of(plan: Plan, values, region: str) -> dict[str, list[str]]:
    """kind -> keys of a record (or of a form's values). The bucket is "" when the module
    has a company field and the record names none: such names are compared with nobody's
    (a name alone is no evidence)."""
    keys: dict[str, list[str]] = {}
    emails = [k for k in (email_key(values.get(n)) for n in plan.emails) if k]
    if emails:
        keys[EMAIL] = list(dict.fromkeys(emails))
    if plan.phones:
        country = next((values[n] for n in plan.countries if values.get(n)), None)
        region = region_of(country, region)
        phones = [k for k in (phone_key(values.get(n), region) for n in plan.phones) if k]
        if phones:
            keys[PHONE] = list(dict.fromkeys(phones))
    name = name_key(" ".join(str(values.get(n) or "") for n in plan.names))
    if name:
        keys[NAME] = [name]
        bucket = bucket_of(plan, values, name)
        if bucket:
            keys[BUCKET] = [bucket]
    return keys


def bucket_of(plan: Plan, values, name: str) -> str:
    if plan.buckets:
        company = next((values.get(n) for n in plan.buckets if values.get(n)), None)
        # a related field's id as it is; a text field (a company name) normalized
        return str(company) if isinstance(company, str) and _is_id(company) \
            else name_key(company) if company else ""
    return name.replace(" ", "")[:BUCKET_PREFIX]


def _is_id(text: str) -> bool:
    return len(text) == 36 and text.count("-") == 4


# -- keeping them ----------------------------------------------------------------------

def refresh(site, module, records: list[dict], conn, *, replace: bool = True) -> None:
    """(Re)write the keys of ``records`` (as stored) in the caller's transaction: one
    DELETE and one executemany INSERT for the lot."""
    plan = plan_of(module)
    if plan is None or not records:
        return
    table = site.tables.tables[TABLE]
    region = default_region(site)
    rows = []
    for record in records:
        rows.append({"module": plan.module, "record_id": record["id"], "kind": SIGNATURE,
                     "key": plan.signature})
        for kind, keys in keys_of(plan, record, region).items():
            rows.extend({"module": plan.module, "record_id": record["id"], "kind": kind,
                         "key": key} for key in keys)
    if replace:
        ids = [r["id"] for r in records]
        for start in range(0, len(ids), 500):
            conn.execute(table.delete().where(table.c.module == plan.module,
                                              table.c.record_id.in_(ids[start:start + 500])))
    conn.execute(table.insert(), rows)


def on_save(site, module, batch, conn) -> None:
    """``crbm_after_save``: new records, and updated ones whose flagged fields moved."""
    plan = plan_of(module)
    if plan is None:
        return
    sources = plan.sources
    changed = [c.record for c in batch if c.is_new or sources.intersection(c.changes)]
    if changed:
        refresh(site, module, changed, conn, replace=not all(c.is_new for c in batch))


def backfill(site, batch: int = 2_000) -> int:
    """Key the records (deleted ones too) whose signature row is missing or stale, a batch
    a transaction, found by an anti-join on the key table's primary key."""
    keys = site.tables.tables.get(TABLE)
    done = 0
    if keys is None:
        return done
    for module in site.registry.modules.values():
        plan = plan_of(module)
        table = site.tables.tables.get(module.table)
        if plan is None or table is None:
            continue
        names = [n for n in dict.fromkeys(("id", *plan.sources)) if n in table.c]
        keyed = sa.select(sa.literal(1)).where(
            keys.c.module == plan.module, keys.c.record_id == table.c.id,
            keys.c.kind == SIGNATURE, keys.c.key == plan.signature)
        after = ""  # keyset: each batch starts past the last, not at the table's start
        while True:
            with site.engine.begin() as conn:
                rows = [dict(r) for r in conn.execute(
                    sa.select(*(table.c[n] for n in names))
                    .where(table.c.id > after, ~keyed.exists())
                    .order_by(table.c.id).limit(batch)).mappings()]
                refresh(site, module, rows, conn)
            done += len(rows)
            if len(rows) < batch:
                break
            after = rows[-1]["id"]
    return done
