"""The sandbox a theme pack's templates render in.

A theme pack is accepted without ``allow_code_packs``, so its templates must not be able to
do what Python can: run commands, read files, reach the site, its database or its secrets.
Jinja's own sandbox (``ImmutableSandboxedEnvironment``) refuses private and internal
attributes (``__globals__``, ``__subclasses__``, ``mro``, ``_TemplateReference__context``)
and changes to lists, dicts and sets, but lets a template read any public attribute and call
any public method — and a page's context leads from ``request`` to the application, the
site and its database, from ``theme.folder`` to the file system. So this sandbox also holds
an allow-list: a template may read attributes of, index, and call methods of the types in
``SAFE_TYPES`` only (plain values, Jinja's own objects, the metadata and formatting
objects pages show), some only for the attributes named there; and may call only those
methods, the environment's globals and template macros. Anything else is a
``SecurityError``, which ``Templates.render`` turns into the page in the kernel's look.

The sandbox is per environment, not per template: a theme that carries templates gets a
sandboxed environment for every page its users see, so a pack's ``base.html`` extended
by every kernel page, or a kernel page including a pack's template, are all compiled and
run under the same rules. Environments without pack templates (no theme, or a theme of
stylesheets and images only, like theme_nocturne) stay plain and cost nothing more.
"""
from __future__ import annotations

import collections
import datetime as dt
import decimal
import fractions
import types
import uuid
import zoneinfo

import babel
import babel.support
import jinja2.runtime
import jinja2.utils
from jinja2.environment import TemplateModule
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment, modifies_known_mutable
from markupsafe import Markup
from starlette import datastructures
from starlette.requests import Request

from core.kernel import errors, i18n, registry
from core.kernel.records import User
from core.kernel.site import EnabledPack

