"""Field types: how each ``type:`` in module YAML is stored, validated and read back.

The 21 types of the implementation guide (7.5.2) plus the kernel's own (id, user, image,
file, address). A plugin can add more through the ``crbm_field_types`` hook.

Composite types (address, currency, a dynamic "parent" related field) *expand* into plain
sub-fields when the registry is built, so tables, forms, filters and CSV all deal with
flat, one-column fields; the sub-fields remember their ``group``.

``normalize`` turns user input (form strings, JSON, Python values) into the stored Python
value or raises ``FieldError``; it runs once per field per record, so it stays cheap.
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, ClassVar
from urllib.parse import urlsplit

import nh3
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from core.kernel.errors import N_, Message


class FieldError(ValueError):
    """The message shown beside the field (a translatable ``Message``)."""

    @property
    def message(self) -> str:
        return self.args[0]


EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")
PHONE_RE = re.compile(r"^\+?[0-9 ().\-/]{3,40}(\s*(x|ext\.?)\s*[0-9]{1,8})?$", re.IGNORECASE)
UTC = dt.UTC


class UTCDateTime(sa.TypeDecorator):
    """Aware UTC datetimes in Python, naive UTC in the database (portable everywhere)."""

    # DATETIME keeps microseconds on MariaDB only when asked to.
    impl = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=UTC)


class MultiValue(sa.TypeDecorator):
    """A list of dropdown values stored as ``^a^,^b^``, so LIKE '%^a^%' finds one anywhere."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return ",".join(f"^{v}^" for v in value) if value else None

    def process_result_value(self, value, dialect):
        return [v.strip("^") for v in value.split(",")] if value else []


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


class FieldType:
    """Base: a text column. Subclasses override what differs."""

    name = "text"
    default_size = 255
    stored = True  # False: no column (computed on read)

    def expand(self, name: str, spec: dict) -> list[tuple[str, dict]]:
        """The concrete fields this definition becomes (composite types return several)."""
        return [(name, spec)]

    def column_type(self, spec: dict) -> sa.types.TypeEngine:
        return sa.String(spec.get("max_size", self.default_size))

    def normalize(self, value: Any, spec: dict) -> Any:
        """Input -> stored value; ``None`` for blank. Raise FieldError when invalid."""
        if _blank(value):
            return None
        text = str(value).strip()
        limit = spec.get("max_size", self.default_size)
        if limit and len(text) > limit:
            raise FieldError(Message(N_("is %(length)s characters long; at most %(limit)s allowed"),
                                     length=len(text), limit=limit))
        return self.check_text(text, spec)

    def check_text(self, text: str, spec: dict) -> Any:
        return text

    def to_text(self, value: Any) -> str:
        """For the change log and CSV."""
        return "" if value is None else str(value)


class NameType(FieldType):
    name = "name"


class ItemNumberType(FieldType):
    name = "item_number"
    default_size = 50


class PhoneType(FieldType):
    name = "phone"
    default_size = 50

    def check_text(self, text, spec):
        if not PHONE_RE.match(text):
            raise FieldError(Message(N_("%(value)s is not a phone number"), value=repr(text)))
        return text


class EmailType(FieldType):
    name = "email"

    def check_text(self, text, spec):
        if not EMAIL_RE.match(text):
            raise FieldError(Message(N_("%(value)s is not an email address"), value=repr(text)))
        return text


class UrlType(FieldType):
    name = "url"

    def check_text(self, text, spec):
        if "://" not in text:
            text = "https://" + text  # people type "example.com"
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https", "ftp") or "." not in parts.netloc:
            raise FieldError(Message(N_("%(value)s is not a web address"), value=repr(text)))
        return text


class TextAreaType(FieldType):
    name = "textarea"
    default_size = 0  # unlimited unless max_size is given

    def column_type(self, spec):
        return sa.Text()

    def normalize(self, value, spec):
        if _blank(value):
            return None
        text = str(value)
        limit = spec.get("max_size")
        if limit and len(text) > limit:
            raise FieldError(Message(N_("is %(length)s characters long; at most %(limit)s allowed"),
                                     length=len(text), limit=limit))
        return text


class HtmlType(TextAreaType):
    """Rich text. Sanitized on the way in, so it is safe wherever it is shown."""

    name = "html"

    def normalize(self, value, spec):
        text = super().normalize(value, spec)
        return None if text is None else nh3.clean(text)


class IdType(FieldType):
    name = "id"
    default_size = 36


class FileType(FieldType):
    """A stored file's key in the site's file store (the upload itself is the UI's job)."""

    name = "file"


class ImageType(FileType):
    name = "image"


