"""Administration: webhook subscriptions and their delivery log (administrators only).

/admin/webhooks lists the subscriptions with their last delivery; a subscription's page
shows its secret (to set up the receiver), edits it, and lists its deliveries with a
"Retry now" button on those that failed. core.apps.webhooks.webhooks does the work; bad input
re-renders the form with the errors at the fields (422) and stores nothing.
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from core.apps.admin import access_admin
from core.apps.admin.web import _admin_only, _checked, _redirect, _render, _site
from core.apps.webhooks import webhooks
from core.kernel.errors import N_, Message, ValidationError
from core.web.pages import page
from core.web.templating import flash

EVENT_LABELS = {"created": N_("Created"), "updated": N_("Updated"), "deleted": N_("Deleted")}
STATUS_LABELS = {"pending": N_("Waiting"), "sending": N_("Sending"),
                 "delivered": N_("Delivered"), "failed": N_("Failed")}
assert set(EVENT_LABELS) == set(webhooks.EVENTS)
LOG_SIZE = 100


def _values(form) -> dict:
    return {"url": str(form.get("url", "")).strip(), "module": str(form.get("module", "")),
            "events": [str(e) for e in form.getlist("events")],
            "fields": str(form.get("fields", "")), "user_id": str(form.get("user_id", "")),
            "active": _checked(form, "active")}


def _form_context(site, values: dict, errors: dict) -> dict:
    """What the subscription form (new and edit) shows."""
    modules = sorted(site.registry.modules.values(), key=lambda m: str(m.label).lower())
    people = [u for u in access_admin.user_choices(site) if u["active"]]
    fields = values.get("fields")
    shown = {**values, "fields": " ".join(fields) if isinstance(fields, list) else fields or ""}
    return {"values": shown, "errors": errors, "modules": modules, "people": people,
            "events": webhooks.EVENTS, "event_labels": EVENT_LABELS}


@page()
def subscription_list(request: Request, form):
    _admin_only(request)
    site = _site(request)
    return _render(request, "admin_webhooks.html", rows=webhooks.subscriptions(site),
                   site_modules=site.registry.modules, event_labels=EVENT_LABELS,
                   status_labels=STATUS_LABELS)


@page()
def subscription_new(request: Request, form):
    me = _admin_only(request)
    site = _site(request)
    if form is None:
        values = {"events": list(webhooks.EVENTS), "user_id": me.id, "active": True}
        return _render(request, "admin_webhooks_new.html", **_form_context(site, values, {}))
    values = _values(form)
    try:
        created = webhooks.subscribe(site, me, values["url"], values["module"],
                                     values["events"], values["fields"],
                                     active=values["active"], owner_id=values["user_id"])
    except ValidationError as exc:
        return _render(request, "admin_webhooks_new.html", status=422,
                       **_form_context(site, values, exc.errors))
    flash(request, N_("The subscription was created. Give its secret to the receiver."))
    return _redirect(f"/admin/webhooks/{created['id']}")


def _detail(request: Request, webhook_id: str, status: int = 200, values=None, errors=None):
    site = _site(request)
    sub = webhooks.get_subscription(site, webhook_id)
    return _render(request, "admin_webhooks_detail.html", status=status, sub=sub,
                   log=webhooks.deliveries(site, webhook_id, LOG_SIZE), log_size=LOG_SIZE,
                   status_labels=STATUS_LABELS,
                   **_form_context(site, values or sub, errors or {}))


@page()
def subscription_detail(request: Request, form):
    _admin_only(request)
    return _detail(request, request.path_params["id"])


@page()
def subscription_edit(request: Request, form):
    me = _admin_only(request)
    webhook_id, values = request.path_params["id"], _values(form)
    try:
        webhooks.update_subscription(_site(request), me, webhook_id, values)
    except ValidationError as exc:
        return _detail(request, webhook_id, status=422, values=values, errors=exc.errors)
    flash(request, N_("The subscription was saved."))
    return _redirect(f"/admin/webhooks/{webhook_id}")


@page()
def subscription_secret(request: Request, form):
    _admin_only(request)
    webhook_id = request.path_params["id"]
    webhooks.new_secret(_site(request), webhook_id)
    flash(request, N_("The subscription has a new secret; the old one no longer verifies."))
    return _redirect(f"/admin/webhooks/{webhook_id}")


@page()
def subscription_delete(request: Request, form):
    _admin_only(request)
    site, webhook_id = _site(request), request.path_params["id"]
    sub = webhooks.get_subscription(site, webhook_id)
    webhooks.delete_subscription(site, webhook_id)
    flash(request, Message(N_("The subscription to %(url)s was deleted."), url=sub["url"]))
    return _redirect("/admin/webhooks")


@page()
def delivery_retry(request: Request, form):
    _admin_only(request)
    webhook_id = request.path_params["id"]
    if webhooks.retry(_site(request), request.path_params["delivery"], webhook_id):
        flash(request, N_("The delivery will be sent again within a few seconds."))
    else:
        flash(request, N_("That delivery was already sent."))
    return _redirect(f"/admin/webhooks/{webhook_id}#log")


routes = [
    Route("/admin/webhooks", subscription_list),
    Route("/admin/webhooks/new", subscription_new, methods=["GET", "POST"]),
    Route("/admin/webhooks/{id}", subscription_detail),
    Route("/admin/webhooks/{id}/edit", subscription_edit, methods=["POST"]),
    Route("/admin/webhooks/{id}/secret", subscription_secret, methods=["POST"]),
    Route("/admin/webhooks/{id}/delete", subscription_delete, methods=["POST"]),
    Route("/admin/webhooks/{id}/deliveries/{delivery}/retry", delivery_retry,
          methods=["POST"]),
]
