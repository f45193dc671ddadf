"""The ``crbm`` command.

Every sub-command takes ``--site DIR`` (or the CRBM_SITE environment variable; default
``./crbm-site``). Errors meant for a user are printed plainly, without a stack trace,
and exit with status 1; usage errors exit with 2 (click's convention).
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import random
import signal
import sys
from pathlib import Path

import click

from core import __version__
from core.apps.packs.pack_archive import PackError, build, check_offline
from core.kernel import crypto
from core.kernel.errors import CrbmError, MetadataError
from core.kernel.plugins import dependency_order, hooks_implemented
from core.kernel.site import Site, create_site
from core.kernel.users import (
    create_user,
    first_admin,
    generate_password,
    get_user,
    set_active,
    set_password,
)

DEFAULT_SITE = "crbm-site"
DEFAULT_DEMO_SIZE = 200


def friendly_errors(command):
    """Show CRBM errors as a message and exit 1, never as a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except MetadataError as exc:
            click.secho("The module definitions are invalid; nothing was changed:", fg="red",
                        err=True)
            for problem in exc.problems:
                click.echo(f"  {problem}", err=True)
            sys.exit(1)
        except CrbmError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            sys.exit(1)

    return wrapper


class _Crbm(click.Group):
    """The ``crbm`` group, with the plugins' subcommands (``crbm_cli_commands``) beside
    the kernel's: looked up only when a name is not the kernel's, or for ``--help``, so
    the kernel's commands never wait for every plugin to import."""

    extra_plugins: tuple = ()  # plugin modules to ask too (tests)

    @functools.cached_property
    def plugin_commands(self) -> dict[str, click.Command]:
        from core.kernel.plugins import load_plugins
        pm, _ = load_plugins(list(self.extra_plugins))
        return {command.name: command for commands in pm.hook.crbm_cli_commands()
                for command in commands or () if command.name not in self.commands}

    def list_commands(self, ctx):
        return sorted([*super().list_commands(ctx), *self.plugin_commands])

    def get_command(self, ctx, name):
        return super().get_command(ctx, name) or self.plugin_commands.get(name)


@click.group(cls=_Crbm, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--site", "site_dir", envvar="CRBM_SITE", default=DEFAULT_SITE, show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="The site folder (env CRBM_SITE).")
@click.version_option(__version__, prog_name="crbm")
@click.pass_context
def main(ctx, site_dir):
    """CRBM: open-source, self-hosted CRM and business management."""
    ctx.obj = site_dir


def open_site(ctx) -> Site:
    """The site of ``--site``, after dealing with a restore that was killed there."""
    finish_interrupted_restore(ctx)
    return Site(ctx.obj, extra_plugins=list(ctx.find_root().command.extra_plugins))


def finish_interrupted_restore(ctx) -> None:
    """Complete a restore killed while it switched the site's parts, or remove what one
    killed earlier had staged, and say so (core/apps/backup/restore.py)."""
    from core.apps.backup.restore import finish_interrupted
    if Path(ctx.obj).is_dir():
        for done in finish_interrupted(Path(ctx.obj).resolve()):
            click.echo(f"Note: {done}", err=True)


# -- site set-up ---------------------------------------------------------------------------

@main.command()
@click.option("--database-url", help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db "
              "(default: SQLite inside the site folder).")
@click.option("--admin", "admin_name", default="admin", show_default=True,
              help="User name of the first administrator.")
@click.option("--demo/--no-demo", default=False, help="Load demo data too.")
@click.option("--demo-size", default=DEFAULT_DEMO_SIZE, show_default=True,
              help="How many demo accounts (with --demo).")
@click.pass_context
@friendly_errors
def init(ctx, database_url, admin_name, demo, demo_size):
    """Create a new site: folder, database tables and the first administrator."""
    initialize(ctx.obj, database_url, admin_name, demo_size if demo else 0)


def initialize(folder: Path, database_url: str | None, admin_name: str, demo_size: int) -> Site:
    folder = create_site(folder, database_url)
    try:
        site = Site(folder)
        site.sync_schema()
        password = generate_password()
        create_user(site, admin_name, password, is_admin=True, must_change_password=True)
    except Exception:
        (folder / "site.yaml").unlink(missing_ok=True)  # let the user simply try again
        raise
    click.echo(f"Created site {folder} ({site.engine.url.render_as_string(hide_password=True)})")
    if demo_size:
        load_demo(site, get_user(site, admin_name), demo_size, seed=1)
    click.secho("\n  Administrator login\n", bold=True)
    click.echo(f"    user name: {admin_name}\n    password:  {password}\n")
    return site


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--demo-size", default=DEFAULT_DEMO_SIZE, show_default=True,
              help="Demo accounts loaded when this creates a new site.")
