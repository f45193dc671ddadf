"""Administration > Order management (``/admin/orders``): the order settings and the
company details on one page, with links to the tax, shipping, discount and currency lists.

Administrators only. The form is checked as a whole (settings.clean_settings): any problem
re-shows the page with each one beside its field, and nothing is saved — not even an
uploaded logo, which is stored only once everything else is right.
"""
from __future__ import annotations

import logging
from pathlib import Path

from babel import numbers
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse

from core.kernel.errors import N_, Message
from core.kernel.fields import FieldError
from core.web.forms import store_upload
from core.web.pages import page
from core.web.templating import flash
from plugins.line_items import lines
from plugins.pricing import exchange_rates
from plugins.pricing import settings as order_setup

log = logging.getLogger(__name__)

URL = "/admin/orders"
# what a logo file starts with: PNG, JPEG, GIF and WebP (formats every PDF library reads;
# no SVG, which can carry scripts)
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")
SETUP_LISTS = (("tax_rates", N_("Tax rates")), ("tax_codes", N_("Tax codes")),
               ("shipping_providers", N_("Shipping providers")), ("discounts", N_("Discounts")),
               ("currencies", N_("Currencies")))


def _is_image(head: bytes) -> bool:
    return head.startswith(IMAGE_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _logo_upload(form) -> tuple[UploadFile | None, Message | None]:
    upload = form.get("logo")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None, None
    head = upload.file.read(16)
    upload.file.seek(0)
    if not _is_image(head):
        return None, Message(N_("must be a PNG, JPEG, GIF or WebP image"))
    return upload, None


@page()
def admin_orders(request: Request, form):
    user = request.state.user
    if not user.is_admin:
        raise HTTPException(403, Message(N_("Only administrators can change the order "
                                            "settings.")))
    site = request.app.state.site
    stored = site.settings
    company = stored.get(order_setup.COMPANY)
    company = dict(company) if isinstance(company, dict) else {}
    if form is None:
        orders = order_setup.order_settings(site, stored)
        values = {**orders.to_json(), **{k: company.get(k) or "" for k in order_setup.TEXT_LIMITS}}
        values["tax_information"] = orders.tax_information
        values["default_currency"] = lines.default_currency(site)
        rates = exchange_rates.rate_settings(site, stored)
        values.update(exchange_rates_enabled=rates.enabled, exchange_rates_url=rates.url)
        return _render(request, values, company.get("logo"))
    orders, new_company, errors = order_setup.clean_settings(site, form)
    rates, rate_errors = exchange_rates.clean_settings(form)
    errors.update(rate_errors)
    currency = str(form.get("default_currency") or "").strip().upper() \
        if "default_currency" in form else lines.default_currency(site)
    if currency not in numbers.list_currencies():
        errors["default_currency"] = Message(N_("is not an ISO 4217 currency code "
                                                "(USD, EUR, GBP...)"))
    upload, problem = _logo_upload(form)
    if problem:
        errors["logo"] = problem
    old_logo = company.get("logo") or None
    logo = None if form.get("remove_logo") else old_logo
    if upload is not None and not errors:
        try:
            logo = store_upload(upload, site.folder / "files")
        except FieldError as exc:
            errors["logo"] = exc.message
    if errors:
        values = {**orders, **new_company, **{k: str(form.get(k) or "") for k in
                                               ("approval_threshold", "margin_threshold",
                                                "default_currency", "exchange_rates_url")},
                  "exchange_rates_enabled": rates["enabled"]}
        return _render(request, values, old_logo, errors=errors, status=400)
    new_company["logo"] = logo
    site.set_setting(order_setup.ORDERS, orders)
    site.set_setting(order_setup.COMPANY, new_company)
    site.set_setting(exchange_rates.SETTING, rates)
    if currency != lines.default_currency(site):
        site.set_setting(lines.CURRENCY_SETTING, {"default": currency})
        site.rebuild()  # new currency fields start in it: the registry is built with it
    if old_logo and old_logo != logo:
        _forget_file(site, old_logo)
    log.info("order settings and company details changed by %r", user.username)
    flash(request, N_("The order settings were saved."), "info")
    return RedirectResponse(URL, 303)


def _forget_file(site, key: str) -> None:
    """Delete a replaced logo (only inside the site's file store)."""
    path = order_setup.logo_path(site, key)
    if path:
        target = Path(path)
        target.unlink(missing_ok=True)
        try:
            target.parent.rmdir()  # its random-key folder, now empty
        except OSError:
            pass


def _render(request: Request, values: dict, logo: str | None, errors=None, status: int = 200):
    site = request.app.state.site
    response = request.app.state.templates.render(
        request, "admin_orders.html", status=status, values=values, errors=errors or {},
        comment_lines=list(order_setup.COMMENT_LINES.items()),
        terms=order_setup.terms_choices(site.registry),
        tax_codes=order_setup.tax_code_choices(site, values.get("shipping_tax_code_id")),
        logo_name=(logo or "").rsplit("/", 1)[-1],
        setup_lists=[(name, label) for name, label in SETUP_LISTS
                     if name in site.registry.modules])
    response.headers["Cache-Control"] = "no-store"
    return response
