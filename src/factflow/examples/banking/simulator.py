"""A realistic, reproducible stream of the bank's events (shared/domain/banking.md), any size.

`simulate` yields raw envelopes, one JSON object per item, the way the bank's services would
publish them: users sign up, open accounts, get cards, pay in shops at home and abroad, change
segment or move country, set savings goals and delete some of them. The stream is generated
lazily in bounded memory, so ten million events need no more than the bank's compact state.

On top of the business events it can add what real delivery does to a stream: the same envelope
delivered again, a business event re-published under a new envelope id (a replay), arrival out
of order, and invalid messages. Each of these draws from its own random generator, so for the
same `seed` and the same number of business events the business events are identical whatever
the delivery options; that is what lets a test compare a messy stream against a clean one.

Example:
    >>> options = SimulationOptions(events=1_000, seed=7, duplicates=0.05, shuffle_window=50)
    >>> lines = list(simulate(options))
    >>> len(lines)
    1000
"""

from __future__ import annotations

import heapq
import random
from array import array
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

import msgspec

__all__ = ["EXCHANGE_RATES", "SimulationOptions", "simulate"]


class SimulationOptions(msgspec.Struct, frozen=True):
    """What to simulate.

    Attributes:
        events: the exact number of envelopes `simulate` yields, extras included. Of these,
            ``events - round(events * duplicates) - round(events * republications)
            - round(events * bad_lines)`` are business events; that must leave at least one.
        seed: the same options give exactly the same bytes.
        duplicates: the fraction of `events` that are another delivery of an envelope already
            yielded (same id, same bytes).
        republications: the fraction of `events` that re-publish an earlier business event
            under a new envelope id (same type, source, occurred_at, version and data).
        shuffle_window: 0 yields the business events in `occurred_at` order (re-publications
            are still late, by nature); k > 0 shuffles arrival through a buffer of k envelopes:
            an envelope arrives at most k - 1 places early, and late by a geometric tail.
        bad_lines: the fraction of `events` that are invalid messages: not JSON, a required
            field missing, a wrong type, an unknown `type`, a timestamp without offset. They
            carry ids of their own, never those of a valid envelope or business thing.
        start: when the first business event occurs; must carry a time zone.

    Raises:
        ValueError: a count or fraction out of range, no room left for business events, or a
            naive `start`.
    """

    events: int
    seed: int = 0
    duplicates: float = 0.0
    republications: float = 0.0
    shuffle_window: int = 0
    bad_lines: float = 0.0
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)

    def __post_init__(self) -> None:
        if self.events < 0:
            raise ValueError(f"events must be >= 0, got {self.events}")
        if self.shuffle_window < 0:
            raise ValueError(f"shuffle_window must be >= 0, got {self.shuffle_window}")
        for name in ("duplicates", "republications", "bad_lines"):
            fraction = getattr(self, name)
            if not 0.0 <= fraction <= 1.0:
                raise ValueError(f"{name} must be a fraction between 0 and 1, got {fraction}")
        if self.start.utcoffset() is None:
            raise ValueError(f"start must carry a time zone, got {self.start.isoformat()}")
        if self.events and self._business_events() < 1:
            raise ValueError(
                "duplicates + republications + bad_lines leave no business events in "
                f"{self.events} envelopes; lower the fractions or raise events"
            )

    def _business_events(self) -> int:
        extras = sum(round(self.events * f) for f in self._extra_fractions())
        return self.events - extras

    def _extra_fractions(self) -> tuple[float, float, float]:
        return (self.duplicates, self.republications, self.bad_lines)


def simulate(options: SimulationOptions) -> Iterator[bytes]:
    """Yield `options.events` envelopes as JSON bytes (no trailing newline), lazily.

    Valid envelopes follow banking.md: `version` 1, `occurred_at` in UTC with milliseconds
    (``2026-01-01T00:00:03.412Z``), amounts as strings with two decimals. In `occurred_at`
    order every business event is causally sensible: a user exists before their accounts, an
    account before its cards, a card before its transactions, a goal before its deletion.
    """
    if options.events == 0:
        return
    n_duplicates, n_republications, n_bad = (
        round(options.events * f) for f in options._extra_fractions()
    )
    business = options._business_events()
    stream: Iterator[bytes] = _Bank(random.Random(options.seed), business, options.start).run()
    delivery = random.Random(f"factflow-delivery-{options.seed}")
    if n_republications:
        stream = _republish(stream, business, n_republications, delivery)
    if options.shuffle_window > 1:
        stream = _shuffle(stream, options.shuffle_window, delivery)
    if n_duplicates or n_bad:
        upstream = business + n_republications
        stream = _redeliver(stream, upstream, n_duplicates, n_bad, delivery)
    yield from stream