@click.option("--jobs/--no-jobs", "run_jobs", default=True, show_default=True,
              help="Run background jobs and scheduled tasks in this process (an embedded "
              "worker); turn off when `crbm worker` processes run them.")
@click.option("--scheduler/--no-scheduler", "run_jobs", hidden=True,
              help="The former name of --jobs/--no-jobs.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1),
              help="Worker processes (uvicorn's), each with its own site, database pool and "
              "thread pool; the embedded job worker runs once, in the process that starts them.")
@click.pass_context
@friendly_errors
def serve(ctx, host, port, demo_size, run_jobs, workers):
    """Serve the web application (creates the site with demo data on first run)."""
    import uvicorn

    from core.jobs.worker import Worker
    from core.web.app import create_app

    # a restore killed in this folder first: it may be what makes the site (or nothing)
    finish_interrupted_restore(ctx)
    if (Path(ctx.obj) / "site.yaml").exists():
        site = open_site(ctx)
    else:
        site = initialize(ctx.obj, None, "admin", demo_size)
    diff = site.check_schema()
    if diff.pending:
        raise CrbmError("the database is behind the module definitions; run `crbm db check` "
                        "to see the difference and `crbm db sync` to apply it")
    click.echo(f"Serving CRBM on http://{host}:{port}/  (Ctrl+C to stop)")
    configure_logging(site)
    few_malloc_arenas()
    background = Worker(site).start() if run_jobs else None
    # uvicorn stops gracefully on SIGTERM, then raises it again: ending here, with the
    # embedded worker stopped (finally) and exit status 0, not killed by the signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if workers == 1:
            uvicorn.run(create_app(site), host=host, port=port, **UVICORN)
        else:  # each worker process opens the site itself (worker_app): nothing crosses a fork
            os.environ["CRBM_SITE"] = str(Path(ctx.obj).resolve())
            uvicorn.run("cli:worker_app", factory=True, workers=workers, host=host, port=port,
                        **UVICORN)
    finally:
        if background is not None:
            background.stop(wait=False)


# our logging (configure_logging) for uvicorn's lines too; the access log is ours, with
# request ids (core/web/request_ids.py); on SIGTERM the requests in flight get 30 s to end
UVICORN = {"log_config": None, "access_log": False, "timeout_graceful_shutdown": 30}


def worker_app():
    """The application of one of `crbm serve --workers N`'s processes (the site: CRBM_SITE)."""
    from core.web.app import create_app
    few_malloc_arenas()
    site = Site(Path(os.environ["CRBM_SITE"]))
    configure_logging(site)
    return create_app(site)


def configure_logging(site) -> None:
    """A long-running process's logs: JSON lines in the site's log file, warnings on
    stderr (core/apps/logs/setup.py; site.yaml ``logging``)."""
    from core.apps.logs import setup
    setup.configure(site)


