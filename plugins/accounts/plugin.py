"""Accounts: the companies and organizations you do business with.

Provides the ``accounts`` module (modules/accounts.yaml) with its billing and shipping
addresses, the "Member of" hierarchy and the Contacts subpanel, the ``account_type_dom``
and ``industry_dom`` dropdown lists, a save check (no account is a member of itself), and
demo accounts through ``crbm_demo_data``.

The demo helpers here (countries, phone numbers, name pools) are shared with the contacts
plugin, whose demo data is built around these accounts.
"""
from __future__ import annotations

import itertools
import random
import re
import unicodedata
from dataclasses import dataclass, field

import sqlalchemy as sa

from core.kernel.errors import ValidationError
from core.kernel.hookspecs import for_modules, hookimpl

__version__ = "0.1.0"

BATCH = 1_000
MEMBER_SHARE = 0.10  # accounts that are a member (subsidiary, branch) of another


@hookimpl
@for_modules("accounts")
def crbm_before_save(module, batch, user, connection):
    """The "Member of" hierarchy has no loops: an account is never its own ancestor."""
    table = sa.table(module.table, sa.column("id"), sa.column("member_of_id"))
    for change in batch:
        record_id, parent = change.record["id"], change.record.get("member_of_id")
        if parent is None or (change.is_new and parent != record_id):
            continue  # a new account has no members yet, so it cannot close a loop
        seen = set()
        while parent is not None and parent not in seen:
            if parent == record_id:
                raise ValidationError({"member_of_id": "an account cannot be a member of "
                                       "itself or of one of its own members"})
            seen.add(parent)
            parent = connection.execute(sa.select(table.c.member_of_id)
                                        .where(table.c.id == parent)).scalar()


# -- demo data helpers (also used by plugins.contacts) -------------------------------------

@dataclass(frozen=True)
class Country:
    name: str
    locale: str
    weight: int
    currency: str
    tld: str
    area_codes: tuple[str, ...]
    number_shape: tuple[int, ...]  # digit groups after the area code
    calling_code: str

    def phone(self, rng: random.Random) -> str:
        groups = " ".join(str(rng.randrange(10 ** (n - 1), 10 ** n)) for n in self.number_shape)
        return f"+{self.calling_code} {rng.choice(self.area_codes)} {groups}"


COUNTRIES = (
    Country("United States", "en_US", 50, "USD", "com",
            ("212", "312", "415", "617", "713", "206", "305", "404", "512", "303"), (3, 4), "1"),
    Country("United Kingdom", "en_GB", 14, "GBP", "co.uk",
            ("20", "161", "121", "131", "113", "117"), (3, 4), "44"),
    Country("Germany", "de_DE", 10, "EUR", "de",
            ("30", "40", "89", "69", "221", "711"), (4, 4), "49"),
    Country("France", "fr_FR", 8, "EUR", "fr", ("1", "4", "5"), (2, 2, 2, 2), "33"),
    Country("Canada", "en_CA", 10, "CAD", "ca", ("416", "604", "514", "403", "613"), (3, 4), "1"),
    Country("Australia", "en_AU", 8, "AUD", "com.au", ("2", "3", "7", "8"), (4, 4), "61"),
)

_STATE_PROVIDER = {"en_US": "state_abbr", "en_CA": "province_abbr", "en_AU": "state_abbr"}
_STATE_ARGS = {"en_US": {"include_territories": False, "include_freely_associated_states": False}}


@dataclass
class LocalePool:
    """Names and addresses pre-generated once per country, then sampled with ``rng``."""

    country: Country
    addresses: list[tuple[str, str, str | None, str]] = field(default_factory=list)
    last_names: list[str] = field(default_factory=list)
    first_male: list[str] = field(default_factory=list)
    first_female: list[str] = field(default_factory=list)
    companies: list[str] = field(default_factory=list)

    def address(self, rng: random.Random, prefix: str) -> dict:
        street, city, state, postal_code = rng.choice(self.addresses)
        return {f"{prefix}_street": street, f"{prefix}_city": city, f"{prefix}_state": state,
                f"{prefix}_postal_code": postal_code, f"{prefix}_country": self.country.name}


