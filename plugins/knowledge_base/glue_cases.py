"""Convert a case to an article (registered only while the cases plugin is active too): the
case's "Create article" button makes a draft internal article of the case's subject, its
description as the problem and its resolution as the answer — the way a support team turns
a solved case into knowledge — and opens it for editing.

``POST /kb/from-case/<case id>``: a user who may see the case and create articles (else 404
/ 403); the text is escaped into the article's HTML (the html field sanitizes it again).
One case makes one article per click; the article says which case it came from.
"""
from __future__ import annotations

import html

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.kernel.errors import N_, Message
from core.kernel.hookspecs import for_modules, hookimpl
from core.web.pages import page
from plugins.knowledge_base.plugin import ARTICLES

CASES = "cases"
PROBLEM, SOLUTION, UNTITLED = N_("Problem"), N_("Solution"), N_("Untitled")
FROM_CASE = N_("From case %(number)s")


def article_from_case(case: dict, gettext) -> dict:
    """The draft article's values for a case (its subject, problem and answer)."""
    def paragraphs(text: str | None) -> str:
        return "".join(f"<p>{html.escape(p)}</p>" for p in (text or "").split("\n\n")
                       if p.strip()) or "<p></p>"

    return {"name": (case.get("name") or "")[:255] or gettext(UNTITLED),
            "status": "draft", "portal": False,
            "summary": gettext(FROM_CASE) % {"number": case.get("number")},
            "body": f"<h2>{html.escape(gettext(PROBLEM))}</h2>{paragraphs(case.get('description'))}"
                    f"<h2>{html.escape(gettext(SOLUTION))}</h2>{paragraphs(case.get('resolution'))}"}


@page()
def convert_view(request: Request, form):
    from core.kernel import i18n
    from core.web.templating import flash

    site, user = request.app.state.site, request.state.user
    case = site.records.get(CASES, request.path_params["case_id"], user)  # 404 if not theirs
    if not site.access.can(user, site.registry.module(ARTICLES), "edit"):
        raise HTTPException(403, Message(N_("You may not create articles.")))
    article = site.records.create(ARTICLES, article_from_case(case, i18n.active().gettext), user)
    flash(request, Message(N_("Article created from case %(number)s: check it and publish it."),
                           number=case.get("number")), "info")
    return RedirectResponse(f"/m/{ARTICLES}/{article['id']}/edit", status_code=303)


@hookimpl(specname="crbm_web_routes")
def kb_case_routes(site):
    return [Route("/kb/from-case/{case_id}", convert_view, methods=["POST"])]


@hookimpl(specname="crbm_record_actions")
@for_modules(CASES)
def kb_case_actions(site, module, record, user):
    from core.web.actions import Action

    if not site.access.can(user, site.registry.module(ARTICLES), "edit"):
        return []
    return [Action(N_("Create article"), f"/kb/from-case/{record['id']}", post=True)]