def few_malloc_arenas() -> None:
    """glibc gives threads that allocate at once arenas of their own (up to 8 per core), each
    keeping what was freed in it: a web worker's thread pool grew it by ~6 MB for nothing
    (bench/workers.py; Python's own objects hardly grow). Two, before any thread starts."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL(None).mallopt(-8, 2)  # M_ARENA_MAX


@main.command("worker")
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(1),
              help="Jobs run at once by this process (threads).")
@click.option("--no-scheduler", "no_scheduler", is_flag=True,
              help="Only run jobs; leave the scheduled tasks' due times to other workers or "
              "the OS cron (`crbm scheduler run-due`).")
@click.pass_context
@friendly_errors
def worker(ctx, concurrency, no_scheduler):
    """Run background jobs and scheduled tasks in the foreground until Ctrl+C or SIGTERM;
    start any number, on any number of machines sharing the site's database."""
    from core.jobs.worker import Worker

    site = open_site(ctx.parent)
    configure_logging(site)
    runner = Worker(site, concurrency, scheduler_tick=not no_scheduler)
    signal.signal(signal.SIGTERM, lambda *_: runner.stop_event.set())
    click.echo(f"Running CRBM jobs, {concurrency} at once (Ctrl+C to stop)")
    try:
        runner.run()
    except KeyboardInterrupt:
        runner.stop_event.set()


@main.group("scheduler")
def scheduler_group():
    """Scheduled tasks: list them, run those due (for the OS cron), run one now."""


@scheduler_group.command("list")
@click.pass_context
@friendly_errors
def scheduler_list(ctx):
    """Every task with its schedule, state, last and next run."""
    from core.jobs import scheduler

    site = open_site(ctx.parent)
    for state in scheduler.states(site):
        last = (f"last {state.last_start:%Y-%m-%d %H:%M} {state.last_status}"
                if state.last_start else "never run")
        due = f"next {state.next_due:%Y-%m-%d %H:%M} UTC" if state.next_due else "no next run"
        flag = "on " if state.enabled else "off"
        missing = "" if state.task else "  (its plugin is not installed)"
        click.echo(f"{flag} {state.name:30} {state.schedule:16} {due:26} {last}{missing}")


@scheduler_group.command("set")
@click.argument("name")
@click.option("--schedule", help='A cron expression in the site\'s time zone ("30 3 * * *") '
              'or "@every N[s|m|h]".')
@click.option("--on/--off", "enabled", default=None, help="Turn the task on or off.")
@click.pass_context
@friendly_errors
def scheduler_set(ctx, name, schedule, enabled):
    """Change task NAME's schedule, or turn it on or off (as the Scheduler page does)."""
    from core.jobs import scheduler

    site = open_site(ctx.parent)
    if name not in scheduler.tasks(site):
        raise click.BadParameter(str(scheduler.UnknownTask(name)), param_hint="NAME")
    try:
        scheduler.configure(site, name, schedule=schedule, enabled=enabled)
    except scheduler.ScheduleError as exc:
        raise click.BadParameter(f"{exc} (nothing was changed)", param_hint="--schedule") \
            from exc
    state = next(s for s in scheduler.states(site) if s.name == name)
    click.echo(f"{name}: {state.schedule}, {'on' if state.enabled else 'off'}")


@scheduler_group.command("run-due")
@click.pass_context
@friendly_errors
def scheduler_run_due(ctx):
    """Enqueue the runs of the tasks that are due (run it from the OS cron every 5 minutes;
    the Scheduler page shows that it is seen). The job workers run them."""
    from core.jobs import scheduler

    site = open_site(ctx.parent)
    claimed = scheduler.run_due(site)
    scheduler.record_trigger(site, "external")
    click.echo(f"{len(claimed)} task run(s) enqueued" + "".join(f"\n  {k}" for k in claimed))


@scheduler_group.command("run")
@click.argument("name")
@click.pass_context
@friendly_errors
def scheduler_run(ctx, name):
    """Run task NAME now, in the foreground, and print its result."""
    import datetime as dt

    from core.jobs import scheduler

    site = open_site(ctx.parent)
    if name not in scheduler.tasks(site):
        raise click.BadParameter(str(scheduler.UnknownTask(name)), param_hint="NAME")
    try:
        result = scheduler.run_task(site, name, dt.datetime.now(dt.UTC))
    except Exception as exc:
        raise CrbmError(f"task {name} failed: {type(exc).__name__}: {exc}") from exc
    click.echo(f"{name}: {result or 'done'}")


