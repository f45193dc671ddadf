"""The ``case_rating`` field type: the 1 to 5 stars a contact gives a closed case through
the survey link (surveys.py), shown as stars on the case. Only the survey writes it (the
field is read-only), so any other value is refused."""
from __future__ import annotations

import sqlalchemy as sa
from markupsafe import Markup

from core.kernel.errors import N_, Message
from core.kernel.fields import FieldError, FieldType

STARS = 5
FULL, EMPTY = "★", "☆"


class CaseRatingType(FieldType):
    name = "case_rating"
    json_kind = "integer"
    list_filter_op = "eq"
    filter_operators = frozenset({"eq", "gte", "lte", "empty", "not_empty"})
    searchable = False

    def column_type(self, spec):
        return sa.SmallInteger()

    def normalize(self, value, spec):
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        text = str(value).strip()
        number = value if isinstance(value, int) and not isinstance(value, bool) else \
            int(text) if text.isdigit() else -1
        if not 1 <= number <= STARS:
            raise FieldError(Message(N_("%(value)s is not a rating: give 1 to 5 stars"),
                                     value=repr(value)))
        return number

    def display_text(self, fmt, f, value, record, options):
        return FULL * value + EMPTY * (STARS - value) if value else ""

    def html(self, fmt, module, f, record, labels):
        value = record.get(f.name)
        if not value:
            return Markup("")
        return Markup('<span class="case-rating" role="img" aria-label="{}">{}</span>').format(
            fmt.gettext("%(count)s of 5 stars") % {"count": value},
            FULL * value + EMPTY * (STARS - value))

    def export_text(self, fmt, f, record, labels):
        return record.get(f.name)

    def json_schema(self, f, registry, *, for_input):
        return {"type": ["integer", "null"], "minimum": 1, "maximum": STARS}
