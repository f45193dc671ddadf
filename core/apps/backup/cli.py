"""``crbm backup`` and ``crbm restore``.

Exit codes: 0 done, 1 refused or failed (the site unchanged; the message says why), 2 a
usage error. Progress goes to standard error, the result to standard output.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from core.apps.backup import backup as backups
from core.apps.backup import restore as restores
from core.apps.backup.archive import ArchiveError
from core.kernel.errors import CrbmError


def _bar(label: str):
    bar = click.progressbar(length=1, label=label, file=sys.stderr, show_pos=True)
    bar.__enter__()

    def progress(_name, done, total):
        bar.length = total
        bar.update(done - bar.pos)

    return bar, progress


@click.command("backup")
@click.option("--to", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="The folder the archive goes to (default: the site's backups/).")
@click.option("--files", type=click.Choice(backups.FILE_SCOPES), default="all",
              show_default=True, help="Besides the database and the site's keys: none; "
              "config (packs and settings files); all (also uploaded files).")
@click.option("--encrypt-to", "recipient", metavar="AGE_PUBLIC_KEY",
              help="Encrypt the archive to this age public key (age1...); only its private "
              "key, kept off the server, opens it.")
@click.option("--keep", type=click.IntRange(1), help="Keep only this many newest backups "
              "in the folder.")
@click.pass_context
def backup_command(ctx, folder, files, recipient, keep):
    """Back up the database (as of one moment, while the site runs) and the site's files
    into one archive with a manifest and checksums."""
    from cli import open_site
    site = open_site(ctx)
    bar, progress = _bar("Backing up")
    notes: list[str] = []  # leftovers of killed backups it removed: said after the bar
    try:
        path = backups.make_backup(site, folder, files, recipient, keep, progress,
                                   report=notes.append)
    except CrbmError as exc:
        bar.__exit__(None, None, None)
        click.secho(f"Error: {exc}", fg="red", err=True)
        sys.exit(1)
    finally:
        site.close()
    bar.__exit__(None, None, None)
    for line in notes:
        click.echo(f"Note: {line}")
    click.echo(f"Backup written: {path} ({path.stat().st_size / 2**20:.1f} MB)")


@click.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--database-url", help="An empty database to restore into (default: a new "
              "SQLite file, or a new database beside the site's on PostgreSQL/MariaDB).")
@click.option("--replace", is_flag=True, help="Replace the site in --site (it is kept "
              "aside, its database too).")
@click.option("--identity", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The age private key file that opens an encrypted archive.")
@click.pass_context
def restore_command(ctx, archive, database_url, replace, identity):
    """Restore ARCHIVE into the site folder (--site): a new site, or in place of the
    site there with --replace. All or nothing: checked whole first, built aside, then
    switched in."""
    folder = Path(ctx.obj)
    bar, progress = _bar("Restoring")
    try:
        done = restores.restore(archive, folder, database_url=database_url, replace=replace,
                                identity=identity, progress=progress,
                                extra_plugins=ctx.find_root().command.extra_plugins)
    except (CrbmError, ArchiveError) as exc:
        bar.__exit__(None, None, None)
        click.secho(f"Error: {exc}. Nothing was changed.", fg="red", err=True)
        sys.exit(1)
    bar.__exit__(None, None, None)
    for line in done.cleaned:
        click.echo(f"Note: {line}")
    click.echo(f"Restored {done.tables} tables ({done.rows:,} rows) and {done.files} files "
               f"into {done.folder} ({done.database_url}).")
    if done.left_out:
        click.echo(f"Left out (no definition here): {', '.join(done.left_out)}")
    if done.previous:
        click.echo(f"The previous site's files are kept in {done.previous}")
    if done.previous_database:
        click.echo(f"The previous database is kept: {done.previous_database} (drop it when "
                   "you no longer need it)")
    click.echo("Restart the site's web and job processes to serve the restored site.")
