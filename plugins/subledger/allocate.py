"""A sub-ledger's "Allocate" page and API action: one implementation for every side of the
books (invoices: a payment across the account's invoices; purchases: a bill payment across
the supplier's bills), configured by the side's ``SubLedger`` and a few words.

- the button on a payment with something left to allocate (who may create allocations);
- the page (``GET/POST <url>``): the party's open documents in the payment's currency, an
  amount box each; saving allocates them all or, if any is refused, nothing, every refusal
  shown beside its document;
- the API action ``POST /api/v1/<payments>/{id}/actions/allocate {"amounts": {...}}``.

The bookkeeping itself (what may be allocated, the figures) stays the side's
``allocate`` function: this module only asks and shows.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.api.actions import ApiAction
from core.api.problems import ApiProblem
from core.kernel.errors import N_, Message, NotFoundError, ValidationError
from core.web.actions import Action
from core.web.pages import page
from core.web.templating import flash

from .ledger import SubLedger, decimal

AMOUNT = {"type": ["string", "number"], "pattern": r"^[0-9]{1,18}(\.[0-9]{1,6})?$",
          "minimum": 0}
TEMPLATE = "subledger_allocate.html"


def may_create(site, user, module_name: str) -> None:
    """An API action that creates records of ``module_name`` needs the right to (403)."""
    module = site.registry.module(module_name)
    if not site.access.can(user, module, "edit"):
        raise ApiProblem(403, f"You may not create {module.label}.")


@dataclass(frozen=True)
class AllocatePage:
    """One side's allocate page: its ledger, its functions and the sentences only it can
    say (``N_`` texts). The rest comes from the ledger and the metadata: the URL
    (``/<payments>/{record_id}/allocate``), the party's and the document's labels, each
    row's ``data-<document>`` attribute ("invoice_id" -> data-invoice="INV-0001")."""

    ledger: SubLedger
    # (site, user, party id, currency) -> the party's open documents, in the page's order
    open_documents: Callable[..., list[dict]]
    # (site, user, payment id, {document id: amount}) -> the allocations, all or nothing
    allocate: Callable[..., list[dict]]
    parse_amount: Callable[[str], Decimal | None]
    # (payment, allocations made) -> the flash message after saving
    done: Callable[[dict, list[dict]], Message]
    column: str  # the documents' second column, a field of theirs ("invoice_date")
    # N_ texts: how to fill the page, nothing typed, no open document
    intro: str
    none_typed: str
    none_open: str

    @property
    def url(self) -> str:
        return f"/{self.ledger.payments}/{{record_id}}/allocate"

    def page_of(self, record_id: str) -> str:
        return self.url.replace("{record_id}", record_id)

    def buttons(self, site, record: dict, user) -> list[Action]:
        """"Allocate" on a payment with something left, for who may create allocations."""
        if decimal(record.get("unallocated")) > 0 and \
                site.access.can(user, site.registry.module(self.ledger.allocations), "edit"):
            return [Action(N_("Allocate"), self.page_of(record["id"]), primary=True)]
        return []

    def route(self) -> Route:
        return Route(self.url, page()(self._view), methods=["GET", "POST"])

    def _view(self, request: Request, form):
        site, user, ledger = request.app.state.site, request.state.user, self.ledger
        if not site.access.can(user, site.registry.module(ledger.allocations), "edit"):
            raise HTTPException(403, Message(N_("You are not allowed to %(what)s here."),
                                             what=Message(N_("allocate payments"))))
        payment_id = request.path_params["record_id"]
        payment = site.records.get(ledger.payments, payment_id, user, labels=True)
        documents = self.open_documents(site, user, payment[ledger.party],
                                        payment["amount_currency"])
        errors, posted = {}, {}
        if form is not None:
            posted = {d["id"]: str(form.get(f"amount-{d['id']}", "")).strip()
                      for d in documents}
            # an empty box or a 0 leaves that document alone
            amounts = {i: text for i, text in posted.items()
                       if text and self.parse_amount(text) != 0}
            if not amounts:
                errors[""] = Message(self.none_typed)
            else:
                try:
                    made = self.allocate(site, user, payment_id, amounts)
                except ValidationError as exc:
                    errors = exc.errors
                except NotFoundError:
                    errors[""] = Message(N_("You are not allowed to change this payment."))
                else:
                    flash(request, self.done(payment, made))
                    return RedirectResponse(f"/m/{ledger.payments}/{payment_id}", 303)
        rows = {d["id"] for d in documents}
        general = [message for key, message in errors.items() if key not in rows]
        # plain values only: a theme pack's sandbox renders this page too
        docs = site.registry.module(ledger.documents)
        column = docs.fields[self.column]
        return request.app.state.templates.render(
            request, TEMPLATE, status=422 if errors else 200, payment=payment,
            documents=documents, posted=posted, errors=errors, general=general,
            party=payment.get(f"{ledger.party}__label") or payment.get(ledger.party),
            action=self.page_of(payment_id), back=f"/m/{ledger.payments}/{payment_id}",
            documents_module=ledger.documents, row=ledger.document_key.removesuffix("_id"),
            column=self.column, column_is_date=column.type.name == "date", words={
                "party": site.registry.module(ledger.payments).fields[ledger.party].label,
                "document": docs.label_singular, "column": column.label,
                "intro": self.intro, "none_open": self.none_open})

    def api_action(self) -> ApiAction:
        def handler(site, user, record_id: str, body: dict) -> dict:
            may_create(site, user, self.ledger.allocations)
            return {"allocations": self.allocate(site, user, record_id, body["amounts"])}

        return ApiAction(self.ledger.payments, "allocate", "Allocate the payment across "
                         f"{self.ledger.documents}, all or nothing", handler,
                         {"type": "object", "additionalProperties": False,
                          "required": ["amounts"],
                          "properties": {"amounts": {"type": "object", "minProperties": 1,
                                                     "maxProperties": 500,
                                                     "additionalProperties": AMOUNT}}})


