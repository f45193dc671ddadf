"""Printing a record through a PDF form, and mailing the PDF.

``record_context`` turns a record into what forms read (docs/pdf_forms.md): every value
formatted for the reader (their language, dates, the document's currency), address blocks
as lines, each related record one level deep (``account`` for ``account_id``), what the
module's features add (``ModuleFeature.document_context``: the line items with their
totals), and whatever plugins add through ``crbm_pdf_context`` (company
details, a statement's open invoices). Plugins may refuse to print or mail a record
(``crbm_before_output``: a quote waiting for approval, say).
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from core.apps.documents import forms, mail
from core.kernel.errors import N_, NotFoundError
from core.kernel.registry import ModuleDef

ADDRESS_PARTS = ("street", "city", "state", "postal_code", "country")
# Words every standard form prints around the figures, translated for the reader;
# plugins add their documents' own words (crbm_pdf_context). Keys a form words its own
# way ("Invoice #", "Order #") are left to each form.
LABELS = {
    "item": N_("Item"),
    "quantity": N_("Qty"),
    "unit_price": N_("Unit price"),
    "list_price": N_("List price"),
    "discount": N_("Discount"),
    "ext_price": N_("Amount"),
    "subtotal": N_("Subtotal"),
    "net": N_("Net"),
    "shipping": N_("Shipping"),
    "tax": N_("Tax"),
    "total": N_("Total"),
    "page_of": N_("Page {page} of {pages}"),
    "date": N_("Date"),
    "terms": N_("Terms"),
    "terms_and_conditions": N_("Terms and conditions"),
    "bill_to": N_("Bill to"),
    "ship_to": N_("Ship to"),
    "due_date": N_("Due date"),
}


def add_labels(context: dict, fmt, labels: dict[str, str]) -> None:
    """A plugin's words for its forms (``labels``: key -> N_-marked English), translated."""
    context["labels"].update({key: fmt.gettext(text) for key, text in labels.items()})


def formatted(fmt, module: ModuleDef, record: dict, option_labels: dict) -> dict:
    """Every field of ``record`` as the reader sees it, plus ``<address>_lines``."""
    out = {}
    for name, f in module.fields.items():
        if name not in record:
            continue
        if f"{name}__label" in record:  # a related record's name, joined by the read
            out[name] = record[f"{name}__label"] or ""
            continue
        out[name] = fmt.field(f, record[name], record, options=option_labels.get(name, {}))
    for name, f in module.fields.items():
        if f.type.name == "address":
            out[f"{name}_lines"] = address_lines(record, name)
    out["id"] = record.get("id")
    return out


def address_lines(record: dict, name: str) -> list[str]:
    """street / "city, state postal code" / country, leaving out what is empty."""
    part = {p: (record.get(f"{name}_{p}") or "").strip() for p in ADDRESS_PARTS}
    town = ", ".join(x for x in (part["city"], " ".join(
        x for x in (part["state"], part["postal_code"]) if x)) if x)
    street = [s.strip() for s in re.split(r"[\r\n]+", part["street"]) if s.strip()]
    return [*street, *([town] if town else []), *([part["country"]] if part["country"] else [])]


_FIGURE = re.compile(r"\d+(?:[.,]\d+)?")


def tax_label(fmt, name: str | None, percent) -> str:
    """What a document calls a tax line: the rate's name, followed by its percentage
    unless the name already gives that figure — "GST" prints as "GST 5%", and a rate
    named "GST 5%" (as the tax rates' help suggests) stays "GST 5%", not "GST 5% 5%"."""
    name = (name or "").strip()
    if percent is None:
        return name
    for figure in _FIGURE.findall(name):
        try:
            if Decimal(figure.replace(",", ".")) == Decimal(percent):
                return name
        except InvalidOperation:  # pragma: no cover - the pattern only finds numbers
            continue
    return f"{name} {fmt.percent(percent)}".strip()


