"""Field types: everything a ``type:`` in module YAML does, on one object.

``FieldType`` is the contract; the kernel ships only the types its own fields and links
need (text, id, integer, checkbox, datetime, user, related and its parent type). The others
— the 21 of implementation guide 7.5.2, address, file, image — are a built-in plugin
(``core.apps.field_types``), and a third-party plugin adds more the same way, through the
``crbm_field_types`` hook: every caller asks the type rather than switching on its name, so
a new type works in forms, lists, filters, the API, export and import unchanged:

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
    computing      ``computed`` with ``compute`` and ``reads`` (a value made on every save)
    metadata       ``spec_problems`` (what a definition of it must also say)
    roles          ``derived`` (computed, never written), ``is_link`` (an id joined for its
                   label), ``has_options`` (a dropdown list), ``composed`` (a name made
                   of parts), ``internal`` (made by expansion only, never in YAML)

Composite types (address, currency, a dynamic "parent" related field) *expand* into plain
sub-fields when the registry is built, so tables, forms, filters and CSV all deal with
flat, one-column fields; the sub-fields remember their ``group``.

``normalize`` turns user input (form strings, JSON, Python values) into the stored Python
value or raises ``FieldError``; it runs once per field per record, so it stays cheap.
"""
from __future__ import annotations

import datetime as dt
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import sqlalchemy as sa
from markupsafe import Markup, escape
from sqlalchemy.dialects import mysql

from core.kernel.errors import N_, Message


class FieldError(ValueError):
    """The message shown beside the field (a translatable ``Message``)."""

    @property
    def message(self) -> str:
        return self.args[0]


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


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def like_escape(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_UNDECOMPOSED = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th"})


def search_key(value: Any) -> str:
    """Text as quick search compares it (NFKD, case folded, accents dropped, spaces collapsed),
    in a column compared byte by byte (``SEARCH_KEY``): a prefix is a range an index serves."""
    text = str(value or "")
    if text.isascii() and text.isprintable():  # most values: the same key, ten times faster
        return " ".join(text.lower().split())[:255]
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold()
                                 .translate(_UNDECOMPOSED))
    return " ".join("".join(c for c in text if not unicodedata.combining(c)
                            and (c.isprintable() or c.isspace())).split())[:255]


SEARCH_KEY = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql") \
    .with_variant(mysql.VARCHAR(255, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb")


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
    computed = False  # made by ``compute`` on every save, and stored
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
    internal = False  # made only by another type's expansion (a currency's code)

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

    def spec_problems(self, f, module, registry) -> list[tuple[str, str]]:
        """What is wrong with the definition beyond its JSON Schema, once every module is
        known: (path under the field, e.g. ``"formula"``, or ``""``; the reason)."""
        return []

    def compute(self, f, record: dict) -> Any:
        """A ``computed`` type's value from the other values of the record (FieldError when
        it cannot be made); the record service stores it on every save."""
        raise NotImplementedError

    def reads(self, spec: dict) -> frozenset[str]:
        """The fields a ``computed`` value is made from (recalculated when they change)."""
        return frozenset()

    def column_type(self, spec: dict) -> sa.types.TypeEngine:
        return sa.String(spec.get("max_size", self.default_size))

    def normalize(self, value: Any, spec: dict) -> Any:
        """Input -> stored value; ``None`` for blank. Raise FieldError when invalid."""
        if is_blank(value):
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


class IdType(TextType):
    name = "id"
    exact_sort = True
    default_size = 36

    def json_schema(self, f, registry, *, for_input):
        return None if for_input else {"type": ["string", "null"], "maxLength": 36}


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
        if is_blank(value):
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
        text = str(value).strip().lower()  # (1 and 0 too)
        if text in self.TRUE or text in self.FALSE:
            return text in self.TRUE
        raise FieldError(Message(N_("%(value)s is not yes or no"), value=repr(value)))


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
        if is_blank(value):
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
        type_spec = {"type": "parent_type", **part_label(N_("%(label)s type"),
                                                          spec.get("label", name)),
                     "allowed": list(spec["modules"]), "group": name}
        return [(name, {**spec, "type_field": f"{base}_type"}), (f"{base}_type", type_spec)]


class ParentTypeType(FieldType):
    name = "parent_type"
    internal = True
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


def part_label(label_format: str, label: str) -> dict:
    """A sub-field's label: English in ``label``; ``label_format`` and ``label_of`` let
    FieldDef.label say it in the reader's language ("%(label)s: city" % "Billing address")."""
    return {"label": label_format % {"label": label}, "label_format": label_format,
            "label_of": label}


# The types the kernel's own fields use (id, stamps, owner, links); the built-in plugin
# ``core.apps.field_types`` and other plugins add the rest through ``crbm_field_types``.
SYSTEM_TYPES: dict[str, FieldType] = {
    t.name: t for t in (TextType(), IdType(), IntegerType(), CheckboxType(), DateTimeType(),
                        UserType(), RelatedType(), ParentTypeType())
}
