"""Scenario 7 of issue 8: a poison message that always fails is set aside after a bounded number
of tries, and the rest of the queue keeps flowing — on RabbitMQ, a vhost of the test's own.

* a pipeline step that raises for one key: a dead letter in the warehouse on the first try;
* an event the warehouse refuses (PostgreSQL cannot store NUL in text): isolated, dead-lettered;
* a message that kills its consumer every time: the quorum queue's delivery limit moves it to
  ``kpi.dead-letter`` after `delivery_limit` returns, alone: the messages returned with it twice
  are then suspect, taken one at a time and acknowledged on their third delivery.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from factflow import App, Consumer, Envelope, Pipeline, insert_first
from factflow.examples.banking.events import TransactionSettled
from factflow.examples.banking.model import CardTransaction
from factflow.examples.banking.pipelines import card_transaction
from factflow.pipeline.steps import ensure_dimensions
from factflow.runtime.consumer import ConsumerOptions, run_consumer
from factflow.transport.base import Outgoing
from factflow.warehouse.base import Warehouse
from reliability._input import postgres_schema
from reliability.conftest import ReliabilityTable
from reliability.ledger import BANKING_LANDINGS, Ledger

pytestmark = [pytest.mark.reliability, pytest.mark.rabbitmq, pytest.mark.postgres]

POISON, KILLER = "t-poison", "t-killer"


class ConsumerKilled(BaseException):
    """Stands for a crash of the consumer process (not an `Exception`: nothing catches it)."""


def poisoned(event: Envelope[TransactionSettled]) -> CardTransaction:
    if event.data.transaction_id == POISON:
        raise RuntimeError(f"{POISON} always fails")
    if event.data.transaction_id == KILLER:
        raise ConsumerKilled
    return card_transaction(event)


APP = App(
    "poisoned",
    consumers=[
        Consumer("card").pipe(
            TransactionSettled,
            Pipeline(TransactionSettled)
            .map(poisoned)
            .then(ensure_dimensions)
            .then(insert_first(CardTransaction)),
        )
    ],
)
LANDINGS = {"card.transaction_settled": BANKING_LANDINGS["card.transaction_settled"]}


def settled(transaction_id: str, **data: Any) -> bytes:
    return json.dumps(
        {
            "id": f"e-{transaction_id}",
            "type": "card.transaction_settled",
            "source": "card-service",
            "occurred_at": "2026-03-01T12:00:00Z",
            "version": 1,
            "data": {
                "transaction_id": transaction_id,
                "card_id": "c-1",
                "user_id": "u-1",
                "amount": "10.00",
                "currency": "EUR",
                "billing_amount": "10.00",
                "billing_currency": "EUR",
                "merchant": "Shop",
                "merchant_category": "retail",
                "merchant_country": "DE",
            }
            | data,
        }
    ).encode()


@pytest.fixture
def store() -> Iterator[Warehouse]:
    with postgres_schema() as connect:
        yield connect()


def publish(url: str, bodies: list[bytes], delivery_limit: int) -> None:
    from factflow.transport.rabbitmq import RabbitMQTransport

    with RabbitMQTransport(url, delivery_limit=delivery_limit) as broker:
        broker.subscribe("kpi", ["card.*"]).close()
        broker.publish(
            Outgoing(type="card.transaction_settled", id=f"m-{i}", body=body)
            for i, body in enumerate(bodies)
        )


def broker_dead_letters(url: str) -> list[bytes]:
    """The bodies RabbitMQ moved to ``kpi.dead-letter`` (taken off the queue)."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel, bodies = connection.channel(), []
        while True:
            method, _, body = channel.basic_get("kpi.dead-letter", auto_ack=True)
            if method is None:
                return bodies
            bodies.append(body)
    finally:
        connection.close()


def test_a_poison_message_is_set_aside_and_the_queue_keeps_flowing(
    amqp_url: str, store: Warehouse, reliability_table: ReliabilityTable
) -> None:
    """A step that raises for one key and a value the warehouse refuses, amid 200 events in
    batches of 25: both are dead letters with their reasons on the first delivery; everything
    else lands; the queue drains to zero."""
    from factflow.transport.rabbitmq import RabbitMQTransport

    good = [settled(f"t-{i}") for i in range(200)]
    refused = settled("t-nul", merchant="a\u0000b")
    bodies = [*good[:100], settled(POISON), refused, *good[100:]]
    ledger = Ledger(APP.schema, LANDINGS)
    ledger.record_all(good)
    ledger.record_all([settled(POISON), refused], expect="dead_letter")
    publish(amqp_url, bodies, delivery_limit=3)
    with RabbitMQTransport(amqp_url, delivery_limit=3) as transport:
        outcome = run_consumer(
            APP,
            transport,
            store,
            ConsumerOptions(batch_size=25, max_wait=1.0, stop_when_idle=True),
        )
        depths = {
            "kpi": transport.depth("kpi"),
            "kpi.dead-letter": transport.depth("kpi.dead-letter"),
        }
    verdict = ledger.check(store, queue_depths=depths)
    reliability_table.add(
        "7 poison step and refused value amid 200 (RabbitMQ, PostgreSQL)", verdict
    )
    verdict.assert_ok()
    reasons = {letter.raw: letter.reason for letter in store.dead_letters()}
    assert f"RuntimeError: {POISON} always fails" in reasons[settled(POISON)]
    assert "warehouse refused it" in reasons[refused]
    assert outcome.messages == len(bodies)  # each taken once: no retry loop


def test_a_message_that_kills_its_consumer_goes_to_the_broker_dead_letters(
    amqp_url: str, store: Warehouse, reliability_table: ReliabilityTable
) -> None:
    """Each run of the consumer dies on the killer; after `delivery_limit` (3) returns the
    broker moves it to ``kpi.dead-letter``, and the next run drains the queue. The first two
    crashes return every message the consumer held (a single return is what any restart does,
    and costs nothing); from then on those messages are suspect, taken and written one at a
    time, so later crashes return the killer alone: no healthy batch-mate reaches the limit and
    ends up in ``kpi.dead-letter``."""
    from factflow.transport.rabbitmq import RabbitMQTransport

    good = [settled(f"t-{i}") for i in range(100)]
    killer = settled(KILLER)
    publish(amqp_url, [*good[:50], killer, *good[50:]], delivery_limit=3)
    crashes = 0
    for _ in range(8):  # bounded: the limit is 3
        with RabbitMQTransport(amqp_url, delivery_limit=3) as transport:
            try:
                run_consumer(
                    APP,
                    transport,
                    store,
                    ConsumerOptions(batch_size=10, max_wait=1.0, stop_when_idle=True),
                )
            except ConsumerKilled:
                crashes += 1
                continue
            depth = transport.depth("kpi")
        break
    aside = broker_dead_letters(amqp_url)
    ledger = Ledger(APP.schema, LANDINGS)
    ledger.record(killer, expect="dead_letter")
    collateral = [body for body in good if body in aside]
    ledger.record_all(good)
    verdict = ledger.check(store, queue_depths={"kpi": depth}, broker_dead_letters=aside)
    reliability_table.add(
        f"7 consumer-killing message: broker dead-letters it alone after {crashes} crashes "
        f"({len(collateral)} batch-mates set aside with it)",
        verdict,
    )
    verdict.assert_ok()
    assert aside == [killer] and not collateral
    assert crashes <= 4  # the limit (3) returns, then one more is over it
    assert depth == 0
