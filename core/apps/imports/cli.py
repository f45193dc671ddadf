"""``crbm import MODULE FILE``: the wizard's import from the command line.

The columns map as the wizard maps them (a source's layout, or headers matched to field
names and labels), or by a mapping saved in the wizard (``--mapping NAME``). The import
runs in the foreground with a progress bar and is an import session like any other (Manage
Imported Data accepts or rejects it); ``--dry-run`` reads and checks every row, writes
nothing and says what would happen. Exit codes: 0 imported (even with skipped rows,
which are listed), 1 refused (nothing written), 2 a usage error.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import click

from core.apps.imports import files, run
from core.apps.imports import mapping as mappings
from core.kernel.errors import CrbmError, NotFoundError

SHOWN_SKIPS = 20


@click.command("import")
@click.argument("module")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mapping", "mapping_name", help="A mapping saved in the wizard for MODULE.")
@click.option("--source", type=click.Choice([mappings.CUSTOM, *mappings.sources()]),
              default=mappings.CUSTOM, show_default=True,
              help="Who wrote the file: any CSV/XLSX, or another CRM's export.")
@click.option("--locale", default="en_US", show_default=True,
              help="How the file writes dates and numbers (en_US, en_GB, de_DE, fr_FR...).")
@click.option("--timezone", default="UTC", show_default=True,
              help="The zone of the file's times when they carry no offset.")
@click.option("--duplicates", type=click.Choice(run.DUPLICATE_CHOICES), default="import",
              show_default=True, help="What to do with a row the module's duplicate rules "
              "match: import it anyway, skip it, or update the record it matches.")
@click.option("--match-on", help="Update mode: a field (e.g. manufacturer_part_no) whose "
              "value identifies the record a row updates; other rows are created.")
@click.option("--user", "username", help="Import as this user (default: the first "
              "administrator).")
@click.option("--dry-run", is_flag=True, help="Check every row; write nothing.")
@click.pass_context
def import_command(ctx, module, file, mapping_name, source, locale, timezone, duplicates,
                   match_on, username, dry_run):
    """Import FILE (CSV or XLSX) into MODULE, as one import session."""
    from cli import open_site
    from core.kernel.users import first_admin, get_user
    site = open_site(ctx)
    try:
        user = get_user(site, username) if username else first_admin(site)
        target = run.check_start(site, user, module)
        table = files.open_table(file, max_bytes=run.max_bytes(site))
        if table.kind == "vcard":
            source = "vcard"
        if mapping_name:
            found = mappings.find_saved(site, module, mapping_name)
            if found is None:
                raise click.UsageError(f"no mapping named {mapping_name!r} for {module}")
            columns = mappings.apply_saved(found, table.header)
        else:
            columns = mappings.automatic(site, target, table.header, source)
        unmapped = [h for h, c in zip(table.header, columns, strict=False) if not c]
        if unmapped:
            click.echo(f"Columns left out: {', '.join(unmapped)}")
        options = run.Options(source=source, locale=locale, timezone=timezone,
                              duplicates=duplicates, match_on=match_on)
        bar = click.progressbar(length=0, label="Importing", file=sys.stderr)
        bar.__enter__()

        def progress(done, total):
            bar.length = total or done
            bar.update(done - bar.pos)

        if dry_run:
            summary = run.dry_run(site, user, module, file, columns, options, progress)
        else:
            with tempfile.NamedTemporaryFile(dir=site.folder, suffix=file.suffix,
                                             delete=False) as copy:
                shutil.copyfileobj(file.open("rb"), copy)
            session_id = run.start(site, user, module, Path(copy.name), file.name, columns,
                                   options, queue=False)
            summary = run.run_session(site, session_id, progress)
        bar.__exit__(None, None, None)
    except (CrbmError, NotFoundError) as exc:
        click.secho(f"Error: {exc}", fg="red", err=True)
        sys.exit(1)
    finally:
        site.close()
    verb = "would be" if dry_run else "were"
    click.echo(f"{summary.processed} rows: {summary.created} {verb} created, "
               f"{summary.updated} {verb} updated, {summary.skipped} {verb} skipped.")
    if dry_run:
        for line_no, why in summary.skipped_rows[:SHOWN_SKIPS]:
            click.echo(f"  line {line_no}: {run.reason_text(why)}")
    else:
        from core.apps.imports import manage
        from core.kernel.records import SYSTEM_USER
        site = open_site(ctx)
        try:
            for row in manage.skipped(site, SYSTEM_USER, session_id)[:SHOWN_SKIPS]:
                click.echo(f"  line {row['line_no']}: {run.reason_text(row['reason'])}")
        finally:
            site.close()
        click.echo(f"Import session {session_id} (Administration → Manage imported data).")
