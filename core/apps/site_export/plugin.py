"""The full-site export as a built-in plugin: the admin page (web.py), its link on the
administration page, and the command ``crbm export-site OUTPUT.zip``."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from core.kernel.errors import N_, CrbmError
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import AdminLink


@hookimpl(tryfirst=True)  # the applications' pages come before third-party plugins' pages
def crbm_web_routes(site):
    from core.apps.site_export import web
    return web.routes


@hookimpl(tryfirst=True)  # among the kernel's entries, in BUILTIN_PLUGINS order
def crbm_admin_links(site):
    return [AdminLink(N_("Export all data"), "/admin/export",
                      N_("Every module, the users and the stored files as one zip of CSV "
                         "files, to move to another system."))]


@click.command("export-site")
@click.argument("output", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.pass_context
def export_site_command(ctx, output: Path):
    """Export every module, the users and the files to OUTPUT (a zip of CSV files)."""
    from core.apps.site_export import export
    from core.kernel.site import Site

    root = ctx.find_root()
    try:  # (the site folder is the group's --site; tests' extra plugins come along)
        site = Site(root.obj, extra_plugins=list(getattr(root.command, "extra_plugins", ())))
    except CrbmError as exc:
        click.secho(f"Error: {exc}", fg="red", err=True)
        sys.exit(1)
    bars: dict[str, object] = {}

    def progress(name: str, done: int, total: int) -> None:
        bar = bars.get(name)
        if bar is None:
            for other in bars.values():  # the module before is done
                other.__exit__(None, None, None)
            bars.clear()
            bar = bars[name] = click.progressbar(length=max(total, 1), label=f"  {name:<24}",
                                                 show_pos=True, file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    partial = output.with_name(output.name + ".part")
    try:
        summary = export.export_site(site, partial, progress=progress)
        for bar in bars.values():
            bar.__exit__(None, None, None)
        partial.replace(output)  # a zip at OUTPUT is always a whole one
    except (CrbmError, OSError) as exc:
        partial.unlink(missing_ok=True)
        click.secho(f"Error: the export failed, nothing was written to {output}: {exc}",
                    fg="red", err=True)
        sys.exit(1)
    finally:
        site.close()
    click.echo(f"Exported {sum(summary.modules.values())} records of "
               f"{len(summary.modules)} modules, {summary.users} users and "
               f"{summary.files} files to {output}.")
    if summary.missing_files:
        click.echo(f"{summary.missing_files} files named by records were missing from the "
                   f"file store and are not in the zip.")


@hookimpl
def crbm_cli_commands():
    return [export_site_command]
