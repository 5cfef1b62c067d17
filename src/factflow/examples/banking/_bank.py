"""The bank itself: its compact state and the business events it emits, one per step."""

from __future__ import annotations

import heapq
import random
from array import array
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, Final

import msgspec

from ._world import (
    CATEGORIES,
    CLOCK,
    COUNTRIES,
    COUNTRIES_PAYING,
    COUNTRY_CURRENCY,
    CURRENCIES,
    CURRENCY_INDEX,
    DAY_MS,
    DOMESTIC_CATEGORIES,
    EPOCH,
    EPOCH_DAY,
    FOREIGN_CATEGORIES,
    GOAL_CATEGORIES,
    GOAL_EUR_RANGE,
    GOAL_NAMES,
    HOME_TABLE,
    MERCHANTS,
    MIN_GAP_MS,
    MOVE_TABLE,
    OTHER_GOALS,
    SEGMENTS,
    SPAN_MS,
    TRAVEL_TABLE,
    TYPICAL_EUR_CENTS,
    UNITS_PER_EUR,
    account_id,
    card_id,
    convert,
    envelope_id,
    goal_id,
    money,
    user_id,
)

__all__ = ["Bank", "Recorder"]

#: Called with each business event as it is emitted: its type, `occurred_at` (RFC 3339 text)
#: and `data` (not to be changed), in `occurred_at` order, exactly once.
Recorder = Callable[[str, str, dict[str, Any]], None]

# Things the bank schedules for later: an action, due at a step, about an entity.
_OPEN_MAIN, _ISSUE_VISA, _ISSUE_TRAVEL, _OPEN_SECOND, _DELETE_GOAL = range(5)

_encoder: Final = msgspec.json.Encoder()

_Event = tuple[str, str, dict[str, Any]]


