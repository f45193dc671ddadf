"""What a web form is and how a submission is checked: the form's design read from its
record (``FormDesign``), the checks made when an administrator saves one (``problems``),
the signed timestamp (``token``/``token_problem``), the embeddable HTML (``snippet``) and
turning a posted form into the record's values (``submission``).
"""
from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from markupsafe import Markup, escape

from core.kernel.errors import N_, Message

MODULE = "web_forms"
HONEYPOT = "website_url"  # a field people never see: whatever fills it is a robot
TOKEN = "_ts"  # the signed timestamp's field
MIN_SECONDS = 2  # a person needs longer than this to fill in a form
MAX_SECONDS = 86_400  # a page left open longer than a day must be reloaded
# fields no visitor may set (they are the system's or the assignee's)
NOT_OFFERED = {"assigned_user_id", "created_by", "modified_by", "created_at", "modified_at",
               "id", "deleted", "version"}


def clock() -> float:
    """Wall-clock seconds (tests move it)."""
    return time.time()


def _names(text: str | None) -> list[str]:
    return list(dict.fromkeys(n.strip() for n in str(text or "").replace(",", "\n")
                              .splitlines() if n.strip()))


@dataclass(frozen=True)
class FormDesign:
    id: str
    name: str
    active: bool
    target: str
    fields: tuple[str, ...]
    required: frozenset[str]
    thank_you_url: str | None
    assign_to_id: str | None
    allowed_origin: str | None
    require_token: bool
    created_by: str | None

    @classmethod
    def of(cls, record: dict) -> FormDesign:
        return cls(record["id"], record.get("name") or "", bool(record.get("active")),
                   record.get("target_module") or "", tuple(_names(record.get("form_fields"))),
                   frozenset(_names(record.get("required_fields"))),
                   record.get("thank_you_url") or None, record.get("assign_to_id") or None,
                   origin_of(record.get("allowed_origin")) if record.get("allowed_origin")
                   else None, bool(record.get("require_token")), record.get("created_by"))