def record_context(site, module_name: str, record_id: str, user, fmt, *,
                   record: dict | None = None) -> dict:
    """What a form reads about one record (see the module docstring); ``record``: the
    record read already, with its labels (``labels=True``)."""
    registry = site.registry
    module = registry.module(module_name)
    if record is None:
        record = site.records.get(module_name, record_id, user, labels=True)
    options = registry.option_labels(module_name)
    context = {"record": formatted(fmt, module, record, options),
               "document": {"title": fmt.gettext(module.label_singular)},
               "labels": {key: fmt.gettext(text) for key, text in LABELS.items()},
               "today": fmt.date(dt.date.today()), "company": {}}
    for name, f in module.fields.items():  # related records, one level deep
        target = f.spec.get("module")
        if not f.type.is_link or not target or not record.get(name):
            continue
        key = name.removesuffix("_id")
        try:
            related = site.records.get(target, record[name], user, labels=True)
        except NotFoundError:  # gone, or not theirs to see: the form shows nothing
            continue
        context[key] = formatted(fmt, registry.module(target), related,
                                 registry.option_labels(target))
    for feature, _options in registry.features_of(module):  # e.g. the lines and totals
        data = feature.document_context(site, fmt, module, record, user)
        if data is not None:
            context[feature.name] = data
    site.module_hooks.of(module).crbm_pdf_context(site=site, module=module, record=record,
                                                  context=context, user=user, fmt=fmt)
    return context


def field_label(registry, module: ModuleDef, path: str) -> str:
    """A context path as the user knows it: "record.name" -> "Name", "account.email1" ->
    "Account: Email" (a related record's field); other paths stay as they are."""
    found = re.match(r"(\w+)\.(\w+)", path)
    if found is None:
        return path
    key, name = found.groups()
    owner, prefix = module, ""
    if key != "record":
        link = module.fields.get(f"{key}_id")
        target = link.spec.get("module") if link is not None else None
        if not target or target not in registry.modules:
            return path
        owner = registry.module(target)
        prefix = f"{owner.label_singular}: "
    field = owner.fields.get(name) or owner.fields.get(name.removesuffix("_lines"))
    return prefix + field.label if field is not None else path


def render_record(site, module_name: str, record_id: str, user, form_name: str, fmt,
                  action: str = "print") -> tuple[str, bytes]:
    """(file name, PDF) of a record printed through ``form_name``. Plugins may veto."""
    module = site.registry.module(module_name)
    labelled = site.records.get(module_name, record_id, user, labels=True)  # read once
    record = {key: value for key, value in labelled.items() if not key.endswith("__label")}
    site.module_hooks.of(module).crbm_before_output(site=site, module=module, record=record,
                                                    action=action, user=user)
    form = forms.find_form(site, form_name)
    from core.apps.documents import pdf  # fpdf2 (~25 MB) loaded by a process's first document
    try:
        content = pdf.render(form, record_context(site, module_name, record_id, user, fmt,
                                                  record=labelled))
    except forms.PdfTextError as exc:  # name the field as the user knows it
        raise exc.at(field_label(site.registry, module, exc.field)) from None
    stem = record.get((module.features.get("sequence") or {}).get("field", "")) or \
        record.get(module.name_field or "id") or record_id
    return f"{_safe(str(stem))}.pdf", content


def email_record(site, module_name: str, record_id: str, user, form_name: str, fmt, *,
                 to, subject: str, text: str, cc=()) -> mail.SentMail:
    """Print the record and mail the PDF; the mail is filed in the record's history."""
    filename, content = render_record(site, module_name, record_id, user, form_name, fmt,
                                      action="email")
    return mail.send_record_mail(site, user, module_name, record_id, to, subject, text, cc=cc,
                                 attachments=[mail.Attachment(filename, content,
                                                              "application/pdf")])


def forms_for(site, module_name: str) -> list[forms.PdfForm]:
    """The forms meant for a module's records (their ``module:``), for its print buttons.
    Cheap on every detail page: the folders are scanned once per registry (forms.py)."""
    return [form for form in forms.usable_forms(site)
            if getattr(form, "module", None) == module_name]


def _safe(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("_") or "document"
