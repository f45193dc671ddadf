"""Rendering and sending email templates: the public API workflows and pages call.

``render(site, template, module, record, *, user=None, language=None, extra=None)``
    -> ``RenderedMail(subject, html, text, language, template_id)``
``send(site, template, module, record_id, to, *, user, language=None,
       idempotency_key=None, cc=())`` -> ``core.apps.documents.mail.SentMail``
``check(site, values, extra_names=())`` -> {template field: message} (what saving refuses)
``problem_for(site, template, module, extra_names=())`` -> why the template (or one of its
    translations) cannot render ``module``'s records, or None (a workflow's save)
``message_id_for(site, idempotency_key)`` -> the Message-ID a keyed send uses

``template`` is a template's id or its record; ``record`` a record id or the record as
read. Rendering runs in a ``jinja2.sandbox.ImmutableSandboxedEnvironment`` (no attribute
of Python internals, no mutating a value), with StrictUndefined (an unknown name is an
error, never an empty hole) and autoescaping for the HTML body only. Its names:

- every stored field of the record, shown as its readers see it: dropdown labels, dates,
  numbers and amounts in the template language's formats, a related field as the related
  record's name (``{{ name }}``, ``{{ amount }}``, ``{{ account_id }}``);
- each many-to-one relation by its field's name without ``_id``: ``{{ account.name }}``,
  ``{{ parent.name }}``; user fields too: ``{{ assigned_user.name }}``, ``.email``
  (``{{ created_by.name }}`` for a user field not ending in ``_id``). A relation the record
  does not fill is false and prints nothing (``{% if account %}``); reading a field of it
  is an error naming it;
- ``{{ raw.amount }}``: a field's stored value, for tests and arithmetic
  (``{% if raw.amount > 1000 %}``), where the displayed "$1,200.00" would compare as text;
- ``{{ user.name }}``, ``.email``, ``.username``: the sender; ``{{ site.name }}`` (the
  company name of the order settings, else "CRBM"), ``{{ site.url }}`` (the site address
  of Admin → Outgoing mail); ``{{ record_url }}``: the record's page (a full address once
  the site address is set, else a path);
- whatever the caller gives in ``extra``.

Reads are set-based: the record (one statement), one statement per related module the
template names (every record of that module it needs at once), one for the users.

Which translation: the one in ``language`` when given; ``send`` asks the recipient's
language first (a CRBM user with that address: their preference), then the sender's; the
language chain is followed ("fr_CA" finds "fr"), and the main template is the fallback.

Every failure is ``TemplateError`` (a ``CrbmError``: its text is for a person, and says
which part of the template and which variable), whether the template is broken, names a
field the Studio removed since, or the record lacks what it needs; ``send`` also raises
``mail.MailError`` when the message cannot leave (settings, addresses, the server) —
worth a retry, where a ``TemplateError`` is not.

The text alternative, when the template has no text body, comes from the rendered HTML
through ``html_to_text``: a short ``html.parser`` walk, not a library. The HTML it reads
is nh3's output (a known, small set of tags), so paragraphs, line breaks, list items and
link targets are all a reader of the text part needs, and no dependency is added for it.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import mimetypes
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import jinja2
import nh3
import sqlalchemy as sa
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from core.apps.documents import mail
from core.kernel import i18n
from core.kernel.errors import N_, CrbmError, Message, NotFoundError
from core.kernel.records import SYSTEM_USER, Query

MODULE = "email_templates"
PARTS = ("subject", "body_html", "body_text")
LINE_ERRORS = {"subject": N_("Subject line %(line)s: %(message)s"),
               "body_html": N_("Body line %(line)s: %(message)s"),
               "body_text": N_("Text body line %(line)s: %(message)s")}
UNKNOWN_ERRORS = {"subject": N_("Unknown variable {{ %(name)s }} in the subject"),
                  "body_html": N_("Unknown variable {{ %(name)s }} in the body"),
                  "body_text": N_("Unknown variable {{ %(name)s }} in the text body")}
USER_FIELDS = ("name", "username", "email")
SITE_FIELDS = ("name", "url")
GLOBAL_NAMES = frozenset({"user", "site", "record_url", "raw"})
MAX_VARIANTS = 100
MAX_POWER, MAX_REPEAT = 100, 100_000


class TemplateError(CrbmError):
    """A template could not be rendered (or checked): its text says which part and which
    variable. ``field`` is the template field at fault (subject, body_html, body_text,
    for_module), when one is."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class RenderedMail:
    subject: str  # one line
    html: str | None  # sanitized HTML; None for a text-only template
    text: str  # the text body, or the text of the HTML
    language: str  # the language of the translation used
    template_id: str  # the translation used (the main template's id when none fits)
    attachment: str | None = None  # its file's key in the site's file store (else the main's)


