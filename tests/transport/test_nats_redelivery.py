"""NATS JetStream: a message delivered unacknowledged twice (suspect) is handed out alone, so
that a message that crashes its consumer spends only its own deliveries toward `max_deliver`
(issue 8, scenario 7). Against the
real server, a subject prefix per test."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conftest import service_url
from factflow.transport.base import Fetched, Outgoing
from factflow.transport.nats import NatsSubscription, NatsTransport
from redelivery import read_suspects_then_the_rest

pytest.importorskip("nats")

pytestmark = pytest.mark.nats


def event(number: int) -> Outgoing:
    envelope_id = f"card.card_issued-{number}-{uuid.uuid4().hex[:6]}"
    body = json.dumps({"id": envelope_id, "type": "card.card_issued", "n": number}).encode()
    return Outgoing(type="card.card_issued", id=envelope_id, body=body)


@pytest.fixture
def connect(nats_prefix: str) -> Iterator[Callable[..., NatsTransport]]:
    """Makes transports on this test's prefix (closed afterwards); keyword arguments pass on."""
    made: list[NatsTransport] = []

    def make(**options: Any) -> NatsTransport:
        transport = NatsTransport(f"{service_url('nats')}?prefix={nats_prefix}", **options)
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close()


def returned(subscription: NatsSubscription, count: int) -> list[bytes]:
    """Fetch `count` first deliveries, then close without committing: they come back."""
    held: list[bytes] = []
    while len(held) < count and (fetched := subscription.fetch(count, 5)):
        assert isinstance(fetched, Fetched) and not fetched.suspect
        held += fetched
    subscription.close()
    return held


def test_suspect_messages_come_one_per_fetch_before_the_rest(
    connect: Callable[..., NatsTransport],
) -> None:
    transport = connect(ack_wait=60)
    transport.publish([event(n) for n in range(5)])
    returned(transport.subscribe("kpi", ["card.*"]), 5)
    held = returned(transport.subscribe("kpi", ["card.*"]), 5)
    later = [event(n) for n in range(5, 12)]
    transport.publish(later)

    subscription = transport.subscribe("kpi", ["card.*"])
    alone, rest = read_suspects_then_the_rest(subscription, len(held), len(later), 5)
    assert sorted(alone) == sorted(held)
    assert rest == [m.body for m in later]
    assert len(rest) == len(later)
    assert transport.depth("kpi") == 0


def test_a_crash_on_a_suspect_message_costs_only_its_own_delivery(
    connect: Callable[..., NatsTransport],
) -> None:
    """With `max_deliver` 3, the message held when the third reader dies is given up, and only
    that one: the third reader pulled nothing but the suspect message it handed out."""
    transport = connect(ack_wait=60, max_deliver=3)
    transport.publish([event(n) for n in range(6)])
    returned(transport.subscribe("kpi", ["card.*"]), 6)
    held = returned(transport.subscribe("kpi", ["card.*"]), 6)

    third = transport.subscribe("kpi", ["card.*"])
    killer = third.fetch(100, 5)
    assert isinstance(killer, Fetched) and killer.suspect and len(killer) == 1
    third.close()  # without commit: its third delivery was its last

    fourth = transport.subscribe("kpi", ["card.*"])
    survivors: list[bytes] = []
    while fetched := fourth.fetch(100, 1):
        assert isinstance(fetched, Fetched) and fetched.suspect and len(fetched) == 1
        survivors += fetched
        fourth.commit()
    assert sorted(survivors) == sorted(body for body in held if body not in killer)
