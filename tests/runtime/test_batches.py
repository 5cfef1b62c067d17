"""Processing and writing batches: routing, isolation of bad events, retries."""

import threading
from typing import Any

import pytest

from banking_events import SETTLED, settled
from factflow import App, Consumer, Envelope, Pipeline, TransientError, insert_first
from factflow.errors import RejectedEvent, WarehouseUnavailable
from factflow.examples.banking import app as banking
from factflow.examples.banking.model import CardTransaction
from factflow.pipeline.changes import ChangeSet
from factflow.runtime.processor import BatchProcessor
from factflow.runtime.writer import Backoff, BatchWriter, Stopped
from factflow.testing import Harness, envelope
from factflow.warehouse.duckdb import DuckDBWarehouse


def test_events_are_routed_by_type_to_their_pipelines() -> None:
    changes = BatchProcessor(banking).process(
        [
            settled("t-1"),
            envelope("user.user_created", {"user_id": "u-1", "country": "DK", "segment": "plus"}),
        ]
    )
    assert len(changes.facts["fact_card_transaction"]) == 1
    assert len(changes.dimension_changes["dim_user"]) == 1
    assert changes.references["dim_card"] == {"c-1"}
    assert set(changes.seen) == {"card.transaction_settled", "user.user_created"}


def test_bad_messages_become_dead_letters_and_the_batch_goes_on() -> None:
    harness = Harness(banking)
    outcome = harness.deliver([b"{", settled("t-1"), settled("t-2", amount="x"), settled("t-3")])
    assert outcome.dead_letters == 2
    harness.assert_facts(CardTransaction, [{"transaction_id": "t-1"}, {"transaction_id": "t-3"}])
    reasons = sorted(d.reason for d in harness.dead_letters())
    assert any("`data.amount`" in r for r in reasons)


def test_a_pipeline_crashing_on_one_event_dead_letters_only_that_event() -> None:
    from factflow.examples.banking.events import TransactionSettled
    from factflow.examples.banking.pipelines import card_transaction
    from factflow.pipeline.work import Work

    def explode_on_t13(work: Work[Any]) -> None:
        if any(e.data.transaction_id == "t-13" for e in work.events):
            raise RuntimeError("t-13 breaks the batch step")

    pipeline = (
        Pipeline(TransactionSettled)
        .map(card_transaction)
        .then(explode_on_t13)
        .then(insert_first(CardTransaction))
    )
    fragile = App("fragile", consumers=[Consumer("card").pipe(TransactionSettled, pipeline)])
    harness = Harness(fragile)
    harness.deliver([settled(f"t-{i}") for i in range(20)])
    assert len(harness.rows("fact_card_transaction")) == 19
    [letter] = harness.dead_letters()
    assert "t-13 breaks the batch step" in letter.reason
    assert b'"t-13"' in letter.raw


def test_a_failing_event_keeps_its_own_bytes_when_another_message_shares_its_id() -> None:
    from factflow.examples.banking.events import TransactionSettled
    from factflow.examples.banking.pipelines import card_transaction
    from factflow.model.declare import Fact

    def refuse_t13(event: Envelope[TransactionSettled]) -> Fact:
        if event.data.transaction_id == "t-13":
            raise RejectedEvent("t-13 is refused")
        return card_transaction(event)

    pipeline = Pipeline(TransactionSettled).map(refuse_t13).then(insert_first(CardTransaction))
    picky = App("picky", consumers=[Consumer("card").pipe(TransactionSettled, pipeline)])
    bad = envelope("card.transaction_settled", SETTLED | {"transaction_id": "t-13"}, id="same")
    good = envelope("card.transaction_settled", SETTLED | {"transaction_id": "t-14"}, id="same")

    changes = BatchProcessor(picky).process([bad, good])

    # `good` reuses the id of `bad` with other contents: a dead letter of its own bytes too.
    letters = {letter.raw: letter.reason for letter in changes.dead_letters}
    assert letters.keys() == {bad, good}
    assert "t-13 is refused" in letters[bad] and "reused with other contents" in letters[good]


def test_a_value_the_warehouse_refuses_isolates_the_message_that_carries_it() -> None:
    from factflow.examples.banking.events import TransactionSettled
    from factflow.examples.banking.pipelines import card_transaction
    from factflow.model.types import Money

    def with_fee(e: Envelope[TransactionSettled]) -> CardTransaction:
        fact = card_transaction(e)
        if e.data.transaction_id == "t-7":  # a computed amount too precise to store exactly
            fact.amount = Money("0.000001")
        return fact

    pipeline = Pipeline(TransactionSettled).map(with_fee).then(insert_first(CardTransaction))
    harness = Harness(App("fees", consumers=[Consumer("card").pipe(TransactionSettled, pipeline)]))
    outcome = harness.deliver([settled(f"t-{i}") for i in range(10)])
    assert (outcome.messages, outcome.dead_letters) == (10, 1)
    assert len(harness.rows("fact_card_transaction")) == 9
    assert "warehouse refused it" in harness.dead_letters()[0].reason


class FlakyWarehouse(DuckDBWarehouse):
    """The real DuckDB warehouse, unavailable for its first `failures` writes."""

    def __init__(self, failures: int) -> None:
        super().__init__(None)
        self.failures = failures

    def write(self, changes: ChangeSet) -> None:
        if self.failures:
            self.failures -= 1
            raise WarehouseUnavailable("database restarting")
        super().write(changes)


def test_a_transient_failure_is_retried_until_the_write_succeeds() -> None:
    store = FlakyWarehouse(failures=3)
    store.prepare(banking.schema)
    writer = BatchWriter(BatchProcessor(banking), store, backoff=Backoff(first=0.001))
    assert writer.write([settled("t-1")]).messages == 1
    assert store.query("SELECT count(*) FROM fact_card_transaction").rows == [(1,)]


def test_stopping_while_the_warehouse_is_down_raises_instead_of_acknowledging() -> None:
    store = FlakyWarehouse(failures=10**6)
    store.prepare(banking.schema)
    stopping = threading.Event()
    stopping.set()
    writer = BatchWriter(
        BatchProcessor(banking), store, backoff=Backoff(first=0.001), stop=stopping
    )
    with pytest.raises(Stopped):
        writer.write([settled("t-1")])
    assert isinstance(WarehouseUnavailable("x"), TransientError)