def build_pools(rng: random.Random, scale: int) -> dict[str, LocalePool]:
    """One pool per country; ``scale`` is the largest pool size (for the biggest country)."""
    from faker import Faker  # demo data only: not loaded by every web worker (10 MB)

    pools = {}
    top = max(c.weight for c in COUNTRIES)
    for country in COUNTRIES:
        fake = Faker(country.locale)
        fake.seed_instance(rng.randrange(2**32))
        n = max(20, scale * country.weight // top)
        state_of = getattr(fake, _STATE_PROVIDER.get(country.locale, "administrative_unit"))
        state_args = _STATE_ARGS.get(country.locale, {})
        pools[country.name] = LocalePool(
            country,
            addresses=[(fake.street_address().replace("\n", ", "), fake.city(),
                        state_of(**state_args), fake.postcode()) for _ in range(n)],
            last_names=[fake.last_name() for _ in range(n)],
            first_male=[fake.first_name_male() for _ in range(n)],
            first_female=[fake.first_name_female() for _ in range(n)],
            companies=[fake.company() for _ in range(n // 2)],
        )
    return pools


def pick_country(rng: random.Random) -> Country:
    return _COUNTRY_WEIGHTS.pick(rng)


def ascii_slug(text: str, sep: str = "") -> str:
    """"Müller & Söhne GmbH" -> "mullersohnegmbh" (for domains and email addresses)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return sep.join(re.findall(r"[a-z0-9]+", plain))


LEGAL_WORDS = re.compile(r"\b(inc|llc|llp|ltd|plc|corp|co|pty|gmbh|ag|kg|sa|sarl|sas|"
                         r"and sons|et fils|group)\b\.?", re.IGNORECASE)


def domain_for(company: str, tld: str) -> str:
    """"Miller Logistics LLC" -> "miller-logistics.com"."""
    base = ascii_slug(LEGAL_WORDS.sub(" ", company), "-")[:40].strip("-")
    return f"{base or 'example'}.{tld}"


class Weighted:
    """Values drawn by weight; the cumulative weights are summed once, not per draw."""

    def __init__(self, table: dict):
        self.values = list(table)
        self.cum_weights = list(itertools.accumulate(table.values()))

    def pick(self, rng: random.Random):
        return rng.choices(self.values, cum_weights=self.cum_weights)[0]


_COUNTRY_WEIGHTS = Weighted({c: c.weight for c in COUNTRIES})


# -- what accounts look like ---------------------------------------------------------------

ACCOUNT_TYPES = Weighted({"customer": 35, "prospect": 28, "partner": 8, "reseller": 6,
                          "integrator": 4, "competitor": 4, "investor": 2, "analyst": 2,
                          "press": 2, "other": 9})

# Words that make a generated company name fit its industry.
INDUSTRY_WORDS = {
    "apparel": ["Apparel", "Clothing", "Fashions", "Textiles"],
    "banking": ["Bank", "Bancorp", "Savings", "Trust"],
    "biotechnology": ["Biosciences", "Therapeutics", "Genomics", "Bio"],
    "chemicals": ["Chemicals", "Polymers", "Coatings"],
    "communications": ["Communications", "Networks", "Media Group"],
    "construction": ["Construction", "Builders", "Contractors", "Homes"],
    "consulting": ["Consulting", "Advisors", "Partners", "Associates"],
    "education": ["Academy", "Learning", "Institute", "College"],
    "electronics": ["Electronics", "Devices", "Semiconductors", "Circuits"],
    "energy": ["Energy", "Power", "Solar", "Renewables"],
    "engineering": ["Engineering", "Design", "Technical Services"],
    "entertainment": ["Entertainment", "Studios", "Productions", "Pictures"],
    "environmental": ["Environmental", "Recycling", "Water", "Green Solutions"],
    "finance": ["Capital", "Financial", "Investments", "Asset Management"],
    "government": ["Agency", "Authority", "Council"],
    "healthcare": ["Health", "Medical", "Clinics", "Care"],
    "hospitality": ["Hotels", "Hospitality", "Resorts", "Restaurants"],
    "insurance": ["Insurance", "Assurance", "Underwriters"],
    "machinery": ["Machinery", "Equipment", "Tools", "Industrial"],
    "manufacturing": ["Manufacturing", "Industries", "Works", "Fabrication"],
    "media": ["Media", "Publishing", "Press", "Digital"],
    "not_for_profit": ["Foundation", "Trust", "Society", "Charity"],
    "recreation": ["Sports", "Outdoors", "Leisure", "Fitness"],
    "retail": ["Stores", "Outlet", "Market", "Supply"],
    "shipping": ["Shipping", "Freight", "Logistics", "Cargo"],
    "technology": ["Software", "Systems", "Technologies", "Labs", "Data"],
    "telecommunications": ["Telecom", "Wireless", "Mobile", "Broadband"],
    "transportation": ["Transport", "Logistics", "Lines", "Express"],
    "utilities": ["Utilities", "Water", "Gas & Electric", "Power"],
    "other": ["Group", "Enterprises", "Services", "Holdings"],
}
INDUSTRIES = list(INDUSTRY_WORDS)
SUFFIXES = {"en_US": ["Inc.", "LLC", "Corp.", "Co.", "", ""],
            "en_CA": ["Inc.", "Ltd.", "Corp.", "", ""],
            "en_GB": ["Ltd", "PLC", "LLP", "", ""],
            "en_AU": ["Pty Ltd", "Ltd", "", ""],
            "de_DE": ["GmbH", "AG", "KG", "GmbH & Co. KG"],
            "fr_FR": ["SA", "SARL", "SAS", ""]}
OWNERSHIP = Weighted({"Private": 70, "Public": 12, "Partnership": 8, "Subsidiary": 6,
                      "Non-profit": 4})
RATINGS = Weighted({"": 40, "Hot": 15, "Warm": 25, "Cold": 20})
EMAIL_BOXES = ["info", "contact", "sales", "office", "hello"]
SIC_CODES = ["1521", "2834", "3571", "3674", "4813", "4911", "5045", "5411", "5812", "6021",
             "6311", "6411", "7011", "7372", "7374", "8062", "8111", "8221", "8711", "8742"]


def _company_name(rng: random.Random, pool: LocalePool, industry: str) -> str:
    if rng.random() < 0.2:
        return rng.choice(pool.companies)
    word = rng.choice(INDUSTRY_WORDS[industry])
    suffix = rng.choice(SUFFIXES[pool.country.locale])
    if rng.random() < 0.15:
        base = f"{rng.choice(pool.last_names)} & {rng.choice(pool.last_names)}"
    else:
        base = rng.choice(pool.last_names)
    return " ".join(part for part in (base, word, suffix) if part)


def _ticker(rng: random.Random, name: str) -> str:
    letters = ascii_slug(name).upper() or "X"
    return (letters[:rng.randint(2, 4)] + "".join(rng.choice("ABCDEFGHKLMNPRSTX")
                                                  for _ in range(2)))[:4]


def account_row(rng: random.Random, pools: dict[str, LocalePool], descriptions: list[str],
                user_id: str, parent: tuple[str, str] | None = None) -> dict:
    """One demo account. ``parent`` (id, name) makes it a branch of that account."""
    country = pick_country(rng)
    pool = pools[country.name]
    industry = rng.choice(INDUSTRIES)
    if parent:
        name = f"{parent[1]} - {rng.choice(pool.addresses)[1]}"[:150]
    else:
        name = _company_name(rng, pool, industry)
    domain = domain_for(name.split(" - ")[0], country.tld)
    employees = int(rng.lognormvariate(3.5, 1.6)) + 1
    ownership = OWNERSHIP.pick(rng) if not parent else "Subsidiary"
    row = {
        "name": name,
        "account_type": ACCOUNT_TYPES.pick(rng),
        "industry": industry,
        "phone_office": country.phone(rng),
        "phone_fax": country.phone(rng) if rng.random() < 0.3 else None,
        "phone_alternate": country.phone(rng) if rng.random() < 0.15 else None,
        "email1": f"{rng.choice(EMAIL_BOXES)}@{domain}",
        "email2": f"billing@{domain}" if rng.random() < 0.1 else None,
        "website": f"https://www.{domain}",
        "employees": employees,
        "annual_revenue": round(employees * rng.uniform(60_000, 400_000), -3),
        "annual_revenue_currency": country.currency,
        "ownership": ownership,
        "ticker_symbol": _ticker(rng, name) if ownership == "Public" else None,
        "rating": RATINGS.pick(rng) or None,
        "sic_code": rng.choice(SIC_CODES) if rng.random() < 0.4 else None,
        "description": rng.choice(descriptions) if rng.random() < 0.3 else None,
        "email_opt_out": rng.random() < 0.05,
        "member_of_id": parent[0] if parent else None,
        "assigned_user_id": user_id,
    }
    billing = pool.address(rng, "billing_address")
    row.update(billing)
    shipping = rng.random()
    if shipping < 0.6:  # most ship to where they are billed
        row.update({k.replace("billing", "shipping", 1): v for k, v in billing.items()})
    elif shipping < 0.8:
        row.update(pool.address(rng, "shipping_address"))
    return row


@hookimpl
def crbm_demo_data(site, user, size, rng, progress):
    """``size`` accounts, about one in ten a member of an account created before it."""
    if size <= 0:
        return
    from faker import Faker

    pools = build_pools(rng, scale=min(1000, max(200, size // 20)))
    fake = Faker()
    fake.seed_instance(rng.randrange(2**32))
    descriptions = [fake.catch_phrase() + "." for _ in range(200)]
    parents: list[tuple[str, str]] = []  # (id, name) of accounts created so far
    for start in range(0, size, BATCH):
        count = min(BATCH, size - start)
        # Members need their parent in the database already, so they go in second.
        members = min(sum(rng.random() < MEMBER_SHARE for _ in range(count)), count - 1)
        heads = [account_row(rng, pools, descriptions, user.id) for _ in range(count - members)]
        ids = site.records.create_many("accounts", heads, user)
        parents += [(i, row["name"]) for i, row in zip(ids, heads, strict=True)]
        if members:
            rows = [account_row(rng, pools, descriptions, user.id, parent=rng.choice(parents))
                    for _ in range(members)]
            site.records.create_many("accounts", rows, user)
        progress(start + count, size)
