"""RabbitMQ transport: the contract's topology and message format, consumer groups, ack after
commit, poison messages, and lost connections, against the real broker (a vhost per test)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pika
import pytest

from factflow.errors import ConfigurationError, TransportUnavailable
from factflow.transport.base import Outgoing, Subscription, Transport
from factflow.transport.rabbitmq import (
    BOOTSTRAP_SHARE,
    Publisher,
    RabbitMQSubscription,
    RabbitMQTransport,
)

pytestmark = pytest.mark.rabbitmq


def event(event_type: str, number: int) -> Outgoing:
    event_id = f"{event_type}-{number}"
    body = json.dumps({"id": event_id, "type": event_type, "n": number}).encode()
    return Outgoing(type=event_type, id=event_id, body=body)


def ctl(*args: str) -> str:
    result = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode:
        raise AssertionError(f"rabbitmqctl {' '.join(args)}: {result.stderr or result.stdout}")
    return result.stdout


def drain(subscription: Subscription, batch: int = 1000, wait: float = 0.3) -> list[bytes]:
    """Fetch and commit until a fetch finds nothing for `wait` seconds."""
    bodies: list[bytes] = []
    while fetched := subscription.fetch(batch, wait):
        bodies += fetched
        subscription.commit()
    return bodies


def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


@pytest.fixture
def url(amqp_url: str) -> str:
    return amqp_url


@pytest.fixture
def mq(url: str) -> Iterator[RabbitMQTransport]:
    transport = RabbitMQTransport(url)
    yield transport
    transport.close()


@pytest.fixture
def raw(url: str) -> Iterator[Any]:
    """A plain pika channel on the test vhost, as another client of the broker."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    yield connection.channel()
    connection.close()


def vhost_of(url: str) -> str:
    return urlsplit(url).path[1:]


def test_subscribe_declares_the_topology(mq: RabbitMQTransport, url: str) -> None:
    mq.subscribe("kpi", ["card.card_issued", "card.*", "user.user_created"]).close()
    vhost = vhost_of(url)
    exchanges = {
        row["name"]: row
        for row in json.loads(
            ctl("list_exchanges", "-p", vhost, "name", "type", "durable", "--formatter", "json")
        )
    }
    declared = {name: (row["type"], row["durable"]) for name, row in exchanges.items()}
    assert (
        declared.items()
        >= {
            "card": ("topic", True),
            "user": ("topic", True),
            "kpi.dead-letter": ("fanout", True),
        }.items()
    )
    queues = {
        row["name"]: row
        for row in json.loads(
            ctl(
                "list_queues",
                "-p",
                vhost,
                "name",
                "type",
                "durable",
                "arguments",
                "--formatter",
                "json",
            )
        )
    }
    assert set(queues) == {"kpi", "kpi.bootstrap", "kpi.dead-letter"}
    for name in queues:
        assert queues[name]["type"] == "quorum"
        assert queues[name]["durable"] is True
    for name in ("kpi", "kpi.bootstrap"):
        arguments = dict(_flatten(queues[name]["arguments"]))
        assert arguments["x-delivery-limit"] == 20
        assert arguments["x-dead-letter-exchange"] == "kpi.dead-letter"
    bindings = {
        (row["source_name"], row["destination_name"], row["routing_key"])
        for row in json.loads(
            ctl(
                "list_bindings",
                "-p",
                vhost,
                "source_name",
                "destination_name",
                "routing_key",
                "--formatter",
                "json",
            )
        )
        if row["source_name"]  # leave out the default exchange's implicit bindings
    }
    assert bindings == {
        ("card", "kpi", "card.card_issued"),
        ("card", "kpi", "card.#"),
        ("user", "kpi", "user.user_created"),
        ("kpi.dead-letter", "kpi.dead-letter", ""),
    }


def _flatten(arguments: Any) -> Iterator[tuple[str, Any]]:
    # rabbitmqctl prints table arguments as [name, type, value] triples (or as an object).
    if isinstance(arguments, dict):
        yield from arguments.items()
    else:
        yield from ((row[0], row[-1]) for row in arguments)


def test_publish_follows_the_contract(mq: RabbitMQTransport, raw: Any) -> None:
    queue = raw.queue_declare("", exclusive=True).method.queue
    raw.exchange_declare("card", "topic", durable=True)
    raw.queue_bind(queue, "card", routing_key="#")
    message = event("card.transaction_settled", 1)
    assert mq.publish([message]) == 1
    method, properties, body = raw.basic_get(queue, auto_ack=True)
    assert body == message.body
    assert method.exchange == "card"
    assert method.routing_key == "card.transaction_settled"
    assert properties.content_type == "application/json"
    assert properties.message_id == message.id
    assert properties.type == "card.transaction_settled"
    assert properties.delivery_mode == 2
    # The exchange the transport declared is the durable topic exchange of the contract:
    # declaring it so again is accepted.
    raw.exchange_declare("card", "topic", passive=True)
    raw.exchange_declare("card", "topic", durable=True)


