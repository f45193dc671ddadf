"""The currencies' exchange rates from the European Central Bank's daily reference rates:
the scheduler task ``pricing.exchange_rates`` (Admin → Scheduler) and its settings.

Contract:

- The setting ``exchange_rates`` (``{"enabled": bool, "url": str}``, edited on Admin → Order
  management) switches the updates on and names the feed; off, the task is listed but
  disabled, and a run does nothing and says so.
- A run fetches the feed (httpx, with timeouts and a size cap), parses it with defusedxml
  (the ECB's ``gesmes:Envelope`` of ``Cube time=...`` of ``Cube currency= rate=``; in a
  feed of several days, the newest), and sets every active currency's ``exchange_rate`` —
  units of that currency for one unit of the site's *base* currency, which is the default
  currency (``currency.default``, USD on a new site). The ECB quotes against the euro, so
  the rate of C for base B is ``rate(C) / rate(B)`` (the euro's own rate is 1).
- The rates are written in one transaction through the record service's ``set_derived``
  (one read, one executemany; the change log and ``crbm_after_derived``, so the webhook
  outbox, see them as the system's). Only moved rates are written: a second run on the
  same feed date changes nothing. Currencies the feed lacks keep their rate and are named
  in the result.
- Any problem with the feed — HTTP error, timeout, not XML, no date, a rate that is not a
  positive number, no rate for the base currency — fails the run with an
  ``ExchangeRateError`` naming it, before anything is written.

Why the ECB: free, no key, published every TARGET working day around 16:00 CET. The
default schedule, weekdays at 17:00 in the site's time zone, fetches that day's rates in
Europe and the Americas; east of Europe it gets the previous working day's.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree

from core.apps.field_types.types import default_currency
from core.kernel.errors import N_, CrbmError, Message
from core.kernel.fields import FieldError
from core.kernel.hooktypes import ScheduledTask

SETTING = "exchange_rates"
DEFAULT_URL = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml"
TASK = "pricing.exchange_rates"
SCHEDULE = "0 17 * * 1-5"  # weekdays, after the ECB's 16:00 CET publication
CURRENCIES = "currencies"
TIMEOUT = httpx.Timeout(20.0, connect=10.0)
MAX_BYTES = 2_000_000  # the daily file is ~1.5 kB, the full history ~600 kB
URL_LIMIT = 500


class ExchangeRateError(CrbmError):
    """The feed could not be used; ``message`` says what was wrong with it (a Message)."""

    def __init__(self, message: Message):
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class RateSettings:
    enabled: bool = False
    url: str = DEFAULT_URL


def rate_settings(site, stored: dict | None = None) -> RateSettings:
    """The site's exchange rate settings; a value of the wrong type counts as unset."""
    raw = (site.settings if stored is None else stored).get(SETTING)
    raw = raw if isinstance(raw, dict) else {}
    url = raw.get("url")
    return RateSettings(enabled=raw.get("enabled") is True,
                        url=url if isinstance(url, str) and url else DEFAULT_URL)


def clean_settings(form: dict) -> tuple[dict, dict]:
    """(the setting to store, errors) from the Order management form's fields
    ``exchange_rates_enabled`` and ``exchange_rates_url`` (empty: the ECB's)."""
    errors: dict[str, Message] = {}
    url = str(form.get("exchange_rates_url") or "").strip() or DEFAULT_URL
    parts = urlsplit(url)
    if len(url) > URL_LIMIT:
        errors["exchange_rates_url"] = Message(
            N_("is %(length)s characters long; at most %(limit)s allowed"),
            length=len(url), limit=URL_LIMIT)
    elif parts.scheme not in ("http", "https") or not parts.hostname:
        errors["exchange_rates_url"] = Message(
            N_("%(value)s is not a web address (http:// or https://)"), value=repr(url))
    return {"enabled": bool(form.get("exchange_rates_enabled")), "url": url}, errors


# -- the feed ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Feed:
    date: dt.date
    rates: dict[str, Decimal]  # units of each currency for one euro; EUR itself is 1


