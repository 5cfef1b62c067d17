"""The bank's world: countries, currencies and exchange rates, merchants, goals, and the spelling
of ids, amounts and times in its events. Data only, shared by the simulator's modules."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Final

__all__ = ["EXCHANGE_RATES"]

HOME_COUNTRIES: Final = (("DK", 35), ("SE", 20), ("NO", 15), ("DE", 10), ("GB", 8), ("ES", 7))
HOME_COUNTRIES_ALL: Final = (*HOME_COUNTRIES, ("US", 5))
TRAVEL_COUNTRIES: Final = (
    ("ES", 18), ("DE", 12), ("FR", 10), ("IT", 10), ("GB", 10), ("US", 10), ("SE", 6),
    ("NO", 5), ("DK", 5), ("CH", 5), ("PL", 4), ("TH", 3), ("TR", 2),
)  # fmt: skip
CURRENCY_OF: Final = {
    "DK": "DKK", "SE": "SEK", "NO": "NOK", "DE": "EUR", "ES": "EUR", "FR": "EUR", "IT": "EUR",
    "GB": "GBP", "US": "USD", "CH": "CHF", "PL": "PLN", "TH": "THB", "TR": "TRY",
}  # fmt: skip
# Roughly what one unit was worth in euros; a fixed table keeps billing amounts reproducible.
EUR_VALUE: Final = {
    "DKK": Decimal("0.1341"), "SEK": Decimal("0.0874"), "NOK": Decimal("0.0856"),
    "EUR": Decimal("1"), "GBP": Decimal("1.1689"), "USD": Decimal("0.9251"),
    "CHF": Decimal("1.0652"), "PLN": Decimal("0.2330"), "THB": Decimal("0.0262"),
    "TRY": Decimal("0.0271"),
}  # fmt: skip

EXCHANGE_RATES: Final[Mapping[tuple[str, str], Decimal]] = MappingProxyType(
    {
        (charged, billed): (EUR_VALUE[charged] / EUR_VALUE[billed]).quantize(Decimal("1e-6"))
        for charged in EUR_VALUE
        for billed in EUR_VALUE
        if charged != billed
    }
)
"""The fixed rate from a merchant's `currency` to a card's `billing_currency`.