def test_fetch_then_commit_delivers_each_message_once(mq: RabbitMQTransport) -> None:
    transport: Transport = mq
    subscription: Subscription = transport.subscribe("kpi", ["card.card_issued"])
    assert isinstance(subscription, RabbitMQSubscription)
    messages = [event("card.card_issued", n) for n in range(50)]
    assert mq.publish(messages) == 50
    assert drain(subscription) == [m.body for m in messages]
    subscription.close()
    again = mq.subscribe("kpi", ["card.card_issued"])
    assert again.fetch(100, 0.3) == []
    assert mq.depth("kpi") == 0


def test_nothing_is_acknowledged_before_commit(mq: RabbitMQTransport) -> None:
    first = mq.subscribe("kpi", ["card.*"])
    messages = [event("card.card_issued", n) for n in range(5)]
    mq.publish(messages)
    assert first.fetch(100, 2) == [m.body for m in messages]
    first.close()  # a crash before commit
    second = mq.subscribe("kpi", ["card.*"])
    assert sorted(drain(second)) == sorted(m.body for m in messages)


def test_committing_the_older_of_two_fetches_keeps_the_newer_unacknowledged(
    mq: RabbitMQTransport,
) -> None:
    first = mq.subscribe("kpi", ["card.*"])
    messages = [event("card.card_issued", n) for n in range(7)]
    mq.publish(messages)
    older = first.fetch(3, 2)
    newer = first.fetch(100, 2)
    assert older + newer == [m.body for m in messages]
    first.commit(1)  # the older one is written, the newer one is still being written
    first.close()  # a crash before the newer one's commit

    second = mq.subscribe("kpi", ["card.*"])
    assert sorted(drain(second)) == sorted(newer)


def test_bootstrap_events_reach_only_the_group_they_were_published_for(
    mq: RabbitMQTransport,
) -> None:
    kpi = mq.subscribe("kpi", ["card.*"])
    other = mq.subscribe("fraud", ["card.*"])
    replayed = [event("card.card_issued", n) for n in range(20)]
    assert mq.publish_bootstrap("kpi", replayed) == 20

    assert sorted(drain(kpi)) == sorted(m.body for m in replayed)
    assert other.fetch(100, 0.3) == []
    kpi.close()
    assert mq.subscribe("kpi", ["card.*"]).fetch(100, 0.3) == []  # committed by drain


def test_a_bootstrap_backlog_leaves_most_of_each_batch_to_live_events(
    mq: RabbitMQTransport,
) -> None:
    mq.subscribe("kpi", ["card.*"]).close()  # the queues exist
    mq.publish_bootstrap("kpi", [event("card.card_issued", n) for n in range(400)])
    mq.publish([event("card.transaction_settled", n) for n in range(400)])
    subscription = mq.subscribe("kpi", ["card.*"])
    subscription.fetch(1, 2)
    subscription.commit()
    time.sleep(0.5)  # both queues streamed in

    batch = subscription.fetch(100, 2)

    from_live = sum(b"transaction_settled" in body for body in batch)
    assert len(batch) == 100
    assert from_live >= 100 * (1 - BOOTSTRAP_SHARE)
    assert from_live < 100  # the bootstrap is not starved either


def test_without_live_events_the_bootstrap_fills_whole_batches(mq: RabbitMQTransport) -> None:
    subscription = mq.subscribe("kpi", ["card.*"])
    mq.publish_bootstrap("kpi", [event("card.card_issued", n) for n in range(300)])
    time.sleep(0.5)
    assert len(subscription.fetch(100, 2)) == 100


def test_fetch_never_holds_more_than_the_prefetch(url: str) -> None:
    with RabbitMQTransport(url, prefetch=5) as mq:
        subscription = mq.subscribe("kpi", ["card.*"])
        mq.publish([event("card.card_issued", n) for n in range(12)])
        assert len(subscription.fetch(5000, 2)) == 5
        started = time.monotonic()
        assert subscription.fetch(5000, 5) == []  # five held already: nothing more can come
        assert time.monotonic() - started < 1
        subscription.commit()
        assert len(subscription.fetch(5000, 2)) == 5


def test_ready_counts_the_messages_not_delivered_yet_in_both_queues(url: str) -> None:
    with RabbitMQTransport(url, prefetch=5) as mq:
        subscription = mq.subscribe("kpi", ["card.*"])
        mq.publish([event("card.card_issued", n) for n in range(12)])
        mq.publish_bootstrap("kpi", [event("card.card_issued", n) for n in range(3)])
        eventually(lambda: subscription.ready() == 15)  # nothing consumed before a fetch
        while subscription.fetch(100, 1):
            subscription.commit()
        assert subscription.ready() == 0


