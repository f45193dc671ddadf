"""Run-history messages that stay translatable: what a job writes is read later, by someone
else, in their language.

An action's result or failure, and the engine's own notes ("replaced (unique)"), are a
``Said``: plain English wherever a str is used (the ``message`` column, the API, logs,
tests) that keeps its msgid and arguments. ``stored`` turns it into the JSON kept beside the
English in ``workflow_runs.message_i18n`` (as core.jobs.scheduler keeps a task's result),
and the ``workflow_message`` field type shows ``message`` from it in the reader's language
on the run history (list and detail). A message that is not a ``Said`` (an exception's text
from elsewhere) is kept and shown as written.
"""
from __future__ import annotations

import json

from markupsafe import Markup, escape

from core.apps.field_types.types import TextAreaType
from core.kernel.errors import N_, Message


class Said(str):
    """``template % args`` (positional, as the N_-marked msgids of actions.py are written)
    or ``template % params`` (named), in English, with what it takes to say it again."""

    template: str
    args: tuple | dict

    def __new__(cls, template: str, *args, **params):
        values = {k: _plain(v) for k, v in params.items()} if params else \
            tuple(_plain(a) for a in args)
        found = super().__new__(cls, template % values if values else template)
        found.template, found.args = template, values
        return found


def _plain(value):
    """A number stays one (``%d``); anything else becomes its text (JSON-ready)."""
    return value if isinstance(value, int | float | str) and not isinstance(value, bool) \
        else str(value)


def said(template: str, *args, **params) -> Said:
    """A run-history message: ``said(N_("fields set: %s"), names)``."""
    return Said(template, *args, **params)


def said_of(message) -> Said | None:
    """``message`` as a ``Said`` when it can be said again (a kernel ``Message`` too)."""
    if isinstance(message, Said):
        return message
    if isinstance(message, Message):
        return Said(message.template, **message.params) if message.params else \
            Said(message.template)
    return None


def stored(message) -> str | None:
    """The JSON kept in ``message_i18n`` for ``message``, or ``None`` (shown as written)."""
    found = said_of(message)
    if found is None:
        return None
    args = found.args if isinstance(found.args, dict) else list(found.args)
    return json.dumps({"template": found.template, "args": args})


def shown(text: str | None, i18n_json: str | None, gettext) -> str:
    """The message in the reader's language (``gettext``), or ``text`` as stored."""
    if not i18n_json:
        return text or ""
    try:
        found = json.loads(i18n_json)
        args = found["args"]
        template = gettext(found["template"])
        return template % (args if isinstance(args, dict) else tuple(args)) if args else template
    except (ValueError, KeyError, TypeError):  # a translation with other placeholders
        return text or ""


class MessageI18nType(TextAreaType):
    """``message_i18n``: the JSON of ``stored``, made by the engine, never shown alone."""

    name = "workflow_message_i18n"
    internal = True
    searchable = False


class MessageType(TextAreaType):
    """``workflow_runs.message``: text, shown translated from its sub-field ``<name>_i18n``
    (a sub-field, as a currency's code is an amount's: lists read it with the column)."""

    name = "workflow_message"

    def expand(self, name, spec):
        return [(name, spec), (f"{name}_i18n", {"type": MessageI18nType.name, "group": name,
                                                "label": N_("Message (translatable)")})]

    def display_text(self, fmt, f, value, record, options):
        return shown(value, record.get(f"{f.name}_i18n"), fmt.gettext)

    def html(self, fmt, module, f, record, labels):
        text = self.display_text(fmt, f, record[f.name], record, {})
        return Markup("<br>").join(escape(line) for line in text.splitlines())
