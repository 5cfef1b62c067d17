"""RabbitMQ: a message returned unacknowledged twice (suspect) is handed out alone, so that a
message that crashes its consumer spends only its own deliveries toward the queue's delivery
limit, while a single return (any restart) costs nothing (issue 8, scenario 7).
Against the real broker, a vhost per test."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterable, Iterator, Sequence

import pytest

from factflow.examples.banking import app
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.runtime.consumer import ConsumerOptions, run_consumer
from factflow.runtime.writer import BatchOutcome
from factflow.transport.base import SUSPECT_RETURNS, Fetched, Outgoing, Subscription
from factflow.transport.publishing import outgoing
from factflow.transport.rabbitmq import RabbitMQSubscription, RabbitMQTransport
from factflow.warehouse.duckdb import DuckDBWarehouse
from redelivery import read_suspects_then_the_rest

pytestmark = pytest.mark.rabbitmq


def event(number: int) -> Outgoing:
    event_id = f"card.card_issued-{number}"
    body = json.dumps({"id": event_id, "type": "card.card_issued", "n": number}).encode()
    return Outgoing(type="card.card_issued", id=event_id, body=body)


@pytest.fixture
def mq(amqp_url: str) -> Iterator[RabbitMQTransport]:
    with RabbitMQTransport(amqp_url, delivery_limit=SUSPECT_RETURNS) as transport:
        yield transport


def crash_holding_everything(mq: RabbitMQTransport, count: int) -> list[bytes]:
    """A consumer that fetches `count` messages and dies before committing them."""
    with mq.subscribe("kpi", ["card.*"]) as doomed:
        held: list[bytes] = []
        while len(held) < count and (fetched := doomed.fetch(count, 2)):
            assert isinstance(fetched, Fetched) and not fetched.suspect
            held += fetched
    return held


class _SlowToStart:
    """The real subscription, whose first fetches find nothing although messages are ready: a
    broker that takes its time to start pushing to a new consumer."""

    def __init__(self, inner: RabbitMQSubscription, empty_fetches: int) -> None:
        self.inner, self.empty_fetches = inner, empty_fetches

    def fetch(self, max_messages: int, max_wait: float) -> Sequence[bytes]:
        if self.empty_fetches:
            self.empty_fetches -= 1
            return Fetched()
        return self.inner.fetch(max_messages, max_wait)

    def ready(self) -> int:
        return self.inner.ready()

    def commit(self, batches: int | None = None) -> None:
        self.inner.commit(batches)

    def close(self) -> None:
        self.inner.close()


class _SlowToStartTransport:
    def __init__(self, inner: RabbitMQTransport) -> None:
        self.inner = inner

    def subscribe(self, group: str, event_types: Collection[str]) -> Subscription:
        return _SlowToStart(self.inner.subscribe(group, event_types), empty_fetches=2)

    def publish(self, messages: Iterable[Outgoing]) -> int:
        return self.inner.publish(messages)

    def close(self) -> None:
        self.inner.close()


def test_until_idle_is_not_fooled_by_a_broker_slow_to_start_pushing(
    mq: RabbitMQTransport,
) -> None:
    """A consumer run until idle stops when a fetch finds nothing and nothing is ready; found
    with a new consumer of a quorum queue busy storing 300,000 messages just published, which
    pushed nothing for more than the fetch's half second: the run stopped after one event."""
    mq.subscribe("kpi", ["card.*"]).close()  # the queue and its bindings
    mq.publish([event(n) for n in range(50)])
    with DuckDBWarehouse(None) as warehouse:
        outcome = run_consumer(
            app,
            _SlowToStartTransport(mq),
            warehouse,
            ConsumerOptions(group="kpi", max_wait=0.05, stop_when_idle=True),
        )
    assert outcome.messages == 50
    assert mq.depth("kpi") == 0


def test_first_deliveries_come_as_one_batch_not_suspect(mq: RabbitMQTransport) -> None:
    subscription = mq.subscribe("kpi", ["card.*"])
    messages = [event(n) for n in range(20)]
    mq.publish(messages)
    fetched = subscription.fetch(100, 2)
    assert isinstance(fetched, Fetched) and not fetched.suspect
    assert fetched == [m.body for m in messages]
    subscription.commit()
    subscription.close()


