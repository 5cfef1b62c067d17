"""Scenario 6 of issue 8, with the ledger: facts before their dimensions, and dimension updates
in any order. tests/test_order_free_property.py already shows that any permutation gives the
same model; these add invariant 3 of the ledger (every reference resolves, and no member stays
inferred once its own event landed) after each delivery, and the exact sums of invariant 2."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factflow.examples.banking import app
from factflow.warehouse.duckdb import DuckDBWarehouse
from reliability._input import stream, writer
from reliability.conftest import ReliabilityTable
from reliability.ledger import Ledger

pytestmark = pytest.mark.reliability

MESSAGES = stream(800, seed=61, republications=0.05, bad_lines=0.01)
DIMENSION_TYPES = {"user", "account", "card", "goal"}


def type_of(raw: bytes) -> str:
    try:
        kind = json.loads(raw).get("type", "")
    except (ValueError, AttributeError):
        return ""
    return kind if isinstance(kind, str) else ""


def test_every_fact_before_any_dimension_resolves_once_they_come(
    reliability_table: ReliabilityTable,
) -> None:
    """All transactions and balances first (their users, cards, accounts inferred), then every
    dimension event in reverse order: every inferred member is filled in, every reference
    resolves, and the sums are exact."""
    facts = [
        m for m in MESSAGES if type_of(m) in ("card.transaction_settled", "account.balance_updated")
    ]
    dimensions = [m for m in MESSAGES if m not in facts]
    ledger = Ledger()
    ledger.record_all(MESSAGES)
    with DuckDBWarehouse(None) as store:
        store.prepare(app.schema)
        write = writer(store)
        for at in range(0, len(facts), 50):
            write.write(facts[at : at + 50])
        inferred = store.query("SELECT count(*) FROM dim_card WHERE inferred").rows[0][0]
        for at in range(len(dimensions), 0, -50):
            write.write(list(reversed(dimensions[max(0, at - 50) : at])))
        verdict = ledger.check(store)
    reliability_table.add("6 facts before their dimensions, dimensions reversed (DuckDB)", verdict)
    verdict.assert_ok()
    assert inferred > 0  # the facts did come first


def user_events() -> list[bytes]:
    """Ten changes to each of three users, at distinct times, some with a field left out."""
    events = []
    for user in range(3):
        for n in range(10):
            data: dict[str, Any] = {"user_id": f"u-{user}"}
            if n % 3 != 1:
                data["segment"] = ("standard", "plus")[(n + user) % 2]
            if n % 3 != 2:
                data["country"] = ("DK", "DE", "SE")[(n + user) % 3]
            events.append(
                json.dumps(
                    {
                        "id": f"e-{user}-{n:02}",
                        "type": "user.user_created" if n == 0 else "user.user_updated",
                        "source": "user-service",
                        "occurred_at": f"2026-03-01T12:{n:02}:00Z",
                        "version": 1,
                        "data": data,
                    }
                ).encode()
            )
    return events


USERS = user_events()
TRANSACTIONS = [
    json.dumps(
        {
            "id": f"tx-{user}",
            "type": "card.transaction_settled",
            "source": "card-service",
            "occurred_at": "2026-03-01T12:05:30Z",
            "version": 1,
            "data": {
                "transaction_id": f"t-{user}",
                "card_id": f"c-{user}",
                "user_id": f"u-{user}",
                "amount": "1.00",
                "currency": "EUR",
                "billing_amount": "1.00",
                "billing_currency": "EUR",
                "merchant": "Shop",
                "merchant_category": "retail",
                "merchant_country": "DE",
            },
        }
    ).encode()
    for user in range(3)
]


def in_order_users() -> list[tuple[Any, ...]]:
    latest: dict[str, dict[str, Any]] = {}
    for raw in USERS:  # already in (occurred_at, id) order per user
        data = json.loads(raw)["data"]
        latest.setdefault(data["user_id"], {}).update(data)
    return sorted((k, v.get("country"), v.get("segment")) for k, v in latest.items())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order=st.permutations(USERS + TRANSACTIONS), batch=st.integers(1, 12))
def dimension_updates_in_any_order_give_the_in_order_members(
    order: list[bytes], batch: int
) -> None:
    ledger = Ledger()
    ledger.record_all(order)
    with DuckDBWarehouse(None) as store:
        store.prepare(app.schema)
        write = writer(store)
        for at in range(0, len(order), batch):
            write.write(order[at : at + batch])
        ledger.check(store).assert_ok()
        members = store.query("SELECT user_id, country, segment FROM dim_user ORDER BY 1").rows
    assert members == in_order_users()


def test_the_permutation_property_runs_in_the_table(reliability_table: ReliabilityTable) -> None:
    """Dimension updates of three users (and a transaction each) in any order and batching:
    the ledger holds and each member is as after in-order application (Hypothesis)."""
    failure = ""
    try:
        dimension_updates_in_any_order_give_the_in_order_members()
    except AssertionError as error:
        failure = str(error).splitlines()[0][:300]
    reliability_table.add_result(
        "6 dimension updates in any order, 15 Hypothesis permutations x 33 events (DuckDB)",
        passed=not failure,
        published=len(USERS) + len(TRANSACTIONS),
        detail=failure,
    )
    assert not failure, failure