class NumberType(FieldType):
    """Shared range check for integer, decimal, percentage and currency."""

    def check_range(self, number, spec):
        if "min" in spec and number < spec["min"]:
            raise FieldError(Message(N_("must be at least %(min)s"), min=spec["min"]))
        if "max" in spec and number > spec["max"]:
            raise FieldError(Message(N_("must be at most %(max)s"), max=spec["max"]))
        return number


class IntegerType(NumberType):
    name = "integer"

    def column_type(self, spec):
        return sa.BigInteger()

    def normalize(self, value, spec):
        if _blank(value):
            return None
        if isinstance(value, bool):
            raise FieldError(Message(N_("must be a whole number")))
        if isinstance(value, int):
            return self.check_range(value, spec)
        try:
            number = Decimal(str(value).strip().replace(",", ""))
        except InvalidOperation:
            raise FieldError(Message(N_("%(value)s is not a whole number"), value=repr(value))) from None
        if number != number.to_integral_value():
            raise FieldError(Message(N_("%(value)s is not a whole number"), value=repr(value)))
        return self.check_range(int(number), spec)


class DecimalType(NumberType):
    name = "decimal"
    precision, scale = 18, 4

    def column_type(self, spec):
        return sa.Numeric(spec.get("precision", self.precision), spec.get("scale", self.scale))

    def normalize(self, value, spec):
        if _blank(value):
            return None
        if isinstance(value, bool):
            raise FieldError(Message(N_("must be a number")))
        try:
            number = value if isinstance(value, Decimal) else Decimal(str(value).strip().replace(",", ""))
        except InvalidOperation:
            raise FieldError(Message(N_("%(value)s is not a number"), value=repr(value))) from None
        if not number.is_finite():
            raise FieldError(Message(N_("must be a finite number")))
        scale = spec.get("scale", self.scale)
        number = number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
        digits = spec.get("precision", self.precision) - scale
        if abs(number) >= Decimal(10) ** digits:
            raise FieldError(Message(
                N_("is too large (at most %(digits)s digits before the decimal point)"),
                digits=digits))
        return self.check_range(number, spec)


class PercentageType(DecimalType):
    name = "percentage"
    precision, scale = 9, 4


class CurrencyType(DecimalType):
    """An amount plus its ISO 4217 code in the sub-field ``<name>_currency``."""

    name = "currency"
    precision, scale = 26, 6

    def expand(self, name, spec):
        code_spec = {"type": "currency_code", **_part_label(N_("%(label)s currency"),
                                                            spec.get("label", name)),
                     "default": spec.get("currency", "USD"), "group": name}
        return [(name, spec), (f"{name}_currency", code_spec)]


class CurrencyCodeType(FieldType):
    name = "currency_code"
    default_size = 3

    def normalize(self, value, spec):
        if _blank(value):
            return None
        text = str(value).strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", text):
            raise FieldError(Message(N_("%(value)s is not an ISO 4217 currency code"),
                                     value=repr(text)))
        return text


class CheckboxType(FieldType):
    name = "checkbox"
    TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
    FALSE = frozenset({"0", "false", "no", "off", "n", "f", ""})

    def column_type(self, spec):
        return sa.Boolean()

    def normalize(self, value, spec):
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        text = str(value).strip().lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise FieldError(Message(N_("%(value)s is not yes or no"), value=repr(value)))


class DropdownType(FieldType):
    """A value from the field's ``options`` list; membership is checked by the service,
    which knows the merged dropdown lists (see ``Registry.option_values``)."""

    name = "dropdown"
    default_size = 100


class StatusType(DropdownType):
    name = "status"


class MultiselectType(FieldType):
    """Several dropdown values, stored as ``^a^,^b^`` so a LIKE finds one on every database."""

    name = "multiselect"

    def column_type(self, spec):
        return MultiValue()

    def normalize(self, value, spec):
        if _blank(value) or value == []:
            return None
        if isinstance(value, str):
            value = [v for v in value.split(",")]
        values = [str(v).strip() for v in value if str(v).strip()]
        return list(dict.fromkeys(values)) or None

    def to_text(self, value):
        return ", ".join(value or [])


class DateType(FieldType):
    name = "date"

    def column_type(self, spec):
        return sa.Date()

    def normalize(self, value, spec):
        if _blank(value):
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise FieldError(Message(N_("%(value)s is not a date (YYYY-MM-DD)"),
                                     value=repr(value))) from None

    def to_text(self, value):
        return "" if value is None else value.isoformat()