def test_messages_returned_once_come_in_batches_as_after_any_restart(
    mq: RabbitMQTransport,
) -> None:
    mq.subscribe("kpi", ["card.*"]).close()
    mq.publish([event(n) for n in range(8)])
    held = crash_holding_everything(mq, 8)
    with mq.subscribe("kpi", ["card.*"]) as subscription:
        fetched = subscription.fetch(100, 2)
        assert isinstance(fetched, Fetched) and not fetched.suspect
        assert sorted(fetched) == sorted(held)
        subscription.commit()
    assert mq.depth("kpi") == 0


def test_suspect_messages_come_one_per_fetch_before_the_rest(mq: RabbitMQTransport) -> None:
    """Messages returned twice come alone, marked; first deliveries published after them come
    as one batch, unmarked."""
    mq.subscribe("kpi", ["card.*"]).close()
    returned = [event(n) for n in range(5)]
    mq.publish(returned)
    crash_holding_everything(mq, 5)
    held = crash_holding_everything(mq, 5)
    assert sorted(held) == sorted(m.body for m in returned)
    later = [event(n) for n in range(5, 12)]
    mq.publish(later)

    with mq.subscribe("kpi", ["card.*"]) as subscription:
        alone, rest = read_suspects_then_the_rest(subscription, len(returned), len(later), 2)
        assert sorted(alone) == sorted(held)
        assert rest == [m.body for m in later]
        assert subscription.fetch(100, 0.2) == []
    assert mq.depth("kpi") == 0


def test_a_crash_on_a_suspect_message_costs_only_its_own_delivery(
    mq: RabbitMQTransport,
) -> None:
    """With a delivery limit of 2, a third crash dead-letters the message held when it
    happened, and only that one: a new subscription holds nothing but the suspect message it
    handed out (no prefetch of the others)."""
    mq.subscribe("kpi", ["card.*"]).close()
    mq.publish([event(n) for n in range(6)])
    crash_holding_everything(mq, 6)
    held = crash_holding_everything(mq, 6)

    with mq.subscribe("kpi", ["card.*"]) as third:
        killer = third.fetch(100, 2)
        assert isinstance(killer, Fetched) and killer.suspect and len(killer) == 1
    # closed without commit: a third return of the killer, over the limit of 2

    with mq.subscribe("kpi", ["card.*"]) as fourth:
        survivors: list[bytes] = []
        while fetched := fourth.fetch(100, 0.5):
            assert isinstance(fetched, Fetched) and fetched.suspect and len(fetched) == 1
            survivors += fetched
            fourth.commit()
    assert sorted(survivors) == sorted(body for body in held if body not in killer)
    assert mq.depth("kpi.dead-letter") == 1


def test_the_consumer_writes_suspect_messages_one_per_transaction(
    amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """After two crashes, `run_consumer` writes each returned message in a transaction of its own,
    the first deliveries after them in full batches, and warns once about the switch."""
    bodies = list(simulate(SimulationOptions(events=300, seed=7)))
    batches: list[BatchOutcome] = []
    with RabbitMQTransport(amqp_url) as mq:
        mq.subscribe("kpi", ["user.*", "account.*", "card.*", "goal.*"]).close()
        mq.publish(outgoing(bodies[:20], []))
        for _ in range(SUSPECT_RETURNS):
            with mq.subscribe("kpi", ["user.*", "account.*", "card.*", "goal.*"]) as doomed:
                held = doomed.fetch(20, 2)
                assert len(held) == 20
        mq.publish(outgoing(bodies[20:], []))
        options = ConsumerOptions(batch_size=100, max_wait=1.0, stop_when_idle=True)
        with DuckDBWarehouse(None) as warehouse, caplog.at_level(logging.WARNING):
            total = run_consumer(app, mq, warehouse, options, on_batch=batches.append)
        assert mq.depth("kpi") == 0
    assert total.messages == 300
    sizes = [batch.messages for batch in batches]
    assert sizes[:20] == [1] * 20
    assert sum(sizes[20:]) == 280 and max(sizes[20:]) > 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("one at a time, each acknowledged" in w for w in warnings) == 1
    assert "wrote 20 suspect messages one at a time" in warnings
