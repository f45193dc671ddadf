"""The site's email settings (implementation guide §7.4.1), typed, with their defaults.

Stored as the site setting ``email`` (JSON); read with ``email_settings(site)``, which never
raises: a missing or unusable value falls back to its default. ``clean(form)`` checks what
the admin page (Admin → Email settings) posts: the JSON to store and the problems by field,
nothing saved when there is one.

- ``link_account`` (on): an email matched to a contact is linked to the contact's account too.
- ``ignore_domains``: addresses at these domains are never matched (your own company's).
- ``fetch_batch``: at most this many messages per mailbox and run (a mailbox may say less).
- ``keep_raw`` (off): keep each received message as it came (debugging; it costs space).
- ``send_batch``: at most this many queued emails sent per run of the outbound queue.
- ``tracking`` (off): sent email tracking — a one-pixel image in HTML mail records opens.
- ``auto_bcc``: an address that gets a blind copy of every email users send.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from core.kernel.errors import N_, Message

SETTING = "email"
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class EmailSettings:
    link_account: bool = True
    ignore_domains: tuple[str, ...] = ()
    fetch_batch: int = 200
    keep_raw: bool = False
    send_batch: int = 50
    tracking: bool = False
    auto_bcc: str = ""

    def to_json(self) -> dict:
        out = asdict(self)
        out["ignore_domains"] = list(self.ignore_domains)
        return out


def _number(value, low: int, high: int) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    return value if ok else None


_LIMITS = {"fetch_batch": (1, 5000), "send_batch": (1, 5000)}


def email_settings(site) -> EmailSettings:
    stored = site.settings.get(SETTING)
    stored = stored if isinstance(stored, dict) else {}
    values: dict = {}
    for name in ("link_account", "keep_raw", "tracking"):
        if isinstance(stored.get(name), bool):
            values[name] = stored[name]
    for name, (low, high) in _LIMITS.items():
        if _number(stored.get(name), low, high) is not None:
            values[name] = stored[name]
    domains = stored.get("ignore_domains")
    if isinstance(domains, list):
        values["ignore_domains"] = tuple(d for d in domains
                                         if isinstance(d, str) and _DOMAIN.match(d))
    bcc = stored.get("auto_bcc")
    if isinstance(bcc, str) and (bcc == "" or _ADDRESS.match(bcc)):
        values["auto_bcc"] = bcc
    return EmailSettings(**values)


def clean(form) -> tuple[dict, dict[str, Message]]:
    """The admin page's post as the JSON to store, and the problems keyed by field."""
    errors: dict[str, Message] = {}
    out: dict = {name: bool(form.get(name)) for name in ("link_account", "keep_raw", "tracking")}
    for name, (low, high) in _LIMITS.items():
        text = str(form.get(name) or "").strip()
        number = int(text) if text.isdigit() else None
        if number is None or not low <= number <= high:
            errors[name] = Message(N_("%(value)s is not a whole number from %(low)s to "
                                      "%(high)s"), value=repr(text), low=low, high=high)
        out[name] = number
    domains = [d.strip().lower().lstrip("@") for d in
               re.split(r"[\s,;]+", str(form.get("ignore_domains") or "")) if d.strip()]
    bad = [d for d in domains if not _DOMAIN.match(d)]
    if bad:
        errors["ignore_domains"] = Message(N_("%(value)s is not a domain name such as "
                                              "example.com"), value=repr(bad[0]))
    out["ignore_domains"] = sorted(set(domains))
    bcc = str(form.get("auto_bcc") or "").strip()
    if bcc and not _ADDRESS.match(bcc):
        errors["auto_bcc"] = Message(N_("%(value)s is not an email address"), value=repr(bcc))
    out["auto_bcc"] = bcc
    return out, errors