# -- database ------------------------------------------------------------------------------

@main.group()
def db():
    """Compare the database with the module definitions, and bring it in step."""


@db.command("check")
@click.pass_context
@friendly_errors
def db_check(ctx):
    """Print what `db sync` would change. Exit status 1 when anything differs."""
    diff = open_site(ctx.parent).check_schema()
    if diff.in_sync:
        click.echo("The database matches the module definitions.")
        return
    for line in diff.pending:
        click.echo(f"  + {line}")
    for line in diff.destructive:
        click.echo(f"  - {line}   (would lose data: only with `db sync --allow-drop`)")
    sys.exit(1)


@db.command("sync")
@click.option("--allow-drop", is_flag=True,
              help="Also drop columns and tables no module defines any more (loses their data).")
@click.pass_context
@friendly_errors
def db_sync(ctx, allow_drop):
    """Apply the difference between the module definitions and the database."""
    diff = open_site(ctx.parent).sync_schema(allow_drop=allow_drop)
    for line in diff.pending:
        click.echo(f"  applied: {line}")
    for line in diff.destructive:
        click.echo(f"  kept:    {line}   (use --allow-drop to apply; loses data)")
    click.echo("Nothing to do." if diff.in_sync else "Done.")


# -- plugins -------------------------------------------------------------------------------

@main.group("plugins", invoke_without_command=True)
@click.pass_context
@friendly_errors
def list_plugins(ctx):
    """List plugins with their state, version, requirements, modules and hooks; disable and
    enable them (a disabled plugin stays on disk with its data, but is not loaded)."""
    if ctx.invoked_subcommand is not None:
        return
    site = open_site(ctx)
    active = {p.name: p for p in site.plugins}
    for candidate in site.plugin_candidates:
        plugin = active.get(candidate.name)
        state = "enabled" if plugin else "disabled"
        click.secho(f"{candidate.name} {candidate.manifest.version}", bold=True, nl=False)
        click.echo(f"  [{state}]  ({candidate.source})")
        requires = ", ".join(f"{n} {s}".strip() for n, s in candidate.manifest.requires.items())
        click.echo(f"    requires: {requires or '-'}")
        if plugin is None:
            continue
        modules = sorted(m.name for m in site.registry.modules.values()
                         if any(str(plugin.folder) in s for s in m.sources[:1]))
        click.echo(f"    modules: {', '.join(modules) or '-'}")
        click.echo(f"    hooks:   {', '.join(hooks_implemented(site.plugin_manager, plugin)) or '-'}")
        if plugin.glue:
            click.echo(f"    glue:    {', '.join(plugin.glue)}")


@list_plugins.command("disable")
@click.argument("name")
@click.option("--with-dependents", is_flag=True,
              help="Also disable the plugins that require it (else refused while any does).")
@click.pass_context
@friendly_errors
def plugins_disable(ctx, name, with_dependents):
    """Stop loading plugin NAME: its modules leave the menus and the API, its hooks stop;
    its tables, columns and records are kept (enable it to have them back)."""
    site = open_site(ctx.parent)
    done = site.disable_plugin(name, with_dependents=with_dependents)
    if not done:
        click.echo(f"Plugin {name} is disabled already.")
        return
    click.echo(f"Disabled {', '.join(done)}. Restart the web server to apply it there.")


@list_plugins.command("enable")
@click.argument("name")
@click.pass_context
@friendly_errors
def plugins_enable(ctx, name):
    """Load plugin NAME again (and add any table or column it needs)."""
    site = open_site(ctx.parent)
    if not site.enable_plugin(name):
        click.echo(f"Plugin {name} is enabled already.")
        return
    click.echo(f"Enabled {name}. Restart the web server to apply it there.")


# -- packs ---------------------------------------------------------------------------------

@main.group()
def pack():
    """Build, install and remove packs (modules, languages, themes, holidays, personalities)."""


