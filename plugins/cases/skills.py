"""Service skills (implementation guide §7.3): "Find technician" on a case.

A case lists the skills it needs, each at a minimum level (``case_skills``, the case's
"Required skills" subpanel); users are rated per skill (``user_skills``, kept by
administrators, as the skill list ``service_skills`` is). ``/cases/<id>/technicians``
lists the active users rated at least that level in **every** required skill, best total
first — one statement (a GROUP BY over the ratings, HAVING all of them) whatever the number
of users — with a button to assign the case to one of them (the case's edit right; a
normal update, so its hooks and notifications follow). The case is read through the
reader's access (404 otherwise); its required skills through the list predicate.
"""
from __future__ import annotations

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.kernel import users
from core.kernel.errors import N_, Message, NotFoundError
from core.kernel.records import Query
from core.web.pages import page
from core.web.templating import flash

MODULE = "cases"


def required(site, user, case_id: str) -> list[dict]:
    return site.records.list("case_skills", user, Query(
        filters={"case_id": case_id}, limit=None, labels=True,
        fields=["id", "skill_id", "level"]))


def technicians(site, needs: list[tuple[str, str]]) -> list[dict]:
    """Active users rated >= the level in every (skill id, level) of ``needs``: id, user
    name, total of their levels in those skills; best first."""
    if not needs:
        return []
    ratings = site.records.table(site.registry.module("user_skills"))
    people = users.users_table(site)
    wanted = sa.or_(*(sa.and_(ratings.c.skill_id == skill, ratings.c.level >= level)
                      for skill, level in needs))
    total = sa.func.sum(sa.cast(ratings.c.level, sa.Integer))
    stmt = (sa.select(people.c.id, people.c.username, total.label("total"))
            .join(ratings, ratings.c.user_id == people.c.id)
            .where(ratings.c.deleted.is_(False), people.c.active.is_(True), wanted)
            .group_by(people.c.id, people.c.username)
            .having(sa.func.count(sa.distinct(ratings.c.skill_id)) == len({s for s, _ in needs}))
            .order_by(total.desc(), people.c.username))
    with site.engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def _case(site, user, case_id: str, action: str = "view") -> dict:
    try:
        return site.records.get(MODULE, case_id, user, action=action)
    except NotFoundError:
        raise HTTPException(404, Message(N_("There is no such record."))) from None


@page()
def technicians_page(request, form):
    site, user = request.app.state.site, request.state.user
    case_id = request.path_params["case_id"]
    if form is not None:  # assign the case to one of them
        case = _case(site, user, case_id, "edit")
        chosen = str(form.get("user_id") or "")
        needs = [(s["skill_id"], s["level"]) for s in required(site, user, case_id)]
        if chosen not in {t["id"] for t in technicians(site, needs)}:
            raise HTTPException(400, Message(N_("Choose one of the technicians listed.")))
        site.records.update(MODULE, case_id, {"assigned_user_id": chosen}, user, base=case)
        flash(request, N_("The case was assigned."), "info")
        return RedirectResponse(f"/m/{MODULE}/{case_id}", 303)
    case = _case(site, user, case_id)
    skills = required(site, user, case_id)
    found = technicians(site, [(s["skill_id"], s["level"]) for s in skills])
    return request.app.state.templates.render(
        request, "case_technicians.html", case=case, skills=skills, found=found)


routes = [Route("/cases/{case_id}/technicians", technicians_page, methods=["GET", "POST"])]
