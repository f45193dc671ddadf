"""Field types: everything a ``type:`` in module YAML does, on one object.

The 21 types of the implementation guide (7.5.2) plus the kernel's own (id, user, image,
file, address). A plugin can add more through the ``crbm_field_types`` hook, and its type
works everywhere a kernel type does, because every caller asks the type rather than
switching on its name:

    storage        ``column_type``, ``expand`` (composites), ``stored``
    input          ``normalize`` (validate + convert), ``from_text`` (CSV/import cells)
    web form       ``widget`` (a macro of ``_fields.html``, or a template the plugin ships
                   such as ``"stars_widget.html"``), ``widget_context``, ``read_form``,
                   ``form_text``, ``wide``, ``input_type``
    display        ``html`` (list and detail cells), ``display_text`` (the Formatter's
                   text: CSV export, PDF, change log views), ``to_text`` (change log)
    filters        ``filter_operators``, ``list_filter`` (a list page's filter box),
                   ``filter_clause`` (an operator and value as SQL)
    API            ``json_kind``, ``json_schema``
    roles          ``derived`` (computed, never written), ``is_link`` (an id joined for its
                   label), ``has_options`` (a dropdown list), ``composed`` (a name made
                   of parts)

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
from markupsafe import Markup, escape
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


def like_escape(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# What a filter operator means in SQL, given the column and the (normalized) value.
OPERATORS = {
    "eq": lambda c, v: c.is_(None) if v is None else c == v,
    "ne": lambda c, v: c.is_not(None) if v is None else sa.or_(c != v, c.is_(None)),
    "lt": lambda c, v: c < v, "lte": lambda c, v: c <= v,
    "gt": lambda c, v: c > v, "gte": lambda c, v: c >= v,
    "in": lambda c, v: c.in_(v),
    "starts": lambda c, v: c.ilike(like_escape(v) + "%", escape="\\"),
    "contains": lambda c, v: c.ilike("%" + like_escape(v) + "%", escape="\\"),
    "empty": lambda c, v: c.is_(None),
    "not_empty": lambda c, v: c.is_not(None),
}
TEXT_OPERATORS = ("starts", "contains")  # their value is text, never normalized


class FieldType:
    """Base: a text column. Subclasses (and plugins' types) override what differs."""

    name = "text"
    default_size = 255
    stored = True  # False: no column (computed on read)
    derived = False  # computed by the kernel (calculated, related value): no one writes it
    computed = False  # computed from its ``formula`` on every save, and stored
    is_link = False  # holds another record's (or user's) id, joined for its name
    label_source = None  # a link to a kernel table (users) rather than a module's record
    has_options = False  # its values come from a dropdown list (``options:``)
    widget = "text"  # the form control: a macro of core/web/templates/_fields.html, or
    #                  a template file a plugin ships (a name ending in ".html")
    input_type = "text"  # <input type=...> of the "text" widget
    accept = None  # a file widget's ``accept`` (an image field: images only)
    input_attrs = ""  # more attributes of that input (trusted HTML, written by the type)
    wide = False  # the form gives it a whole row
    json_kind = "any"  # string, integer, decimal, boolean, date, datetime, list or any
    list_filter_op = "starts"  # what a list page's filter box does with the text typed
    filter_operators: ClassVar[frozenset[str]] = frozenset(OPERATORS)  # the API's
    searchable = True  # quick search may look in it (words, not codes)
    api_writes = True  # the REST API may write it (when ``writable``)
    exact_sort = False  # ids and codes sort as stored (folding case would cost the index)
    is_email = False  # holds an email address (where a document is mailed to)
    indexed = False  # its column gets an index (links and names are looked up by value)
    stylesheet = None  # a URL its widget and display need (a plugin's "/static/x.css")
    grouped = False  # its widget is a group of controls (radios): the label names the group

    # -- roles ----------------------------------------------------------------------------

    def composed(self, spec: dict) -> bool:
        """Whether the value is made by the kernel from other fields (a person's name)."""
        return False

    def writable(self, spec: dict) -> bool:
        """Whether a form or the API may write it."""
        return not self.derived and not self.composed(spec)

    def default_value(self, spec: dict) -> Any:
        """A new record's value when the module gives no ``default``."""
        return None

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
        """For the change log and the edit form's conflict snapshot."""
        return "" if value is None else str(value)

    def from_text(self, text: str, spec: dict) -> Any:
        """A CSV cell or other imported text -> stored value (FieldError when invalid)."""
        return self.normalize(text, spec)

    def blank_value(self) -> Any:
        """The stored value of a field left blank (multiselect: an empty list)."""
        return None

    # -- showing ----------------------------------------------------------------------------

    def display_text(self, fmt, f, value: Any, record: dict, options: dict) -> str:
        """The value as a person reads it, in ``fmt``'s language and formats (not escaped).
        Only called with a value that is not blank."""
        if isinstance(value, bool):
            return fmt.gettext("Yes") if value else fmt.gettext("No")
        if isinstance(value, list):
            return ", ".join(str(options.get(v, v)) for v in value)
        if isinstance(value, int | float | Decimal):
            return fmt.number(value, None)
        if isinstance(value, dt.datetime):
            return fmt.datetime(value)
        if isinstance(value, dt.date):
            return fmt.date(value)
        return str(value)

    def html(self, fmt, module, f, record: dict, labels: dict) -> Markup:
        """A list or detail cell, escaped (``record[f.name]`` is not blank)."""
        return escape(fmt.field(f, record[f.name], record, options=labels.get(f.name)))

    def export_text(self, fmt, f, record: dict, labels: dict) -> str:
        """A CSV export cell, as a person reads it (``from_text`` reads it back)."""
        return fmt.field(f, record.get(f.name), record, options=labels.get(f.name))

    # -- the web form ---------------------------------------------------------------------

    def widget_context(self, f, value: Any, values: dict, fmt) -> dict:
        """Extra names the widget's template gets (a plugin's widget reads them as ``w``)."""
        return {}

    def read_form(self, form, f, fmt) -> Any:
        """The submitted value (a ``KeyError`` when the form did not send the field;
        ``FieldError`` when the text cannot be read)."""
        if f.name not in form:
            raise KeyError(f.name)
        return form.get(f.name)

    def form_text(self, value: Any, fmt) -> Any:
        """What the form control shows for a stored value."""
        return "" if value is None else str(value)

    def form_input(self, form, f) -> Any:
        """The input as typed, shown again beside the errors of a refused save."""
        return form.get(f.name, "")

    def copy_value(self, f, value: Any) -> Any:
        """What "Duplicate" puts in the new record's form (a status starts at its default)."""
        return value

    # -- filters ----------------------------------------------------------------------------

    def list_filter(self, text: str) -> tuple[str, Any]:
        """A list page's filter box text -> (operator, value)."""
        return self.list_filter_op, text

    def filter_choices(self, f, fmt) -> list[tuple[str, str]] | None:
        """(value, label) a list page's filter offers in a select instead of a text box
        (each value is read by ``list_filter``); None: the box."""
        return None

    def filter_clause(self, column, op: str, value: Any, spec: dict):
        """``column op value`` as SQL; ``value`` is the caller's (normalized here)."""
        if op == "in":
            value = [self.normalize(v, spec) for v in value]
        elif op not in ("empty", "not_empty", *TEXT_OPERATORS) and value is not None:
            value = self.normalize(value, spec)
        return OPERATORS[op](column, value)

    # -- the API ----------------------------------------------------------------------------

    def digits(self, spec: dict) -> tuple[int, int]:
        """(precision, scale) of a decimal value, for the API's bounds."""
        return (spec.get("precision", getattr(self, "precision", 18)),
                spec.get("scale", getattr(self, "scale", 4)))

    def source(self, registry, module, f) -> tuple | None:
        """A field read through a join (related value): (other module, its field)."""
        return None

    def value_kind(self, spec: dict) -> str:
        """The JSON kind of a value (``json_kind``; a calculated field's follows its format)."""
        return self.json_kind

    def json_schema(self, f, registry, *, for_input: bool) -> dict | None:
        """The value's JSON Schema, or None for the one ``json_kind`` gives."""
        return None


class TextType(FieldType):
    """A one-line text: shown as it is."""

    json_kind = "string"

    def html(self, fmt, module, f, record, labels):
        return escape(record[f.name])  # the commonest cells: nothing to format


class NameType(TextType):
    name = "name"
    indexed = True

    def composed(self, spec):
        return "parts" in spec  # a person's name: made from first and last name


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
    widget = "html"

    def html(self, fmt, module, f, record, labels):
        return Markup('<div class="html-value">{}</div>').format(Markup(record[f.name]))

    def normalize(self, value, spec):
        text = super().normalize(value, spec)
        return None if text is None else nh3.clean(text)


class IdType(TextType):
    name = "id"
    exact_sort = True
    default_size = 36

    def json_schema(self, f, registry, *, for_input):
        return None if for_input else {"type": ["string", "null"], "maxLength": 36}


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


class NumberType(FieldType):
    """Shared range check for integer, decimal, percentage and currency."""

    widget = "number"
    list_filter_op = "eq"

    def step(self, f, values: dict, fmt) -> str:
        """The number input's ``step``."""
        return "any"

    def check_range(self, number, spec):
        if "min" in spec and number < spec["min"]:
            raise FieldError(Message(N_("must be at least %(min)s"), min=spec["min"]))
        if "max" in spec and number > spec["max"]:
            raise FieldError(Message(N_("must be at most %(max)s"), max=spec["max"]))
        return number


class IntegerType(NumberType):
    name = "integer"
    json_kind = "integer"

    def step(self, f, values, fmt):
        return "1"

    def display_text(self, fmt, f, value, record, options):
        if f.spec.get("plain_number"):
            return str(value)  # a year or a code: 2019, not 2,019
        return fmt.number(value, None)

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
    json_kind = "decimal"

    def display_text(self, fmt, f, value, record, options):
        return fmt.number(value, f.spec.get("scale"))

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
    list_filter_op = "starts"

    def display_text(self, fmt, f, value, record, options):
        return fmt.percent(value)


class CurrencyType(DecimalType):
    """An amount plus its ISO 4217 code in the sub-field ``<name>_currency``."""

    name = "currency"
    precision, scale = 26, 6
    list_filter_op = "starts"

    def step(self, f, values, fmt):
        digits = fmt.currency_digits(values.get(f.name + "_currency") or f.spec.get("currency")
                                     or "USD")
        return "1" if digits == 0 else "0." + "0" * (digits - 1) + "1"

    def display_text(self, fmt, f, value, record, options):
        return fmt.currency(value, (record or {}).get(f"{f.name}_currency")
                            or f.spec.get("currency") or "USD")

    def expand(self, name, spec):
        code_spec = {"type": "currency_code", **_part_label(N_("%(label)s currency"),
                                                            spec.get("label", name)),
                     "default": spec.get("currency", "USD"), "group": name}
        return [(name, spec), (f"{name}_currency", code_spec)]


class CurrencyCodeType(FieldType):
    name = "currency_code"
    default_size = 3
    json_kind = "string"
    exact_sort = True
    input_attrs = ' size="4" maxlength="3" list="currency-codes"'

    def html(self, fmt, module, f, record, labels):
        return escape(record[f.name])

    def json_schema(self, f, registry, *, for_input):
        return {"type": ["string", "null"], "pattern": "^[A-Za-z]{3}$"} if for_input else None

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
    json_kind = "boolean"
    widget = "checkbox"
    list_filter_op = "eq"
    searchable = False

    def default_value(self, spec):
        return False

    def display_text(self, fmt, f, value, record, options):
        return fmt.gettext("Yes") if value else fmt.gettext("No")

    def read_form(self, form, f, fmt):
        return "1" in form.getlist(f.name)  # an unticked box sends only its hidden "0"

    def form_input(self, form, f):
        return "1" in form.getlist(f.name)

    def form_text(self, value, fmt):
        return value
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
    json_kind = "date"
    widget = "date"
    list_filter_op = "eq"

    def display_text(self, fmt, f, value, record, options):
        return fmt.date(value)

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
    json_kind = "datetime"
    widget = "datetime"

    def display_text(self, fmt, f, value, record, options):
        return fmt.datetime(value)

    def read_form(self, form, f, fmt):
        text = str(form.get(f.name, "")).strip()
        try:
            return fmt.from_local_input(text) if text else None
        except ValueError:
            raise FieldError(Message(N_("%(value)s is not a date and time"),
                                     value=repr(text))) from None

    def form_text(self, value, fmt):
        return fmt.to_local_input(value)  # on the user's clock

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
    json_kind = "string"
    is_link = indexed = exact_sort = True
    widget = "related"
    list_filter_op = "eq"

    def html(self, fmt, module, f, record, labels):
        value = record[f.name]
        target = f.spec.get("module") or record.get(f.spec["type_field"])
        if f"{f.name}__label" in record and record[f"{f.name}__label"] is None:
            # the record exists but the reader may not see it: neither name nor link
            return Markup('<span class="muted">{}</span>').format(fmt.gettext("(no access)"))
        if record.get(f"{f.name}__deleted"):  # they may see it, but it is gone: no link
            return Markup('<span class="muted">{}</span>').format(
                fmt.gettext("%(name)s (deleted)") % {"name": record[f"{f.name}__label"]})
        label = record.get(f"{f.name}__label") or value
        return Markup(f'<a href="/m/{escape(target)}/{escape(value)}">{escape(label)}</a>')

    def json_schema(self, f, registry, *, for_input):
        schema = {"type": ["string", "null"], "maxLength": 36}
        if "modules" not in f.spec:
            schema["x-crbm-related"] = f.spec.get("module", "users")
        return schema

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
    json_kind = "string"
    exact_sort = True
    widget = "select"
    list_filter_op = "eq"

    def json_schema(self, f, registry, *, for_input):
        return {"enum": [*f.spec.get("allowed", []), None]} if for_input else None

    def check_text(self, text, spec):
        if text not in spec["allowed"]:
            raise FieldError(Message(N_("%(value)s is not one of: %(allowed)s"), value=repr(text),
                                     allowed=", ".join(spec["allowed"])))
        return text


class UserType(FieldType):
    """A user's id (users are kernel records, not a module)."""

    name = "user"
    default_size = 36
    json_kind = "string"
    is_link = indexed = exact_sort = True
    widget = "user"
    label_source = "crbm_users"
    list_filter_op = "eq"

    def html(self, fmt, module, f, record, labels):
        return escape(record.get(f"{f.name}__label") or record[f.name])

    def json_schema(self, f, registry, *, for_input):
        return {"type": ["string", "null"], "maxLength": 36, "x-crbm-related": "users"}


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


class CalculatedType(FieldType):
    """Computed from ``formula`` on every save and stored in the column of its ``format``."""

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
        return KERNEL_TYPES[self.FORMATS[spec.get("format", "text")]]

    def column_type(self, spec):
        return self.result_type(spec).column_type(spec)

    def normalize(self, value, spec):
        return self.result_type(spec).normalize(value, spec)

    def display_text(self, fmt, f, value, record, options):
        return KERNEL_TYPES[f.spec.get("format", "text")].display_text(fmt, f, value, record,
                                                                       options)


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
        TextType(), TextAreaType(), IntegerType(), DecimalType(), PercentageType(),
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
