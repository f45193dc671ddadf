"""The site's case settings (implementation guide §7.1.1, section 2 "Cases"), typed, with
their defaults. Stored as the site setting ``cases`` (JSON); ``case_settings(site)`` never
raises (a missing or unusable value falls back to its default); ``clean(form, user_ids)``
checks what Admin → Case settings posts — the JSON to store and the problems by field,
nothing saved when there is one.

- ``queue_user_id``: new cases with no assigned user are assigned to this user (empty: off).
- ``auto_close_status`` / ``auto_close_days``: a case that has been in that status (Pending
  by default) for that many days is closed as "Closed - Expired" by the task
  ``cases.auto_close`` (0 days: off). ``auto_close_warn_days``: that many days into the
  wait (fewer than ``auto_close_days``), the contact is mailed a warning that the case will
  close (1CRM's "Warn When No Activity"; 0: no warning).
- ``subject_pattern``: how a case is named in mail subjects, ``nnnn`` standing for its
  number ("Case ID#: nnnn", 1CRM's ``case_email_subject``). An incoming subject carrying
  it anywhere files the message on that case (glue_emails.py), replies from a case carry it.
- ``notify_contacts``: the case's contact is mailed when the case is created or its status
  changes (the assigned user is always told).
- ``surveys``: closing a case mails its contact a rating link (surveys.py).
- ``work_order_terms``: the standard terms printed at the bottom of a work order.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from core.kernel.errors import N_, Message

SETTING = "cases"
PLACEHOLDER = "nnnn"
CLOSED = ("closed", "closed_expired", "rejected", "duplicate")
EXPIRED = "closed_expired"
DEFAULT_TERMS = (
    "The work described above was carried out at the customer's request. Parts are "
    "guaranteed for 90 days and labour for 30 days from the date of service. Payment is due "
    "within 30 days of the invoice. The customer confirms by signing that the work was done "
    "to their satisfaction and that the equipment was returned in working order.")


@dataclass(frozen=True)
class CaseSettings:
    queue_user_id: str = ""
    auto_close_status: str = "pending"
    auto_close_days: int = 0
    auto_close_warn_days: int = 0
    subject_pattern: str = "Case ID#: nnnn"
    notify_contacts: bool = False
    surveys: bool = False
    work_order_terms: str = DEFAULT_TERMS

    def to_json(self) -> dict:
        return asdict(self)

    def subject_for(self, number: str) -> str:
        """The pattern with the case's number: "Case ID#: 1001"."""
        return self.subject_pattern.replace(PLACEHOLDER, str(number))

    def subject_regex(self) -> re.Pattern:
        """What finds the pattern anywhere in a subject (case-insensitive, any spacing),
        the number in group 1."""
        head, _, tail = self.subject_pattern.partition(PLACEHOLDER)
        words = [r"\s*".join(re.escape(w) for w in part.split()) for part in (head, tail)]
        joiner = [r"\s*" if head[-1:].isspace() or not head else "",
                  r"\s*" if tail[:1].isspace() else ""]
        return re.compile(words[0] + joiner[0] + r"([A-Za-z0-9][\w\-/]*?)" + joiner[1] +
                          words[1] + (r"(?![\w\-/])" if not tail.strip() else ""),
                          re.IGNORECASE)


def _number(value, low: int, high: int) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    return value if ok else None


STATUSES = ("new", "assigned", "in_progress", "pending")


def case_settings(site) -> CaseSettings:
    stored = site.settings.get(SETTING)
    stored = stored if isinstance(stored, dict) else {}
    values: dict = {}
    for name in ("notify_contacts", "surveys"):
        if isinstance(stored.get(name), bool):
            values[name] = stored[name]
    for name in ("auto_close_days", "auto_close_warn_days"):
        if _number(stored.get(name), 0, 3650) is not None:
            values[name] = stored[name]
    if stored.get("auto_close_status") in STATUSES:
        values["auto_close_status"] = stored["auto_close_status"]
    for name in ("queue_user_id", "work_order_terms"):
        if isinstance(stored.get(name), str):
            values[name] = stored[name]
    pattern = stored.get("subject_pattern")
    if isinstance(pattern, str) and pattern.count(PLACEHOLDER) == 1 and \
            pattern.replace(PLACEHOLDER, "").strip():
        values["subject_pattern"] = pattern
    return CaseSettings(**values)


def clean(form, user_ids) -> tuple[dict, dict[str, Message]]:
    """The admin page's post as the JSON to store, and the problems keyed by field.
    ``user_ids``: the active users a case may be queued to."""
    errors: dict[str, Message] = {}
    out: dict = {name: bool(form.get(name)) for name in ("notify_contacts", "surveys")}
    queue = str(form.get("queue_user_id") or "").strip()
    if queue and queue not in user_ids:
        errors["queue_user_id"] = Message(N_("Choose an active user."))
    out["queue_user_id"] = queue
    status = str(form.get("auto_close_status") or "")
    if status not in STATUSES:
        errors["auto_close_status"] = Message(N_("Choose a status of an open case."))
    out["auto_close_status"] = status
    for name in ("auto_close_days", "auto_close_warn_days"):
        text = str(form.get(name) or "0").strip()
        days = int(text) if text.isdigit() else None
        if days is None or not 0 <= days <= 3650:
            errors[name] = Message(N_("%(value)s is not a whole number from %(low)s to "
                                      "%(high)s"), value=repr(text), low=0, high=3650)
        out[name] = days
    warn, close = out["auto_close_warn_days"], out["auto_close_days"]
    if warn and close is not None and "auto_close_warn_days" not in errors and \
            not (close and warn < close):
        errors["auto_close_warn_days"] = Message(N_("Warn fewer days after than the case "
                                                    "closes (%(days)s)."), days=close or 0)
    pattern = " ".join(str(form.get("subject_pattern") or "").split())
    if pattern.count(PLACEHOLDER) != 1 or not pattern.replace(PLACEHOLDER, "").strip() \
            or len(pattern) > 100:
        errors["subject_pattern"] = Message(N_("Write the pattern with nnnn once where the case "
                                               "number goes, and some text around it, such as "
                                               "Case ID#: nnnn."))
    out["subject_pattern"] = pattern
    out["work_order_terms"] = str(form.get("work_order_terms") or "").strip()[:4000]
    return out, errors