# -- the sandbox ---------------------------------------------------------------------------

class Unknown(jinja2.StrictUndefined):
    """A name the template may not use: any use of it is an error that names it."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        return self._undefined_hint or f"Unknown variable {{{{ {self._undefined_name} }}}}"


class Missing(jinja2.Undefined):
    """A relation the record does not fill: false, prints nothing, and reading a field of
    it is an error saying what is missing."""

    __slots__ = ()


class Vars:
    """A related record, a user or the site: prints as its name; its fields by
    attribute or key, nothing else (the environment looks them up, see ``_Sandbox``)."""

    __slots__ = ("_path", "_text", "_values")

    def __init__(self, path: str, values: Mapping[str, Any], text: str):
        self._path, self._values, self._text = path, dict(values), text

    def __str__(self) -> str:
        return self._text

    def lookup(self, env, name: str):
        if name in self._values:
            return self._values[name]
        return env.undefined(hint=f"Unknown variable {{{{ {self._path}.{name} }}}}", obj=self,
                             name=name)


class _Sandbox(ImmutableSandboxedEnvironment):
    # ``'x' * 10**9`` would eat the worker's memory: sizes are capped
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_POWER:
            raise SecurityError(f"exponent {right} is too large")
        if operator == "*":
            sized, times = (left, right) if isinstance(left, str | list | tuple) else (right, left)
            if isinstance(sized, str | list | tuple) and isinstance(times, int) \
                    and len(sized) * times > MAX_REPEAT:
                raise SecurityError("the repeated text is too long")
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj, attribute):
        if isinstance(obj, Vars):
            return obj.lookup(self, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj, argument):
        if isinstance(obj, Vars) and isinstance(argument, str):
            return obj.lookup(self, argument)
        return super().getitem(obj, argument)


_ENVS = {escape: _Sandbox(autoescape=escape, undefined=Unknown, keep_trailing_newline=True)
         for escape in (True, False)}
FORBIDDEN = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


@functools.lru_cache(maxsize=512)
def _compiled(source: str, escape: bool) -> jinja2.Template:
    return _ENVS[escape].from_string(source)


@functools.lru_cache(maxsize=512)
def _names_used(source: str) -> frozenset[str]:
    return frozenset(meta.find_undeclared_variables(_ENVS[False].parse(source)))


# -- checking a template (at save) ---------------------------------------------------------

def variables_of(site, module_name: str | None) -> dict[str, frozenset[str] | None] | None:
    """Name -> the attributes it has (None: any), for a template of ``module_name``; None
    when the template names no module (its record names are checked when it renders)."""
    names: dict[str, frozenset[str] | None] = {
        "user": frozenset(USER_FIELDS), "site": frozenset(SITE_FIELDS), "record_url": None}
    if not module_name:
        return None
    module = site.registry.modules.get(module_name)
    if module is None:
        raise TemplateError(Message(N_("There is no module %(module)s on this site."),
                                    module=repr(module_name)), field="for_module")
    names["raw"] = _stored(module)
    for name, f in module.fields.items():
        if not f.stored:
            continue
        names.setdefault(name, frozenset(USER_FIELDS) if _is_user(f) else None)
        key = _relation_key(name, f)
        if key is None or key in module.fields:
            continue
        target = site.registry.modules.get(f.spec.get("module") or "")
        names[key] = frozenset(USER_FIELDS) if _is_user(f) else \
            _stored(target) if target is not None else None
    return names


def _stored(module) -> frozenset[str]:
    return frozenset(name for name, f in module.fields.items() if f.stored)


def _is_user(f) -> bool:
    return f.type.name == "user"


def _relation_key(name: str, f) -> str | None:
    """The name a many-to-one relation goes by in templates (None: not one)."""
    if not f.type.is_link:
        return None
    if name.endswith("_id"):
        return name.removesuffix("_id")
    return None  # a user field like created_by: its own name is the user


def check(site, values: Mapping[str, Any], extra_names: Iterable[str] = ()) -> dict[str, str]:
    """{field: message} of what is wrong with a template's ``values`` (subject, body_html,
    body_text, for_module): Jinja syntax, forbidden tags, unknown variables."""
    errors: dict[str, str] = {}
    try:
        known = variables_of(site, values.get("for_module"))
    except TemplateError as exc:
        return {exc.field: exc.args[0]}  # a Message: shown in the reader's language
    extra = frozenset(extra_names)
    if not (values.get("body_html") or values.get("body_text")):
        errors["body_html"] = Message(N_("Give an HTML body or a text body."))
    for part in PARTS:
        source = values.get(part) or ""
        problem = _part_problem(part, source, known, extra)
        if problem:
            errors[part] = problem
    return errors


def _part_problem(part: str, source: str, known, extra: frozenset[str]) -> str | None:
    env = _ENVS[part == "body_html"]
    try:
        tree = env.parse(source)
        env.compile(tree)  # unknown filters and tests are refused here
    except jinja2.TemplateSyntaxError as exc:
        return Message(LINE_ERRORS[part], line=exc.lineno, message=exc.message)
    for node in tree.find_all(FORBIDDEN):
        return Message(LINE_ERRORS[part], line=node.lineno,
                       message="a template cannot include or import other templates")
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        attribute = node.attr if isinstance(node, nodes.Getattr) else \
            node.arg.value if isinstance(node.arg, nodes.Const) else None
        if isinstance(attribute, str) and attribute.startswith("_"):
            return Message(LINE_ERRORS[part], line=node.lineno,
                           message=f"{attribute} is not a variable (names starting with _ "
                                   "are not allowed)")
    if known is None:  # no module: record names are checked when it renders
        known = {"user": frozenset(USER_FIELDS), "site": frozenset(SITE_FIELDS)}
    else:
        allowed = set(known) | extra | set(env.globals)
        for name in sorted(meta.find_undeclared_variables(tree) - allowed):
            return Message(UNKNOWN_ERRORS[part], name=name)
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        owner = node.node
        if not isinstance(owner, nodes.Name) or owner.name in assigned or owner.name in extra:
            continue
        fields = known.get(owner.name)
        attribute = node.attr if isinstance(node, nodes.Getattr) else \
            node.arg.value if isinstance(node.arg, nodes.Const) else None
        if fields is not None and isinstance(attribute, str) and attribute not in fields:
            return Message(UNKNOWN_ERRORS[part], name=f"{owner.name}.{attribute}")
    return None


def problem_for(site, template, module: str, extra_names: Iterable[str] = ()) -> str | None:
    """Why ``template`` (and every translation of it) cannot render records of ``module``,
    or None: what a workflow checks when its "send email" action is saved."""
    _, main = pick(site, template, None)
    if main.get("for_module") and main["for_module"] != module:
        return Message(N_("The template %(name)s is for %(wanted)s, not %(given)s."),
                       name=main.get("name"), wanted=main["for_module"], given=module)
    variants = site.records.list(MODULE, SYSTEM_USER, Query(
        filters=[("variant_of_id", "eq", main["id"])], limit=MAX_VARIANTS), action=None)
    for candidate in (main, *variants):
        errors = check(site, {**candidate, "for_module": module}, extra_names)
        if errors:
            return Message(N_("%(name)s: %(problem)s"), name=candidate.get("name"),
                           problem=next(iter(errors.values())))
    return None


# -- the variables of one record -----------------------------------------------------------

def _users(site, ids: Iterable[str]) -> dict[str, dict]:
    """id -> {name, username, email, preferences} of the users ``ids``: one statement."""
    wanted = sorted({str(i) for i in ids if i})
    if not wanted:
        return {}
    table = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.id, table.c.username, table.c.display_name,
                                      table.c.email, table.c.preferences)
                            .where(table.c.id.in_(wanted))).all()
    return {row.id: {"name": row.display_name or row.username, "username": row.username,
                     "email": row.email or "", "preferences": _prefs(row.preferences)}
            for row in rows}


def _prefs(text: str | None) -> i18n.Preferences:
    try:
        return i18n.Preferences.from_dict(json.loads(text) if text else None)
    except ValueError:
        return i18n.Preferences()


def _user_vars(path: str, found: dict | None, fallback: str = "") -> Vars:
    values = {key: (found or {}).get(key, "") for key in USER_FIELDS}
    if found is None and fallback:
        values.update(name=fallback, username=fallback)
    return Vars(path, values, values["name"])


def _shown(fmt, module, record: Mapping, labels: Mapping[str, Mapping]) -> dict[str, str]:
    """Every stored field of ``record`` as its readers see it (related: the record's name)."""
    out = {}
    for name, f in module.fields.items():
        if not f.stored:
            continue
        if f"{name}__label" in record:  # a related record's or user's name, read with it
            out[name] = record[f"{name}__label"] or ""
        else:
            out[name] = fmt.field(f, record.get(name), record, options=labels.get(name, {}))
    return out


def _user_fields_used(module, used: frozenset[str]) -> list[tuple[str, str]]:
    """(template name, field) of the user fields the template names."""
    out = []
    for name, f in module.fields.items():
        key = _relation_key(name, f) or name
        if _is_user(f) and (key == name or key not in module.fields) and {key, name} & used:
            out.append((key, name))
    return out


def record_variables(site, module, record: Mapping, user, fmt, used: frozenset[str],
                     people: Mapping[str, dict]) -> dict[str, Any]:
    """The template's names for ``record`` (see the module docstring); the related
    modules read are only those ``used`` names (one statement each); ``people``: the
    users its user fields name, read already."""
    registry = site.registry
    values: dict[str, Any] = _shown(fmt, module, record, registry.option_labels(module.name))
    wanted: dict[str, set[str]] = {}  # target module -> ids
    relations: list[tuple[str, str, str | None, str]] = []  # (key, field, module, id)
    user_fields = [(key, record.get(name)) for key, name in _user_fields_used(module, used)]
    for name, f in module.fields.items():
        key = _relation_key(name, f)
        if key is None or _is_user(f) or key in module.fields or not ({key, name} & used):
            continue
        target = f.spec.get("module") or record.get(f.spec.get("type_field", ""))
        relations.append((key, name, target, record.get(name)))
        if target in registry.modules and record.get(name):
            wanted.setdefault(target, set()).add(str(record[name]))
    found: dict[tuple[str, str], dict] = {}
    for target, ids in wanted.items():
        rows = site.records.list(target, user, Query(filters=[("id", "in", sorted(ids))],
                                                     limit=None, labels=True), action="view")
        shown = registry.option_labels(target)
        for row in rows:
            found[(target, row["id"])] = _shown(fmt, registry.module(target), row, shown)
    for key, name, target, related_id in relations:
        related = found.get((target, str(related_id))) if related_id else None
        if related is None:
            field_label = module.fields[name].label
            values[key] = Missing(hint=(
                f"this {module.label_singular} has no {field_label} (or the sender may not see "
                f"it): {{{{ {key}.… }}}} cannot be filled"), name=key)
            continue
        target_module = registry.module(target)
        text = related.get(target_module.name_field or "", "") or values.get(name, "")
        values[key] = Vars(key, related, text)
        if f"{name}__label" not in record:
            values[name] = text
    for key, user_id in user_fields:
        person = people.get(str(user_id)) if user_id else None
        if person is None:
            values[key] = Missing(hint=f"no user in {{{{ {key} }}}}: {{{{ {key}.… }}}} "
                                       "cannot be filled", name=key)
        else:
            values[key] = _user_vars(key, person)
    values["id"] = record.get("id")
    return values


def site_variables(site) -> Vars:
    company = site.settings.get("company")
    name = company.get("name") if isinstance(company, dict) else None
    return Vars("site", {"name": name or "CRBM", "url": _base_url(site)}, name or "CRBM")


def _base_url(site) -> str:
    return str(site.settings.get("base_url") or "").rstrip("/")


# -- which template ------------------------------------------------------------------------

def _language_chain(language: str | None) -> list[str]:
    if not language:
        return []
    parts = str(language).replace("-", "_").split("_")
    return ["_".join(parts[:n]) for n in range(len(parts), 0, -1)]


def _read_template(site, template) -> dict:
    if isinstance(template, Mapping):
        return dict(template)
    try:  # templates are shared set-up: whoever sends may use any of them
        return site.records.get(MODULE, str(template), SYSTEM_USER, action=None)
    except NotFoundError:
        raise TemplateError(Message(N_("There is no email template with id %(id)s."),
                                    id=str(template))) from None


def pick(site, template, language: str | None) -> tuple[dict, dict]:
    """(the translation of ``template`` in ``language`` (through its chain), else the main
    template; the main template): two statements (the template, its translations)."""
    found = _read_template(site, template)
    main = _read_template(site, found["variant_of_id"]) if found.get("variant_of_id") \
        else found
    chain = _language_chain(language)
    if not chain or main.get("language") in chain[:1]:
        return main, main
    variants = site.records.list(MODULE, SYSTEM_USER, Query(
        filters=[("variant_of_id", "eq", main["id"])], limit=MAX_VARIANTS, sort="name"),
        action=None)
    for code in chain:
        for candidate in (main, *variants):
            if candidate.get("language") == code:
                return candidate, main
    return main, main


# -- rendering -----------------------------------------------------------------------------

def render(site, template, module: str, record, *, user=None, language: str | None = None,
           extra: Mapping[str, Any] | None = None) -> RenderedMail:
    """The template's translation for ``language`` rendered for ``record`` (an id, or the
    record as read) of ``module``, read with ``user``'s rights (the sender; None: the
    system). Raises TemplateError."""
    user = user or SYSTEM_USER
    chosen, main = pick(site, template, language)
    main_module = main.get("for_module")
    if main_module and main_module != module:
        raise TemplateError(Message(N_("The template %(name)s is for %(wanted)s, not "
                                       "%(given)s."), name=chosen.get("name"),
                                    wanted=main_module, given=module), field="for_module")
    definition = site.registry.modules.get(module)
    if definition is None:
        raise TemplateError(Message(N_("There is no module %(module)s on this site."),
                                    module=repr(module)), field="for_module")
    if isinstance(record, Mapping):
        record_row = dict(record)
    else:
        try:
            record_row = site.records.get(module, str(record), user, labels=True)
        except NotFoundError:
            raise TemplateError(Message(
                N_("There is no %(module)s with id %(id)s (or the sender may not see it)."),
                module=definition.label_singular, id=str(record))) from None
    sources = {part: chosen.get(part) or "" for part in PARTS}
    used = frozenset().union(*(_names(part, source) for part, source in sources.items()))
    people = _users(site, [user.id, *(record_row.get(name) for _, name in
                                      _user_fields_used(definition, used))])  # one statement
    sender = people.get(user.id)
    prefs = sender["preferences"] if sender else i18n.Preferences()
    used_language = chosen.get("language") or prefs.language
    locale = i18n.Preferences.from_dict({"language": used_language}).language
    fmt = i18n.formatter(dataclasses.replace(prefs, language=locale, number_locale=None),
                         site.locale_dirs)
    token = i18n.activate(fmt.translations)  # dropdown labels in the template's language
    try:
        names = record_variables(site, definition, record_row, user, fmt, used, people)
    finally:
        i18n.deactivate(token)
    base = _base_url(site)
    names.update(user=_user_vars("user", sender, user.username), site=site_variables(site),
                 record_url=f"{base}/m/{module}/{record_row.get('id')}",
                 raw=Vars("raw", {name: record_row.get(name) for name, f in
                                  definition.fields.items() if f.stored}, ""))
    names.update(extra or {})
    subject = _render_part(chosen, "subject", names)
    html = _render_part(chosen, "body_html", names) if sources["body_html"].strip() else None
    html = nh3.clean(html) if html is not None else None  # a value in a URL, say
    text = _render_part(chosen, "body_text", names) if sources["body_text"].strip() \
        else html_to_text(html or "")
    return RenderedMail(subject=" ".join(subject.split()), html=html, text=text,
                        language=used_language, template_id=chosen["id"],
                        attachment=chosen.get("attachment") or main.get("attachment"))


def _names(part: str, source: str) -> frozenset[str]:
    try:
        return _names_used(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(Message(LINE_ERRORS[part], line=exc.lineno, message=exc.message),
                            field=part) from None


def _render_part(template: Mapping, part: str, names: Mapping[str, Any]) -> str:
    source = template.get(part) or ""
    try:
        return _compiled(source, part == "body_html").render(names)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(Message(LINE_ERRORS[part], line=exc.lineno, message=exc.message),
                            field=part) from None
    except jinja2.UndefinedError as exc:  # Unknown, Missing and the sandbox's refusals
        raise TemplateError(Message(N_("%(name)s, %(part)s: %(message)s"),
                                    name=template.get("name"), part=PART_NAMES[part],
                                    message=str(exc)), field=part) from None
    except Exception as exc:  # noqa: BLE001 - whatever a template's expression raised
        raise TemplateError(Message(N_("%(name)s, %(part)s: %(message)s"),
                                    name=template.get("name"), part=PART_NAMES[part],
                                    message=f"{type(exc).__name__}: {exc}"),
                            field=part) from None


PART_NAMES = {"subject": "subject", "body_html": "body", "body_text": "text body"}


# -- sending -------------------------------------------------------------------------------

def message_id_for(site, idempotency_key: str) -> str:
    """The Message-ID a send with ``idempotency_key`` carries: the same for every retry of
    it, so the copy a retried job sends (or finds filed) is recognizably the same mail."""
    digest = hashlib.sha256(f"crbm-email-template:{idempotency_key}".encode()).hexdigest()
    smtp = site.settings.get("smtp")
    sender = str(smtp.get("from_address") or "") if isinstance(smtp, dict) else ""
    domain = sender.rpartition("@")[2].strip(" >") or "crbm.invalid"
    return f"<{digest[:40]}@{domain}>"


def recipient_language(site, addresses: Iterable[str]) -> str | None:
    """The language of the first recipient who is a CRBM user (their preference)."""
    emails = [a.rpartition("<")[2].rstrip(">").strip().lower() for a in addresses]
    if not emails:
        return None
    table = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.email, table.c.preferences).where(
            sa.func.lower(table.c.email).in_(emails), table.c.active.is_(True))).all()
    by_email = {str(row.email).lower(): row.preferences for row in rows}
    for address in emails:
        if address in by_email:
            return _prefs(by_email[address]).language
    return None