# --- the bank's world ------------------------------------------------------------------------

_HOME_COUNTRIES: Final = (("DK", 35), ("SE", 20), ("NO", 15), ("DE", 10), ("GB", 8), ("ES", 7))
_HOME_COUNTRIES_ALL: Final = (*_HOME_COUNTRIES, ("US", 5))
_TRAVEL_COUNTRIES: Final = (
    ("ES", 18), ("DE", 12), ("FR", 10), ("IT", 10), ("GB", 10), ("US", 10), ("SE", 6),
    ("NO", 5), ("DK", 5), ("CH", 5), ("PL", 4), ("TH", 3), ("TR", 2),
)  # fmt: skip
_CURRENCY_OF: Final = {
    "DK": "DKK", "SE": "SEK", "NO": "NOK", "DE": "EUR", "ES": "EUR", "FR": "EUR", "IT": "EUR",
    "GB": "GBP", "US": "USD", "CH": "CHF", "PL": "PLN", "TH": "THB", "TR": "TRY",
}  # fmt: skip
# Roughly what one unit was worth in euros; a fixed table keeps billing amounts reproducible.
_EUR_VALUE: Final = {
    "DKK": Decimal("0.1341"), "SEK": Decimal("0.0874"), "NOK": Decimal("0.0856"),
    "EUR": Decimal("1"), "GBP": Decimal("1.1689"), "USD": Decimal("0.9251"),
    "CHF": Decimal("1.0652"), "PLN": Decimal("0.2330"), "THB": Decimal("0.0262"),
    "TRY": Decimal("0.0271"),
}  # fmt: skip

EXCHANGE_RATES: Final[Mapping[tuple[str, str], Decimal]] = MappingProxyType(
    {
        (charged, billed): (_EUR_VALUE[charged] / _EUR_VALUE[billed]).quantize(Decimal("1e-6"))
        for charged in _EUR_VALUE
        for billed in _EUR_VALUE
        if charged != billed
    }
)
"""The fixed rate from a merchant's `currency` to a card's `billing_currency`.

A foreign purchase is billed ``(amount * rate).quantize(Decimal("0.01"))`` (half to even).
"""

_CURRENCIES: Final = tuple(_EUR_VALUE)
_CURRENCY_INDEX: Final = {code: i for i, code in enumerate(_CURRENCIES)}
_UNITS_PER_EUR: Final = tuple(1 / float(_EUR_VALUE[c]) for c in _CURRENCIES)
_RATE_MICROS: Final = {
    (_CURRENCY_INDEX[a], _CURRENCY_INDEX[b]): int(rate * 1_000_000)
    for (a, b), rate in EXCHANGE_RATES.items()
}
_COUNTRIES: Final = tuple(_CURRENCY_OF)
_COUNTRY_INDEX: Final = {code: i for i, code in enumerate(_COUNTRIES)}
_COUNTRY_CURRENCY: Final = tuple(_CURRENCY_INDEX[_CURRENCY_OF[c]] for c in _COUNTRIES)
_COUNTRIES_PAYING: Final = tuple(
    tuple(i for i, c in enumerate(_COUNTRIES) if _CURRENCY_OF[c] == code) for code in _CURRENCIES
)
_SEGMENTS: Final = ("standard", "plus")
_CATEGORIES: Final = ("groceries", "restaurants", "transport", "shopping", "travel")
_MERCHANTS: Final = (
    ("Netto", "Rema 1000", "Lidl", "ICA", "Coop", "Tesco", "Carrefour", "Mercadona", "Aldi"),
    ("Joe & The Juice", "Starbucks", "McDonald's", "Wagamama", "Sticks'n'Sushi", "Vapiano"),
    ("DSB", "SJ", "Vy", "Deutsche Bahn", "Renfe", "Uber", "Bolt", "Shell", "Circle K"),
    ("IKEA", "H&M", "Zalando", "Amazon", "Apple", "Elgiganten", "Zara", "Decathlon"),
    ("SAS", "Norwegian", "Ryanair", "Lufthansa", "Booking.com", "Airbnb", "Hilton", "Scandic"),
)
_TYPICAL_EUR_CENTS: Final = (3_500, 2_800, 2_000, 6_000, 25_000)
_GOAL_CATEGORIES: Final = ("travel", "home", "car", "education", "other")
_GOAL_NAMES: Final = (
    ("Trip to Japan", "Summer in Spain", "Interrail", "Ski trip", "Honeymoon"),
    ("Down payment", "New kitchen", "Garden", "Moving out"),
    ("New car", "Electric car", "Driving licence"),
    ("Master's degree", "Language course", "Coding bootcamp"),
    ("Rainy day", "New phone", "Wedding", "Bike"),
)
_GOAL_EUR_RANGE: Final = ((1_500, 8_000), (20_000, 80_000), (8_000, 30_000), (3_000, 20_000),
                          (500, 5_000))  # fmt: skip


