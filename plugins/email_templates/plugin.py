"""Email templates: subjects and bodies with ``{{ variables }}`` of a record, for workflows
and people to send (issue 18, item 4).

Provides the ``email_templates`` module (modules/email_templates.yaml: name, the module it
is for, language, subject, HTML body, text body, an attachment, description, assigned
user) with its
translations — a translation is a template whose "Translation of" names the main one,
in another language, and takes the main one's module — and:

- two field types: ``module_choice`` (a choice of the site's modules, listed from the
  registry as it is now) and ``template_html`` (an HTML body sanitized with nh3 as CRBM's
  ``html`` fields are, its ``{{ }}``/``{% %}`` tags kept as written: nh3 would escape a
  ``<`` in ``{% if a < b %}``; edited as source, since the rich-text editor would too);
- the check at save (``crbm_before_save``): Jinja syntax ("Body line 3: ..."), forbidden
  tags, and every variable against the module's fields as they are now ("Unknown variable
  {{ foo }} in the body"), a ``ValidationError`` on the field, so the form shows it and
  nothing is saved; a main template's module is refused while a translation would break;
- rendering and sending (render.py: ``render``, ``send``, ``TemplateError`` — the API the
  workflow engine calls);
- "Preview against a record" on a template's page (web.py);
- demo templates (demo.py).

Nothing else depends on this plugin; it needs none (the modules it renders are found in
the registry by name).
"""
from __future__ import annotations

import re

import sqlalchemy as sa
from markupsafe import escape

from core.apps.field_types.types import HtmlType
from core.kernel.errors import N_, Message, NotFoundError, ValidationError
from core.kernel.fields import FieldError, FieldType, is_blank
from core.kernel.hookspecs import for_modules, hookimpl
from core.kernel.records import SYSTEM_USER, Query
from core.web.actions import Action

from . import render

__version__ = "0.1.0"

MODULE = render.MODULE
# the fields whose change asks for the template to be checked again
CHECKED = frozenset({"subject", "body_html", "body_text", "for_module", "variant_of_id",
                     "language"})


# -- field types ---------------------------------------------------------------------------

class ModuleChoiceType(FieldType):
    """The name of one of the site's modules, chosen from a list of their names."""

    name = "module_choice"
    default_size = 64
    json_kind = "string"
    widget = "module_choice_widget.html"
    exact_sort = True
    list_filter_op = "eq"
    filter_operators = frozenset({"eq", "ne", "in", "empty", "not_empty"})

    def __init__(self, site=None):
        self.site = site

    def choices(self) -> list[tuple[str, str]]:
        modules = self.site.registry.modules.values() if self.site is not None else ()
        return sorted(((m.name, m.label_singular) for m in modules), key=lambda c: c[1].lower())

    def normalize(self, value, spec):
        if is_blank(value):
            return None
        text = str(value).strip()
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", text):
            raise FieldError(Message(N_("%(value)s is not a module name"), value=repr(text)))
        return text

    def display_text(self, fmt, f, value, record, options):
        module = self.site.registry.modules.get(value) if self.site is not None else None
        return module.label_singular if module is not None else str(value)

    def html(self, fmt, module, f, record, labels):
        return escape(self.display_text(fmt, f, record[f.name], record, {}))

    def widget_context(self, f, value, values, fmt):
        choices = self.choices()
        if value and value not in dict(choices):  # a module gone since: still shown
            choices.append((value, value))
        return {"choices": choices}

    def filter_choices(self, f, fmt):
        return self.choices()

    def json_schema(self, f, registry, *, for_input):
        return {"type": ["string", "null"], "maxLength": 64,
                "description": "the name of a module (e.g. contacts)"}


# A Jinja tag as written: kept out of nh3's way while the HTML around it is cleaned.
JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
KEPT = re.compile(r"CRBMJINJA(\d+)X")


def clean_template_html(source: str) -> str:
    """``source`` sanitized by nh3 (as ``html`` fields are), its Jinja tags untouched."""
    tags: list[str] = []

    def keep(match: re.Match) -> str:
        tags.append(match.group(0))
        return f"CRBMJINJA{len(tags) - 1}X"

    cleaned = HtmlType().normalize(JINJA_TAG.sub(keep, source), {})
    return KEPT.sub(lambda m: tags[int(m.group(1))], cleaned or "")