def send(site, template, module: str, record_id: str, to, *, user, language: str | None = None,
         idempotency_key: str | None = None, cc=()) -> mail.SentMail:
    """Render ``template`` for the record and send it (text + HTML, and the template's
    attachment) through the site's mail path (``core.apps.documents.mail.send_record_mail``: filed in the record's
    history). The language: ``language``, else the first recipient's who is a user, else
    the sender's. Raises TemplateError (nothing sent) or mail.MailError."""
    recipients = mail.parse_addresses(to, "to")  # a bad address: refused before rendering
    if not recipients:
        raise mail.MailError(Message(N_("no recipient: give at least one email address")),
                             field="to")
    if language is None:
        language = recipient_language(site, recipients)
    if language is None:
        sender = _users(site, [user.id]).get(user.id)
        language = sender["preferences"].language if sender else None
    rendered = render(site, template, module, record_id, user=user, language=language)
    return mail.send_record_mail(
        site, user, module, record_id, recipients, rendered.subject, rendered.text, cc=cc,
        html=rendered.html, attachments=_attachments(site, rendered),
        message_id=message_id_for(site, idempotency_key) if idempotency_key else None)


def _attachments(site, rendered: RenderedMail) -> list[mail.Attachment]:
    """The template's file, read from the site's file store (its type guessed from its
    name: the upload was checked when it was stored)."""
    if not rendered.attachment:
        return []
    files = (site.folder / "files").resolve()
    path = (files / rendered.attachment).resolve()
    if files not in path.parents or not path.is_file():
        raise TemplateError(Message(N_("The template's attachment %(name)s is missing from "
                                       "the file store."),
                                    name=rendered.attachment.rsplit("/", 1)[-1]),
                            field="attachment")
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return [mail.Attachment(path.name, path.read_bytes(), kind)]


# -- the text of an HTML body --------------------------------------------------------------

class _TextOf(HTMLParser):
    BREAKS = frozenset({"br"})
    BLOCKS = frozenset({"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table",
                        "tr", "blockquote", "pre", "hr", "dl", "dt", "dd"})
    SKIPPED = frozenset({"script", "style", "head", "title"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.links: list[tuple[str | None, int]] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIPPED:
            self.skipping += 1
        elif tag in self.BREAKS:
            self.out.append("\n")
        elif tag in self.BLOCKS:
            self.out.append("\n\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in ("td", "th"):
            self.out.append("  ")
        elif tag == "a":
            self.links.append((dict(attrs).get("href"), len(self.out)))

    def handle_endtag(self, tag):
        if tag in self.SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.out.append("\n\n")
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.out[start:]).strip()
            if href and href != label and not href.startswith("#"):
                self.out.append(f" ({href})")

    def handle_data(self, data):
        if not self.skipping:
            self.out.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """Readable plain text of sanitized HTML: paragraphs, breaks, "- " list items, links
    followed by their address in parentheses."""
    parser = _TextOf()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.out).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
