from pathlib import Path

import pytest

from banking_events import settled
from factflow.bootstrap.files import bootstrap_file
from factflow.examples.banking import app
from factflow.pipeline.changes import ChangeSet
from factflow.runtime.writer import BatchOutcome
from factflow.warehouse.duckdb import DuckDBWarehouse


def events_file(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(settled(f"t-{i}") for i in range(count)) + b"\n")
    return path


def test_every_batch_is_written_and_reported_in_order(tmp_path: Path) -> None:
    outcomes: list[BatchOutcome] = []
    with DuckDBWarehouse(None) as warehouse:
        total = bootstrap_file(
            app, events_file(tmp_path, 1050), warehouse, batch_size=100, on_batch=outcomes.append
        )
        assert warehouse.query("SELECT count(*) FROM fact_card_transaction").rows == [(1050,)]
    assert [o.messages for o in outcomes] == [100] * 10 + [50]
    assert total.messages == 1050


class BrokenWarehouse(DuckDBWarehouse):
    """The real warehouse, with a bug that strikes on the third write."""

    def __init__(self) -> None:
        super().__init__(None)
        self.writes = 0

    def write(self, changes: ChangeSet) -> None:
        self.writes += 1
        if self.writes == 3:
            raise RuntimeError("disk on fire")
        super().write(changes)


def test_a_failure_while_writing_stops_the_bootstrap_and_is_raised(tmp_path: Path) -> None:
    warehouse = BrokenWarehouse()
    with pytest.raises(RuntimeError, match="disk on fire"):
        bootstrap_file(app, events_file(tmp_path, 1000), warehouse, batch_size=100)
    assert warehouse.writes == 3  # it stopped: no batch was written after the failure
    assert warehouse.query("SELECT count(*) FROM fact_card_transaction").rows == [(200,)]
    warehouse.close()


def test_a_value_the_warehouse_refuses_becomes_a_dead_letter_during_a_bootstrap(
    tmp_path: Path,
) -> None:
    from factflow import App, Consumer, Envelope, Pipeline, insert_first
    from factflow.examples.banking.events import TransactionSettled
    from factflow.examples.banking.model import CardTransaction
    from factflow.examples.banking.pipelines import card_transaction
    from factflow.model.types import Money

    def with_fee(e: Envelope[TransactionSettled]) -> CardTransaction:
        fact = card_transaction(e)
        if e.data.transaction_id == "t-7":  # too precise to store exactly
            fact.amount = Money("0.000001")
        return fact

    pipeline = Pipeline(TransactionSettled).map(with_fee).then(insert_first(CardTransaction))
    fees = App("fees", consumers=[Consumer("card").pipe(TransactionSettled, pipeline)])
    with DuckDBWarehouse(None) as warehouse:
        total = bootstrap_file(fees, events_file(tmp_path, 50), warehouse, batch_size=20)
        assert total.dead_letters == 1
        assert warehouse.query("SELECT count(*) FROM fact_card_transaction").rows == [(49,)]
