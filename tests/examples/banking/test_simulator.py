"""The banking simulator yields contract-conforming, causal, reproducible streams, and its
delivery options (duplicates, re-publications, shuffling, bad lines) change arrival only, never
the business events; the oracle's KPIs are checked by hand on small cases."""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest

from banking_oracle import KPI_NAMES, expected_kpis, format_decimal, parse_valid
from factflow.examples.banking.simulator import EXCHANGE_RATES, SimulationOptions, simulate

FIELDS = {
    "user.user_created": {"user_id", "country", "segment"},
    "user.user_updated": {"user_id", "country", "segment"},
    "account.account_opened": {"account_id", "user_id", "currency"},
    "account.balance_updated": {
        "account_id", "user_id", "balance", "available", "usable", "currency",
    },
    "card.card_issued": {"card_id", "user_id", "account_id", "product"},
    "card.transaction_settled": {
        "transaction_id", "card_id", "user_id", "amount", "currency", "billing_amount",
        "billing_currency", "merchant", "merchant_category", "merchant_country",
    },
    "goal.goal_created": {"goal_id", "user_id", "name", "category", "target_amount", "currency"},
    "goal.goal_deleted": {"goal_id", "user_id"},
}  # fmt: skip
AMOUNTS = {"balance", "available", "usable", "amount", "billing_amount", "target_amount"}
SOURCES = {"user": "user-service", "account": "account-service", "card": "card-service"}
MONEY = re.compile(r"-?\d+\.\d\d")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

CLEAN = SimulationOptions(events=5_000, seed=42)
MESSY = SimulationOptions(
    events=5_000, seed=42, duplicates=0.04, republications=0.03, shuffle_window=200, bad_lines=0.02
)


@pytest.fixture(scope="module")
def clean() -> list[dict[str, Any]]:
    return [json.loads(m) for m in simulate(CLEAN)]


def business_events(options: SimulationOptions) -> int:
    """How many business events `options` holds: the documented formula."""
    extras = (options.duplicates, options.republications, options.bad_lines)
    return options.events - sum(round(options.events * f) for f in extras)


def same_business(options: SimulationOptions) -> SimulationOptions:
    """The clean stream of the same business events as `options`."""
    return SimulationOptions(events=business_events(options), seed=options.seed)


# --- the stream ------------------------------------------------------------------------------


def test_the_same_options_give_the_same_bytes_and_another_seed_other_bytes() -> None:
    assert list(simulate(MESSY)) == list(simulate(MESSY))
    other = SimulationOptions(events=MESSY.events, seed=MESSY.seed + 1)
    assert list(simulate(other))[:10] != list(simulate(same_business(MESSY)))[:10]


@pytest.mark.parametrize(
    "options",
    [
        SimulationOptions(events=0),
        SimulationOptions(events=1),
        SimulationOptions(events=3, duplicates=0.34, bad_lines=0.34),
        SimulationOptions(events=777, seed=5, shuffle_window=10),
        SimulationOptions(events=1_001, duplicates=0.1, republications=0.1, bad_lines=0.1),
    ],
)
def test_exactly_the_requested_number_of_envelopes(options: SimulationOptions) -> None:
    assert sum(1 for _ in simulate(options)) == options.events


@pytest.mark.parametrize(
    "options",
    [
        {"events": -1},
        {"events": 10, "shuffle_window": -1},
        {"events": 10, "duplicates": 1.5},
        {"events": 10, "duplicates": 0.5, "bad_lines": 0.5},
        {"events": 10, "start": datetime(2026, 1, 1)},
    ],
)
def test_impossible_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SimulationOptions(**options)


def test_every_envelope_follows_the_contract(clean: list[dict[str, Any]]) -> None:
    for envelope in clean:
        assert list(envelope) == ["id", "type", "source", "occurred_at", "version", "data"]
        assert uuid.UUID(envelope["id"]).version == 4
        kind, data = envelope["type"], envelope["data"]
        assert envelope["source"] == SOURCES.get(kind.split(".")[0], "goal-service")
        assert TIMESTAMP.fullmatch(envelope["occurred_at"])
        assert envelope["version"] == 1
        if kind == "user.user_updated":
            assert {"user_id"} < set(data) <= FIELDS[kind]
        else:
            assert set(data) == FIELDS[kind]
        assert all(isinstance(value, str) for value in data.values())
        for field in AMOUNTS & set(data):
            assert MONEY.fullmatch(data[field]), (field, data[field])
        assert parse_valid(json.dumps(envelope).encode()) is not None


