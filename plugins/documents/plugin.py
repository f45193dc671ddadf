"""Documents: files with revisions, related to the records of any module that opts in
(user guide: "Document Management" — a title, description, file type, status,
department, keywords, owner, "multiple revisions of the document itself").

Contract:

- **A revision per file.** Whenever a save gives a document a new ``file`` — the create or
  edit form, a file dropped on a record's Documents subpanel, the document page's "Upload a
  new revision" form, an import — ``crbm_before_save`` checks it (``files.check``: the
  site's size limit, programs refused; a refusal names the file, nothing is saved and the
  just-stored file is removed), numbers it (1, 2, 3… per document), copies its name, size,
  sniffed type and extracted text (``file_text``) onto the document, and
  ``crbm_after_save`` writes the ``document_revisions`` record in the same transaction.
  Earlier revisions keep their files: a revision is never changed. A file cannot be taken
  away from a document (an empty file field keeps the latest), and the plugin's fields
  (revision, file name/size/type/text) change only with a new file, whatever a writer says.
- **Related to any module that opts in**: a module opts in with a many-to-many relationship
  to documents (``kind: many_to_many, module: library_documents``) and the ``documents``
  subpanel; this plugin's ``extends/`` does so for accounts, contacts, opportunities and quotes (an
  overlay on a module whose plugin is not active is skipped). Found from the registry
  (``opted_in``), never from a list here.
- **Files served** by ``web.py`` only to a user who may see the document and every record it
  is related to (the same 404 as a missing file otherwise).

The module is ``library_documents`` (labelled "Documents"): the kernel's own word
"documents" names its PDF documents, and the layer test keeps module names out of the
kernel's code.

Why the file is the document's own field rather than an upload page of its own: the
generic form, quick create, import and the drop all give a document a file the same way,
and the revision follows on every path without each one knowing about revisions.
"""
from __future__ import annotations

from core.kernel.errors import N_, Message, ValidationError
from core.kernel.hookspecs import for_modules, hookimpl
from core.kernel.hooktypes import AdminLink

__version__ = "0.1.0"

DOCUMENTS, REVISIONS = "library_documents", "document_revisions"
NEW_REVISIONS = "documents.new_revisions"  # connection.info: ids given a file in this write
OWNED = ("revision", "file_name", "file_size", "file_mime_type", "file_text")


def opted_in(registry) -> list[tuple[object, str]]:
    """(module, relationship) of every module related to documents many-to-many."""
    return [(module, name) for module in registry.modules.values()
            for name, rel in module.relationships.items()
            if rel.get("kind") == "many_to_many" and rel.get("module") == DOCUMENTS]


@hookimpl(specname="crbm_before_save")
@for_modules(DOCUMENTS)
def documents_take_their_file(site, module, batch, connection):
    from core.web import uploads
    from plugins.documents import files

    store = site.folder / "files"
    errors: dict = {}
    connection.info[NEW_REVISIONS] = set()  # a rolled-back write's leftovers go
    taken = _filed(site, connection, [c.record.get("file") for c in batch
                                      if "file" in c.changes and c.record.get("file")])
    for index, change in enumerate(batch):
        record = change.record
        old_file, new_file = change.changes.get("file", (record.get("file"), record.get("file")))
        if "file" in change.changes and not new_file and old_file:
            record["file"] = old_file  # a document keeps its latest file
            new_file = old_file
        if "file" not in change.changes or new_file == old_file or not new_file:
            for name in OWNED:  # only a new file changes them
                if name in change.changes:
                    record[name] = change.changes[name][0]
            continue
        path = uploads.stored_file(store, new_file)
        name = str(new_file).rsplit("/", 1)[-1]
        try:
            if path is None or new_file in taken:  # another document's file is not taken
                path = None
                raise ValidationError({"file": Message(N_("%(file)s is not a stored file."),
                                                       file=name)})
            kind = files.check(site, name, path, path.stat().st_size)
        except ValidationError as exc:
            if path is not None:
                _discard(store, new_file)
            key = "file" if len(batch) == 1 else f"row {index + 1}: file"
            errors[key] = exc.errors["file"]
            continue
        previous = change.changes.get("revision", (record.get("revision"),) * 2)[0]
        record.update({
            "revision": (0 if change.is_new else int(previous or 0)) + 1,
            "file_name": name, "file_size": path.stat().st_size, "file_mime_type": kind,
            "file_text": files.extract(path, kind)})
        connection.info.setdefault(NEW_REVISIONS, set()).add(str(record["id"]))
        if "change_note" not in change.changes and not change.is_new:
            record["change_note"] = None  # the last revision's note is not this one's
    if errors:
        connection.info.pop(NEW_REVISIONS, None)
        raise ValidationError(errors)


def _filed(site, connection, keys: list[str]) -> set[str]:
    """The keys among these already filed as some revision's file (one statement): an
    import naming another document's file key must not make that file its own."""
    if not keys:
        return set()
    import sqlalchemy as sa

    table = site.records.table(site.registry.module(REVISIONS))
    return set(connection.execute(sa.select(table.c.file).where(
        table.c.file.in_(sorted(set(keys))))).scalars())


def _discard(store, key: str) -> None:
    path = (store / key).resolve()
    if store.resolve() in path.parents and path.is_file():
        path.unlink()
        try:
            path.parent.rmdir()
        except OSError:
            pass


@hookimpl(specname="crbm_after_save")
@for_modules(DOCUMENTS)
def documents_keep_revisions(site, module, batch, user, connection):
    made = connection.info.pop(NEW_REVISIONS, set())
    rows = [{"name": c.record["file_name"], "document_id": c.record["id"],
             "revision": c.record["revision"], "file": c.record["file"],
             "file_size": c.record["file_size"], "mime_type": c.record["file_mime_type"],
             "change_note": c.record.get("change_note"), "uploaded_by": user.id}
            for c in batch if str(c.record["id"]) in made]
    if rows:
        from core.kernel.records import SYSTEM_USER

        site.records.create_many(REVISIONS, rows, SYSTEM_USER, connection=connection)


@hookimpl(specname="crbm_before_save")
@for_modules(REVISIONS)
def revisions_are_made_by_documents_only(site, module, batch, user):
    from core.kernel.records import SYSTEM_USER

    if getattr(user, "id", None) != SYSTEM_USER.id:
        raise ValidationError({"file": Message(N_(
            "Revisions are made by uploading a new file to the document; they are not "
            "changed."))})


@hookimpl
def crbm_web_routes(site):
    from plugins.documents import settings_web, web

    return [*web.routes, *settings_web.routes]


@hookimpl
def crbm_jinja_environment(site, env):
    from plugins.documents import web

    web.jinja(site, env)


@hookimpl
def crbm_admin_links(site):
    return [AdminLink(N_("Documents"), "/admin/documents",
                      N_("The largest file a document takes, and the category and status of "
                         "documents made by dropping a file on a record."))]


@hookimpl
def crbm_demo_data(site, user, size, rng, progress):
    from plugins.documents import demo

    demo.load(site, user, rng)
