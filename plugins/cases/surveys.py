"""Case surveys and ratings (implementation guide §7.1.1 "Enable Case Surveys and Ratings";
user guide "Customer Satisfaction Rating & Surveys when customer service case is closed").

Contract:

- When a case is closed ("Closed" or "Closed - Expired", by hand or by auto-close) while
  Admin → Case settings has surveys on and the case has a contact, a row of
  ``cases_surveys`` is written in the save's transaction and the contact is mailed a link
  (mailing.py, after the commit). One survey per case and closing: reopening and closing
  again asks again.
- The link is ``/survey/<survey id>.<signature>``: the signature is an HMAC-SHA256 of the
  survey id under a key derived from the site's ``secret_key`` (site.yaml, never in the
  database), so a link cannot be made up from a case or survey id, and nothing secret is
  stored or carried in the job's payload. A forged or unknown link is a 404 page that
  says the link is not valid; nothing is read or written.
- The page needs no login: 1 to 5 stars and an optional comment. The answer is taken once:
  an UPDATE of the survey row ``WHERE answered_at IS NULL`` (two posts at once: one wins),
  and in the same transaction the case's ``rating`` and ``rating_comment`` are set with
  ``set_derived`` (logged as the system; no save hooks). A link used again says "already
  answered" and changes nothing. A rating out of range is refused on the form.
"""
from __future__ import annotations

import hashlib
import hmac
import uuid

import sqlalchemy as sa
from starlette.routing import Route

from core.kernel.database import ID
from core.kernel.errors import N_, Message
from core.kernel.fields import UTCDateTime
from core.kernel.records import now
from core.web.pages import page

TABLE = "cases_surveys"
SURVEYED = ("closed", "closed_expired")
MODULE = "cases"


def tables(metadata) -> None:
    sa.Table(TABLE, metadata,
             sa.Column("id", ID, primary_key=True),
             sa.Column("case_id", ID, nullable=False, index=True),
             sa.Column("contact_id", ID),
             sa.Column("created_at", UTCDateTime(), nullable=False),
             sa.Column("answered_at", UTCDateTime()),
             sa.Column("rating", sa.SmallInteger),
             sa.Column("comment", sa.Text))


def _key(site) -> bytes:
    return hashlib.sha256(b"crbm: case survey links\0" +
                          str(site.config["secret_key"]).encode()).digest()


def sign(site, survey_id: str) -> str:
    """The token of the survey's link: its id and its signature."""
    mac = hmac.new(_key(site), survey_id.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{survey_id}.{mac}"


def verify(site, token: str) -> str | None:
    """The survey id a token names, when its signature is right; else None."""
    survey_id = str(token or "").partition(".")[0]
    if not survey_id or len(token) > 100:
        return None
    return survey_id if hmac.compare_digest(sign(site, survey_id), token) else None


def link(site, survey_id: str) -> str:
    base = str(site.settings.get("base_url") or "").rstrip("/")
    return f"{base}/survey/{sign(site, survey_id)}"


def create(site, connection, cases: list[dict]) -> list[tuple[str, str]]:
    """A survey for each closed case (one insert); (survey id, case id) of each."""
    if not cases:
        return []
    stamp = now()
    rows = [{"id": str(uuid.uuid4()), "case_id": c["id"], "contact_id": c.get("contact_id"),
             "created_at": stamp} for c in cases]
    connection.execute(site.tables.tables[TABLE].insert(), rows)
    return [(r["id"], r["case_id"]) for r in rows]


def find(site, survey_id: str) -> dict | None:
    table = site.tables.tables[TABLE]
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == survey_id)).mappings().first()
    return dict(row) if row else None


class AlreadyAnswered(Exception):
    pass


def answer(site, survey_id: str, rating: int, comment: str) -> None:
    """Record the answer once (see the module's docstring); AlreadyAnswered otherwise."""
    table = site.tables.tables[TABLE]
    with site.engine.begin() as conn:
        taken = conn.execute(table.update().where(
            table.c.id == survey_id, table.c.answered_at.is_(None)).values(
            answered_at=now(), rating=rating, comment=comment or None)).rowcount
        if taken != 1:
            raise AlreadyAnswered(survey_id)
        case_id = conn.execute(sa.select(table.c.case_id).where(
            table.c.id == survey_id)).scalar_one()
        site.records.set_derived(MODULE, {case_id: {"rating": rating,
                                                    "rating_comment": comment or None}},
                                 connection=conn, reason="survey answered")


def _render(request, status: int = 200, **context):
    response = request.app.state.templates.render(request, "case_survey.html", status=status,
                                                  **context)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@page(public=True)
def survey_page(request, form):
    site = request.app.state.site
    token = request.path_params["token"]
    survey_id = verify(site, token)
    survey = find(site, survey_id) if survey_id else None
    if survey is None or MODULE not in site.registry.modules:
        return _render(request, 404, invalid=True)
    case = _case(site, survey["case_id"])
    if case is None:
        return _render(request, 404, invalid=True)
    if survey["answered_at"] is not None:
        return _render(request, 409 if form is not None else 200, answered=True, case=case)
    if form is None:
        return _render(request, token=token, case=case, errors={}, values={})
    text = str(form.get("rating") or "").strip()
    comment = str(form.get("comment") or "").strip()[:4000]
    if not text.isdigit() or not 1 <= int(text) <= 5:
        return _render(request, 400, token=token, case=case, values={"comment": comment},
                       errors={"rating": Message(N_("Choose from 1 to 5 stars."))})
    try:
        answer(site, survey_id, int(text), comment)
    except AlreadyAnswered:
        return _render(request, 409, answered=True, case=case)
    return _render(request, thanks=True, case=case)


def _case(site, case_id: str) -> dict | None:
    """The case's number and subject (what the customer is asked about), read as the
    system: the signed link is the permission."""
    table = site.records.table(site.registry.module(MODULE))
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table.c.id, table.c.number, table.c.name).where(
            table.c.id == case_id, table.c.deleted.is_(False))).mappings().first()
    return dict(row) if row else None


routes = [Route("/survey/{token}", survey_page, methods=["GET", "POST"])]