def _pack_user(site: Site, username: str | None):
    """The administrator a pack operation is recorded against (None: the command line)."""
    if username is None:
        return None
    found = get_user(site, username)
    if found is None:
        raise CrbmError(f"no user named {username!r}")
    return found


def _show_report(report) -> None:
    for step in report.steps:
        mark = click.style("ok", fg="green") if step.ok else click.style("FAILED", fg="red")
        detail = f": {step.detail}" if step.detail and step.ok else ""
        click.echo(f"  {mark} {step.name}{detail}")
    if report.changes:
        click.echo("  changes:")
        for line in report.changes:
            click.echo(f"    - {line}")
    for problem in report.problems:
        click.secho(f"  ! {problem}", fg="red", err=True)


def _pack_refused(exc: PackError) -> None:
    report = getattr(exc, "report", None)
    if report is not None:
        _show_report(report)
    else:
        for problem in exc.problems:
            click.secho(f"  ! {problem}", fg="red", err=True)
    click.secho(f"Refused at step {exc.step}; nothing was changed.", fg="red", err=True)
    sys.exit(1)


@pack.command("build")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Where to write the zip (a folder, or a file name). Default: here.")
@friendly_errors
def pack_build(folder, output):
    """Check the pack in FOLDER and zip it as NAME-VERSION.zip."""
    try:
        path = build(folder, output)
    except PackError as exc:
        _pack_refused(exc)
    click.echo(f"Built {path}")


@pack.command("install")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Only run the checks and list the changes.")
@click.option("--overwrite-newer", is_flag=True,
              help="Personality packs: replace customizations changed on this site after the "
              "pack's version of them.")
@click.option("--as", "username", help="Record the install against this administrator.")
@click.pass_context
@friendly_errors
def pack_install(ctx, files, dry_run, overwrite_newer, username):
    """Install (or upgrade) the packs in FILES, each after the packs it requires."""
    site = open_site(ctx.parent)
    user = _pack_user(site, username)
    sources = [(path.read_bytes(), path.name) for path in files]
    if dry_run:
        failed = False
        for data, name in sources:
            report = site.packs.check(data, user, name)
            click.secho(f"{name}:", bold=True)
            _show_report(report)
            failed = failed or bool(report.problems)
        sys.exit(1 if failed else 0)
    try:
        if len(sources) == 1:
            data, name = sources[0]
            reports = [site.packs.install(data, user, name, overwrite_newer=overwrite_newer)]
        else:
            reports = site.packs.install_many(sources, user)
    except PackError as exc:
        _pack_refused(exc)
    for report in reports:
        click.secho(f"Installed {report.manifest}", bold=True)
        _show_report(report)


def _removal(ctx, name: str, mode: str, dry_run: bool, yes: bool, username) -> None:
    site = open_site(ctx.parent)
    plan = site.packs.plan_removal(name, mode)
    click.secho(f"{mode.capitalize()} {name} would:", bold=True)
    _show_report(plan)
    if plan.problems:
        click.secho("Refused; nothing was changed.", fg="red", err=True)
        sys.exit(1)
    if dry_run:
        return
    if not yes and not click.confirm("Go ahead?", default=False):
        click.echo("Nothing was changed.")
        sys.exit(1)
    try:
        report = site.packs.remove(name, mode, _pack_user(site, username))
    except PackError as exc:
        _pack_refused(exc)
    if report.export:
        click.echo(f"Data exported to {report.export}")
    click.echo("Done.")


@pack.command("uninstall")
@click.argument("name")
@click.option("--purge", is_flag=True, help="Also export the pack's data to a zip, then drop "
              "its tables and columns.")
@click.option("--dry-run", is_flag=True, help="Only list what would change.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--as", "username", help="Record it against this administrator.")
@click.pass_context
@friendly_errors
def pack_uninstall(ctx, name, purge, dry_run, yes, username):
    """Remove a pack's code and metadata, keeping its data (or, with --purge, not)."""
    _removal(ctx, name, "purge" if purge else "uninstall", dry_run, yes, username)