def test_processes_of_one_group_share_its_messages(url: str) -> None:
    messages = [event("card.card_issued", n) for n in range(100)]
    with RabbitMQTransport(url, prefetch=10) as mq:
        one, two = mq.subscribe("kpi", ["card.*"]), mq.subscribe("kpi", ["card.*"])
        mq.publish(messages)
        seen: dict[str, list[bytes]] = {"one": [], "two": []}
        idle = 0
        while idle < 2:
            idle = 0
            for name, subscription in (("one", one), ("two", two)):
                fetched = subscription.fetch(100, 0.3)
                assert len(fetched) <= 10  # the prefetch leaves the rest to the other process
                seen[name] += fetched
                subscription.commit()
                idle += not fetched
    assert seen["one"] and seen["two"]
    assert sorted(seen["one"] + seen["two"]) == sorted(m.body for m in messages)


def test_every_group_sees_every_message(mq: RabbitMQTransport) -> None:
    kpi, audit = mq.subscribe("kpi", ["card.*"]), mq.subscribe("audit", ["card.card_issued"])
    messages = [event("card.card_issued", n) for n in range(20)]
    mq.publish(messages)
    assert drain(kpi) == drain(audit) == [m.body for m in messages]


def test_events_published_by_another_client_are_fetched(mq: RabbitMQTransport, raw: Any) -> None:
    subscription = mq.subscribe("kpi", ["card.transaction_settled", "card.*"])
    body = b'{"id": "e-1", "type": "card.transaction_settled", "data": {}}'
    raw.basic_publish(
        "card",
        "card.transaction_settled",
        body,
        pika.BasicProperties(
            content_type="application/json",
            message_id="e-1",
            type="card.transaction_settled",
            delivery_mode=2,
        ),
    )
    assert drain(subscription) == [body]


def test_unknown_types_of_a_subscribed_domain_are_delivered(mq: RabbitMQTransport) -> None:
    subscription = mq.subscribe("kpi", ["card.card_issued", "card.*"])
    known, unknown = event("card.card_issued", 1), event("card.card_frozen", 2)
    # Not <domain>.<event_name>: it must reach the runtime to be set aside with its reason.
    dotted = event("card.card_frozen.v2", 3)
    other_domain = event("goal.goal_created", 4)
    mq.publish([known, unknown, dotted, other_domain])
    assert drain(subscription) == [known.body, unknown.body, dotted.body]


def test_a_message_never_acknowledged_ends_in_the_dead_letter_queue(url: str, raw: Any) -> None:
    with RabbitMQTransport(url, delivery_limit=2) as mq:
        mq.subscribe("kpi", ["card.*"]).close()
        poison = event("card.card_issued", 1)
        mq.publish([poison])
        deliveries = 0
        while deliveries < 10:
            subscription = mq.subscribe("kpi", ["card.*"])
            if not subscription.fetch(10, 1):
                subscription.close()
                break
            deliveries += 1
            subscription.close()  # the consumer dies on it, every time
        assert 2 <= deliveries <= 3  # the limit, plus the delivery that went over it
        eventually(lambda: mq.depth("kpi.dead-letter") == 1)
        assert mq.depth("kpi") == 0
        _, _, body = raw.basic_get("kpi.dead-letter", auto_ack=True)
        assert body == poison.body
        # The queue goes on with the next messages.
        healthy = event("card.card_issued", 2)
        mq.publish([healthy])
        assert drain(mq.subscribe("kpi", ["card.*"])) == [healthy.body]


def test_a_lost_connection_raises_and_a_new_subscription_resumes(
    mq: RabbitMQTransport, url: str
) -> None:
    subscription = mq.subscribe("kpi", ["card.*"])
    messages = [event("card.card_issued", n) for n in range(5)]
    mq.publish(messages)
    assert len(subscription.fetch(100, 2)) == 5
    ctl("close_all_connections", "-p", vhost_of(url), "test")
    with pytest.raises(TransportUnavailable) as lost:
        subscription.commit()
    assert "guest:guest" not in str(lost.value)
    assert "***" in str(lost.value)
    with pytest.raises(TransportUnavailable):
        subscription.fetch(100, 0.1)
    subscription.close()
    with pytest.raises(TransportUnavailable):
        mq.publish([event("card.card_issued", 99)])  # the publishing connection went too
    resumed = mq.subscribe("kpi", ["card.*"])
    assert sorted(drain(resumed)) == sorted(m.body for m in messages)
    assert mq.publish([event("card.card_issued", 100)]) == 1  # reconnected
    assert len(drain(resumed)) == 1
    # Lost while a fetch waits for messages.
    ctl("close_all_connections", "-p", vhost_of(url), "test")
    with pytest.raises(TransportUnavailable):
        resumed.fetch(100, 2)