A foreign purchase is billed ``(amount * rate).quantize(Decimal("0.01"))`` (half to even).
"""

CURRENCIES: Final = tuple(EUR_VALUE)
CURRENCY_INDEX: Final = {code: i for i, code in enumerate(CURRENCIES)}
UNITS_PER_EUR: Final = tuple(1 / float(EUR_VALUE[c]) for c in CURRENCIES)
RATE_MICROS: Final = {
    (CURRENCY_INDEX[a], CURRENCY_INDEX[b]): int(rate * 1_000_000)
    for (a, b), rate in EXCHANGE_RATES.items()
}
COUNTRIES: Final = tuple(CURRENCY_OF)
COUNTRY_INDEX: Final = {code: i for i, code in enumerate(COUNTRIES)}
COUNTRY_CURRENCY: Final = tuple(CURRENCY_INDEX[CURRENCY_OF[c]] for c in COUNTRIES)
COUNTRIES_PAYING: Final = tuple(
    tuple(i for i, c in enumerate(COUNTRIES) if CURRENCY_OF[c] == code) for code in CURRENCIES
)
SEGMENTS: Final = ("standard", "plus")
CATEGORIES: Final = ("groceries", "restaurants", "transport", "shopping", "travel")
MERCHANTS: Final = (
    ("Netto", "Rema 1000", "Lidl", "ICA", "Coop", "Tesco", "Carrefour", "Mercadona", "Aldi"),
    ("Joe & The Juice", "Starbucks", "McDonald's", "Wagamama", "Sticks'n'Sushi", "Vapiano"),
    ("DSB", "SJ", "Vy", "Deutsche Bahn", "Renfe", "Uber", "Bolt", "Shell", "Circle K"),
    ("IKEA", "H&M", "Zalando", "Amazon", "Apple", "Elgiganten", "Zara", "Decathlon"),
    ("SAS", "Norwegian", "Ryanair", "Lufthansa", "Booking.com", "Airbnb", "Hilton", "Scandic"),
)
TYPICAL_EUR_CENTS: Final = (3_500, 2_800, 2_000, 6_000, 25_000)
GOAL_CATEGORIES: Final = ("travel", "home", "car", "education", "other")
GOAL_NAMES: Final = (
    ("Trip to Japan", "Summer in Spain", "Interrail", "Ski trip", "Honeymoon"),
    ("Down payment", "New kitchen", "Garden", "Moving out"),
    ("New car", "Electric car", "Driving licence"),
    ("Master's degree", "Language course", "Coding bootcamp"),
    ("Rainy day", "New phone", "Wedding", "Bike"),
)
GOAL_EUR_RANGE: Final = ((1_500, 8_000), (20_000, 80_000), (8_000, 30_000), (3_000, 20_000),
                          (500, 5_000))  # fmt: skip


def weighted(weighted: Iterable[tuple[str, int]], index: Mapping[str, int]) -> tuple[int, ...]:
    """A lookup table in which each entry appears as often as its weight: one draw picks."""
    return tuple(index[code] for code, weight in weighted for _ in range(weight))


HOME_TABLE: Final = weighted(HOME_COUNTRIES_ALL, COUNTRY_INDEX)
MOVE_TABLE: Final = weighted(HOME_COUNTRIES, COUNTRY_INDEX)
TRAVEL_TABLE: Final = weighted(TRAVEL_COUNTRIES, COUNTRY_INDEX)
CATEGORY_INDEX: Final = {c: i for i, c in enumerate(CATEGORIES)}
DOMESTIC_CATEGORIES: Final = weighted(
    (("groceries", 35), ("restaurants", 18), ("transport", 15), ("shopping", 25), ("travel", 7)),
    CATEGORY_INDEX,
)
FOREIGN_CATEGORIES: Final = weighted(
    (("groceries", 15), ("restaurants", 30), ("transport", 15), ("shopping", 15), ("travel", 25)),
    CATEGORY_INDEX,
)
GOAL_INDEX: Final = {c: i for i, c in enumerate(GOAL_CATEGORIES)}
OTHER_GOALS: Final = weighted(
    (("home", 35), ("car", 25), ("education", 15), ("other", 25)), GOAL_INDEX
)

# Business time spans about six months from 1,000 events up, at least 2 s apart on average.
SPAN_MS: Final = 182 * 86_400_000
MIN_GAP_MS: Final = 2_000
DAY_MS: Final = 86_400_000
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_DAY: Final = date(1970, 1, 1)
CLOCK: Final = tuple(f"{m // 60:02d}:{m % 60:02d}:" for m in range(24 * 60))
UUID_MASK: Final = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)
UUID_V4: Final = (0x8000 << 48) | (0x4 << 76)


def money(cents: int) -> str:
    if cents >= 0:
        return f"{cents // 100}.{cents % 100:02d}"
    return f"-{-cents // 100}.{-cents % 100:02d}"


def convert(cents: int, charged: int, billed: int) -> int:
    """`cents` at the fixed rate, rounded half to even as Decimal.quantize would."""
    whole, rest = divmod(cents * RATE_MICROS[charged, billed], 1_000_000)
    if 2 * rest > 1_000_000 or (2 * rest == 1_000_000 and whole % 2):
        whole += 1
    return whole


def user_id(user: int) -> str:
    return f"u-{user:07d}"


def account_id(account: int) -> str:
    return f"a-{account:07d}"


def card_id(card: int) -> str:
    return f"c-{card:07d}"


def goal_id(goal: int) -> str:
    return f"g-{goal:07d}"


def envelope_id(rng: random.Random) -> str:
    h = f"{(rng.getrandbits(128) & UUID_MASK) | UUID_V4:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