@pack.command("disable")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Only list what would change.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--as", "username", help="Record it against this administrator.")
@click.pass_context
@friendly_errors
def pack_disable(ctx, name, dry_run, yes, username):
    """Unhook a pack, keeping its files, schema and data."""
    _removal(ctx, name, "disable", dry_run, yes, username)


@pack.command("enable")
@click.argument("name")
@click.option("--as", "username", help="Record it against this administrator.")
@click.pass_context
@friendly_errors
def pack_enable(ctx, name, username):
    """Turn a disabled pack back on."""
    site = open_site(ctx.parent)
    try:
        site.packs.enable(name, _pack_user(site, username))
    except PackError as exc:
        _pack_refused(exc)
    click.echo(f"Enabled {name}.")


@pack.command("list")
@click.option("--all", "show_all", is_flag=True,
              help="Include uninstalled packs whose data is kept.")
@click.pass_context
@friendly_errors
def pack_list(ctx, show_all):
    """List installed packs."""
    packs = open_site(ctx.parent).packs.installed(include_uninstalled=show_all)
    if not packs:
        click.echo("No packs installed.")
    for p in packs:
        click.echo(f"{p.name:<24} {p.version:<10} {p.kind:<12} {p.status:<12} {p.title}")


@pack.command("history")
@click.option("--limit", default=50, show_default=True)
@click.pass_context
@friendly_errors
def pack_history(ctx, limit):
    """Every upload, install, removal and failure, newest first."""
    for row in open_site(ctx.parent).packs.history(limit):
        click.echo(f"{row['at']:%Y-%m-%d %H:%M:%S}  {row['username'] or '-':<14} "
                   f"{row['action']:<10} {row['pack']} {row['version'] or ''}  "
                   f"{row['outcome']}  {row['detail'] or ''}".rstrip())


@pack.command("export-personality")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Zip file to write.")
@click.option("--name", default="site_personality", show_default=True, help="The pack's name.")
@click.option("--version", "version", help="The pack's version (default: the time now).")
@click.option("--title", default="Site personality", show_default=True)
@click.option("--bundle", multiple=True, help="An installed pack to carry along (repeatable).")
@click.pass_context
@friendly_errors
def pack_export_personality(ctx, output, name, version, title, bundle):
    """Export this site's customizations (and chosen packs) as a personality pack."""
    import datetime as dt

    from core.apps.packs import personality

    site = open_site(ctx.parent)
    version = version or dt.datetime.now(dt.UTC).strftime("%Y.%m.%d.%H%M")
    try:
        data = personality.export(site, name, version, title, list(bundle))
    except PackError as exc:
        _pack_refused(exc)
    path = output or Path(f"{name}-{version}.zip")
    path.write_bytes(data)
    click.echo(f"Exported {path}")


@main.command("validate")
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@friendly_errors
def validate(target):
    """Check a pack or plugin folder, or a pack zip, offline. Exit status 1 on problems."""
    problems = check_offline(target)
    if not problems:
        click.echo(f"{target}: no problems found.")
        return
    for problem in problems:
        click.echo(f"  {problem}", err=True)
    click.secho(f"{target}: {len(problems)} problem(s).", fg="red", err=True)
    sys.exit(1)


# -- users ---------------------------------------------------------------------------------

@main.group()
def user():
    """Create users, set passwords, deactivate and activate users."""


@user.command("create")
@click.argument("username")
@click.option("--admin", "is_admin", is_flag=True, help="Make the user an administrator.")
@click.option("--email")
@click.option("--name", "display_name", help="Full name shown in the application.")
@click.option("--password", help="Leave out to be prompted (recommended: keeps it out of "
              "your shell history).")
@click.pass_context
@friendly_errors
def user_create(ctx, username, is_admin, email, display_name, password):
    """Create a user."""
    site = open_site(ctx.parent)
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    create_user(site, username, password, is_admin=is_admin, email=email,
                display_name=display_name)
    click.echo(f"Created {'administrator' if is_admin else 'user'} {username}.")


