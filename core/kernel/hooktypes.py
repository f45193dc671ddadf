"""The small frozen values hooks return (``core.kernel.hookspecs``).

One style for every hook that contributes things: the implementation returns a list of
these (or ``None`` for nothing), and the kernel flattens the lists of every plugin in
pluggy's call order. Plain frozen dataclasses, so a plugin author sees each field, a typo
fails at construction, and nothing a hook returns can be changed by another plugin.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SiteService:
    """An application's object attached to the site as ``site.<name>`` (``site.packs``,
    ``site.studio``), made by ``factory(site)`` on first use, or while the site boots
    (before the registry is read) when ``boot`` is true."""
    name: str
    factory: Callable[[Any], Any]
    boot: bool = False


@dataclass(frozen=True)
class ScheduledTask:
    """A task of the admin Scheduler page (implementation guide §7.1.3), run through the
    job queue (``core.jobs``) exactly once per due time however many workers run.

    ``name`` is unique and stable ("<plugin>.<task>", the scheduler table's key); ``label``
    is English, marked with ``N_``. ``schedule`` is the default an administrator may
    change: a five-field cron expression in the site's time zone ("0 3 * * *") or
    "@every <N>s|m|h". ``run(site, due)`` does the run for ``due`` (an aware UTC datetime,
    the natural idempotency key of what it sends) and returns a one-line result for the
    page, or ``None``; an exception fails the run: logged on the task, retried by the queue.
    """
    name: str
    label: str
    run: Callable[[Any, Any], str | None]
    schedule: str
    enabled: bool = True


@dataclass(frozen=True)
class JobHandler:
    """A kind of background job, enqueued with ``core.jobs.enqueue(site, name, payload)``:
    ``run(site, payload)`` does it (``payload`` is the JSON-ready dict given). A failure is
    retried ``retries`` times with exponential backoff, and a job whose worker died runs
    again, so ``run`` must be idempotent: key what it sends on something in the payload."""
    name: str
    run: Callable[[Any, dict], None]
    retries: int = 5


@dataclass(frozen=True)
class NavEntry:
    """A link in the top bar beside the user's name (the calendar's, say). ``label`` is
    English, marked with ``N_`` and translated when drawn; the link is marked current on
    pages whose path starts with ``url``."""
    label: str
    url: str
    count: int | None = None  # a badge beside the label (WebUser.counts: unread notifications)
    icon: str | None = None  # a Lucide icon's name (core/web/icons.py); the bar shows it


@dataclass(frozen=True)
class ListAction:
    """A mass action on a module's list page: a button in its toolbar that posts the list
    form (the ticked ``ids``, ``all`` for every matching record, the list's filters as
    ``q``, ``sort`` and ``f_<field>``, and the CSRF token) to ``url``, a route of the
    plugin's own (``crbm_web_routes``, wrapped in ``core.web.pages.page``). ``label`` and
    ``confirm`` are English, marked with ``N_``."""
    label: str
    url: str
    confirm: str | None = None


@dataclass(frozen=True)
class AccessPredicate:
    """A named condition on a record that access rules may use: ``test(site, user,
    module, record) -> bool``. ``modules``: the modules it applies to (empty: all)."""
    name: str
    test: Callable[[Any, Any, Any, dict], bool]
    modules: tuple[str, ...] = ()


class ModuleFeature:
    """A module feature a plugin provides (``features.<name>`` in a module's YAML opts a
    module in; ``crbm_module_features`` registers the provider). Subclass it and override
    what the feature needs; every step has a do-nothing default. The kernel asks the
    features a module opts in to at each generic seam:

    - registry: ``fields`` (the fields it adds, as YAML specs) and ``check`` (problems
      with its options or the module);
    - database: ``tables`` (the tables it owns, added to the schema's ``MetaData``);
    - record service: ``prepare`` (a write's data for the feature, taken out of each row
      under the feature's name, parsed and checked before anything is written: it may
      stamp values into the record), ``write`` (in the save's "lines" step, same
      transaction) and ``read`` (``RecordService.feature_data``);
    - API, web, documents: ``json_schema``/``to_json``/``from_json``, ``editor``/``display``
      and ``document_context`` — asked by the web, API and documents layers, never by the
      kernel itself.

    ``options`` is always the module's ``features.<name>`` mapping (``{}`` for ``true``).
    """
    name: str = ""
    label: str = ""  # what it is, English marked N_ (the API docs page: "line items")

    # -- registry ------------------------------------------------------------------------
    def fields(self, options: dict, types: dict) -> dict[str, dict]:
        """Field specs the feature adds to the module, as expanded specs (a currency's
        code sub-field too: ``types[name].expand``); ``types`` are the field types."""
        return {}

    def check(self, module: Any, options: dict, registry: Any) -> list[tuple[str, str]]:
        """Problems: ``(path under $.features.<name>, message)``."""
        return []

    # -- database ------------------------------------------------------------------------
    def tables(self, module: Any, metadata: Any) -> None:
        """Add the tables the feature owns for ``module`` to ``metadata``."""

    # -- record service ------------------------------------------------------------------
    def prepare(self, site: Any, conn: Any, module: Any, given: list, normalized: list,
                currents: list[dict] | None) -> list:
        """One write's data: ``given[i]`` is what row ``i`` gave under the feature's name
        (None: nothing), ``normalized[i]`` its ``(record, errors)`` to update in place,
        ``currents[i]`` the stored record (updates). Return per row the data ``write``
        stores, or None to leave the stored data as it is."""
        return [None] * len(given)

    def write(self, site: Any, conn: Any, module: Any, record_id: str, data: Any) -> None:
        """Store ``data`` (what ``prepare`` returned) for the record, in the save's
        transaction."""

    def read(self, site: Any, conn: Any, module: Any, record: dict) -> Any:
        """The feature's data of a saved ``record`` (a row of the module's table)."""
        return None

    def copy(self, data: Any) -> Any:
        """``data`` as a new record's write takes it (converting a record into another)."""
        return data

    # -- API (core/api: the record body, GET/PUT .../<name>, OpenAPI) ----------------------
    def api_value_schema(self) -> dict | None:
        """JSON schema of the feature's value in a create/update body (None: not taken)."""
        return None

    def api_input_schema(self) -> dict | None:
        """JSON schema of a ``PUT .../<name>`` body (None: no such route)."""
        return None

    def api_component_schemas(self) -> dict[str, dict]:
        """Named schemas for the OpenAPI document (``#/components/schemas/<name>``)."""
        return {}

    def to_json(self, data: Any) -> Any:
        """``read``'s data as ``GET .../<name>`` answers it."""
        return data

    def from_json(self, body: dict) -> Any:
        """A valid ``PUT .../<name>`` body as the value a record write takes."""
        return body

    # -- web and documents -----------------------------------------------------------------
    # the web UI's editor (edit form) and display (detail page), a module with the
    # functions core/web/views.py calls (see the line items plugin's web.py); None: no editor
    web: Any = None

    def document_context(self, site: Any, fmt: Any, module: Any, record: dict,
                         user: Any) -> Any:
        """What printed documents (PDF forms) read under ``<name>`` (None: nothing)."""
        return None


@dataclass(frozen=True)
class AdminLink:
    """An entry of the administration page (``crbm_admin_links``): drawn with the kernel's
    own, with its ``hint`` under it. ``label`` and ``hint`` are English, marked ``N_``."""
    label: str
    url: str
    hint: str = ""