class DateTimeType(FieldType):
    """Aware UTC in Python (see UTCDateTime). Naive input is taken as UTC."""

    name = "datetime"

    def column_type(self, spec):
        return UTCDateTime()

    def normalize(self, value, spec):
        if _blank(value):
            return None
        if not isinstance(value, dt.datetime):
            if isinstance(value, dt.date):
                value = dt.datetime.combine(value, dt.time())
            else:
                try:
                    value = dt.datetime.fromisoformat(str(value).strip())
                except ValueError:
                    raise FieldError(Message(
                        N_("%(value)s is not a date and time (ISO 8601)"), value=repr(value))) from None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def to_text(self, value):
        return "" if value is None else value.isoformat()


class RelatedType(FieldType):
    """The id of a record of ``module``; with ``modules`` instead, a dynamic "parent"
    link whose target module is kept in the sub-field ``<base>_type``."""

    name = "related"
    default_size = 36

    def expand(self, name, spec):
        if "modules" not in spec:
            return [(name, spec)]
        base = name.removesuffix("_id")
        type_spec = {"type": "parent_type", **_part_label(N_("%(label)s type"),
                                                          spec.get("label", name)),
                     "allowed": list(spec["modules"]), "group": name}
        return [(name, {**spec, "type_field": f"{base}_type"}), (f"{base}_type", type_spec)]


class ParentTypeType(FieldType):
    name = "parent_type"
    default_size = 50

    def check_text(self, text, spec):
        if text not in spec["allowed"]:
            raise FieldError(Message(N_("%(value)s is not one of: %(allowed)s"), value=repr(text),
                                     allowed=", ".join(spec["allowed"])))
        return text


class UserType(FieldType):
    """A user's id (users are kernel records, not a module)."""

    name = "user"
    default_size = 36


class RelatedValueType(FieldType):
    """A field of the record a related field points to; read through a join, not stored."""

    name = "related_value"
    stored = False


class CalculatedType(FieldType):
    """Computed from ``formula`` on every save and stored in the column of its ``format``."""

    name = "calculated"
    FORMATS: ClassVar[dict[str, str]] = {"text": "text", "integer": "integer", "decimal": "decimal",
               "percentage": "percentage", "currency": "decimal", "checkbox": "checkbox",
               "date": "date"}

    def result_type(self, spec) -> FieldType:
        return KERNEL_TYPES[self.FORMATS[spec.get("format", "text")]]

    def column_type(self, spec):
        return self.result_type(spec).column_type(spec)

    def normalize(self, value, spec):
        return self.result_type(spec).normalize(value, spec)


def _part_label(label_format: str, label: str) -> dict:
    """A sub-field's label: English in ``label``; ``label_format`` and ``label_of`` let
    FieldDef.label say it in the reader's language ("%(label)s: city" % "Billing address")."""
    return {"label": label_format % {"label": label}, "label_format": label_format,
            "label_of": label}


class AddressType(FieldType):
    """Street, city, state, postal code and country sub-fields."""

    name = "address"
    PARTS: ClassVar = (("street", "textarea", 500, N_("%(label)s: street")),
                       ("city", "text", 100, N_("%(label)s: city")),
                       ("state", "text", 100, N_("%(label)s: state")),
                       ("postal_code", "text", 20, N_("%(label)s: postal code")),
                       ("country", "text", 100, N_("%(label)s: country")))

    def expand(self, name, spec):
        label = spec.get("label", name.replace("_", " ").capitalize())
        subs = []
        for part, type_name, size, label_format in self.PARTS:
            sub = {"type": type_name, **_part_label(label_format, label),
                   "max_size": size, "group": name}
            for flag in ("audited", "personal", "mass_update"):
                if flag in spec:
                    sub[flag] = spec[flag]
            subs.append((f"{name}_{part}", sub))
        return subs


KERNEL_TYPES: dict[str, FieldType] = {
    t.name: t
    for t in (
        FieldType(), TextAreaType(), IntegerType(), DecimalType(), PercentageType(),
        CheckboxType(), EmailType(), PhoneType(), ItemNumberType(), DropdownType(),
        StatusType(), MultiselectType(), DateType(), DateTimeType(), UrlType(), HtmlType(),
        CalculatedType(), RelatedType(), RelatedValueType(), CurrencyType(), NameType(),
        IdType(), UserType(), ImageType(), FileType(), AddressType(),
        # produced only by expansion of composite types:
        CurrencyCodeType(), ParentTypeType(),
    )
}
INTERNAL_TYPES = {"currency_code", "parent_type"}  # not allowed directly in YAML
GUIDE_TYPES = (  # the 21 of implementation guide 7.5.2
    "text", "textarea", "integer", "decimal", "percentage", "checkbox", "email", "phone",
    "item_number", "dropdown", "status", "multiselect", "date", "datetime", "url", "html",
    "calculated", "related", "related_value", "currency", "name",
)
