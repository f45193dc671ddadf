"""A test-only plugin adding a field type: a star ``rating`` (0 to 5 stars).

It proves a plugin's type works everywhere a kernel type does — the edit form, list and
detail pages, list filters, the REST API and its OpenAPI document, CSV export and import —
with no kernel code naming it: everything the type does is a method of ``RatingType``
(see ``core.kernel.fields.FieldType`` and docs/plugins.md, "Adding a field type"). Its module,
``reviews``, is in ``modules/``; its form control in ``templates/rating_widget.html``; its
stylesheet in ``static/rating.css``.
"""
from __future__ import annotations

import sqlalchemy as sa
from markupsafe import Markup

from core.kernel.errors import N_, Message
from core.kernel.fields import FieldError, FieldType
from core.kernel.hookspecs import hookimpl

PLUGIN_NAME = "rating"
STARS = 5
FULL, EMPTY = "★", "☆"


class RatingType(FieldType):
    """0 to 5 stars, stored as a small integer; typed as ``3`` or ``★★★``."""

    name = "rating"
    json_kind = "integer"  # the API's value: a JSON integer
    widget = "rating_widget.html"  # templates/ of this plugin
    grouped = True  # five radios: the field's label names the group
    stylesheet = "/static/rating.css"
    list_filter_op = "eq"
    filter_operators = frozenset({"eq", "gte", "lte", "empty", "not_empty"})
    searchable = False

    def column_type(self, spec):
        return sa.SmallInteger()

    def normalize(self, value, spec):
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        text = str(value).strip()
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif text.isdigit():
            number = int(text)
        elif text and set(text) <= {FULL, EMPTY}:
            number = text.count(FULL)  # "★★★" or "★★★☆☆"
        else:
            number = -1
        if not 0 <= number <= STARS:
            raise FieldError(Message(N_("%(value)s is not a rating: give 0 to 5 stars"),
                                     value=repr(value)))
        return number

    def stars(self, value: int) -> str:
        return FULL * value + EMPTY * (STARS - value)

    def display_text(self, fmt, f, value, record, options):
        return self.stars(value)

    def html(self, fmt, module, f, record, labels):
        value = record[f.name]
        return Markup('<span class="rating" role="img" aria-label="{}">{}</span>').format(
            fmt.gettext("%(count)s of 5 stars") % {"count": value}, self.stars(value))

    def export_text(self, fmt, f, record, labels):
        value = record.get(f.name)
        return "" if value is None else value  # the number: a spreadsheet sums it

    def widget_context(self, f, value, values, fmt):
        return {"stars": [(n, fmt.gettext("%(count)s of 5 stars") % {"count": n})
                          for n in range(1, STARS + 1)],
                "none": fmt.gettext("No rating")}

    def list_filter(self, text):
        for prefix, op in ((">=", "gte"), ("<=", "lte")):
            if text.startswith(prefix):
                return op, text[len(prefix):]
        return "eq", text

    def filter_choices(self, f, fmt):
        return ([(f">={n}", fmt.gettext("%(stars)s or more") % {"stars": FULL * n})
                 for n in range(STARS, 0, -1)]
                + [(str(n), self.stars(n)) for n in range(STARS, -1, -1)]
                + [(f"<={n}", fmt.gettext("%(stars)s or fewer") % {"stars": FULL * n})
                   for n in range(1, STARS)])

    def json_schema(self, f, registry, *, for_input):
        return {"type": ["integer", "null"], "minimum": 0, "maximum": STARS,
                "description": "a rating: 0 to 5 stars"}


@hookimpl
def crbm_field_types():
    return [RatingType()]
