"""A test-only plugin implementing the typed hooks of issue 16 (core.kernel.hookspecs),
each with a visible effect a test can look for. Nothing here is shipped."""
from __future__ import annotations

import click
import sqlalchemy as sa
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import (
    AccessPredicate,
    JobHandler,
    ListAction,
    NavEntry,
    ScheduledTask,
    SiteService,
)

PLUGIN_NAME = "hook_probe"
CALLS: list[tuple] = []


@hookimpl
def crbm_startup(site):
    CALLS.append(("startup", site.registry is not None))


@hookimpl
def crbm_schema_synced(site):
    CALLS.append(("schema_synced", "gadgets" in site.tables.tables))


@hookimpl
def crbm_tables(metadata):
    sa.Table("probe_marks", metadata, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("mark", sa.String(20), nullable=False))


@hookimpl
def crbm_site_services(site):
    return [SiteService("probe", lambda s: {"made_for": s.folder.name})]


@hookimpl
def crbm_scheduled_tasks(site):
    return [ScheduledTask("hook_probe.tick", "Probe tick",
                          lambda s, due: CALLS.append(("tick", due)) and None, "@every 1s")]


@hookimpl
def crbm_job_handlers(site):
    return [JobHandler("hook_probe.job", lambda s, payload: CALLS.append(("job", payload)))]


@hookimpl
def crbm_jinja_environment(site, env):
    env.filters["shout"] = lambda text: f"{text}!".upper()


@hookimpl
def crbm_navigation(site, user):
    return [NavEntry("Probe desk", "/probe")]


@hookimpl
def crbm_list_actions(site, module, user):
    if module.name == "gadgets":
        return [ListAction("Polish", "/probe/polish", confirm="Polish them?")]
    return None


@hookimpl
def crbm_access_predicates(site):
    return [AccessPredicate("shiny", lambda site, user, module, record: True, ("gadgets",))]


@hookimpl
def crbm_web_routes(site):
    def probe(request):
        env = request.app.state.templates.environment()
        return PlainTextResponse(env.from_string("{{ 'hi' | shout }}").render())
    return [Route("/probe", probe)]


@click.command("probe")
def probe_command():
    """Say the probe is here."""
    click.echo("probe here")


@hookimpl
def crbm_cli_commands():
    return [probe_command]