def test_foreign_purchases_are_billed_at_the_fixed_rate_and_domestic_ones_as_charged(
    clean: list[dict[str, Any]],
) -> None:
    settled = [e["data"] for e in clean if e["type"] == "card.transaction_settled"]
    foreign = [t for t in settled if t["currency"] != t["billing_currency"]]
    for t in settled:
        amount = Decimal(t["amount"])
        if t in foreign:
            rate = EXCHANGE_RATES[t["currency"], t["billing_currency"]]
            billed = (amount * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
            assert Decimal(t["billing_amount"]) == billed
        else:
            assert t["billing_amount"] == t["amount"]
        assert amount > 0
    assert 0.15 <= len(foreign) / len(settled) <= 0.25
    assert len(settled) / len(clean) > 0.6, "transactions are the bulk of the stream"


def test_business_time_strictly_increases_over_several_months(
    clean: list[dict[str, Any]],
) -> None:
    times = [datetime.fromisoformat(e["occurred_at"]) for e in clean]
    assert all(a < b for a, b in itertools.pairwise(times))
    assert times[0] > CLEAN.start
    assert (times[-1] - times[0]).days > 120


def test_every_event_follows_what_it_refers_to(clean: list[dict[str, Any]]) -> None:
    users: set[str] = set()
    accounts: dict[str, dict[str, str]] = {}
    cards: dict[str, dict[str, str]] = {}
    goals: set[str] = set()
    for envelope in clean:  # in occurred_at order, as the previous test shows
        kind, data = envelope["type"], envelope["data"]
        if kind != "user.user_created":
            assert data["user_id"] in users, envelope
        if kind == "user.user_created":
            users.add(data["user_id"])
        elif kind == "account.account_opened":
            accounts[data["account_id"]] = data
        elif kind == "account.balance_updated":
            assert accounts[data["account_id"]]["currency"] == data["currency"]
        elif kind == "card.card_issued":
            assert accounts[data["account_id"]]["user_id"] == data["user_id"]
            cards[data["card_id"]] = data
        elif kind == "card.transaction_settled":
            card = cards[data["card_id"]]
            assert card["user_id"] == data["user_id"]
            assert accounts[card["account_id"]]["currency"] == data["billing_currency"]
        elif kind == "goal.goal_created":
            goals.add(data["goal_id"])
        elif kind == "goal.goal_deleted":
            assert data["goal_id"] in goals
            goals.remove(data["goal_id"])


def test_the_population_is_realistic(clean: list[dict[str, Any]]) -> None:
    kinds = Counter(e["type"] for e in clean)
    assert CLEAN.events / 80 < kinds["user.user_created"] < CLEAN.events / 30
    assert all(kinds[kind] for kind in FIELDS)
    created = [e["data"] for e in clean if e["type"] == "user.user_created"]
    assert {"DK", "SE", "NO"} <= {u["country"] for u in created}
    segments = Counter(u["segment"] for u in created)
    assert segments["standard"] > segments["plus"] > 0
    updates = [e["data"] for e in clean if e["type"] == "user.user_updated"]
    assert {frozenset(u) for u in updates} == {
        frozenset({"user_id", "segment"}),
        frozenset({"user_id", "country"}),
        frozenset({"user_id", "country", "segment"}),
    }
    products = Counter(e["data"]["product"] for e in clean if e["type"] == "card.card_issued")
    assert products["visa_standard"] > products["travel_card"] > 0


def test_the_segment_at_a_transaction_often_differs_from_the_current_one(
    clean: list[dict[str, Any]],
) -> None:
    segment: dict[str, str] = {}
    at_purchase: list[tuple[str, str]] = []
    for envelope in clean:
        data = envelope["data"]
        if "segment" in data:
            segment[data["user_id"]] = data["segment"]
        elif envelope["type"] == "card.transaction_settled":
            at_purchase.append((data["user_id"], segment[data["user_id"]]))
    changed = sum(segment[user] != then for user, then in at_purchase)
    assert 0.02 < changed / len(at_purchase) < 0.5


# --- delivery --------------------------------------------------------------------------------


def test_bad_lines_are_invalid_messages_of_every_kind_that_the_oracle_skips() -> None:
    options = SimulationOptions(events=2_000, seed=7, bad_lines=0.1)
    messages = list(simulate(options))
    bad = [m for m in messages if parse_valid(m) is None]
    assert len(bad) == round(options.events * options.bad_lines)
    reasons = Counter(_flaw(m) for m in bad)
    assert set(reasons) == {"not json", "missing", "wrong type", "unknown type", "naive time"}
    assert expected_kpis(messages) == expected_kpis(simulate(same_business(options)))


def _flaw(message: bytes) -> str:
    try:
        envelope = json.loads(message)
    except ValueError:
        return "not json"
    if not {"id", "type", "source", "occurred_at", "version", "data"} <= set(envelope):
        return "missing"
    if envelope["type"] not in FIELDS:
        return "unknown type"
    if not FIELDS[envelope["type"]] <= set(envelope["data"]):
        return "missing"
    if not envelope["occurred_at"].endswith("Z"):
        return "naive time"
    return "wrong type"


def test_duplicates_deliver_an_earlier_envelope_again_byte_for_byte() -> None:
    options = SimulationOptions(events=2_000, seed=8, duplicates=0.1)
    messages = list(simulate(options))
    first: dict[str, bytes] = {}
    repeated = 0
    for message in messages:
        envelope_id = json.loads(message)["id"]
        if envelope_id in first:
            assert first[envelope_id] == message
            repeated += 1
        first.setdefault(envelope_id, message)
    assert repeated == round(options.events * options.duplicates)
    assert set(messages) == set(simulate(same_business(options)))


def test_republications_carry_a_new_id_and_the_same_event_later() -> None:
    options = SimulationOptions(events=2_000, seed=9, republications=0.1)
    messages = [json.loads(m) for m in simulate(options)]
    assert len({m["id"] for m in messages}) == options.events
    seen: dict[str, int] = {}
    extra = 0
    for position, message in enumerate(messages):
        event = json.dumps({k: v for k, v in message.items() if k != "id"}, sort_keys=True)
        if event in seen:
            assert seen[event] < position
            extra += 1
        seen.setdefault(event, position)
    assert extra == round(options.events * options.republications)
    originals = {json.dumps(m).encode() for m in messages}
    clean = {json.dumps(json.loads(m)).encode() for m in simulate(same_business(options))}
    assert clean <= originals


def test_a_shuffle_window_changes_arrival_order_only_and_within_the_window() -> None:
    window = 50
    shuffled = list(simulate(SimulationOptions(events=2_000, seed=10, shuffle_window=window)))
    in_order = list(simulate(SimulationOptions(events=2_000, seed=10)))
    assert shuffled != in_order
    assert sorted(shuffled) == sorted(in_order)
    position = {m: i for i, m in enumerate(in_order)}
    assert all(position[m] - i < window for i, m in enumerate(shuffled)), "at most k-1 early"


def test_delivery_never_changes_the_kpis() -> None:
    messages = list(simulate(MESSY))
    assert expected_kpis(messages) == expected_kpis(simulate(same_business(MESSY)))


def test_every_kpi_has_a_non_trivial_answer_at_5000_events(clean: list[dict[str, Any]]) -> None:
    kpis = expected_kpis(json.dumps(e).encode() for e in clean)
    travel_card_users = {
        e["data"]["user_id"]
        for e in clean
        if e["type"] == "card.card_issued" and e["data"]["product"] == "travel_card"
    }
    assert 0 < kpis["travel_card_foreign_visa_users"][0]["users"] < len(travel_card_users)
    assert len(kpis["active_users_by_month"]) >= 5
    spend = kpis["spend_by_currency"]
    assert any(r["currency"] == r["billing_currency"] for r in spend)
    assert any(r["currency"] != r["billing_currency"] for r in spend)
    assert {r["category"] for r in kpis["goals_by_category"]} == {
        "travel", "home", "car", "education", "other",
    }  # fmt: skip
    deleted = sum(e["type"] == "goal.goal_deleted" for e in clean)
    created = sum(e["type"] == "goal.goal_created" for e in clean)
    assert deleted > 0
    assert sum(r["goals"] for r in kpis["goals_by_category"]) == created - deleted
    assert {r["segment"] for r in kpis["spend_by_segment"]} == {"standard", "plus"}


# --- the oracle, by hand ---------------------------------------------------------------------

_ids = itertools.count()


def msg(kind: str, at: str, envelope_id: str | None = None, **data: Any) -> bytes:
    """An envelope of `kind` at `at` ("2026-03-01T12:00:00Z"); the id sorts in writing order."""
    source = {"user": "user-service", "goal": "goal-service"}.get(kind.split(".")[0], "x")
    envelope = {
        "id": envelope_id or f"e-{next(_ids):06d}",
        "type": kind,
        "source": source,
        "occurred_at": at,
        "version": 1,
        "data": data,
    }
    return json.dumps(envelope).encode()


def user(at: str, user_id: str = "u1", segment: str = "standard") -> bytes:
    return msg("user.user_created", at, user_id=user_id, country="DK", segment=segment)


def update(at: str, user_id: str = "u1", envelope_id: str | None = None, **fields: Any) -> bytes:
    return msg("user.user_updated", at, envelope_id, user_id=user_id, **fields)


def tx(
    at: str,
    transaction_id: str,
    amount: Any = "10.00",
    envelope_id: str | None = None,
    **fields: Any,
) -> bytes:
    data = {
        "transaction_id": transaction_id,
        "card_id": "c1",
        "user_id": "u1",
        "amount": amount,
        "currency": "DKK",
        "billing_amount": amount,
        "billing_currency": "DKK",
        "merchant": "Netto",
        "merchant_category": "groceries",
        "merchant_country": "DK",
    }
    return msg("card.transaction_settled", at, envelope_id, **(data | fields))


def card(at: str, card_id: str, product: str, user_id: str = "u1") -> bytes:
    kind = "card.card_issued"
    return msg(kind, at, card_id=card_id, user_id=user_id, account_id="a1", product=product)


def goal(at: str, goal_id: str, category: str = "travel", user_id: str = "u1") -> bytes:
    return msg(
        "goal.goal_created",
        at,
        goal_id=goal_id,
        user_id=user_id,
        name="Trip",
        category=category,
        target_amount="1000.00",
        currency="DKK",
    )


def delete(at: str, goal_id: str, user_id: str = "u1") -> bytes:
    return msg("goal.goal_deleted", at, goal_id=goal_id, user_id=user_id)


def kpi(name: str, messages: Iterable[bytes]) -> list[dict[str, object]]:
    return expected_kpis(messages)[name]


@pytest.mark.parametrize(
    ("value", "text"),
    [("1234.5", "1234.50"), ("12.345", "12.345"), ("0", "0.00"), ("-0.00", "0.00"),
     ("7", "7.00"), ("1E+3", "1000.00"), ("-3.1000", "-3.10"), ("0.001", "0.001")],
)  # fmt: skip
def test_decimals_keep_two_places_at_least_and_no_trailing_zeros_beyond(
    value: str, text: str
) -> None:
    assert format_decimal(Decimal(value)) == text


def test_no_messages_give_the_zero_row_or_no_rows() -> None:
    assert expected_kpis([]) == {
        name: [{"users": 0}] if name == "travel_card_foreign_visa_users" else []
        for name in KPI_NAMES
    }


@pytest.mark.parametrize(
    "message",
    [
        b"not json",
        b'{"id": "x"',
        b"[1, 2]",
        b"\xff\xfe",
        user("2026-01-01T00:00:00")[:-30],
        tx("2026-01-01T10:00:00Z", "bad", amount=10.5),
        tx("2026-01-01T10:00:00Z", "bad", amount="abc"),
        tx("2026-01-01T10:00:00Z", "bad", amount="NaN"),
        tx("2026-01-01T10:00:00", "bad"),
        tx("2026-01-01", "bad"),
        tx("yesterday", "bad"),
        msg("card.card_frozen", "2026-01-01T10:00:00Z", card_id="c1"),
        msg("card.transaction_settled", "2026-01-01T10:00:00Z", transaction_id="bad"),
        update("2026-01-01T10:00:00Z", segment="gold"),
        update("2026-01-01T10:00:00Z", country=None),
        json.dumps({"id": "x", "type": "goal.goal_deleted", "source": "s", "version": 1,
                    "occurred_at": "2026-01-01T10:00:00Z"}).encode(),
        json.dumps({"id": "x", "type": "goal.goal_deleted", "source": "s", "version": True,
                    "occurred_at": "2026-01-01T10:00:00Z",
                    "data": {"goal_id": "g", "user_id": "u"}}).encode(),
    ],
)  # fmt: skip
def test_invalid_messages_are_skipped(message: bytes) -> None:
    assert parse_valid(message) is None
    assert kpi("spend_by_currency", [message]) == []


def test_offsets_are_instants_and_months_are_utc() -> None:
    messages = [
        tx("2026-02-01T00:30:00+01:00", "t1"),  # still January in UTC
        tx("2026-01-31T23:59:59.999Z", "t2", user_id="u2"),
        tx("2026-02-01T00:00:00Z", "t3", user_id="u2"),
    ]
    assert kpi("active_users_by_month", messages) == [
        {"month": "2026-01", "users": 2},
        {"month": "2026-02", "users": 1},
    ]


def test_a_transaction_counts_once_across_envelopes() -> None:
    first = tx("2026-01-01T10:00:00Z", "t1", amount="10.10")
    replay = first.replace(b'"id": "', b'"id": "replay-')
    other = tx("2026-01-01T11:00:00Z", "t2", amount="0.40")
    assert kpi("spend_by_currency", [first, replay, first, other, replay]) == [
        {"currency": "DKK", "billing_currency": "DKK", "billing_amount": "10.50"}
    ]


def test_spend_by_segment_takes_the_segment_of_the_time_of_purchase() -> None:
    messages = [
        update("2026-01-03T00:00:00Z", segment="plus"),  # arrives before the older events
        tx("2026-01-02T00:00:00Z", "t-standard", amount="1.00"),
        user("2026-01-01T00:00:00Z"),
        update("2026-01-04T00:00:00Z", country="SE"),  # no segment: still plus
        tx("2026-01-05T00:00:00Z", "t-plus", amount="2.00"),
        tx("2026-01-05T00:00:00Z", "t-unknown", amount="4.00", user_id="u-nobody"),
        tx("2025-12-31T00:00:00Z", "t-before-sign-up", amount="8.00"),
    ]
    assert kpi("spend_by_segment", messages) == [
        {"segment": "plus", "billing_currency": "DKK", "billing_amount": "2.00"},
        {"segment": "standard", "billing_currency": "DKK", "billing_amount": "1.00"},
        {"segment": "unknown", "billing_currency": "DKK", "billing_amount": "12.00"},
    ]


def test_a_segment_change_at_the_very_instant_of_a_purchase_already_counts() -> None:
    at = "2026-01-02T00:00:00Z"
    messages = [
        user("2026-01-01T00:00:00Z"),
        tx(at, "t1", envelope_id="a"),
        update(at, envelope_id="z-late-id", segment="plus"),
        update(at, envelope_id="b", segment="standard"),  # same instant, earlier id: loses
    ]
    assert kpi("spend_by_segment", messages) == [
        {"segment": "plus", "billing_currency": "DKK", "billing_amount": "10.00"}
    ]


def test_goals_count_unless_deleted_after_their_creation() -> None:
    messages = [
        delete("2026-01-05T00:00:00Z", "g-deleted"),  # arrives before its creation
        goal("2026-01-01T00:00:00Z", "g-deleted"),
        goal("2026-01-01T00:00:00Z", "g-kept", category="car"),
        delete("2026-01-01T00:00:00Z", "g-recreated"),  # older than the creation below
        goal("2026-01-02T00:00:00Z", "g-recreated", category="car"),
        delete("2026-01-03T00:00:00Z", "g-never-created"),
        goal("2026-01-04T00:00:00Z", "g-home", category="home"),
        goal("2026-01-04T00:00:00Z", "g-home", category="home").replace(b'"id": "', b'"id": "r'),
    ]
    assert kpi("goals_by_category", messages) == [
        {"category": "car", "goals": 2},
        {"category": "home", "goals": 1},
    ]


def test_travel_card_foreign_visa_users_needs_all_three_conditions() -> None:
    at = "2026-01-02T00:00:00Z"
    foreign = {"currency": "EUR", "billing_amount": "75.00", "merchant_country": "DE"}

    def traveller(user_id: str, *, travel_card: bool = True, goal_kept: bool = True,
                  visa_abroad: bool = True) -> list[bytes]:  # fmt: skip
        visa, travel = f"{user_id}-visa", f"{user_id}-travel"
        events = [
            card(at, visa, "visa_standard", user_id),
            goal(at, f"{user_id}-g", "travel", user_id),
        ]
        if travel_card:
            events.append(card(at, travel, "travel_card", user_id))
        if not goal_kept:
            events.append(delete("2026-01-03T00:00:00Z", f"{user_id}-g", user_id))
        paid_with = visa if visa_abroad else travel
        events.append(tx(at, f"{user_id}-t", card_id=paid_with, user_id=user_id, **foreign))
        events.append(tx(at, f"{user_id}-home", card_id=visa, user_id=user_id))
        return events

    messages = [
        *traveller("yes"),
        *traveller("yes-too"),
        *traveller("no-travel-card", travel_card=False),
        *traveller("goal-deleted", goal_kept=False),
        *traveller("abroad-with-travel-card", visa_abroad=False),
        goal(at, "other-goal", "car", user_id="only-car-goal"),
        card(at, "ocg-t", "travel_card", user_id="only-car-goal"),
        card(at, "ocg-v", "visa_standard", user_id="only-car-goal"),
        tx(at, "ocg-1", card_id="ocg-v", user_id="only-car-goal", **foreign),
    ]
    assert kpi("travel_card_foreign_visa_users", messages) == [{"users": 2}]