@user.command("passwd")
@click.argument("username")
@click.option("--password", help="Leave out to be prompted.")
@click.option("--must-change", is_flag=True, help="Ask for a new password at the next login.")
@click.pass_context
@friendly_errors
def user_passwd(ctx, username, password, must_change):
    """Set a user's password."""
    site = open_site(ctx.parent)
    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    set_password(site, username, password, must_change=must_change)
    click.echo(f"Password of {username} changed.")


@user.command("deactivate")
@click.argument("username")
@click.pass_context
@friendly_errors
def user_deactivate(ctx, username):
    """Stop a user from logging in and end their sessions (users are never deleted)."""
    set_active(open_site(ctx.parent), username, False)
    click.echo(f"Deactivated {username}; their sessions have ended.")


@user.command("activate")
@click.argument("username")
@click.pass_context
@friendly_errors
def user_activate(ctx, username):
    """Let a deactivated user log in again."""
    set_active(open_site(ctx.parent), username, True)
    click.echo(f"Activated {username}.")


# -- site settings -------------------------------------------------------------------------

SECRET_SETTING_WORDS = ("password", "secret", "token", "api_key")


def _is_secret(key: str) -> bool:
    return any(word in key.rsplit(".", 1)[-1].lower() for word in SECRET_SETTING_WORDS)


def _masked(key: str, value):
    if isinstance(value, dict):
        return {k: _masked(f"{key}.{k}", v) for k, v in value.items()}
    return "***" if _is_secret(key) and value not in (None, "") else value


def _flatten(key: str, value):
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _flatten(f"{key}.{k}", v)
    else:
        yield key, value


