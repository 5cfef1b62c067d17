"""An envelope reusing a stored id with other values is a dead letter; the lookup that finds it
runs only for a batch the warehouse refused for it (`ChangeSet.check_stored_ids`)."""

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from banking_events import SETTLED
from factflow import App, Consumer, Pipeline, insert_first
from factflow.errors import WarehouseUnavailable
from factflow.examples.banking import app as banking
from factflow.examples.banking.events import TransactionSettled
from factflow.model.declare import Dimension, Fact, dimension, fact
from factflow.model.envelope import Envelope
from factflow.model.types import Money
from factflow.pipeline.changes import ChangeSet
from factflow.pipeline.steps import update_dimension
from factflow.runtime.processor import BatchProcessor
from factflow.runtime.replay import replay_dead_letters
from factflow.runtime.writer import Backoff, BatchWriter
from factflow.testing import envelope
from factflow.warehouse.base import QueryResult, Warehouse


class Lookups:
    """A warehouse that counts the queries made to it (the id lookups) and can fail them."""

    def __init__(self, warehouse: Warehouse, failures: int = 0) -> None:
        self.warehouse = warehouse
        self.queries = 0
        self.failures = failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self.warehouse, name)

    def query(self, sql: str, parameters: tuple[Any, ...] = ()) -> QueryResult:
        self.queries += 1
        if self.failures:
            self.failures -= 1
            raise WarehouseUnavailable("database restarting")
        return self.warehouse.query(sql, parameters)


def writer(warehouse: Any, app: App = banking) -> BatchWriter:
    warehouse.prepare(app.schema)
    return BatchWriter(BatchProcessor(app, warehouse=warehouse), warehouse, backoff=Backoff(0.001))


def settled(id_: str, transaction_id: str, **changes: Any) -> bytes:
    return envelope(
        "card.transaction_settled", SETTLED | {"transaction_id": transaction_id} | changes, id=id_
    )


def amounts(warehouse: Warehouse) -> list[tuple[Any, ...]]:
    return warehouse.query(
        "SELECT transaction_id, amount FROM fact_card_transaction ORDER BY 1"
    ).rows


def test_new_ids_and_redeliveries_are_written_without_a_lookup(warehouse: Warehouse) -> None:
    store = Lookups(warehouse)
    batch = [settled(f"e-{i}", f"t-{i}") for i in range(20)]
    write = writer(store)
    write.write(batch)
    outcome = write.write([*batch[5:], *batch[:5]])
    assert (outcome.messages, outcome.dead_letters) == (20, 0)
    assert store.queries == 0
    assert len(amounts(warehouse)) == 20
    assert warehouse.dead_letters() == []


def test_an_id_stored_with_other_values_is_a_dead_letter_and_the_rest_is_written(
    warehouse: Warehouse,
) -> None:
    store = Lookups(warehouse)
    write = writer(store)
    write.write([settled("e-1", "t-1")])
    changed = settled("e-1", "t-1", amount="99.00")
    outcome = write.write([settled("e-2", "t-2"), changed, settled("e-3", "t-3")])
    assert (outcome.messages, outcome.rows, outcome.dead_letters) == (3, 2, 1)
    assert store.queries > 0
    [letter] = warehouse.dead_letters()
    assert letter.raw == changed and letter.event_id == "e-1"
    assert "envelope id 'e-1' is already stored in fact_card_transaction" in letter.reason
    assert "amount: stored 10" in letter.reason and "this one 99.00" in letter.reason
    assert amounts(warehouse) == [(t, Decimal("10.00")) for t in ("t-1", "t-2", "t-3")]


@fact(key="transaction_id")
class Sale(Fact):
    transaction_id: str
    amount: Money


@dimension(key="merchant")
class Merchant(Dimension):
    merchant: str
    category: str | None = None


def sale(event: Envelope[TransactionSettled]) -> Sale:
    return Sale(transaction_id=event.data.transaction_id, amount=event.data.amount)


def merchant(event: Envelope[TransactionSettled]) -> Merchant:
    return Merchant(merchant=event.data.merchant, category=event.data.merchant_category)


SHOP = App(
    "shop",
    consumers=[
        Consumer("card")
        .pipe(TransactionSettled, Pipeline(TransactionSettled).map(sale).then(insert_first(Sale)))
        .pipe(
            TransactionSettled,
            Pipeline(TransactionSettled).map(merchant).then(update_dimension(Merchant)),
        )
    ],
)


def test_no_row_of_a_set_aside_envelope_is_written(warehouse: Warehouse) -> None:
    """Its new fact (another transaction under the same id) goes too: written before its stored
    dimension change was found to differ, it is rolled back with the attempt."""
    write = writer(warehouse, SHOP)
    write.write([settled("e-1", "t-1")])
    changed = settled("e-1", "t-9", merchant_category="food")
    write.write([changed, settled("e-2", "t-2", merchant="Shop")])
    assert warehouse.query("SELECT transaction_id FROM fact_sale ORDER BY 1").rows == [
        ("t-1",),
        ("t-2",),
    ]
    categories = warehouse.query("SELECT merchant, category FROM dim_merchant ORDER BY 1").rows
    assert categories == [("Hotel", "travel"), ("Shop", "travel")]
    [letter] = warehouse.dead_letters()
    assert letter.raw == changed and "already stored in dim_merchant__changes" in letter.reason


def test_a_lookup_the_warehouse_cannot_answer_is_retried(warehouse: Warehouse) -> None:
    store = Lookups(warehouse)
    write = writer(store)
    write.write([settled("e-1", "t-1")])
    store.failures = 1
    outcome = write.write([settled("e-1", "t-1", amount="99.00")])
    assert (outcome.dead_letters, outcome.retries) == (1, 1)
    assert "already stored in fact_card_transaction" in warehouse.dead_letters()[0].reason


def test_an_id_reused_in_the_batch_and_stored_keeps_the_stored_version(
    warehouse: Warehouse,
) -> None:
    """The stored version wins over the batch's first: only the other one is set aside."""
    write = writer(warehouse)
    write.write([settled("e-1", "t-1")])
    changed = settled("e-1", "t-1", amount="99.00")
    write.write([changed, settled("e-1", "t-1")])
    [letter] = warehouse.dead_letters()
    assert letter.raw == changed and "already stored in" in letter.reason


def test_a_replayed_dead_letter_that_still_reuses_a_stored_id_stays_one(
    warehouse: Warehouse,
) -> None:
    write = writer(warehouse)
    write.write([settled("e-1", "t-1")])
    write.write([settled("e-1", "t-1", amount="99.00")])
    outcome = replay_dead_letters(banking, warehouse, backoff=Backoff(0.001))
    assert (outcome.replayed, outcome.still_dead) == (1, 1)
    [letter] = warehouse.dead_letters()
    assert letter.replays == 1 and "already stored in" in letter.reason
    assert amounts(warehouse) == [("t-1", Decimal("10.00"))]


@pytest.mark.parametrize("batch", [[b"not json"], []])
def test_a_batch_without_rows_needs_no_check(warehouse: Warehouse, batch: Sequence[bytes]) -> None:
    store = Lookups(warehouse)
    writer(store).write(batch)
    assert store.queries == 0


def test_the_check_is_left_to_the_write(warehouse: Warehouse) -> None:
    warehouse.prepare(banking.schema)
    changes: ChangeSet = BatchProcessor(banking, warehouse=warehouse).process(
        [settled("e-1", "t-1")]
    )
    assert changes.check_stored_ids is not None
    assert BatchProcessor(banking).process([settled("e-1", "t-1")]).check_stored_ids is None
