"""The trusted reference for the banking KPIs, written straight from shared/domain/banking.md.

It uses nothing of factflow, only the standard library, and computes everything in memory the
obvious way, so that tests can compare what factflow answers with what the contract says.

Interpretations of the contract, where it leaves room:

- A message is valid when it is UTF-8 JSON holding an object with all six envelope fields:
  `id` a non-empty string, `type` one of the eight types of banking.md, `source` a string,
  `occurred_at` an RFC 3339 timestamp with `Z` or an offset, `version` an integer >= 1 (not a
  boolean), `data` an object with every field of its type. Ids and codes are non-empty strings,
  amounts are strings in plain decimal notation (``-?digits[.digits]``), `segment`, `product`
  and goal `category` are among the values banking.md lists. `user_updated` may leave out
  `country` and `segment`, but a field that is present must be valid. Extra fields are allowed.
  Invalid messages are skipped (a real consumer dead-letters them; they count for nothing).
- Envelopes with the same `id` are one envelope: the first valid one seen is kept.
- Events are ordered by (`occurred_at` as an instant, `id`). A transaction, card, account or
  goal creation that arrives in several envelopes is the one first in that order.
- The segment of a transaction is that of the latest (by `occurred_at`, `id`) `user_created` or
  `user_updated` of its `user_id` that carries a `segment` and has `occurred_at` <= the
  transaction's; an event at the very same instant counts. None: ``"unknown"``.
- A goal is not deleted when its `goal_created` exists and no `goal_deleted` of the same
  `goal_id` comes after it in (`occurred_at`, `id`) order; this is what applying the events
  once in that order gives (deleting a goal that does not exist yet does nothing). A goal that
  was deleted but never created is not counted.
- `travel_card_foreign_visa_users` takes the user of a card from its `card_issued`, of a goal
  from its `goal_created`, and of a transaction from the transaction; its card's product comes
  from the card's `card_issued` (a transaction on a card never issued counts as no product).
  The three conditions are about the whole history, not about their order in time.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from typing import Any

__all__ = ["KPI_NAMES", "expected_kpis", "format_decimal", "parse_valid"]

KPI_NAMES = (
    "travel_card_foreign_visa_users",
    "active_users_by_month",
    "spend_by_currency",
    "goals_by_category",
    "spend_by_segment",
)

ID = "id"
AMOUNT = "amount"
SEGMENTS = ("standard", "plus")
PRODUCTS = ("visa_standard", "travel_card")
GOAL_CATEGORIES = ("travel", "home", "car", "education", "other")

# type -> {field: ID (non-empty string) | AMOUNT (decimal string) | allowed values}
FIELDS: dict[str, dict[str, Any]] = {
    "user.user_created": {"user_id": ID, "country": ID, "segment": SEGMENTS},
    "user.user_updated": {"user_id": ID},
    "account.account_opened": {"account_id": ID, "user_id": ID, "currency": ID},
    "account.balance_updated": {
        "account_id": ID,
        "user_id": ID,
        "balance": AMOUNT,
        "available": AMOUNT,
        "usable": AMOUNT,
        "currency": ID,
    },
    "card.card_issued": {"card_id": ID, "user_id": ID, "account_id": ID, "product": PRODUCTS},
    "card.transaction_settled": {
        "transaction_id": ID,
        "card_id": ID,
        "user_id": ID,
        "amount": AMOUNT,
        "currency": ID,
        "billing_amount": AMOUNT,
        "billing_currency": ID,
        "merchant": ID,
        "merchant_category": ID,
        "merchant_country": ID,
    },
    "goal.goal_created": {
        "goal_id": ID,
        "user_id": ID,
        "name": ID,
        "category": GOAL_CATEGORIES,
        "target_amount": AMOUNT,
        "currency": ID,
    },
    "goal.goal_deleted": {"goal_id": ID, "user_id": ID},
}
OPTIONAL_FIELDS: dict[str, dict[str, Any]] = {
    "user.user_updated": {"country": ID, "segment": SEGMENTS},
}

DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)


@dataclass(frozen=True)
class Message:
    """A valid envelope: what the KPIs need of it."""

    id: str
    type: str
    occurred_at: datetime
    data: dict[str, Any]

    @property
    def order(self) -> tuple[datetime, str]:
        return (self.occurred_at, self.id)


def parse_valid(raw: bytes) -> Message | None:
    """The message if it is valid per banking.md, else None (see the module docstring)."""
    try:
        envelope = json.loads(raw.decode("utf-8"), parse_constant=_reject)
    except ValueError:  # also UnicodeDecodeError and JSONDecodeError
        return None
    if not isinstance(envelope, dict):
        return None
    if not all(key in envelope for key in ("id", "type", "source", "occurred_at", "version")):
        return None
    if not _valid_value(envelope["id"], ID) or not isinstance(envelope["source"], str):
        return None
    kind = envelope["type"]
    if not isinstance(kind, str) or kind not in FIELDS:
        return None
    version = envelope["version"]
    if type(version) is not int or version < 1:
        return None
    occurred_at = _timestamp(envelope["occurred_at"])
    data = envelope.get("data")
    if occurred_at is None or not isinstance(data, dict):
        return None
    for field, rule in FIELDS[kind].items():
        if field not in data or not _valid_value(data[field], rule):
            return None
    for field, rule in OPTIONAL_FIELDS.get(kind, {}).items():
        if field in data and not _valid_value(data[field], rule):
            return None
    return Message(envelope["id"], kind, occurred_at, data)


def _reject(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _valid_value(value: object, rule: Any) -> bool:
    if not isinstance(value, str):
        return False
    if rule == ID:
        return value != ""
    if rule == AMOUNT:
        return DECIMAL_TEXT.fullmatch(value) is not None
    return value in rule


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:  # e.g. month 13
        return None
    return parsed if parsed.utcoffset() is not None else None


def format_decimal(value: Decimal) -> str:
    """Trailing zeros stripped, but at least two decimal places: 1234.5 -> "1234.50"."""
    if value == 0:
        return "0.00"
    text = f"{value:f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"{whole}.{fraction}"


def expected_kpis(messages: Iterable[bytes]) -> dict[str, list[dict[str, object]]]:
    """The rows of every banking KPI for these raw messages, as `factflow kpi NAME` prints them.

    Returns a mapping from each name in `KPI_NAMES` to its rows, sorted by the non-measure
    columns; decimals are strings formatted by `format_decimal`, counts are ints.
    """
    envelopes: dict[str, Message] = {}
    for raw in messages:
        message = parse_valid(raw)
        if message is not None and message.id not in envelopes:
            envelopes[message.id] = message
    in_order = sorted(envelopes.values(), key=lambda m: m.order)

    transactions: dict[str, Message] = {}
    cards: dict[str, Message] = {}
    goals: dict[str, Message] = {}
    deletions: dict[str, list[Message]] = defaultdict(list)
    segments: dict[str, list[tuple[tuple[datetime, str], str]]] = defaultdict(list)
    for message in in_order:
        data = message.data
        if message.type == "card.transaction_settled":
            transactions.setdefault(data["transaction_id"], message)
        elif message.type == "card.card_issued":
            cards.setdefault(data["card_id"], message)
        elif message.type == "goal.goal_created":
            goals.setdefault(data["goal_id"], message)
        elif message.type == "goal.goal_deleted":
            deletions[data["goal_id"]].append(message)
        elif message.type in ("user.user_created", "user.user_updated") and "segment" in data:
            segments[data["user_id"]].append((message.order, data["segment"]))

    live_goals = [
        goal.data
        for goal_id, goal in goals.items()
        if not any(deletion.order > goal.order for deletion in deletions[goal_id])
    ]
    settled = [t.data | {"occurred_at": t.occurred_at} for t in transactions.values()]

    with localcontext() as context:
        context.prec = 1000  # exact sums, whatever the volume
        return {
            "travel_card_foreign_visa_users": _travel_card_foreign_visa_users(
                settled, cards, live_goals
            ),
            "active_users_by_month": _active_users_by_month(settled),
            "spend_by_currency": _spend_by_currency(settled),
            "goals_by_category": _goals_by_category(live_goals),
            "spend_by_segment": _spend_by_segment(settled, segments),
        }


def _travel_card_foreign_visa_users(
    settled: list[dict[str, Any]], cards: dict[str, Message], live_goals: list[dict[str, Any]]
) -> list[dict[str, object]]:
    travel_card = {c.data["user_id"] for c in cards.values() if c.data["product"] == "travel_card"}
    travel_goal = {g["user_id"] for g in live_goals if g["category"] == "travel"}
    foreign_visa = {
        t["user_id"]
        for t in settled
        if t["card_id"] in cards
        and cards[t["card_id"]].data["product"] == "visa_standard"
        and t["currency"] != t["billing_currency"]
    }
    return [{"users": len(travel_card & travel_goal & foreign_visa)}]


def _active_users_by_month(settled: list[dict[str, Any]]) -> list[dict[str, object]]:
    users: dict[str, set[str]] = defaultdict(set)
    for t in settled:
        users[t["occurred_at"].astimezone(UTC).strftime("%Y-%m")].add(t["user_id"])
    return [{"month": month, "users": len(users[month])} for month in sorted(users)]


def _spend_by_currency(settled: list[dict[str, Any]]) -> list[dict[str, object]]:
    sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for t in settled:
        sums[t["currency"], t["billing_currency"]] += Decimal(t["billing_amount"])
    return [
        {"currency": c, "billing_currency": b, "billing_amount": format_decimal(sums[c, b])}
        for c, b in sorted(sums)
    ]


def _goals_by_category(live_goals: list[dict[str, Any]]) -> list[dict[str, object]]:
    counts: dict[str, int] = defaultdict(int)
    for goal in live_goals:
        counts[goal["category"]] += 1
    return [{"category": c, "goals": counts[c]} for c in sorted(counts)]


def _spend_by_segment(
    settled: list[dict[str, Any]], segments: dict[str, list[tuple[tuple[datetime, str], str]]]
) -> list[dict[str, object]]:
    sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for t in settled:
        segment = "unknown"
        for (at, _), value in segments.get(t["user_id"], []):  # in (occurred_at, id) order
            if at <= t["occurred_at"]:
                segment = value
        sums[segment, t["billing_currency"]] += Decimal(t["billing_amount"])
    return [
        {"segment": s, "billing_currency": b, "billing_amount": format_decimal(sums[s, b])}
        for s, b in sorted(sums)
    ]