class TemplateHtmlType(HtmlType):
    """An email template's HTML body: sanitized like any HTML field, Jinja tags kept, edited
    as source (a rich-text editor would escape the ``<`` of ``{% if a < b %}``)."""

    name = "template_html"
    widget = "template_html_widget.html"

    def normalize(self, value, spec):
        text = super(HtmlType, self).normalize(value, spec)  # the size check, no cleaning
        return None if text is None else clean_template_html(text)


@hookimpl
def crbm_field_types(site):
    return [ModuleChoiceType(site), TemplateHtmlType()]


# -- the check at save ---------------------------------------------------------------------

@hookimpl
@for_modules(MODULE)
def crbm_before_save(site, module, batch, user, connection):
    for change in batch:
        record = change.record
        if not (change.is_new or CHECKED & set(change.changes)):
            continue
        if record.get("variant_of_id"):
            main = _main_of(site, record, connection)
            record["for_module"] = main.get("for_module")
        errors = render.check(site, record)
        if not errors and not change.is_new and "for_module" in change.changes \
                and not record.get("variant_of_id"):
            errors = _translations_problems(site, record, connection)
        if errors:
            raise ValidationError(errors)


def _main_of(site, record: dict, connection) -> dict:
    field = "variant_of_id"
    if record[field] == record.get("id"):
        raise ValidationError({field: Message(N_("A template cannot be its own translation."))})
    try:
        main = site.records.get(MODULE, record[field], SYSTEM_USER, connection=connection,
                                action=None)
    except NotFoundError:
        raise ValidationError({field: Message(N_("There is no such template."))}) from None
    if main.get("variant_of_id"):
        raise ValidationError({field: Message(N_(
            "%(name)s is itself a translation: choose the main template."),
            name=main.get("name"))})
    if main.get("language") == record.get("language"):
        raise ValidationError({"language": Message(N_(
            "%(name)s is already in this language: choose the language of the translation."),
            name=main.get("name"))})
    return main


def _translations_problems(site, record: dict, connection) -> dict:
    """A main template's new module must suit its translations' variables too."""
    table = site.tables.tables[site.registry.module(MODULE).table]
    rows = connection.execute(sa.select(table).where(
        table.c.variant_of_id == record["id"], table.c.deleted.is_(False))).mappings().all()
    for row in rows:
        found = render.check(site, {**dict(row), "for_module": record.get("for_module")})
        if found:
            return {"for_module": Message(N_(
                "The translation %(name)s does not suit this module: %(problem)s"),
                name=row["name"], problem=next(iter(found.values())))}
    return {}


@hookimpl(specname="crbm_after_save")
@for_modules(MODULE)
def translations_follow_their_template(site, module, batch, connection):
    """A main template's module moves its translations' along (they take it)."""
    moved = {change.record["id"]: change.record.get("for_module") for change in batch
             if not change.is_new and "for_module" in change.changes
             and not change.record.get("variant_of_id")}
    if not moved:
        return
    table = site.tables.tables[module.table]
    rows = connection.execute(sa.select(table.c.id, table.c.variant_of_id).where(
        table.c.variant_of_id.in_(sorted(moved)), table.c.deleted.is_(False))).all()
    if rows:
        site.records.set_derived(MODULE, {row.id: {"for_module": moved[row.variant_of_id]}
                                          for row in rows},
                                 connection=connection, reason="the main template's module")


# -- web -----------------------------------------------------------------------------------

@hookimpl
@for_modules(MODULE)
def crbm_record_actions(site, module, record, user):
    return [Action(N_("Preview against a record"), f"/email_templates/{record['id']}/preview",
                   primary=True)]


@hookimpl
def crbm_web_routes(site):
    from plugins.email_templates import web  # the pages only

    return web.routes


@hookimpl(trylast=True)
def crbm_demo_data(site, user, rng, progress):
    """A few templates for the modules the demo has, one with its French translation."""
    from plugins.email_templates import demo

    demo.load(site, user, progress)


def template_choices(site, module_name: str | None) -> list[tuple[str, str]]:
    """(id, name) of the main templates usable for ``module_name`` (for it, or for any
    module): what a workflow's "send email" action offers."""
    rows = site.records.list(MODULE, SYSTEM_USER, Query(
        filters=[("variant_of_id", "empty", None)], fields=["id", "name", "for_module"],
        sort="name", limit=None), action=None)
    return [(row["id"], row["name"]) for row in rows
            if not row.get("for_module") or row["for_module"] == module_name]