def fetch(url: str) -> bytes:
    """The feed's body. ``ExchangeRateError`` on a timeout, an unreachable server, an
    HTTP error status or a body over ``MAX_BYTES``."""
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=True, max_redirects=5) as client, \
                client.stream("GET", url, headers={"Accept": "application/xml, text/xml"}) as got:
            if got.status_code != 200:
                raise ExchangeRateError(Message(
                    N_("The exchange rate feed %(url)s answered HTTP %(status)s %(reason)s."),
                    url=url, status=got.status_code, reason=got.reason_phrase))
            body = bytearray()
            for chunk in got.iter_bytes():
                body += chunk
                if len(body) > MAX_BYTES:
                    raise ExchangeRateError(Message(
                        N_("The exchange rate feed %(url)s is larger than %(limit)s bytes."),
                        url=url, limit=MAX_BYTES))
            return bytes(body)
    except httpx.TimeoutException:
        raise ExchangeRateError(Message(
            N_("The exchange rate feed %(url)s did not answer in time (%(seconds)s seconds)."),
            url=url, seconds=f"{TIMEOUT.read:g}")) from None
    except httpx.HTTPError as exc:  # refused, DNS, TLS, too many redirects...
        raise ExchangeRateError(Message(
            N_("The exchange rate feed %(url)s could not be read: %(reason)s"),
            url=url, reason=str(exc) or type(exc).__name__)) from None


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def parse(body: bytes, url: str = "") -> Feed:
    """The newest day of an ECB reference rate document (the daily file has one day, the
    90-day and full histories many). ``ExchangeRateError`` names what is wrong with it."""
    def bad(reason: Message) -> ExchangeRateError:
        return ExchangeRateError(Message(N_("The exchange rate feed %(url)s is not usable: "
                                            "%(reason)s"), url=url, reason=reason))
    try:
        root = SafeElementTree.fromstring(body)
    except DefusedXmlException:
        raise bad(Message(N_("it declares entities or a DTD, which are not accepted"))) from None
    except SafeElementTree.ParseError as exc:
        raise bad(Message(N_("it is not well-formed XML (%(error)s)"), error=str(exc))) from None
    days = [cube for cube in root.iter() if _local(cube.tag) == "Cube" and cube.get("time")]
    if not days:
        raise bad(Message(N_("it has no date (no Cube element with a time attribute)")))
    dated = []
    for cube in days:
        try:
            dated.append((dt.date.fromisoformat(cube.get("time").strip()), cube))
        except ValueError:
            raise bad(Message(N_("its date %(value)s is not a date (YYYY-MM-DD)"),
                              value=repr(cube.get("time")))) from None
    date, newest = max(dated, key=lambda pair: pair[0])
    rates: dict[str, Decimal] = {"EUR": Decimal(1)}
    for cube in newest:
        if _local(cube.tag) != "Cube":
            continue
        code, text = (cube.get("currency") or "").strip().upper(), cube.get("rate")
        if len(code) != 3 or not code.isalpha():
            raise bad(Message(N_("%(value)s is not a currency code"), value=repr(code)))
        try:
            rate = Decimal((text or "").strip())
        except InvalidOperation:
            rate = None
        if rate is None or not rate.is_finite() or rate <= 0:
            raise bad(Message(N_("the rate of %(currency)s, %(value)s, is not a positive "
                                 "number"), currency=code, value=repr(text)))
        if code in rates:
            raise bad(Message(N_("%(currency)s is given twice"), currency=code))
        rates[code] = rate
    if len(rates) == 1:
        raise bad(Message(N_("it has no rates for %(date)s"), date=date.isoformat()))
    return Feed(date, rates)


# -- the task ------------------------------------------------------------------------------

def update_rates(site, feed: Feed) -> Message:
    """Set every active currency's rate against the base currency from ``feed``, in one
    transaction; the result line for the Scheduler page."""
    module = site.registry.module(CURRENCIES)
    field = module.fields["exchange_rate"]
    table = site.tables.tables[module.table]
    base = default_currency(site)
    if base not in feed.rates:
        raise ExchangeRateError(Message(
            N_("The exchange rate feed of %(date)s has no rate for the base currency "
               "%(currency)s; no rate was changed."), date=feed.date.isoformat(), currency=base))
    with site.engine.begin() as conn:
        currencies = conn.execute(sa.select(table.c.id, table.c.iso_code).where(
            table.c.deleted.is_(False), table.c.active.is_(True))
            .order_by(table.c.iso_code)).all()
        values, missing = {}, []
        for row in currencies:
            code = (row.iso_code or "").upper()
            if code not in feed.rates:
                missing.append(code)
                continue
            with localcontext() as exact:
                exact.prec = 34  # the quotient is then rounded to the field's 6 places
                rate = feed.rates[code] / feed.rates[base]
            try:
                rate = field.type.normalize(rate, field.spec)
            except FieldError as exc:
                raise ExchangeRateError(Message(
                    N_("The rate of %(currency)s against %(base)s cannot be stored: "
                       "%(reason)s"), currency=code, base=base, reason=exc.message)) from None
            if rate <= 0:
                raise ExchangeRateError(Message(
                    N_("The rate of %(currency)s against %(base)s rounds to 0 with six "
                       "decimals; no rate was changed."), currency=code, base=base))
            values[row.id] = {"exchange_rate": rate}
        changed = site.records.set_derived(CURRENCIES, values, connection=conn,
                                           reason=TASK) if values else []
    date = feed.date.isoformat()
    if changed:
        result = Message(N_("Updated %(count)s rates (%(date)s)"), count=len(changed), date=date)
    else:
        result = Message(N_("The rates are up to date (%(date)s)"), date=date)
    if missing:
        result = Message(N_("%(result)s; not in the feed: %(codes)s"), result=result,
                         codes=", ".join(missing))
    return result


def run(site, due=None) -> Message:
    """The scheduler's run: fetch, parse, update — or, switched off, nothing."""
    settings = rate_settings(site)
    if not settings.enabled:
        return Message(N_("Exchange rate updates are off (Admin → Order management)."))
    if CURRENCIES not in site.registry.modules:
        return Message(N_("There is no currencies module."))
    return update_rates(site, parse(fetch(settings.url), settings.url))


def task(site) -> ScheduledTask:
    return ScheduledTask(TASK, N_("Update currency exchange rates"), run, SCHEDULE,
                         enabled=rate_settings(site).enabled)