def _table(weighted: Iterable[tuple[str, int]], index: Mapping[str, int]) -> tuple[int, ...]:
    """A lookup table in which each entry appears as often as its weight: one draw picks."""
    return tuple(index[code] for code, weight in weighted for _ in range(weight))


_HOME_TABLE: Final = _table(_HOME_COUNTRIES_ALL, _COUNTRY_INDEX)
_MOVE_TABLE: Final = _table(_HOME_COUNTRIES, _COUNTRY_INDEX)
_TRAVEL_TABLE: Final = _table(_TRAVEL_COUNTRIES, _COUNTRY_INDEX)
_CATEGORY_INDEX: Final = {c: i for i, c in enumerate(_CATEGORIES)}
_DOMESTIC_CATEGORIES: Final = _table(
    (("groceries", 35), ("restaurants", 18), ("transport", 15), ("shopping", 25), ("travel", 7)),
    _CATEGORY_INDEX,
)
_FOREIGN_CATEGORIES: Final = _table(
    (("groceries", 15), ("restaurants", 30), ("transport", 15), ("shopping", 15), ("travel", 25)),
    _CATEGORY_INDEX,
)
_GOAL_INDEX: Final = {c: i for i, c in enumerate(_GOAL_CATEGORIES)}
_OTHER_GOALS: Final = _table((("home", 35), ("car", 25), ("education", 15), ("other", 25)),
                             _GOAL_INDEX)  # fmt: skip

# Business time spans about six months from 1,000 events up, at least 2 s apart on average.
_SPAN_MS: Final = 182 * 86_400_000
_MIN_GAP_MS: Final = 2_000
_DAY_MS: Final = 86_400_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY: Final = date(1970, 1, 1)
_CLOCK: Final = tuple(f"{m // 60:02d}:{m % 60:02d}:" for m in range(24 * 60))
_UUID_MASK: Final = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)
_UUID_V4: Final = (0x8000 << 48) | (0x4 << 76)

# Things the bank schedules for later: an action, due at a step, about an entity.
_OPEN_MAIN, _ISSUE_VISA, _ISSUE_TRAVEL, _OPEN_SECOND, _DELETE_GOAL = range(5)

_encoder: Final = msgspec.json.Encoder()

_Event = tuple[str, str, dict[str, Any]]


def _money(cents: int) -> str:
    if cents >= 0:
        return f"{cents // 100}.{cents % 100:02d}"
    return f"-{-cents // 100}.{-cents % 100:02d}"