def _show(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _lookup(values: dict, key: str):
    """(parent dict, last part) of a dotted key; parts that are missing are created."""
    *parents, last = key.split(".")
    if not last or not all(parents):
        raise CrbmError(f"{key!r} is not a valid setting name")
    node = values
    for depth, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise CrbmError(f"{'.'.join(parents[:depth + 1])} is not a group of settings")
        node = child
    return node, last


@main.group()
def settings():
    """Show and change site settings (nested keys with dots, e.g. smtp.host)."""


@settings.command("get")
@click.argument("key", required=False)
@click.pass_context
@friendly_errors
def settings_get(ctx, key):
    """Print one setting, or all of them. Secrets (passwords...) show as ***."""
    values = open_site(ctx.parent).settings
    if key:
        node, last = _lookup(values, key)
        if last not in node:
            raise CrbmError(f"no setting {key!r}")
        value = _masked(key, node[last])
        if not isinstance(value, dict):
            click.echo(_show(value))
            return
        values = {key: node[last]}
    for top, value in sorted(values.items()):
        for name, leaf in _flatten(top, value):
            click.echo(f"{name} = {_show(_masked(name, leaf))}")


@settings.command("set")
@click.argument("key")
@click.argument("value")
@click.pass_context
@friendly_errors
def settings_set(ctx, key, value):
    """Set KEY to VALUE (read as JSON when it parses: true, 25, {"a": 1}; else text)."""
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    site = open_site(ctx.parent)
    if key in crypto.SEALED_SETTINGS and isinstance(parsed, str):
        parsed = crypto.seal(site, parsed)  # a password we must send on: encrypted at rest
    values = site.settings
    node, last = _lookup(values, key)
    node[last] = parsed
    top = key.split(".")[0]
    site.set_setting(top, values[top])
    click.echo(f"{key} = {_show(_masked(key, parsed))}")


@settings.command("unset")
@click.argument("key")
@click.pass_context
@friendly_errors
def settings_unset(ctx, key):
    """Remove a setting (and everything under it)."""
    site = open_site(ctx.parent)
    values = site.settings
    node, last = _lookup(values, key)
    if last not in node:
        raise CrbmError(f"no setting {key!r}")
    del node[last]
    top = key.split(".")[0]
    site.set_setting(top, values.get(top))
    click.echo(f"Removed {key}.")


# -- demo data -----------------------------------------------------------------------------

@main.command()
@click.option("--size", default=DEFAULT_DEMO_SIZE, show_default=True,
              help="How many accounts; other modules scale from it.")
@click.option("--seed", default=1, show_default=True, help="Same seed, same data.")
@click.option("--as", "username", default=None,
              help="User who owns the data (default: the first administrator).")
@click.pass_context
@friendly_errors
def demo(ctx, size, seed, username):
    """Load realistic demo data."""
    if size < 1:
        raise click.BadParameter("must be at least 1", param_hint="--size")
    site = open_site(ctx)
    load_demo(site, get_user(site, username) if username else first_admin(site), size, seed)


def load_demo(site: Site, owner, size: int, seed: int) -> None:
    """Run each plugin's demo hook in turn, with a progress bar per plugin: a plugin's
    after those of the plugins it requires (workflows name email templates, say)."""
    rng = random.Random(seed)
    rank = {p.name: i for i, p in enumerate(dependency_order(site.plugins))}
    impls = list(reversed(site.hook.crbm_demo_data.get_hookimpls()))  # registration order
    for impl in sorted(impls, key=lambda impl: rank.get(impl.plugin_name, -1)):
        bar = None

        def progress(done, total, _name=impl.plugin_name):
            nonlocal bar
            if bar is None:
                bar = click.progressbar(length=total, label=f"  {_name:<12}", show_pos=True,
                                        file=sys.stderr)
                bar.__enter__()
            bar.update(done - bar.pos)

        arguments = {"site": site, "user": owner, "size": size, "rng": rng, "progress": progress}
        impl.function(*(arguments[name] for name in impl.argnames))
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(f"Demo data loaded ({size} accounts and what goes with them).")


# -- API clients (docs/security.md, "API authentication") ------------------------------------

@main.group("api-client")
def api_client():
    """List and create API clients, set their secrets (as /admin/api/clients does)."""


@api_client.command("list")
@click.pass_context
@friendly_errors
def api_client_list(ctx):
    """The API clients: id, kind, enabled, grant types, user, name."""
    from core.apps.oauth import oauth_clients
    for client, username in oauth_clients.list_clients(open_site(ctx.parent)):
        click.echo("\t".join([client.id, "public" if client.is_public else "private",
                              "enabled" if client.enabled else "disabled",
                              ",".join(client.grant_types) or "-", username or "-",
                              client.name]))


@api_client.command("create")
@click.argument("name")
@click.option("--publisher", default="")
@click.option("--public", is_flag=True, help="Cannot keep a secret (PKCE instead).")
@click.option("--grant", "grants", multiple=True, show_default=True,
              type=click.Choice(["authorization_code", "client_credentials", "refresh_token"]),
              default=["authorization_code", "refresh_token"])
@click.option("--user", "username", help="Whom client credentials act as.")
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.pass_context
@friendly_errors
def api_client_create(ctx, name, publisher, public, grants, username, redirect_uris):
    """Create a client; a private one gets its secret, printed this once."""
    from core.apps.oauth import oauth_clients
    site = open_site(ctx.parent)
    values, errors = oauth_clients.check_values(site, {
        "name": name, "publisher": publisher, "is_public": public, "enabled": True,
        "grant_types": list(grants), "redirect_uris": "\n".join(redirect_uris),
        "user_id": get_user(site, username).id if username else None})
    if errors:
        raise CrbmError("; ".join(f"{field}: {message}" for field, message in errors.items()))
    client = oauth_clients.create_client(site, values)
    click.echo(f"client_id:     {client.id}")
    if not client.is_public:
        click.echo(f"client_secret: {oauth_clients.set_secret(site, client.id)}  (shown once)")


@api_client.command("secret")
@click.argument("client_id")
@click.pass_context
@friendly_errors
def api_client_secret(ctx, client_id):
    """Set or rotate a private client's secret (printed once; the old one stops)."""
    from core.apps.oauth import oauth_clients
    click.echo(oauth_clients.set_secret(open_site(ctx.parent), client_id))


if __name__ == "__main__":
    main(prog_name=os.path.basename(sys.argv[0]))
