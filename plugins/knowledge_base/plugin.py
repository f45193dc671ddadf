"""Knowledge base: articles in a tree of categories (user guide: "A Knowledge Base module
allows ... Articles can be marked for public access via the Portal, or not"; the portal
guide's "Customer Help KnowledgeBase": topics and articles, browsed by category).

Contract:

- **Articles** (kb_articles): title, category, status (draft, published, archived), the
  public/internal flag ``portal``, keywords, summary, author (the assigned user) and a body
  of HTML. The body is an ``html`` field: sanitized on the way in by nh3 on every path
  (form, API, import), so no ``<script>``, no ``on*`` attribute and no ``javascript:`` URL
  is ever stored, nor shown.
- **Versions** (kb_article_versions): every save that changes an article's title or body
  keeps the title and body it replaces as a version, numbered within the article
  (``version_number`` on the article is the current one's number), in the save's own
  transaction — one INSERT for a whole batch (a mass import included). Versions are made
  by this plugin only and never changed; "Restore this version" (``web.py``) saves the old
  text as the article's, which keeps the current one as a version in turn.
- **Categories** (kb_categories) form a tree: a category whose parent would be itself or
  one of its descendants is refused, naming the field (one recursive query per save).
- **Images** (``images.py``): uploaded into an article (raster images only, checked by
  decoding them), appended to its body, served only to users who may see the article.
- **Browse** (``web.py``): ``/kb``, the category tree with each category's count of the
  articles the reader may see, and a category's articles.

The plugin requires nothing but the kernel; "convert case to article" and full-text
search come from the plugins that bring cases and search.
"""
from __future__ import annotations

from core.kernel.errors import N_, Message, ValidationError
from core.kernel.hookspecs import for_modules, hookimpl
from core.kernel.hooktypes import NavEntry

__version__ = "0.1.0"

ARTICLES, VERSIONS, CATEGORIES = "kb_articles", "kb_article_versions", "kb_categories"
KEPT = "knowledge_base.kept_versions"  # connection.info: the versions this write replaces


@hookimpl(specname="crbm_before_save")
@for_modules(ARTICLES)
def articles_number_their_versions(site, module, batch, user, connection):
    kept = connection.info[KEPT] = []  # a rolled-back write's leftovers go
    for change in batch:
        if change.is_new:
            change.record["version_number"] = 1
            continue
        old = {name: change.changes[name][0] for name in ("name", "body")
               if name in change.changes}
        previous = change.changes.get("version_number", (change.record.get("version_number"),))[0]
        change.record["version_number"] = previous  # only a new text moves it
        if not old:
            continue
        kept.append({"name": old.get("name", change.record["name"]),
                     "body": old.get("body", change.record.get("body")),
                     "article_id": change.record["id"],
                     "version_number": previous or 1, "saved_by": user.id})
        change.record["version_number"] = (previous or 1) + 1


@hookimpl(specname="crbm_after_save")
@for_modules(ARTICLES)
def articles_keep_their_versions(site, module, batch, user, connection):
    kept = connection.info.pop(KEPT, [])
    if kept:
        from core.kernel.records import SYSTEM_USER

        site.records.create_many(VERSIONS, kept, SYSTEM_USER, connection=connection)


@hookimpl(specname="crbm_before_save")
@for_modules(VERSIONS)
def versions_are_made_by_articles_only(site, module, batch, user):
    from core.kernel.records import SYSTEM_USER

    if getattr(user, "id", None) != SYSTEM_USER.id:
        raise ValidationError({"body": Message(N_(
            "Versions are kept by saving the article; they are not changed."))})


@hookimpl(specname="crbm_before_save")
@for_modules(CATEGORIES)
def categories_form_a_tree(site, module, batch, connection):
    """A category's parent may not be itself nor one of its descendants."""
    import sqlalchemy as sa

    moved = [c for c in batch if not c.is_new and "parent_id" in c.changes
             and c.record.get("parent_id")]
    if not moved:
        return
    table = site.records.table(module)
    ids = [str(c.record["id"]) for c in moved]
    below = sa.select(table.c.id.label("id"), table.c.id.label("top")).where(
        table.c.id.in_(ids)).cte("below", recursive=True)
    below = below.union(sa.select(table.c.id, below.c.top).where(
        table.c.parent_id == below.c.id))
    descendants: dict[str, set[str]] = {}
    for row in connection.execute(sa.select(below.c.id, below.c.top)):
        descendants.setdefault(str(row.top), set()).add(str(row.id))
    errors = {}
    for index, change in enumerate(moved):
        if str(change.record["parent_id"]) in descendants.get(str(change.record["id"]), ()):
            key = "parent_id" if len(batch) == 1 else f"row {index + 1}: parent_id"
            errors[key] = Message(N_("A category cannot be inside itself or one of its "
                                     "subcategories."))
    if errors:
        raise ValidationError(errors)


@hookimpl
def crbm_tables(metadata):
    from plugins.knowledge_base import images

    images.tables(metadata)


@hookimpl
def crbm_file_references(site):
    from plugins.knowledge_base import images

    return [(images.TABLE, "file_key")]  # Maintenance keeps the articles' images


@hookimpl
def crbm_web_routes(site):
    from plugins.knowledge_base import images, web

    return [*web.routes, *images.routes]


@hookimpl
def crbm_jinja_environment(site, env):
    from plugins.knowledge_base import images

    images.jinja(site, env)


@hookimpl
@for_modules(VERSIONS)
def crbm_record_actions(site, module, record, user):
    from core.web.actions import Action

    return [Action(N_("Restore this version"), f"/kb/versions/{record['id']}/restore",
                   post=True, confirm=N_("Make this version the article's text again?"))]


@hookimpl
def crbm_navigation(site, user):
    articles = site.registry.modules.get(ARTICLES)
    if articles is None or not site.access.can(user, articles, "list"):
        return []
    return [NavEntry(N_("Knowledge base"), "/kb", icon="book-open")]


@hookimpl
def crbm_demo_data(site, user, size, rng, progress):
    from plugins.knowledge_base import demo

    demo.load(site, user)
