"""Opportunities with quotes: registered only while the quotes plugin is active too
(plugin.yaml ``glue``), so the opportunities plugin works without it.

- ``with_quotes/``: the opportunity's Quotes subpanel (a relationship to quotes can only be
  declared while that module exists); the quote's ``opportunity_id`` itself is
  extends/quotes.yaml, which the registry skips on its own when quotes is inactive.
- "Create quote" on an opportunity: the new-quote form with the account and the
  opportunity filled in (and the account's addresses and terms, by their ``fill``); once
  saved, the user is on the new quote, to add its lines.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from core.kernel.errors import N_
from core.kernel.hookspecs import for_modules, hookimpl
from core.web.actions import Action

FOLDER = Path(__file__).parent / "with_quotes"


@hookimpl
def crbm_metadata_dirs():
    return [FOLDER]


def create_quote_url(record: dict) -> str:
    """The new-quote form for this opportunity (its labels spare the form a lookup)."""
    params = {"name": record.get("name") or "", "opportunity_id": record["id"],
              "opportunity_id__label": record.get("name") or ""}
    if record.get("account_id"):
        params |= {"account_id": record["account_id"],
                   "account_id__label": record.get("account_id__label") or ""}
    return "/m/quotes/new?" + urlencode(params)


@hookimpl
@for_modules("opportunities")
def crbm_record_actions(site, module, record, user):
    quotes = site.registry.modules.get("quotes")
    if quotes is None or not site.access.can(user, quotes, "edit"):
        return []
    return [Action(N_("Create quote"), create_quote_url(record))]