class _Bank:
    """The bank's state in compact arrays indexed by entity number, and its next events.

    A step emits exactly one event: a follow-up the bank scheduled earlier (a new user's first
    account and card, a travel card, a second account, a goal's deletion) when one is due,
    otherwise a spontaneous one drawn by weight (mostly card transactions).
    """

    def __init__(self, rng: random.Random, steps: int, start: datetime) -> None:
        self.rng = rng
        self.steps = steps
        self.now_ms = (start - _EPOCH) // timedelta(milliseconds=1)
        self.mean_gap_ms = max(_MIN_GAP_MS, _SPAN_MS // max(steps, 1_000))
        self.later = max(50, steps // 20)
        self.day = -1
        self.day_prefix = ""
        self.agenda: list[tuple[int, int, int, int]] = []
        self.scheduled = 0
        # per user
        self.country = bytearray()
        self.segment = bytearray()
        self.traveller = bytearray()
        self.main_account = array("i")
        self.main_card = array("i")
        self.second_card = array("i")
        self.travel_card = array("i")
        self.with_card = array("i")
        # per account, card, goal
        self.account_user = array("i")
        self.account_currency = bytearray()
        self.balance = array("q")
        self.card_account = array("i")
        self.goal_user = array("i")
        self.transactions = 0

    def run(self) -> Iterator[bytes]:
        rng = self.rng
        random_ = rng.random
        agenda = self.agenda
        double_gap = 2 * self.mean_gap_ms - 1
        encode = _encoder.encode
        for step in range(self.steps):
            self.now_ms += 1 + int(random_() * double_gap)
            if agenda and agenda[0][0] <= step:
                _, _, action, subject = heapq.heappop(agenda)
                kind, source, data = self._follow_up(step, action, subject)
            else:
                kind, source, data = self._spontaneous(step, random_())
            yield encode(
                {
                    "id": _envelope_id(rng),
                    "type": kind,
                    "source": source,
                    "occurred_at": self._timestamp(),
                    "version": 1,
                    "data": data,
                }
            )

    def _timestamp(self) -> str:
        day, ms = divmod(self.now_ms, _DAY_MS)
        if day != self.day:
            self.day = day
            self.day_prefix = f"{(_EPOCH_DAY + timedelta(days=day)).isoformat()}T"
        seconds, millis = divmod(ms, 1000)
        minutes, seconds = divmod(seconds, 60)
        return f"{self.day_prefix}{_CLOCK[minutes]}{seconds:02d}.{millis:03d}Z"

    def _schedule(self, step: int, within: int, action: int, subject: int) -> None:
        self.scheduled += 1
        due = step + 1 + int(self.rng.random() * within)
        heapq.heappush(self.agenda, (due, self.scheduled, action, subject))

    def _spontaneous(self, step: int, draw: float) -> _Event:
        if draw >= 0.135 and self.with_card:
            return self._transaction()
        if 0.058 <= draw < 0.135 and self.account_user:
            return self._balance_updated()
        if 0.032 <= draw < 0.058 and self.country:
            return self._goal_created(step)
        if 0.02 <= draw < 0.032 and self.country:
            return self._user_updated()
        return self._user_created(step)

    def _follow_up(self, step: int, action: int, subject: int) -> _Event:
        if action == _ISSUE_VISA:
            return self._card_issued(step, subject, "visa_standard")
        if action == _ISSUE_TRAVEL:
            return self._card_issued(step, self.main_account[subject], "travel_card")
        if action == _DELETE_GOAL:
            data = {"goal_id": _g(subject), "user_id": _u(self.goal_user[subject])}
            return "goal.goal_deleted", "goal-service", data
        if action == _OPEN_MAIN:
            home = _COUNTRY_CURRENCY[self.country[subject]]
            currency = home if self.rng.random() < 0.92 else self._other_currency(home)
        else:  # _OPEN_SECOND
            currency = self._other_currency(self.account_currency[self.main_account[subject]])
        account = self._open_account(subject, currency)
        if action == _OPEN_MAIN:
            self.main_account[subject] = account
            if self.rng.random() < 0.12:
                self._schedule(step, self.later, _OPEN_SECOND, subject)
        self._schedule(step, 8, _ISSUE_VISA, account)
        data = {
            "account_id": _a(account),
            "user_id": _u(subject),
            "currency": _CURRENCIES[currency],
        }
        return "account.account_opened", "account-service", data

    def _other_currency(self, currency: int) -> int:
        for code in ("EUR", "USD", "GBP"):
            if _CURRENCY_INDEX[code] != currency and self.rng.random() < 0.6:
                return _CURRENCY_INDEX[code]
        return _CURRENCY_INDEX["USD" if _CURRENCIES[currency] != "USD" else "EUR"]

    def _user_created(self, step: int) -> _Event:
        rng = self.rng
        user = len(self.country)
        country = _HOME_TABLE[int(rng.random() * len(_HOME_TABLE))]
        segment = 1 if rng.random() < 0.2 else 0
        self.country.append(country)
        self.segment.append(segment)
        self.traveller.append(1 if rng.random() < 0.35 else 0)
        for column in (self.main_account, self.main_card, self.second_card, self.travel_card):
            column.append(-1)
        self._schedule(step, 8, _OPEN_MAIN, user)
        data = {"user_id": _u(user), "country": _COUNTRIES[country], "segment": _SEGMENTS[segment]}
        return "user.user_created", "user-service", data

    def _user_updated(self) -> _Event:
        rng = self.rng
        user = int(rng.random() * len(self.country))
        data: dict[str, Any] = {"user_id": _u(user)}
        draw = rng.random()
        if draw >= 0.6:  # a move abroad, sometimes together with a new segment
            country = self.country[user]
            while country == self.country[user]:
                country = _MOVE_TABLE[int(rng.random() * len(_MOVE_TABLE))]
            self.country[user] = country
            data["country"] = _COUNTRIES[country]
        if draw < 0.6 or draw >= 0.8:
            self.segment[user] ^= 1
            data["segment"] = _SEGMENTS[self.segment[user]]
        return "user.user_updated", "user-service", data

    def _open_account(self, user: int, currency: int) -> int:
        account = len(self.account_user)
        self.account_user.append(user)
        self.account_currency.append(currency)
        opening = (50_000 + self.rng.random() * 450_000) * _UNITS_PER_EUR[currency]
        self.balance.append(int(opening))
        return account

    def _card_issued(self, step: int, account: int, product: str) -> _Event:
        user = self.account_user[account]
        card = len(self.card_account)
        self.card_account.append(account)
        if product == "travel_card":
            self.travel_card[user] = card
        elif self.main_card[user] < 0:
            self.main_card[user] = card
            self.with_card.append(user)
            if self.rng.random() < (0.65 if self.traveller[user] else 0.08):
                self._schedule(step, self.later, _ISSUE_TRAVEL, user)
        else:
            self.second_card[user] = card
        data = {
            "card_id": _c(card),
            "user_id": _u(user),
            "account_id": _a(account),
            "product": product,
        }
        return "card.card_issued", "card-service", data

    def _balance_updated(self) -> _Event:
        rng = self.rng
        account = int(rng.random() * len(self.account_user))
        currency = self.account_currency[account]
        units = _UNITS_PER_EUR[currency]
        balance = self.balance[account]
        if balance < 50_000 * units:  # payday
            balance += int((150_000 + rng.random() * 300_000) * units)
            self.balance[account] = balance
        available = balance - int(rng.random() * 0.1 * max(balance, 0))
        user = self.account_user[account]
        overdraft = int(100_000 * units) if self.segment[user] else 0
        data = {
            "account_id": _a(account),
            "user_id": _u(user),
            "balance": _money(balance),
            "available": _money(available),
            "usable": _money(available + overdraft),
            "currency": _CURRENCIES[currency],
        }
        return "account.balance_updated", "account-service", data

    def _goal_created(self, step: int) -> _Event:
        rng = self.rng
        user = int(rng.random() * len(self.country))
        goal = len(self.goal_user)
        self.goal_user.append(user)
        if rng.random() < (0.6 if self.traveller[user] else 0.15):
            category = 0
        else:
            category = _OTHER_GOALS[int(rng.random() * len(_OTHER_GOALS))]
        names = _GOAL_NAMES[category]
        low, high = _GOAL_EUR_RANGE[category]
        account = self.main_account[user]
        currency = (
            self.account_currency[account]
            if account >= 0
            else _COUNTRY_CURRENCY[self.country[user]]
        )
        target = round((low + rng.random() * (high - low)) * _UNITS_PER_EUR[currency], -1)
        if rng.random() < 0.2:
            self._schedule(step, self.later * 2, _DELETE_GOAL, goal)
        data = {
            "goal_id": _g(goal),
            "user_id": _u(user),
            "name": names[int(rng.random() * len(names))],
            "category": _GOAL_CATEGORIES[category],
            "target_amount": _money(int(target) * 100),
            "currency": _CURRENCIES[currency],
        }
        return "goal.goal_created", "goal-service", data

    def _transaction(self) -> _Event:
        random_ = self.rng.random
        user = self.with_card[int(random_() * len(self.with_card))]
        travel_card = self.travel_card[user]
        second_card = self.second_card[user]
        foreign = random_() < (0.45 if self.traveller[user] else 0.04)
        # Travel card holders pay abroad mostly with it; the talk's KPI counts those who don't.
        if travel_card >= 0 and random_() < (0.75 if foreign else 0.05):
            card = travel_card
        elif second_card >= 0 and random_() < 0.3:
            card = second_card
        else:
            card = self.main_card[user]
        account = self.card_account[card]
        billed = self.account_currency[account]
        if foreign:
            country = _TRAVEL_TABLE[int(random_() * len(_TRAVEL_TABLE))]
            while _COUNTRY_CURRENCY[country] == billed:
                country = _TRAVEL_TABLE[int(random_() * len(_TRAVEL_TABLE))]
            category = _FOREIGN_CATEGORIES[int(random_() * len(_FOREIGN_CATEGORIES))]
        else:
            country = self.country[user]
            if _COUNTRY_CURRENCY[country] != billed:
                paying = _COUNTRIES_PAYING[billed]
                country = paying[int(random_() * len(paying))]
            category = _DOMESTIC_CATEGORIES[int(random_() * len(_DOMESTIC_CATEGORIES))]
        charged = _COUNTRY_CURRENCY[country]
        draw = random_()
        eur_cents = _TYPICAL_EUR_CENTS[category] * (0.1 + 2.7 * draw * draw)
        amount = 1 + int(eur_cents * _UNITS_PER_EUR[charged])
        billing = amount if charged == billed else _convert(amount, charged, billed)
        self.balance[account] -= billing
        merchants = _MERCHANTS[category]
        self.transactions += 1
        data = {
            "transaction_id": f"t-{self.transactions:09d}",
            "card_id": _c(card),
            "user_id": _u(user),
            "amount": _money(amount),
            "currency": _CURRENCIES[charged],
            "billing_amount": _money(billing),
            "billing_currency": _CURRENCIES[billed],
            "merchant": merchants[int(random_() * len(merchants))],
            "merchant_category": _CATEGORIES[category],
            "merchant_country": _COUNTRIES[country],
        }
        return "card.transaction_settled", "card-service", data


def _convert(cents: int, charged: int, billed: int) -> int:
    """`cents` at the fixed rate, rounded half to even as Decimal.quantize would."""
    whole, rest = divmod(cents * _RATE_MICROS[charged, billed], 1_000_000)
    if 2 * rest > 1_000_000 or (2 * rest == 1_000_000 and whole % 2):
        whole += 1
    return whole


def _u(user: int) -> str:
    return f"u-{user:07d}"


def _a(account: int) -> str:
    return f"a-{account:07d}"


def _c(card: int) -> str:
    return f"c-{card:07d}"


def _g(goal: int) -> str:
    return f"g-{goal:07d}"


# --- what delivery does to the stream ---------------------------------------------------------


class _Sample:
    """Envelopes seen so far to send again: recent ones (a redelivery) and any earlier one
    (a replay), kept in bounded memory as a ring of the latest and a uniform reservoir."""

    def __init__(self, rng: random.Random, size: int = 1024) -> None:
        self.rng = rng
        self.size = size
        self.recent: deque[bytes] = deque(maxlen=size)
        self.reservoir: list[bytes] = []
        self.seen = 0

    def add(self, envelope: bytes) -> None:
        self.recent.append(envelope)
        self.seen += 1
        if len(self.reservoir) < self.size:
            self.reservoir.append(envelope)
        else:
            slot = int(self.rng.random() * self.seen)
            if slot < self.size:
                self.reservoir[slot] = envelope

    def pick(self) -> bytes:
        random_ = self.rng.random
        pool: deque[bytes] | list[bytes] = self.recent if random_() < 0.5 else self.reservoir
        return pool[int(random_() * len(pool))]


def _interleave(
    upstream: Iterator[bytes], counts: list[int], rng: random.Random
) -> Iterator[tuple[int, bytes | None]]:
    """Merge `counts[0]` upstream items with `counts[1:]` extras of each kind, uniformly
    placed but never first (an extra needs something before it); yields (kind, item or None)."""
    first = next(upstream)
    counts = [counts[0] - 1, *counts[1:]]
    yield 0, first
    left = sum(counts)
    while left:
        draw = rng.random() * left
        kind = 0
        while draw >= counts[kind]:
            draw -= counts[kind]
            kind += 1
        counts[kind] -= 1
        left -= 1
        yield kind, next(upstream) if kind == 0 else None


def _republish(
    stream: Iterator[bytes], business: int, count: int, rng: random.Random
) -> Iterator[bytes]:
    sample = _Sample(rng)
    for _, envelope in _interleave(stream, [business, count], rng):
        if envelope is None:
            earlier = sample.pick()
            # Business envelopes start with `{"id":"…"`: only the id changes on republication.
            id_end = earlier.index(b'"', 7)
            yield b'{"id":"' + _envelope_id(rng).encode() + earlier[id_end:]
        else:
            sample.add(envelope)
            yield envelope


def _shuffle(stream: Iterator[bytes], window: int, rng: random.Random) -> Iterator[bytes]:
    buffer: list[bytes] = []
    for envelope in stream:
        if len(buffer) < window:
            buffer.append(envelope)
            continue
        slot = int(rng.random() * window)
        yield buffer[slot]
        buffer[slot] = envelope
    rng.shuffle(buffer)
    yield from buffer


def _redeliver(
    stream: Iterator[bytes], upstream: int, duplicates: int, bad: int, rng: random.Random
) -> Iterator[bytes]:
    sample = _Sample(rng)
    last = b""
    for kind, envelope in _interleave(stream, [upstream, duplicates, bad], rng):
        if envelope is not None:
            sample.add(envelope)
            last = envelope
            yield envelope
        elif kind == 1:
            yield sample.pick()
        else:
            yield _bad_line(rng, _occurred_at(last))


def _occurred_at(envelope: bytes) -> str:
    start = envelope.index(b'"occurred_at":"') + 15
    return envelope[start : envelope.index(b'"', start)].decode()


def _envelope_id(rng: random.Random) -> str:
    h = f"{(rng.getrandbits(128) & _UUID_MASK) | _UUID_V4:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_UNKNOWN_TYPES: Final = ("card.card_frozen", "loan.loan_opened", "user.user_deleted")


def _bad_line(rng: random.Random, occurred_at: str) -> bytes:
    """An invalid message that looks like a transaction, with ids that no valid one carries."""
    bad_id = _envelope_id(rng)
    envelope: dict[str, Any] = {
        "id": bad_id,
        "type": "card.transaction_settled",
        "source": "card-service",
        "occurred_at": occurred_at,
        "version": 1,
        "data": {
            "transaction_id": f"t-{bad_id}",
            "card_id": f"c-{bad_id}",
            "user_id": f"u-{bad_id}",
            "amount": "42.00",
            "currency": "EUR",
            "billing_amount": "42.00",
            "billing_currency": "EUR",
            "merchant": "Nowhere Ltd",
            "merchant_category": "shopping",
            "merchant_country": "DE",
        },
    }
    data = envelope["data"]
    flaw = int(rng.random() * 9)
    if flaw == 0:  # cut off mid-write
        encoded = _encoder.encode(envelope)
        return encoded[: 1 + int(rng.random() * (len(encoded) - 2))]
    if flaw == 1:
        return b"\x00\xff not json at all"
    if flaw == 2:
        del envelope[("id", "type", "occurred_at", "data")[int(rng.random() * 4)]]
    elif flaw == 3:
        del data[("transaction_id", "amount", "billing_currency")[int(rng.random() * 3)]]
    elif flaw == 4:  # a float on the wire, which the contract forbids for amounts
        data["amount"] = 42.0
    elif flaw == 5:
        data["billing_amount"] = "abc"
    elif flaw == 6:
        envelope["version"] = "1"
    elif flaw == 7:
        envelope["type"] = _UNKNOWN_TYPES[int(rng.random() * len(_UNKNOWN_TYPES))]
    else:
        envelope["occurred_at"] = occurred_at.removesuffix("Z")
    return _encoder.encode(envelope)
