"""The shipped field types as a built-in plugin: through the same hook a third-party type
comes in by (docs/plugins.md, "Adding a field type")."""
from __future__ import annotations

from core.apps.field_types import types
from core.kernel.hookspecs import hookimpl


@hookimpl(tryfirst=True)  # first in the list: a plugin's type of the same name replaces it
def crbm_field_types(site):
    currency = types.CurrencyType(types.default_currency(site) if site else types.INITIAL_CURRENCY)
    return [*(t for t in types.TYPES if t.name != "currency"), currency]
