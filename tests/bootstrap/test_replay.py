"""The shared batch loop: batches with positions in, committed outcomes with positions out."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from banking_events import settled
from factflow.bootstrap.replay import Batch, replay
from factflow.examples.banking import app
from factflow.pipeline.changes import ChangeSet
from factflow.runtime.writer import BatchOutcome
from factflow.warehouse.duckdb import DuckDBWarehouse


def batches(count: int, size: int) -> Iterator[Batch[str]]:
    for number in range(count):
        messages = [settled(f"t-{number}-{i}") for i in range(size)]
        yield messages, f"batch {number}"


def test_each_position_is_reported_once_its_batch_is_committed() -> None:
    seen: list[tuple[str, int, int]] = []
    with DuckDBWarehouse(None) as warehouse:

        def committed(outcome: BatchOutcome, position: str) -> None:
            stored = warehouse.query("SELECT count(*) FROM fact_card_transaction").rows[0][0]
            seen.append((position, outcome.messages, stored))

        total = replay(app, batches(3, 10), warehouse, on_batch=committed)
    assert seen == [("batch 0", 10, 10), ("batch 1", 10, 20), ("batch 2", 10, 30)]
    assert (total.messages, total.rows) == (30, 30)


def test_a_failure_stops_reading_and_closes_the_source_of_batches() -> None:
    closed: list[bool] = []

    def endless() -> Iterator[Batch[int]]:
        try:
            number = 0
            while True:
                yield [settled(f"t-{number}")], number
                number += 1
        finally:
            closed.append(True)

    class Failing(DuckDBWarehouse):
        def write(self, changes: ChangeSet) -> None:
            raise RuntimeError("disk on fire")

    warehouse = Failing(None)
    with pytest.raises(RuntimeError, match="disk on fire"):
        replay(app, endless(), warehouse)
    warehouse.close()
    assert closed == [True]


def test_replaying_the_same_batches_again_changes_nothing() -> None:
    with DuckDBWarehouse(None) as warehouse:
        replay(app, batches(2, 5), warehouse)
        before = warehouse.query("SELECT * FROM fact_card_transaction ORDER BY ALL").rows
        replay(app, batches(2, 5), warehouse)
        assert warehouse.query("SELECT * FROM fact_card_transaction ORDER BY ALL").rows == before