class Bank:
    """The bank's state in compact arrays indexed by entity number, and its next events.

    A step emits exactly one event: a follow-up the bank scheduled earlier (a new user's first
    account and card, a travel card, a second account, a goal's deletion) when one is due,
    otherwise a spontaneous one drawn by weight (mostly card transactions).
    """

    def __init__(self, rng: random.Random, steps: int, start: datetime) -> None:
        self.rng = rng
        self.steps = steps
        self.now_ms = (start - EPOCH) // timedelta(milliseconds=1)
        self.mean_gap_ms = max(MIN_GAP_MS, SPAN_MS // max(steps, 1_000))
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

    def run(self, record: Recorder | None = None) -> Iterator[bytes]:
        """The business events as raw envelopes, each passed to `record` first if given."""
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
            id_ = envelope_id(rng)  # drawn before anything else of the step's envelope
            occurred_at = self._timestamp()
            if record is not None:
                record(kind, occurred_at, data)
            yield encode(
                {
                    "id": id_,
                    "type": kind,
                    "source": source,
                    "occurred_at": occurred_at,
                    "version": 1,
                    "data": data,
                }
            )

    def _timestamp(self) -> str:
        day, ms = divmod(self.now_ms, DAY_MS)
        if day != self.day:
            self.day = day
            self.day_prefix = f"{(EPOCH_DAY + timedelta(days=day)).isoformat()}T"
        seconds, millis = divmod(ms, 1000)
        minutes, seconds = divmod(seconds, 60)
        return f"{self.day_prefix}{CLOCK[minutes]}{seconds:02d}.{millis:03d}Z"

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
            data = {"goal_id": goal_id(subject), "user_id": user_id(self.goal_user[subject])}
            return "goal.goal_deleted", "goal-service", data
        if action == _OPEN_MAIN:
            home = COUNTRY_CURRENCY[self.country[subject]]
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
            "account_id": account_id(account),
            "user_id": user_id(subject),
            "currency": CURRENCIES[currency],
        }
        return "account.account_opened", "account-service", data

    def _other_currency(self, currency: int) -> int:
        for code in ("EUR", "USD", "GBP"):
            if CURRENCY_INDEX[code] != currency and self.rng.random() < 0.6:
                return CURRENCY_INDEX[code]
        return CURRENCY_INDEX["USD" if CURRENCIES[currency] != "USD" else "EUR"]

    def _user_created(self, step: int) -> _Event:
        rng = self.rng
        user = len(self.country)
        country = HOME_TABLE[int(rng.random() * len(HOME_TABLE))]
        segment = 1 if rng.random() < 0.2 else 0
        self.country.append(country)
        self.segment.append(segment)
        self.traveller.append(1 if rng.random() < 0.35 else 0)
        for column in (self.main_account, self.main_card, self.second_card, self.travel_card):
            column.append(-1)
        self._schedule(step, 8, _OPEN_MAIN, user)
        data = {
            "user_id": user_id(user),
            "country": COUNTRIES[country],
            "segment": SEGMENTS[segment],
        }
        return "user.user_created", "user-service", data

    def _user_updated(self) -> _Event:
        rng = self.rng
        user = int(rng.random() * len(self.country))
        data: dict[str, Any] = {"user_id": user_id(user)}
        draw = rng.random()
        if draw >= 0.6:  # a move abroad, sometimes together with a new segment
            country = self.country[user]
            while country == self.country[user]:
                country = MOVE_TABLE[int(rng.random() * len(MOVE_TABLE))]
            self.country[user] = country
            data["country"] = COUNTRIES[country]
        if draw < 0.6 or draw >= 0.8:
            self.segment[user] ^= 1
            data["segment"] = SEGMENTS[self.segment[user]]
        return "user.user_updated", "user-service", data

    def _open_account(self, user: int, currency: int) -> int:
        account = len(self.account_user)
        self.account_user.append(user)
        self.account_currency.append(currency)
        opening = (50_000 + self.rng.random() * 450_000) * UNITS_PER_EUR[currency]
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
            "card_id": card_id(card),
            "user_id": user_id(user),
            "account_id": account_id(account),
            "product": product,
        }
        return "card.card_issued", "card-service", data

    def _balance_updated(self) -> _Event:
        rng = self.rng
        account = int(rng.random() * len(self.account_user))
        currency = self.account_currency[account]
        units = UNITS_PER_EUR[currency]
        balance = self.balance[account]
        if balance < 50_000 * units:  # payday
            balance += int((150_000 + rng.random() * 300_000) * units)
            self.balance[account] = balance
        available = balance - int(rng.random() * 0.1 * max(balance, 0))
        user = self.account_user[account]
        overdraft = int(100_000 * units) if self.segment[user] else 0
        data = {
            "account_id": account_id(account),
            "user_id": user_id(user),
            "balance": money(balance),
            "available": money(available),
            "usable": money(available + overdraft),
            "currency": CURRENCIES[currency],
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
            category = OTHER_GOALS[int(rng.random() * len(OTHER_GOALS))]
        names = GOAL_NAMES[category]
        low, high = GOAL_EUR_RANGE[category]
        account = self.main_account[user]
        currency = (
            self.account_currency[account] if account >= 0 else COUNTRY_CURRENCY[self.country[user]]
        )
        target = round((low + rng.random() * (high - low)) * UNITS_PER_EUR[currency], -1)
        if rng.random() < 0.2:
            self._schedule(step, self.later * 2, _DELETE_GOAL, goal)
        data = {
            "goal_id": goal_id(goal),
            "user_id": user_id(user),
            "name": names[int(rng.random() * len(names))],
            "category": GOAL_CATEGORIES[category],
            "target_amount": money(int(target) * 100),
            "currency": CURRENCIES[currency],
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
            country = TRAVEL_TABLE[int(random_() * len(TRAVEL_TABLE))]
            while COUNTRY_CURRENCY[country] == billed:
                country = TRAVEL_TABLE[int(random_() * len(TRAVEL_TABLE))]
            category = FOREIGN_CATEGORIES[int(random_() * len(FOREIGN_CATEGORIES))]
        else:
            country = self.country[user]
            if COUNTRY_CURRENCY[country] != billed:
                paying = COUNTRIES_PAYING[billed]
                country = paying[int(random_() * len(paying))]
            category = DOMESTIC_CATEGORIES[int(random_() * len(DOMESTIC_CATEGORIES))]
        charged = COUNTRY_CURRENCY[country]
        draw = random_()
        eur_cents = TYPICAL_EUR_CENTS[category] * (0.1 + 2.7 * draw * draw)
        amount = 1 + int(eur_cents * UNITS_PER_EUR[charged])
        billing = amount if charged == billed else convert(amount, charged, billed)
        self.balance[account] -= billing
        merchants = MERCHANTS[category]
        self.transactions += 1
        data = {
            "transaction_id": f"t-{self.transactions:09d}",
            "card_id": card_id(card),
            "user_id": user_id(user),
            "amount": money(amount),
            "currency": CURRENCIES[charged],
            "billing_amount": money(billing),
            "billing_currency": CURRENCIES[billed],
            "merchant": merchants[int(random_() * len(merchants))],
            "merchant_category": CATEGORIES[category],
            "merchant_country": COUNTRIES[country],
        }
        return "card.transaction_settled", "card-service", data
