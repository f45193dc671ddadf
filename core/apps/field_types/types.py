"""The field types CRBM ships beyond the kernel's own: the 21 of implementation guide 7.5.2
(7.5.9 for calculated fields), address, file and image.

They reach the registry through ``crbm_field_types`` as any plugin's type does
(core.apps.field_types.plugin); nothing in the kernel names them. The currency type starts
a field in the site's default currency (``default_currency``, Admin → Order management),
which the registry is rebuilt with when it changes.
"""
from __future__ import annotations

import datetime as dt
import functools
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import ClassVar
from urllib.parse import urlsplit

import nh3
import sqlalchemy as sa
from markupsafe import Markup, escape

from core.apps.field_types import formula
from core.kernel.errors import N_, Message
from core.kernel.fields import (
    SYSTEM_TYPES,
    FieldError,
    FieldType,
    NumberType,
    TextType,
    is_blank,
    like_escape,
    part_label,
)

# The site setting of the currency new documents and currency fields start in, and a new
# site's.
CURRENCY_SETTING = "currency"
INITIAL_CURRENCY = "USD"


def default_currency(site) -> str:
    """The currency a new document or currency field starts in (the site setting)."""
    stored = site.settings.get(CURRENCY_SETTING)
    code = stored.get("default") if isinstance(stored, dict) else None
    return code if isinstance(code, str) and len(code) == 3 else INITIAL_CURRENCY


EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")
PHONE_RE = re.compile(r"^\+?[0-9 ().\-/]{3,40}(\s*(x|ext\.?)\s*[0-9]{1,8})?$", re.IGNORECASE)
class MultiValue(sa.TypeDecorator):
    """A list of dropdown values stored as ``^a^,^b^``, so LIKE '%^a^%' finds one anywhere."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return ",".join(f"^{v}^" for v in value) if value else None

    def process_result_value(self, value, dialect):
        return [v.strip("^") for v in value.split(",")] if value else []


class NameType(TextType):
    name = "name"
    indexed = True

    def composed(self, spec):
        return "parts" in spec  # a person's name: made from first and last name

    def spec_problems(self, f, module, registry):
        return [("parts", f"no field {part!r} in this module")
                for part in f.spec.get("parts", []) if part not in module.fields]


class ItemNumberType(TextType):
    name = "item_number"
    exact_sort = True
    default_size = 50


class PhoneType(FieldType):
    name = "phone"
    default_size = 50
    json_kind = "string"
    input_type = "tel"

    def html(self, fmt, module, f, record, labels):
        text = escape(record[f.name])
        return Markup(f'<a href="tel:{text}">{text}</a>')

    def check_text(self, text, spec):
        if not PHONE_RE.match(text):
            raise FieldError(Message(N_("%(value)s is not a phone number"), value=repr(text)))
        return text


class EmailType(FieldType):
    name = "email"
    is_email = True
    json_kind = "string"
    input_type = "email"

    def html(self, fmt, module, f, record, labels):
        text = escape(record[f.name])
        return Markup(f'<a href="mailto:{text}">{text}</a>')

    def check_text(self, text, spec):
        if not EMAIL_RE.match(text):
            raise FieldError(Message(N_("%(value)s is not an email address"), value=repr(text)))
        return text


class UrlType(FieldType):
    name = "url"
    json_kind = "string"
    input_type = "url"

    def html(self, fmt, module, f, record, labels):  # only http(s)/ftp get stored
        text = escape(record[f.name])
        return Markup(f'<a href="{text}" rel="noopener noreferrer" target="_blank">{text}</a>')

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
    json_kind = "string"
    widget = "textarea"
    wide = True

    def html(self, fmt, module, f, record, labels):
        return Markup("<br>").join(escape(line) for line in record[f.name].splitlines())

    def column_type(self, spec):
        return sa.Text()

    def normalize(self, value, spec):
        if is_blank(value):
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
    widget = "html"

    def html(self, fmt, module, f, record, labels):
        return Markup('<div class="html-value">{}</div>').format(Markup(record[f.name]))

    def normalize(self, value, spec):
        text = super().normalize(value, spec)
        return None if text is None else nh3.clean(text, url_schemes=URL_SCHEMES)


# nh3's, and cid: — an email's inline image names a part of its own message (RFC 2392),
# which a browser cannot fetch: the mail client points it at the stored attachment
URL_SCHEMES = nh3.ALLOWED_URL_SCHEMES | {"cid"}


class FileType(FieldType):
    """A stored file's key in the site's file store (the upload itself is the UI's job)."""

    name = "file"
    json_kind = "string"
    widget = "file"
    api_writes = False  # uploaded through the web form; the API v1 has no uploads

    def html(self, fmt, module, f, record, labels):
        url = f"/m/{module.name}/{record['id']}/file/{f.name}"
        return Markup('<a href="{}">{}</a>').format(url, record[f.name].rsplit("/", 1)[-1])

    def read_form(self, form, f, fmt):
        raise KeyError(f.name)  # uploads are stored by the view (core/web/forms.read_form)


class ImageType(FileType):
    name = "image"
    accept = "image/*"

    def html(self, fmt, module, f, record, labels):
        url = f"/m/{module.name}/{record['id']}/file/{f.name}"
        return Markup('<img class="thumb" src="{}" alt="{}">').format(url, f.label)


class DecimalType(NumberType):
    name = "decimal"
    precision, scale = 18, 4
    json_kind = "decimal"

    def display_text(self, fmt, f, value, record, options):
        return fmt.number(value, f.spec.get("scale"))

    def column_type(self, spec):
        return sa.Numeric(spec.get("precision", self.precision), spec.get("scale", self.scale))

    def normalize(self, value, spec):
        if is_blank(value):
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
    list_filter_op = "starts"

    def display_text(self, fmt, f, value, record, options):
        return fmt.percent(value)


class CurrencyType(DecimalType):
    """An amount plus its ISO 4217 code in the sub-field ``<name>_currency``; a field that
    names no ``currency`` starts in the site's default one (``default_code``)."""

    name = "currency"
    precision, scale = 26, 6
    list_filter_op = "starts"

    def __init__(self, default_code: str = INITIAL_CURRENCY) -> None:
        self.default_code = default_code

    def _code(self, f, values) -> str:
        return (values or {}).get(f.name + "_currency") or f.spec.get("currency") \
            or self.default_code

    def step(self, f, values, fmt):
        digits = fmt.currency_digits(self._code(f, values))
        return "1" if digits == 0 else "0." + "0" * (digits - 1) + "1"

    def display_text(self, fmt, f, value, record, options):
        return fmt.currency(value, self._code(f, record))

    def expand(self, name, spec):
        code_spec = {"type": "currency_code", **part_label(N_("%(label)s currency"),
                                                           spec.get("label", name)),
                     "default": spec.get("currency", self.default_code), "group": name}
        return [(name, spec), (f"{name}_currency", code_spec)]


class CurrencyCodeType(FieldType):
    name = "currency_code"
    internal = True
    default_size = 3
    json_kind = "string"
    exact_sort = True
    input_attrs = ' size="4" maxlength="3" list="currency-codes"'

    def html(self, fmt, module, f, record, labels):
        return escape(record[f.name])

    def json_schema(self, f, registry, *, for_input):
        return {"type": ["string", "null"], "pattern": "^[A-Za-z]{3}$"} if for_input else None

    def normalize(self, value, spec):
        if is_blank(value):
            return None
        text = str(value).strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", text):
            raise FieldError(Message(N_("%(value)s is not an ISO 4217 currency code"),
                                     value=repr(text)))
        return text


class DropdownType(FieldType):
    """A value from the field's ``options`` list; membership is checked by the service,
    which knows the merged dropdown lists (see ``Registry.option_values``)."""

    name = "dropdown"
    default_size = 100
    json_kind = "string"
    has_options = exact_sort = True
    widget = "select"
    list_filter_op = "eq"
    searchable = False

    def display_text(self, fmt, f, value, record, options):
        return str(options.get(value, value))

    def copy_value(self, f, value):
        return f.spec.get("default", value)  # a copy starts over

    def html(self, fmt, module, f, record, labels):
        value = record[f.name]
        return escape(labels.get(f.name, {}).get(value, value))

    def json_schema(self, f, registry, *, for_input):
        if for_input and "options" in f.spec:
            return {"enum": [o["value"] for o in registry.dropdowns.get(f.spec["options"], [])]
                    + [None]}
        return None


class StatusType(DropdownType):
    name = "status"


class MultiselectType(FieldType):
    """Several dropdown values, stored as ``^a^,^b^`` so a LIKE finds one on every database."""

    name = "multiselect"
    json_kind = "list"
    has_options = exact_sort = True
    widget = "multiselect"
    list_filter_op = "eq"
    searchable = False

    def blank_value(self):
        return []

    def display_text(self, fmt, f, value, record, options):
        return ", ".join(str(options.get(v, v)) for v in value)

    def read_form(self, form, f, fmt):
        return [v for v in form.getlist(f.name) if v]

    def form_input(self, form, f):
        return form.getlist(f.name)

    def form_text(self, value, fmt):
        return value

    def filter_clause(self, column, op, value, spec):
        if op in ("eq", "contains"):  # one of the values: match the stored ^a^,^b^ text
            text = sa.type_coerce(column, sa.Text)
            return text.like(f"%^{like_escape(value)}^%", escape="\\")
        return super().filter_clause(column, op, value, spec)

    def column_type(self, spec):
        return MultiValue()

    def normalize(self, value, spec):
        if is_blank(value) or value == []:
            return None
        if isinstance(value, str):
            value = [v for v in value.split(",")]
        values = [str(v).strip() for v in value if str(v).strip()]
        return list(dict.fromkeys(values)) or None

    def to_text(self, value):
        return ", ".join(value or [])


class DateType(FieldType):
    name = "date"
    json_kind = "date"
    widget = "date"
    list_filter_op = "eq"

    def display_text(self, fmt, f, value, record, options):
        return fmt.date(value)

    def column_type(self, spec):
        return sa.Date()

    def normalize(self, value, spec):
        if is_blank(value):
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


class RelatedValueType(FieldType):
    """A field of the record a related field points to; read through a join, not stored."""

    name = "related_value"
    stored = False
    derived = True

    def source(self, registry, module, f):
        """(the other module, the field shown) or None when the definition is broken."""
        link = module.fields.get(f.spec.get("related_field", ""))
        target = registry.modules.get(link.spec.get("module", "")) if link else None
        shown = target.fields.get(f.spec.get("source_field", "")) if target else None
        return (target, shown) if shown is not None else None

    def spec_problems(self, f, module, registry):
        link = module.fields.get(f.spec.get("related_field", ""))
        if link is None or not link.type.is_link or "module" not in link.spec:
            return [("related_field",
                     "must name a related field of this module with a fixed 'module'")]
        target = registry.modules.get(link.spec["module"])
        if target and f.spec.get("source_field") not in target.fields:
            return [("source_field",
                     f"module {target.name!r} has no field {f.spec.get('source_field')!r}")]
        return []


class CalculatedType(FieldType):
    """Computed from ``formula`` (core.apps.field_types.formula) on every save and stored
    in the column of its ``format``."""

    name = "calculated"
    derived = computed = True
    FORMATS: ClassVar[dict[str, str]] = {"text": "text", "integer": "integer", "decimal": "decimal",
               "percentage": "percentage", "currency": "decimal", "checkbox": "checkbox",
               "date": "date"}

    def value_kind(self, spec):
        return {"integer": "integer", "decimal": "decimal", "percentage": "decimal",
                "currency": "decimal", "checkbox": "boolean",
                "date": "date"}.get(spec.get("format", "text"), "string")

    def digits(self, spec):
        return 18, 4  # the API's bound, whatever the format's column

    def result_type(self, spec) -> FieldType:
        return BUILTIN_TYPES[self.FORMATS[spec.get("format", "text")]]

    def column_type(self, spec):
        return self.result_type(spec).column_type(spec)

    def normalize(self, value, spec):
        return self.result_type(spec).normalize(value, spec)

    def display_text(self, fmt, f, value, record, options):
        return BUILTIN_TYPES[f.spec.get("format", "text")].display_text(fmt, f, value, record,
                                                                        options)

    def compute(self, f, record):
        try:
            value = _parsed(f.spec["formula"]).evaluate(record)
        except formula.FormulaEvalError as exc:
            raise FieldError(str(exc)) from None
        return self.normalize(value, f.spec)

    def reads(self, spec):
        return frozenset(_parsed(spec["formula"]).fields)

    def spec_problems(self, f, module, registry):
        if "formula" not in f.spec:
            return [("", "a calculated field needs a 'formula'")]
        try:
            parsed = _parsed(f.spec["formula"])
        except formula.FormulaError as exc:
            return [("formula", f"formula error: {exc}")]
        return [("formula", f"formula uses unknown field {used!r}")
                for used in sorted(parsed.fields - set(module.fields))]


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> formula.Formula:
    return formula.parse(text)


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
            sub = {"type": type_name, **part_label(label_format, label),
                   "max_size": size, "group": name}
            for flag in ("audited", "personal", "mass_update"):
                if flag in spec:
                    sub[flag] = spec[flag]
            subs.append((f"{name}_{part}", sub))
        return subs


TYPES: tuple[FieldType, ...] = (
    TextAreaType(), DecimalType(), PercentageType(), EmailType(), PhoneType(), ItemNumberType(),
    DropdownType(), StatusType(), MultiselectType(), DateType(), UrlType(), HtmlType(),
    CalculatedType(), RelatedValueType(), CurrencyType(), NameType(), ImageType(), FileType(),
    AddressType(), CurrencyCodeType(),
)
# what a site has with no other plugin's types (the currency's default code aside)
BUILTIN_TYPES: dict[str, FieldType] = {**SYSTEM_TYPES, **{t.name: t for t in TYPES}}
GUIDE_TYPES = (  # the 21 of implementation guide 7.5.2
    "text", "textarea", "integer", "decimal", "percentage", "checkbox", "email", "phone",
    "item_number", "dropdown", "status", "multiselect", "date", "datetime", "url", "html",
    "calculated", "related", "related_value", "currency", "name",
)
