"""The demo site's templates: each saves (so each passes the check at save) and renders for
a demo record of its module."""
import cli
from core.kernel.records import Query
from plugins.email_templates import render


def test_the_demo_templates_render_for_demo_records(site, admin):
    cli.load_demo(site, admin, 3, seed=1)
    templates = site.records.list("email_templates", admin)
    assert sorted(t["name"] for t in templates) == [
        "Account check-in reminder", "Meeting follow-up", "Meeting follow-up (français)",
        "Quote sent"]
    for made in templates:
        if made["variant_of_id"]:
            continue
        [record] = site.records.list(made["for_module"], admin,
                                     Query(limit=1))
        for language in ("en", "fr"):
            mail = render.render(site, made["id"], made["for_module"], record["id"],
                                 user=admin, language=language)
            assert mail.subject and mail.text.strip()