def origin_of(text: str | None) -> str | None:
    """``scheme://host[:port]`` of a URL, lower case, as browsers send ``Origin``; None
    when it is not an http(s) URL."""
    parts = urlsplit(str(text or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}".lower()


def offered(module) -> list:
    """The target module's fields a form may ask for: stored values a person types or
    picks (no system field, no computed one, no sub-field of another, no link)."""
    return [f for f in module.fields.values() if f.stored and not f.system and not f.group
            and not f.type.derived and not f.type.is_link and f.name not in NOT_OFFERED
            and not f.spec.get("read_only")]


def problems(site, record: dict) -> dict[str, Message]:
    """What is wrong with a web form's design (field -> message), against the target
    module as the site has it now."""
    errors: dict[str, Message] = {}
    target = site.registry.modules.get(record.get("target_module") or "")
    if target is None:
        errors["target_module"] = Message(N_("This site has no %(module)s module."),
                                          module=record.get("target_module"))
        return errors
    usable = {f.name: f for f in offered(target)}
    chosen = _names(record.get("form_fields"))
    unknown = [n for n in chosen if n not in usable]
    if unknown:
        errors["form_fields"] = Message(N_("%(module)s have no field a form can ask for "
                                           "named %(names)s"), module=target.label,
                                        names=", ".join(unknown))
    required = _names(record.get("required_fields"))
    missing = [n for n in required if n not in chosen]
    if missing:
        errors["required_fields"] = Message(N_("Not among the form's fields: %(names)s"),
                                            names=", ".join(missing))
    needed = [f.name for f in usable.values() if f.spec.get("required") and
              "default" not in f.spec and f.name not in required]
    if needed and "required_fields" not in errors:
        errors["required_fields"] = Message(N_("%(module)s cannot be saved without these: "
                                               "%(names)s (add them, required)"),
                                            module=target.label, names=", ".join(needed))
    if record.get("allowed_origin") and origin_of(record["allowed_origin"]) is None:
        errors["allowed_origin"] = Message(N_("Give the web site as https://www.example.com"))
    if record.get("thank_you_url") and origin_of(record["thank_you_url"]) is None:
        errors["thank_you_url"] = Message(N_("Give an http:// or https:// address"))
    return errors


# -- the signed timestamp ----------------------------------------------------------------

def _signature(site, form_id: str, stamp: int) -> str:
    key = str(site.config["secret_key"]).encode()
    return hmac.new(key, f"web_form:{form_id}:{stamp}".encode(), hashlib.sha256).hexdigest()


def token(site, form_id: str, at: float | None = None) -> str:
    """``<unix seconds>.<HMAC-SHA256 of the form and the time with the site's secret>``."""
    stamp = int(clock() if at is None else at)
    return f"{stamp}.{_signature(site, form_id, stamp)}"


def token_problem(site, form_id: str, text: str | None) -> Message | None:
    """Why a submission's timestamp is refused (None: it is fine)."""
    stamp, _, signature = str(text or "").partition(".")
    if not stamp.isdigit() or not hmac.compare_digest(
            signature, _signature(site, form_id, int(stamp))):
        return Message(N_("The form could not be checked. Reload the page and send it again."))
    age = clock() - int(stamp)
    if age < MIN_SECONDS:
        return Message(N_("The form was sent too quickly. Wait a moment and send it again."))
    if age > MAX_SECONDS:
        return Message(N_("The form has expired. Reload the page and send it again."))
    return None


# -- the embeddable form ---------------------------------------------------------------------

def snippet(site, design: FormDesign, action: str, fmt) -> Markup:
    """The HTML to paste into a web page: a plain form posting to ``action``, each field
    labelled (with the labels in ``fmt``'s language), the honeypot hidden from people, and
    — when the form requires it — a small script fetching a fresh signed timestamp."""
    module = site.registry.module(design.target)
    lines = [(f'<form method="post" action="{escape(action)}" accept-charset="utf-8" '
              f'class="crbm-web-form">')]
    for name in design.fields:
        f = module.fields[name]
        star = " *" if name in design.required else ""
        req = " required" if name in design.required else ""
        label = escape(str(f.label)) + star
        if f.type.has_options:
            options = "".join(f'<option value="{escape(v)}">{escape(label_)}</option>'
                              for v, label_ in site.registry.choices(f))
            control = f'<select name="{name}"{req}><option value=""></option>{options}</select>'
        elif f.type.name in ("textarea", "html"):
            control = f'<textarea name="{name}" rows="4"{req}></textarea>'
        elif f.type.name == "checkbox":
            control = f'<input type="checkbox" name="{name}" value="1">'
        else:
            kind = {"email": "email", "phone": "tel", "url": "url", "date": "date",
                    "integer": "number", "decimal": "number"}.get(f.type.name, "text")
            control = f'<input type="{kind}" name="{name}"{req}>'
        lines.append(f"  <p><label>{label}<br>{control}</label></p>")
    # (the texts outside the f-strings: message extraction does not read inside them)
    leave_empty, send = escape(fmt.gettext(N_("Leave this empty"))), escape(fmt.gettext(N_("Send")))
    lines.append(f'  <p style="position:absolute;left:-10000px" aria-hidden="true"><label>'
                 f'{leave_empty} <input name="{HONEYPOT}" '
                 f'tabindex="-1" autocomplete="off"></label></p>')
    if design.require_token:
        lines.append(f'  <input type="hidden" name="{TOKEN}" value="">')
    lines.append(f'  <p><button type="submit">{send}</button></p>')
    lines.append("</form>")
    if design.require_token:  # a fresh timestamp when the page is shown
        lines.append("<script>(function(f){fetch(f.action+'/token')"
                     ".then(function(r){return r.json()})"
                     ".then(function(d){f.elements['" + TOKEN + "'].value=d.token})})"
                     "(document.currentScript.previousElementSibling);</script>")
    return Markup("\n".join(lines))


def submission(module, design: FormDesign, posted) -> tuple[dict, list[str]]:
    """The record's values from a posted form (only the form's fields; blank ones left
    out) and the labels of the required fields left blank."""
    values, missing = {}, []
    for name in design.fields:
        text = str(posted.get(name, "") or "").strip()
        if text:
            values[name] = text
        elif name in design.required:
            missing.append(str(module.fields[name].label))
    return values, missing