ALL = None  # every public attribute
# type -> the attributes a template may read (ALL: every public one). Exact types: a
# subclass may add what its base does not have, and must be listed itself.
SAFE_TYPES: dict[type, frozenset[str] | None] = {
    # values
    **dict.fromkeys([str, int, float, bool, type(None), complex, bytes, decimal.Decimal,
                     fractions.Fraction, dt.date, dt.datetime, dt.time, dt.timedelta,
                     dt.timezone, zoneinfo.ZoneInfo, uuid.UUID, Markup, slice, range], ALL),
    # containers (ImmutableSandboxedEnvironment refuses the methods that change them)
    **dict.fromkeys([tuple, list, dict, set, frozenset, collections.OrderedDict,
                     collections.defaultdict, collections.deque, types.MappingProxyType,
                     type({}.keys()), type({}.values()), type({}.items())], ALL),
    # Jinja's own objects: loops, macros, blocks, imported templates, namespaces
    **dict.fromkeys([jinja2.runtime.LoopContext, jinja2.runtime.Macro,
                     jinja2.runtime.BlockReference, jinja2.runtime.TemplateReference,
                     jinja2.runtime.Undefined, TemplateModule, jinja2.utils.Namespace,
                     jinja2.utils.Cycler, jinja2.utils.Joiner], ALL),
    # what pages show: the request's address, the user, metadata, formatting
    Request: frozenset({"url", "path_params", "query_params", "method"}),
    datastructures.URL: ALL,
    datastructures.QueryParams: ALL,
    i18n.Formatter: frozenset({"prefs", "locale", "tz", "gettext", "ngettext", "date",
                               "datetime", "time", "number", "percent", "currency",
                               "currency_digits"}),
    i18n.Preferences: ALL,
    babel.Locale: ALL,
    babel.support.Translations: frozenset({"gettext", "ngettext", "pgettext", "npgettext"}),
    babel.support.NullTranslations: frozenset({"gettext", "ngettext", "pgettext",
                                               "npgettext"}),
    User: ALL,
    EnabledPack: frozenset({"name", "kind", "manifest"}),  # not its folder: a path
    errors.Message: ALL,
    registry.ModuleDef: ALL,
    registry.FieldDef: ALL,
}
# The kernel's view objects, named rather than imported (their modules build on this one):
# dataclasses of plain values whose methods only compute. An API client's secret hash is
# the one field left out.
SAFE_NAMES: dict[str, frozenset[str] | None] = {
    **dict.fromkeys([
        "core.kernel.identity.WebUser", "core.kernel.records.Query", "core.apps.calendar.holidays.HolidaySet",
        "core.apps.packs.pack_archive.Manifest", "core.apps.packs.pack_archive.Problem", "core.apps.packs.packs.InstalledPack",
        "core.apps.packs.packs.Report", "core.apps.packs.packs.Step", "plugins.line_items.lines.LineItems",
        "plugins.line_items.lines.Group", "plugins.line_items.lines.Line",
        "plugins.line_items.lines.TaxAmount",
        "plugins.line_items.lines.Totals", "plugins.line_items.web.Editor",
        "plugins.line_items.web.Table", "core.web.actions.Action", "core.apps.calendar.web.Day",
        "core.apps.studio.studio.DropdownSummary", "core.apps.studio.studio.FieldInfo", "core.apps.studio.studio.LogEntry",
        "core.apps.studio.studio.ModuleSummary", "core.apps.studio.studio.Problem", "core.apps.studio.studio.RemovedItem",
        "core.kernel.hooktypes.NavEntry", "core.kernel.hooktypes.ListAction",
        "core.web.paging.Pager", "core.apps.smart_lists.lists.State",
        "core.apps.smart_lists.lists.SmartList", "core.apps.smart_lists.lists.Kpi",
        "core.apps.smart_lists.lists.Figure"], ALL),
    "core.apps.oauth.oauth_clients.ApiClient": frozenset({
        "id", "name", "publisher", "is_public", "enabled", "grant_types", "user_id",
        "redirect_uris", "secret_set_at", "created_at"}),
}
# Base classes whose every subclass may be read for these attributes: field types (a
# plugin's own ones too) show their name and say how their form control and list filter
# look (methods that only compute from the field and the values given).
SAFE_BASES: dict[str, frozenset[str]] = {"core.kernel.fields.FieldType": frozenset({
    "name", "widget", "wide", "grouped", "input_type", "input_attrs", "accept", "stylesheet",
    "writable", "step", "widget_context", "filter_choices"})}
_DENIED = object()
# the allowed types whose methods may change them (ImmutableSandboxedEnvironment's rule)
MUTABLE = frozenset({list, dict, set, collections.OrderedDict, collections.defaultdict,
                     collections.deque})
CALLABLE_TYPES = (jinja2.runtime.Macro, jinja2.runtime.BlockReference,
                  jinja2.runtime.LoopContext, jinja2.utils.Joiner)
_resolved: dict[type, frozenset[str] | None | object] = {}


def policy(obj) -> frozenset[str] | None | object:
    """What a template may read of ``obj``: ALL, a set of attribute names, or _DENIED."""
    cls = type(obj)
    try:
        return _resolved[cls]
    except KeyError:
        pass
    found = SAFE_TYPES.get(cls, _DENIED)
    if found is _DENIED:
        found = SAFE_NAMES.get(_name(cls), _DENIED)
    if found is _DENIED:
        found = next((SAFE_BASES[_name(base)] for base in cls.__mro__
                      if _name(base) in SAFE_BASES), _DENIED)
    _resolved[cls] = found
    return found


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def allow(cls: type, attributes: frozenset[str] | None = ALL) -> type:
    """Let pack templates read ``cls`` objects (all public attributes, or those named): for
    a plugin's view objects that its pages pass to templates. Plain values and methods that
    only compute; nothing that leads to the site, a database or a file."""
    SAFE_TYPES[cls] = attributes
    _resolved.pop(cls, None)
    return cls


class PackSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with CRBM's allow-list (see the module docstring).

    ``getattr`` and ``getitem`` are Jinja's, made stricter and shorter: only allow-listed
    types pass, so Jinja's checks for functions, frames, generators and types (which are
    never allowed) reduce to refusing names that start with "_" and the methods that change
    a list, dict, set or deque. Every attribute a page reads comes through here."""

    # bounded arithmetic: 9**9**9 or "x" * 10**9 would hold a worker for ever
    intercepted_binops = frozenset({"**", "*"})
    MAX_POWER = 1000
    MAX_LENGTH = 1_000_000

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.globals["lipsum"]  # no theme needs filler text; it is the classic way in
        self._trusted: frozenset[int] | None = None  # ids of the globals, once complete

    def is_safe_attribute(self, obj, attr: str, value=None) -> bool:
        if attr.startswith("_"):
            return False
        allowed = policy(obj)
        if allowed is _DENIED or (allowed is not ALL and attr not in allowed):
            return False
        cls = type(obj)
        return not (cls in MUTABLE and (modifies_known_mutable(obj, attr) or
                                        (cls is collections.OrderedDict and
                                         attr == "move_to_end")))

    def is_safe_callable(self, obj) -> bool:
        owner = getattr(obj, "__self__", None)
        if owner is not None and isinstance(obj, types.MethodType | types.BuiltinMethodType) \
                and not isinstance(owner, type | types.ModuleType):
            return self.is_safe_attribute(owner, obj.__name__)  # a method: its owner's rule
        if isinstance(obj, CALLABLE_TYPES):
            return True  # template code, sandboxed itself: macros, blocks, loop(), joiner()
        if self._trusted is None:  # the globals are all set once a template renders
            self._trusted = frozenset(map(id, self.globals.values()))
        return id(obj) in self._trusted  # range, dict, cycler, namespace, _, tr, show...

    def call(self, context, obj, /, *args, **kwargs):
        """Also callable: what the page's own code passed in the render context (a view's
        helper functions), found by identity, never by name."""
        if not self.is_safe_callable(obj) and \
                not any(obj is value for value in context.parent.values()):
            raise SecurityError(f"{obj!r} is not safely callable")
        return context.call(obj, *args, **kwargs)

    def unsafe_undefined(self, obj, attribute: str):
        """Refuse at once (Jinja returns an Undefined that prints as nothing): a page that
        would silently lose what it shows is re-rendered in the kernel's look instead."""
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} "
                            "object is unsafe")

    def getattr(self, obj, attribute: str):
        allowed = policy(obj)
        if allowed is _DENIED or (allowed is not ALL and attribute not in allowed):
            return self.unsafe_undefined(obj, attribute)
        try:
            value = getattr(obj, attribute)
        except AttributeError:
            if allowed is ALL:  # row.name, line._errors: a dict's items (never the request's)
                try:
                    return obj[attribute]
                except (TypeError, LookupError):
                    pass
            return self.undefined(obj=obj, name=attribute)
        if not self.is_safe_attribute(obj, attribute, value):
            return self.unsafe_undefined(obj, attribute)
        if attribute in ("format", "format_map") and isinstance(obj, str):
            return self.wrap_str_format(value)  # str.format, sandboxed
        return value

    def getitem(self, obj, argument):
        allowed = policy(obj)
        if allowed is not ALL:  # refused, or restricted (the request): named attributes only
            if allowed is not _DENIED and isinstance(argument, str):
                return self.getattr(obj, argument)
            return self.unsafe_undefined(obj, str(argument))
        try:
            return obj[argument]
        except (TypeError, LookupError):
            if isinstance(argument, str):
                return self.getattr(obj, argument)
        return self.undefined(obj=obj, name=argument)

    def call_binop(self, context, operator: str, left, right):
        if operator == "**" and isinstance(right, int | float) and abs(right) > self.MAX_POWER:
            raise SecurityError(f"the exponent {right} is too large")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int) and \
                        len(seq) * times > self.MAX_LENGTH:
                    raise SecurityError("the result would be too long")
        return super().call_binop(context, operator, left, right)
