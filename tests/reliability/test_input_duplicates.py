"""Scenario 5 of issue 8: the same envelope three times, also concurrently; the same envelope id
with a different payload is a dead letter that says why, never a silent overwrite or drop."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from conftest import service_url
from factflow.examples.banking import app
from factflow.runtime.consumer import ConsumerOptions, run_consumer
from factflow.transport.base import Outgoing
from factflow.warehouse.base import Warehouse
from factflow.warehouse.duckdb import DuckDBWarehouse
from reliability._input import concurrently, postgres_schema, stream, write_in_batches, writer
from reliability.conftest import ReliabilityTable
from reliability.ledger import Ledger

pytestmark = pytest.mark.reliability

MESSAGES = stream(600, seed=51, duplicates=0.02, republications=0.05, bad_lines=0.02)


def three_times(store: Warehouse) -> Ledger:
    ledger = Ledger()
    for copy in range(3):
        ledger.record_all(MESSAGES)
        write_in_batches(store, MESSAGES, seed=copy)
    return ledger


def test_the_same_envelopes_three_times_land_once(reliability_table: ReliabilityTable) -> None:
    with DuckDBWarehouse(None) as store:
        store.prepare(app.schema)
        verdict = three_times(store).check(store)
    reliability_table.add("5 same envelopes x3, one after another (DuckDB)", verdict)
    verdict.assert_ok()


@pytest.mark.postgres
def test_the_same_envelopes_three_times_at_once_land_once(
    reliability_table: ReliabilityTable,
) -> None:
    """Three writers (a connection each, as three consumer processes) write the same stream
    at the same time, each in its own order and batching: PostgreSQL transactions race on the
    same keys, dimension members and dead letters."""
    with postgres_schema() as connect:
        stores = [connect() for _ in range(3)]
        ledger = Ledger()
        for _ in stores:
            ledger.record_all(MESSAGES)
        concurrently(
            *(
                lambda store=store, seed=seed: write_in_batches(store, MESSAGES, seed=seed)
                for seed, store in enumerate(stores)
            )
        )
        verdict = ledger.check(stores[0])
    reliability_table.add("5 same envelopes x3 concurrently, 3 writers (PostgreSQL)", verdict)
    verdict.assert_ok()


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_two_consumers_of_one_group_take_triple_deliveries(
    amqp_url: str, reliability_table: ReliabilityTable
) -> None:
    """Every envelope published three times to RabbitMQ; two consumers of one group share the
    queue (copies of one envelope reach both), into one PostgreSQL schema."""
    from factflow.transport.rabbitmq import RabbitMQTransport

    messages = MESSAGES[:300]
    ledger = Ledger()
    with postgres_schema() as connect, RabbitMQTransport(amqp_url) as broker:
        broker.subscribe("kpi", ["user.*", "account.*", "card.*", "goal.*"]).close()
        published = [_outgoing(raw) for raw in messages]
        for _ in range(3):
            ledger.record_all(messages)
            broker.publish(m for m in published if m is not None)
        stores = [connect(), connect()]

        def consume(store: Warehouse) -> None:
            with RabbitMQTransport(amqp_url) as transport:
                options = ConsumerOptions(batch_size=50, max_wait=1.0, stop_when_idle=True)
                run_consumer(app, transport, store, options)

        concurrently(*(lambda store=store: consume(store) for store in stores))
        verdict = ledger.check(stores[0], queue_depths={"kpi": broker.depth("kpi")})
    reliability_table.add("5 same envelopes x3 via RabbitMQ, 2 consumers of one group", verdict)
    verdict.assert_ok()


def _outgoing(raw: bytes) -> Outgoing | None:
    try:
        envelope = json.loads(raw)
        return Outgoing(type=envelope["type"], id=envelope["id"], body=raw)
    except (ValueError, KeyError, TypeError):
        return None  # `deliverable` kept only what a publisher can route


def transaction(id_: str, transaction_id: str, amount: str) -> bytes:
    data = {
        "transaction_id": transaction_id,
        "card_id": "c-1",
        "user_id": "u-1",
        "amount": amount,
        "currency": "EUR",
        "billing_amount": amount,
        "billing_currency": "EUR",
        "merchant": "Shop",
        "merchant_category": "retail",
        "merchant_country": "DE",
    }
    return json.dumps(
        {
            "id": id_,
            "type": "card.transaction_settled",
            "source": "card-service",
            "occurred_at": "2026-03-01T12:00:00Z",
            "version": 1,
            "data": data,
        }
    ).encode()


def user(id_: str, user_id: str, segment: str) -> bytes:
    return json.dumps(
        {
            "id": id_,
            "type": "user.user_created",
            "source": "user-service",
            "occurred_at": "2026-03-01T11:00:00Z",
            "version": 1,
            "data": {"user_id": user_id, "country": "DK", "segment": segment},
        }
    ).encode()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Iterator[Warehouse]:
    if request.param == "duckdb":
        with DuckDBWarehouse(None) as duck:
            duck.prepare(app.schema)
            yield duck
        return
    service_url("postgres")
    with postgres_schema() as connect:
        yield connect()


def test_the_same_id_with_another_payload_is_a_dead_letter_saying_why(
    store: Warehouse, reliability_table: ReliabilityTable, request: pytest.FixtureRequest
) -> None:
    """Across batches (the first is stored) and within one batch (the first to arrive is kept):
    the other version is a dead letter naming the id and the values that differ; the stored
    row keeps its values; a redelivery of the first version stays harmless."""
    tag = uuid.uuid4().hex[:6]
    first, changed = (
        transaction(f"e-{tag}", "t-1", "10.00"),
        transaction(f"e-{tag}", "t-1", "99.00"),
    )
    one, other = user(f"u-{tag}", "u-1", "plus"), user(f"u-{tag}", "u-1", "standard")
    same_batch = [transaction(f"b-{tag}", "t-2", "5.00"), transaction(f"b-{tag}", "t-2", "6.00")]
    ledger = Ledger()
    ledger.record_all([first, same_batch[0]])
    ledger.record_all([changed, same_batch[1]], expect="dead_letter")
    ledger.record(first)  # a redelivery of what is stored: no dead letter
    write = writer(store)
    write.write([first])
    write.write([changed])
    write.write(same_batch)
    write.write([first])
    verdict = ledger.check(store)
    backend = request.node.callspec.params["store"]
    reliability_table.add(f"5 same id, other payload: dead letter ({backend})", verdict)
    verdict.assert_ok()
    # A dimension change too (not in the ledger, which finds a dimension change by its key and
    # envelope id: both versions of the user share them).
    write.write([one])
    write.write([other, one])
    reasons = {letter.raw: letter.reason for letter in store.dead_letters()}
    assert len(reasons) == 3, reasons
    assert "already stored in fact_card_transaction" in reasons[changed]
    assert "amount: stored 10" in reasons[changed] and "this one 99.00" in reasons[changed]
    assert "already stored in dim_user__changes" in reasons[other] and "segment" in reasons[other]
    assert "reused with other contents in the same batch" in reasons[same_batch[1]]
    assert "6.00" in reasons[same_batch[1]]
    amounts = store.query(
        "SELECT transaction_id, amount FROM fact_card_transaction ORDER BY 1"
    ).rows
    assert amounts == [("t-1", Decimal("10.00")), ("t-2", Decimal("5.00"))]
    assert store.query("SELECT segment FROM dim_user").rows == [("plus",)]
