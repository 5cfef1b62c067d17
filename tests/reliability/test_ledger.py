"""The ledger finds what it is meant to find: a clean run passes, and each kind of damage done
to a warehouse behind the consumer's back shows up as lost, duplicated, unexpected or a failed
invariant."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from factflow.examples.banking import app
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.testing import Harness
from factflow.warehouse.duckdb import DuckDBWarehouse
from reliability.ledger import Ledger, deliverable, table_checksums

pytestmark = pytest.mark.reliability

MESSAGES = deliverable(
    simulate(
        SimulationOptions(events=300, seed=5, duplicates=0.05, republications=0.05, bad_lines=0.03)
    )
)


@pytest.fixture
def store() -> Iterator[DuckDBWarehouse]:
    with DuckDBWarehouse(None) as warehouse, Harness(app, warehouse) as harness:
        harness.deliver(MESSAGES, shuffled=True, duplicated=True, seed=3)
        yield warehouse


def ledger() -> Ledger:
    book = Ledger()
    book.record_all(MESSAGES)
    return book


def transaction_ids(store: DuckDBWarehouse) -> list[str]:
    return [r[0] for r in store.query("SELECT event_id FROM fact_card_transaction").rows]


def test_a_clean_delivery_holds_every_invariant(store: DuckDBWarehouse) -> None:
    verdict = ledger().check(store, queue_depths={"kpi": 0})
    verdict.assert_ok()
    assert verdict.published == len(set(MESSAGES)) and verdict.deliveries == len(MESSAGES)
    assert verdict.dead_letters == len(store.dead_letters()) > 0


def test_a_deleted_fact_is_lost(store: DuckDBWarehouse) -> None:
    gone = transaction_ids(store)[0]
    store._con.execute("DELETE FROM fact_card_transaction WHERE event_id = ?", [gone])
    verdict = ledger().check(store)
    assert (
        gone in verdict.lost and 1 in verdict.failed_invariants and 2 in verdict.failed_invariants
    )


def test_a_fact_also_dead_lettered_is_duplicated(store: DuckDBWarehouse) -> None:
    book = ledger()
    entry = next(e for e in book.entries.values() if e.id == transaction_ids(store)[0])
    store._con.execute(
        "INSERT INTO factflow_dead_letters (id, reason, raw, received_at, replays) "
        "VALUES (?, 'a reason', ?, now(), 0)",
        [entry.digest, entry.raw],
    )
    verdict = book.check(store)
    assert entry.label in verdict.duplicated, str(verdict)


def test_a_changed_amount_fails_the_exact_sums(store: DuckDBWarehouse) -> None:
    changed = transaction_ids(store)[1]
    store._con.execute(
        "UPDATE fact_card_transaction SET amount = amount + 0.0001 WHERE event_id = ?", [changed]
    )
    verdict = ledger().check(store)
    assert verdict.failed_invariants == [1, 2], str(verdict)


def test_rows_and_dead_letters_nobody_published_are_unexpected(store: DuckDBWarehouse) -> None:
    stray = {
        "id": "stray-1",
        "type": "card.transaction_settled",
        "source": "x",
        "occurred_at": "2026-01-01T00:00:00Z",
        "version": 1,
        "data": {"transaction_id": "t-stray"},
    }
    Harness(app, store).deliver([json.dumps(stray).encode()])  # not closing `store`
    verdict = ledger().check(store)
    assert len(verdict.unexpected) == 1 and verdict.failed_invariants == [1], str(verdict)


def test_an_unresolved_reference_and_a_queue_left_full_fail(store: DuckDBWarehouse) -> None:
    store._con.execute(
        "DELETE FROM dim_card WHERE card_id IN (SELECT card_id FROM dim_card LIMIT 1)"
    )
    verdict = ledger().check(store, queue_depths={"kpi": 3})
    assert verdict.failed_invariants == [3, 4], str(verdict)


def test_checksums_see_a_change_but_not_a_redelivery(store: DuckDBWarehouse) -> None:
    before = table_checksums(store)
    Harness(app, store).deliver(MESSAGES, seed=9, shuffled=True)
    ledger().check(store, unchanged_since=before).assert_ok()
    store._con.execute("UPDATE dim_user SET segment = 'plus'")
    assert ledger().check(store, unchanged_since=before).failed_invariants == [5]
