"""Every hook a CRBM plugin can implement, in one place.

A plugin is a Python module (``plugins/<name>/plugin.py``, or one registered under the
``crbm.plugins`` entry-point group) whose functions carry ``@hookimpl`` and are named like
the specs below. Its folder may also hold ``modules/*.yaml`` and ``dropdowns/*.yaml``,
which the kernel reads without any hook.

Record lifecycle hooks are *batch* hooks: they are called once per write operation with
every record of that operation (one record for a form save, thousands for an import), so
a pluggy call is never paid per row.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

hookspec = pluggy.HookspecMarker("crbm")
hookimpl = pluggy.HookimplMarker("crbm")

MODULES_ATTRIBUTE = "crbm_modules"


def for_modules(*names: str):
    """Scope a hook implementation to the modules ``names``: the kernel calls it only for
    them (the hooks that take a ``module``: record lifecycle, record actions, printing,
    PDF context...), so the implementation never checks ``module.name`` itself::

        @hookimpl
        @for_modules("invoices")
        def crbm_before_save(site, batch, connection): ...

    A plugin with different work per module gives each its own function and names the
    hook with ``@hookimpl(specname="crbm_before_save")``. Unscoped implementations are
    called for every module, as before. (pluggy has no such filter: ``core.kernel.plugins.
    ModuleHooks`` applies it.)"""
    if not names or not all(isinstance(n, str) and n for n in names):
        raise TypeError("for_modules() takes one or more module names")

    def mark(function):
        setattr(function, MODULES_ATTRIBUTE, frozenset(names))
        return function

    return mark


# -- metadata contribution -----------------------------------------------------------------

@hookspec
def crbm_field_types(site):
    """Contribute field types beyond the kernel's (``site`` for a type that reads a setting).

    Called each time the registry is built. Return a list of ``core.kernel.fields.FieldType``
    instances (subclasses); each ``name`` becomes usable as ``type:`` in module YAML. The
    type carries everything a field of it does — storage, ``normalize``, its form widget,
    list and detail display, filter operators and SQL, JSON Schema, CSV text — and the
    kernel asks it rather than its name, so it works in forms, lists, filters, the API,
    export and import unchanged (docs/plugins.md, "Adding a field type").
    """


@hookspec
def crbm_metadata_dirs():
    """Contribute extra folders holding ``modules/*.yaml`` and ``dropdowns/*.yaml``.

    A plugin's own folder is read without this hook; use it for generated or shared
    definitions. Return a list of ``pathlib.Path``.
    """


# -- record lifecycle ----------------------------------------------------------------------

@hookspec
def crbm_before_save(site, module, batch, user, connection):
    """Called inside the transaction, after validation and before the write.

    ``module`` is the merged ``ModuleDef``; ``batch`` a list of ``RecordChange`` (``.record``
    the full values about to be written, ``.changes`` {field: (old, new)}, ``.is_new``);
    ``user`` the acting ``User``; ``site`` the site (its settings, registry, tables);
    ``connection`` the operation's SQLAlchemy connection, for
    queries that must see (and be part of) the same transaction. A hook may adjust
    ``change.record`` values, or raise ``core.kernel.errors.VetoError`` (or ``ValidationError``)
    to refuse the whole operation. Implementations may omit arguments they do not use.
    """


@hookspec
def crbm_after_save(site, module, batch, user, connection):
    """Called inside the transaction after the write and the change log.

    Raising here rolls the write back. Same arguments as ``crbm_before_save``. The kernel
    implements it too (``core.apps.webhooks.webhooks``: the webhook outbox), called after every plugin's.
    """


@hookspec
def crbm_after_derived(site, module, batch, reason, connection):
    """Called inside the transaction after ``RecordService.set_derived`` wrote values the
    system works out (balances, amounts due, a paid flag...): ``batch`` a list of
    ``RecordChange`` (``.changes`` the derived fields that moved, ``.is_new`` False);
    ``reason`` the caller's short text (or None). The save hooks are not called for
    these writes (they would run the rules that refuse such fields, and recurse); this
    hook is how the rest of the system hears of them. The kernel implements it
    (``core.apps.webhooks.webhooks``: "updated" events in the outbox)."""


@hookspec
def crbm_before_delete(site, module, records, user, connection):
    """Called before a (soft) delete with the list of record dicts; may raise ``VetoError``.

    Records deleted along (``on_delete: cascade``) come in calls of their own, one per
    module. A refusal here is said instead of the kernel's "other records refer to it"."""


@hookspec
def crbm_after_delete(site, module, records, user, connection):
    """Called after a (soft) delete, inside the transaction (the webhook outbox too)."""


# -- site life -----------------------------------------------------------------------------

@hookspec
def crbm_demo_data(site, user, size, rng, progress):
    """Load demo records for this plugin's modules.

    ``size`` says how much to make: the number of records of the site's main module
    (each plugin scales its own modules from it); ``rng`` is a seeded ``random.Random``;
    ``progress(done, total)`` reports this plugin's records written so far out of its total,
    for the CLI's progress bar. Write through ``site.records`` (batch ``create_many``).
    Plugins whose data refers to another plugin's records use ``@hookimpl(trylast=True)``.
    """


# -- packs ---------------------------------------------------------------------------------

@hookspec
def crbm_pack_installed(site, pack, connection):
    """Called when a pack has been installed (or upgraded or re-enabled), as the last step
    before its history record, inside the transaction that records the install.

    ``pack`` is the ``core.apps.packs.pack_archive.Manifest``; ``connection`` the transaction's
    connection (the new tables exist). Write the pack's starting data here. Raising makes
    the whole install fail and rolls everything back (files, registry, schema, data).
    A code pack's own ``plugin.py`` is registered by then, so it can answer for itself.
    """


@hookspec
def crbm_pack_removing(site, pack, mode, connection):
    """Called before a pack is disabled, uninstalled or purged (``mode`` says which),
    inside the transaction that records it; raising refuses the removal."""


# -- sign-in and web -----------------------------------------------------------------------

@hookspec(firstresult=True)
def crbm_authenticate(site, username, password):
    """Check a user name and password against an outside directory (LDAP, ...).

    Called when someone signs in with a name that has no local password: an unknown
    name, or a user whose ``auth_source`` is not ``"local"``. Return a
    ``core.kernel.users.ExternalIdentity`` when the directory accepts the pair; ``None`` when
    this backend is switched off, does not know the name, or the password is wrong.
    Raise ``core.kernel.users.AuthUnavailable`` (with a message for the user) when the
    directory cannot be reached. The first backend to answer wins. Never log the password.
    """


@hookspec
def crbm_web_routes(site):
    """Contribute web pages: return a list of Starlette routes.

    Wrap handlers with ``core.web.pages.page`` so they get the signed-in user, CSRF
    checks and the login redirect like every kernel page. Templates are looked up in
    the plugin's ``templates/`` folder.
    """


@hookspec
def crbm_api_actions(site):
    """Expose module actions through the REST API: a list of ``core.api.actions.ApiAction``.

    Each becomes ``POST /api/v1/<module>/<id>/actions/<name>`` (and an operation in the
    OpenAPI document), run as the calling user after their access to the record is checked.
    """


@hookspec
def crbm_admin_links(site):
    """Contribute entries to the administration page: a list of ``(label, url)``, or of
    ``core.kernel.hooktypes.AdminLink`` (with a hint, drawn among the kernel's entries, as
    the applications' are). Asked only for administrators.

    Labels are English, marked with ``core.kernel.errors.N_`` so they are translated.
    """


# -- documents: printing, mail -------------------------------------------------

@hookspec
def crbm_before_output(site, module, record, action, user):
    """Called before a record is printed to PDF (``action`` "print") or sent by mail
    ("email"). Raise ``core.kernel.errors.VetoError`` with the reason to refuse it (a quote
    waiting for approval, say)."""


@hookspec
def crbm_record_actions(site, module, record, user):
    """Buttons for a record's detail page: return a list of ``core.web.actions.Action``
    (label marked with ``N_``, url, and whether it posts). Called once per detail page."""


@hookspec
def crbm_mail_sent(site, mail, user, module, record_id):
    """A message about a record was sent (``core.apps.documents.mail.SentMail``: to, cc, subject, text,
    attachments, message id, time). Keep it in the record's history (the emails plugin
    files it as an email record). ``module``/``record_id`` may be ``None``."""


@hookspec
def crbm_pdf_context(site, module, record, context, user, fmt):
    """Add to what a PDF form reads about ``record`` (``core.apps.documents.printing.record_context``):
    change ``context`` in place, with values formatted by ``fmt`` (the reader's
    ``core.kernel.i18n.Formatter``). The company's details, a statement's invoices, ..."""


# -- the site's life and the applications' services (typed; results: core.kernel.hooktypes)

if TYPE_CHECKING:
    import click
    from jinja2 import Environment
    from sqlalchemy import MetaData

    from core.kernel.hooktypes import (AccessPredicate, JobHandler, ListAction, ModuleFeature,
                                       NavEntry, ScheduledTask, SiteService)
    from core.kernel.registry import ModuleDef
    from core.kernel.site import Site


@hookspec
def crbm_site_services(site: Site) -> list[SiteService] | None:
    """Attach objects to the site: ``site.<name>`` is ``factory(site)``, made on first use
    (or while the site boots, before the registry is read, when ``boot`` is set).

    Called once, when the site is constructed, after every plugin is registered. The
    applications shipped with CRBM attach ``site.packs`` and ``site.studio`` this way. A
    name already taken (by the site or another plugin) stops boot naming it.
    """


@hookspec
def crbm_tables(metadata: MetaData) -> None:
    """Add the tables an application keeps for itself (not a module's: those come from its
    YAML and its features) to ``metadata``; schema check and sync treat them as the
    kernel's own. The OAuth and webhooks applications keep their tables so."""


@hookspec
def crbm_schema_synced(site: Site) -> None:
    """The database schema was just brought up to date (``crbm db sync``, ``crbm init``,
    a pack or Studio change that added a table): create what the new tables need.

    Called after the kernel's own work (each module's counter, the built-in roles), in
    one call per sync; must be idempotent (it runs on every sync). The OAuth application
    makes its signing key pair here.
    """


@hookspec
def crbm_scheduled_tasks(site: Site) -> list[ScheduledTask] | None:
    """The tasks of the admin Scheduler page (``core.jobs.scheduler``): a list of
    ``ScheduledTask(name, label, run, schedule)``. Called when the scheduler reads its
    tasks (a worker starting, the page drawn, ``crbm scheduler``); a removed plugin's
    tasks simply stop running (their rows stay, marked missing)."""


@hookspec
def crbm_job_handlers(site: Site) -> list[JobHandler] | None:
    """The kinds of background job a plugin enqueues (``core.jobs.enqueue``): a list of
    ``JobHandler(name, run, retries)``. A job whose handler is gone (its plugin removed)
    fails with that message on its record; it never stops a worker."""


@hookspec
def crbm_file_references(site: Site) -> list[tuple[str, str]] | None:
    """``(table, column)`` pairs holding file-store keys outside file and image fields (the
    emails plugin's attachments): Maintenance's orphan cleaning keeps the files they name."""


@hookspec
def crbm_startup(site: Site) -> None:
    """The site has booted: plugins registered, registry built, record service ready.

    Called once per ``Site`` (each web worker, each CLI command that opens the site), at
    the end of its construction, before any request is served; not again when the
    registry is rebuilt. Warm caches or check settings here; keep it fast, and do not
    write to the database (the schema may not be synced yet).
    """


@hookspec
def crbm_jinja_environment(site: Site, env: Environment) -> None:
    """A Jinja environment of the web UI was made: add filters, tests and globals to it.

    Called once per environment (the kernel's look, and each theme pack's, made on first
    use and again after a pack change), after the kernel's own filters and globals, so a
    plugin may add names but should not replace the kernel's. Theme packs' environments
    are sandboxed: what a plugin adds there is callable by the theme's templates.
    """


@hookspec
def crbm_cli_commands() -> list[click.Command] | None:
    """Subcommands of ``crbm``: a list of click commands (or groups).

    Called when the command line needs them (``crbm --help``, or a name that is not one of
    the kernel's), with the shipped and installed plugins loaded but no site open: a
    command opens the site itself (``ctx.obj`` is the site folder; ``cli.open_site``).
    The one hook whose results are click's own objects rather than ``hooktypes``. A
    name the kernel already uses is ignored.
    """


@hookspec
def crbm_navigation(site: Site, user) -> list[NavEntry] | None:
    """Links for the top bar, beside the user's name: a list of ``NavEntry``.

    Called on every page drawn for a signed-in user (keep it cheap), in plugin order;
    the calendar application's link comes first. Return none for a user who may not
    follow the link.
    """


@hookspec
def crbm_list_actions(site: Site, module: ModuleDef, user) -> list[ListAction] | None:
    """Mass actions on ``module``'s list page: a list of ``ListAction``.

    Called each time that list page is drawn, for its reader; the buttons come after the
    kernel's (export, delete). The route that receives the post checks the user's rights
    again: the button's presence is not a permission.
    """


@hookspec
def crbm_access_predicates(site: Site) -> list[AccessPredicate] | None:
    """Named record conditions for access rules: a list of ``AccessPredicate``.

    Called each time the registry is (re)built; the site keeps them by name in
    ``site.access_predicates`` (two with one name stop boot). The rules that will name
    them come with the access-rules work; until then they are collected and checked only.
    """


@hookspec
def crbm_module_features(site: Site) -> list[ModuleFeature] | None:
    """Module features (``features.<name>`` in a module's YAML) a plugin provides: a list
    of ``ModuleFeature`` subclasses' instances, each with its ``name``. Called each time the
    registry is built (``site`` may be None when a pack is checked without a site): a module
    whose YAML opts in (``features.<name>``) gets the feature's fields and tables, and its
    record writes and reads go through the feature's steps (``docs/plugins.md``, "Module
    features").
    """