def test_depth_counts_ready_messages(mq: RabbitMQTransport) -> None:
    assert mq.depth("kpi") == 0  # no queue yet
    mq.subscribe("kpi", ["card.*"]).close()
    mq.publish([event("card.card_issued", n) for n in range(3)])
    eventually(lambda: mq.depth("kpi") == 3)
    assert mq.depth("kpi.dead-letter") == 0


def test_publisher_writes_contract_envelopes(url: str, mq: RabbitMQTransport) -> None:
    subscription = mq.subscribe("kpi", ["card.*"])
    with Publisher(url) as publisher:
        generated = publisher.publish(
            "card.transaction_settled",
            {"transaction_id": "t-1", "amount": Decimal("-130.00")},
            source="card-service",
        )
        given = publisher.publish(
            "card.card_issued",
            {"card_id": "c-1"},
            id="e-2",
            occurred_at=datetime(2026, 3, 1, 12, 34, 56, tzinfo=UTC),
            source="card-service",
            version=2,
        )
        with pytest.raises(ValueError, match="time zone"):
            publisher.publish("card.card_issued", {}, occurred_at=datetime(2026, 3, 1), source="x")
        assert publisher.publish_raw([event("card.card_issued", 3)]) == 1
    assert str(uuid.UUID(generated)) == generated
    assert given == "e-2"
    first, second, third = (json.loads(body) for body in drain(subscription))
    assert first["id"] == generated
    assert first["data"] == {"transaction_id": "t-1", "amount": "-130.00"}
    assert first["source"] == "card-service"
    assert first["version"] == 1
    assert datetime.fromisoformat(first["occurred_at"]).utcoffset() is not None
    assert second == {
        "id": "e-2",
        "type": "card.card_issued",
        "source": "card-service",
        "occurred_at": "2026-03-01T12:34:56Z",
        "version": 2,
        "data": {"card_id": "c-1"},
    }
    assert third["id"] == "card.card_issued-3"


def test_publish_refuses_what_amqp_cannot_route(mq: RabbitMQTransport) -> None:
    with pytest.raises(ValueError, match="domain"):
        mq.publish([Outgoing(type=".card_issued", id="e-1", body=b"{}")])
    with pytest.raises(ValueError, match="255 bytes"):
        mq.publish([Outgoing(type="card.card_issued", id="e" * 300, body=b"{}")])
    assert mq.publish([event("card.card_issued", 1)]) == 1  # the transport is still usable


def test_settings_that_cannot_work_are_configuration_errors(url: str) -> None:
    with RabbitMQTransport(url) as mq:
        mq.subscribe("kpi", ["card.*"]).close()
        with pytest.raises(ConfigurationError, match="kpi"):
            mq.subscribe("amq.kpi", ["card.*"])
        with pytest.raises(ConfigurationError, match="card"):
            mq.subscribe("kpi", ["card"])
    with RabbitMQTransport(url, delivery_limit=3) as other, pytest.raises(ConfigurationError) as e:
        other.subscribe("kpi", ["card.*"])  # the queue exists with a limit of 20
    assert "x-delivery-limit" in str(e.value)
    missing = urlsplit(url)._replace(path="/no_such_vhost_here").geturl()
    with RabbitMQTransport(missing) as nowhere, pytest.raises(ConfigurationError):
        nowhere.subscribe("kpi", ["card.*"])
    with pytest.raises(ConfigurationError):
        RabbitMQTransport(url, prefetch=0)


def test_an_exchange_of_another_kind_is_a_configuration_error(
    mq: RabbitMQTransport, raw: Any
) -> None:
    raw.exchange_declare("card", "fanout", durable=True)
    with pytest.raises(ConfigurationError, match="exchange"):
        mq.publish([event("card.card_issued", 1)])
    with pytest.raises(ConfigurationError, match="exchange"):
        mq.subscribe("kpi", ["card.*"])


def test_an_unreachable_broker_is_unavailable() -> None:
    with RabbitMQTransport("amqp://kpi:s3cret@127.0.0.1:1/") as mq:
        with pytest.raises(TransportUnavailable) as error:
            mq.subscribe("kpi", ["card.*"])
        assert "s3cret" not in str(error.value)
        with pytest.raises(TransportUnavailable):
            mq.publish([event("card.card_issued", 1)])


def test_without_pika_the_install_command_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    import factflow.transport.rabbitmq as module

    monkeypatch.setitem(sys.modules, "pika", None)
    spec = importlib.util.spec_from_file_location("rabbitmq_without_pika", module.__file__)
    assert spec is not None and spec.loader is not None
    with pytest.raises(ConfigurationError, match=r"pip install 'factflow\[rabbitmq\]'"):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
