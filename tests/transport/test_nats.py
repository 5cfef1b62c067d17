"""The NATS JetStream transport against the real server: streams, consumer groups, acknowledgement.

Every test publishes under its own subject prefix and deletes its streams afterwards.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from conftest import nats_admin, service_url
from factflow.errors import ConfigurationError, TransportUnavailable
from factflow.transport.base import Outgoing, Subscription, Transport
from factflow.transport.nats import NatsSubscription, NatsTransport

nats = pytest.importorskip("nats")
StorageType = pytest.importorskip("nats.js.api").StorageType

pytestmark = pytest.mark.nats

T = TypeVar("T")


def event(event_type: str, number: int) -> Outgoing:
    envelope_id = f"{event_type}-{number}-{uuid.uuid4().hex[:6]}"
    body = json.dumps({"id": envelope_id, "type": event_type, "data": {"n": number}}).encode()
    return Outgoing(type=event_type, id=envelope_id, body=body)


def drain(subscription: Subscription, batch: int = 1000) -> list[bytes]:
    """Everything there is now, committed."""
    bodies: list[bytes] = []
    while fetched := subscription.fetch(batch, 0):
        bodies += fetched
        subscription.commit()
    return bodies


admin = nats_admin  # a plain nats-py client: another program, not factflow


@pytest.fixture
def server() -> str:
    return service_url("nats")


@pytest.fixture
def prefix(nats_prefix: str) -> str:
    return nats_prefix


@pytest.fixture
def connect(server: str, prefix: str) -> Iterator[Callable[..., NatsTransport]]:
    """Makes transports on this test's prefix (closed afterwards); keyword arguments pass on."""
    made: list[NatsTransport] = []

    def make(**options: Any) -> NatsTransport:
        transport = NatsTransport(f"{server}?prefix={prefix}", **options)
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close()


@pytest.fixture
def transport(connect: Callable[..., NatsTransport]) -> NatsTransport:
    return connect(ack_wait=30)


def test_implements_the_transport_protocols(transport: NatsTransport) -> None:
    as_transport: Transport = transport
    subscription: Subscription = transport.subscribe("kpi", ["card.*"])
    assert as_transport is transport
    assert isinstance(subscription, NatsSubscription)


def test_published_bodies_are_fetched_byte_identical(transport: NatsTransport) -> None:
    sent = [event("card.card_issued", n) for n in range(300)]
    sent += [event("user.user_created", n) for n in range(200)]
    sent.append(Outgoing(type="card.card_issued", id="odd", body=b'{"id": "odd", "\xc3\xa9": 1}'))
    subscription = transport.subscribe("kpi", ["card.*", "user.*"])

    assert transport.publish(iter(sent)) == len(sent)
    received = drain(subscription, batch=128)

    assert sorted(received) == sorted(message.body for message in sent)
    cards = [body for body in received if b"card.card_issued" in body]
    assert cards == [m.body for m in sent if m.type == "card.card_issued" and m.id != "odd"]


def test_each_domain_has_a_file_stream_of_its_subjects(
    transport: NatsTransport, server: str, prefix: str
) -> None:
    transport.publish([event("card.card_issued", 1), event("goal.goal_created", 1)])
    transport.subscribe("kpi", ["user.*"])

    async def streams(js: Any) -> dict[str, tuple[list[str], Any]]:
        return {
            s.config.name: (s.config.subjects, StorageType(s.config.storage))
            for s in await js.streams_info()
            if s.config.name.startswith(f"{prefix}_")
        }

    assert admin(server, streams) == {
        f"{prefix}_card": ([f"{prefix}.card.>"], StorageType.FILE),
        f"{prefix}_goal": ([f"{prefix}.goal.>"], StorageType.FILE),
        f"{prefix}_user": ([f"{prefix}.user.>"], StorageType.FILE),
    }
    assert transport.stream("card") == f"{prefix}_card"
    assert transport.subject("card.card_issued") == f"{prefix}.card.card_issued"


def test_an_existing_stream_gets_our_subject_added(
    transport: NatsTransport, server: str, prefix: str
) -> None:
    async def create(js: Any) -> None:
        await js.add_stream(name=f"{prefix}_card", subjects=[f"{prefix}.legacy.card"])

    admin(server, create)
    transport.publish([event("card.card_issued", 1)])
    subscription = transport.subscribe("kpi", ["card.*"])

    assert len(drain(subscription)) == 1

    async def subjects(js: Any) -> list[str]:
        return list((await js.stream_info(f"{prefix}_card")).config.subjects)

    assert admin(server, subjects) == [f"{prefix}.legacy.card", f"{prefix}.card.>"]


def test_nothing_is_acknowledged_before_commit(connect: Callable[..., NatsTransport]) -> None:
    # ack_wait is long: what comes back at once was given back by `close`, not timed out.
    transport = connect(ack_wait=60)
    sent = [event("card.card_issued", n) for n in range(50)]
    transport.publish(sent)
    first = transport.subscribe("kpi", ["card.*"])
    assert len(first.fetch(100, 5)) == 50
    assert transport.depth("kpi") == 50  # delivered, not acknowledged
    first.close()

    second = transport.subscribe("kpi", ["card.*"])
    again: list[bytes] = []
    while len(again) < 50 and (fetched := second.fetch(100, 5)):
        again += fetched
    assert sorted(again) == sorted(message.body for message in sent)
    second.commit()
    assert transport.depth("kpi") == 0
    assert second.fetch(100, 0.2) == []


def test_committing_the_older_of_two_fetches_keeps_the_newer_unacknowledged(
    connect: Callable[..., NatsTransport],
) -> None:
    transport = connect(ack_wait=60)
    sent = [event("card.card_issued", n) for n in range(10)]
    transport.publish(sent)
    first = transport.subscribe("kpi", ["card.*"])
    older = first.fetch(4, 5)
    newer: list[bytes] = []
    while len(newer) < 6 and (fetched := first.fetch(100, 5)):
        newer += fetched
    first.commit(1)  # the older one is written, the newer one is still being written
    assert transport.depth("kpi") == 6
    first.close()  # a crash before the newer one's commit

    second = transport.subscribe("kpi", ["card.*"])
    again: list[bytes] = []
    while len(again) < 6 and (fetched := second.fetch(100, 5)):
        again += fetched
    assert len(older) == 4
    assert sorted(again) == sorted(newer)


def test_a_crashed_reader_s_messages_come_again_after_ack_wait(
    connect: Callable[..., NatsTransport],
) -> None:
    crashed = connect(ack_wait=1)
    crashed.publish([event("card.card_issued", 1)])
    assert len(crashed.subscribe("kpi", ["card.*"]).fetch(10, 5)) == 1  # never committed

    survivor = connect(ack_wait=1).subscribe("kpi", ["card.*"])
    assert len(survivor.fetch(10, 5)) == 1


def test_processes_of_one_group_share_the_messages(connect: Callable[..., NatsTransport]) -> None:
    sent = [event("card.transaction_settled", n) for n in range(400)]
    connect().publish(sent)
    readers = [connect().subscribe("kpi", ["card.*"]) for _ in range(2)]
    seen: list[list[bytes]] = [[], []]
    idle = 0
    while idle < 2:
        idle = 0
        for reader, bodies in zip(readers, seen, strict=True):
            fetched = reader.fetch(50, 0.1)
            bodies += fetched
            reader.commit()
            idle += not fetched

    assert sorted(seen[0] + seen[1]) == sorted(message.body for message in sent)
    assert seen[0] and seen[1]


def test_every_group_sees_every_message(transport: NatsTransport) -> None:
    sent = [event("goal.goal_created", n) for n in range(100)]
    transport.publish(sent)

    for group in ("kpi", "audit", "kpi.eu", "kpi_eu"):  # the last two must not share a consumer
        subscription = transport.subscribe(group, ["goal.*"])
        assert sorted(drain(subscription)) == sorted(message.body for message in sent), group


def test_a_message_from_another_publisher_is_fetched(
    transport: NatsTransport, server: str, prefix: str
) -> None:
    subscription = transport.subscribe("kpi", ["card.*"])  # creates the stream
    body = b'{"id": "x-1", "type": "card.card_issued"}'

    async def publish(js: Any) -> None:
        await js.publish(f"{prefix}.card.card_issued", body)

    admin(server, publish)
    assert drain(subscription) == [body]


def test_a_domain_pattern_reads_unknown_types_of_that_domain_only(
    transport: NatsTransport,
) -> None:
    unknown = event("card.never_heard_of", 1)
    transport.publish([unknown, event("user.user_created", 1), event("user.user_created", 2)])
    subscription = transport.subscribe("kpi", ["card.*"])

    assert drain(subscription) == [unknown.body]


def test_exact_types_filter_and_the_others_are_acknowledged(transport: NatsTransport) -> None:
    wanted = [event("card.card_issued", n) for n in range(5)]
    others = [event("card.transaction_settled", n) for n in range(20)]
    transport.publish(others[:10] + wanted + others[10:])
    subscription = transport.subscribe("kpi", ["card.card_issued", "user.user_created"])

    assert drain(subscription, batch=3) == [message.body for message in wanted]
    assert transport.lag("kpi") == {"card": 0, "user": 0}


def test_a_fetch_of_only_other_types_acknowledges_them(transport: NatsTransport) -> None:
    subscription = transport.subscribe("kpi", ["card.card_issued"])
    transport.publish([event("card.transaction_settled", n) for n in range(5)])

    assert subscription.fetch(10, 0.3) == []
    assert transport.depth("kpi") == 0


def test_a_message_never_acknowledged_is_given_up_after_max_deliver(
    connect: Callable[..., NatsTransport], server: str, prefix: str
) -> None:
    transport = connect(max_deliver=2, ack_wait=1)
    poison = event("card.card_issued", 1)
    transport.publish([poison])
    advisories: list[bytes] = []

    async def watch() -> None:
        client = await nats.connect(server)

        async def record(msg: Any) -> None:
            advisories.append(msg.data)

        await client.subscribe(
            f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{prefix}_card.kpi", cb=record
        )
        for _ in range(100):  # until the advisory came, 5 s at most
            if advisories:
                break
            await asyncio.sleep(0.05)
        await client.close()

    watcher = threading.Thread(target=asyncio.run, args=(watch(),))
    watcher.start()
    # Each reader dies before its commit: the message comes again after ack_wait, twice only.
    assert transport.subscribe("kpi", ["card.*"]).fetch(10, 5) == [poison.body]
    assert transport.subscribe("kpi", ["card.*"]).fetch(10, 5) == [poison.body]
    assert transport.subscribe("kpi", ["card.*"]).fetch(10, 2.5) == []
    watcher.join()
    assert advisories and json.loads(advisories[0])["stream_seq"] == 1


def test_a_republished_envelope_is_stored_once(transport: NatsTransport) -> None:
    message = event("card.card_issued", 1)
    transport.publish([message])
    transport.publish([message])  # Nats-Msg-Id: the envelope id

    assert drain(transport.subscribe("kpi", ["card.*"])) == [message.body]


def test_fetch_waits_for_a_message_published_meanwhile(transport: NatsTransport) -> None:
    subscription = transport.subscribe("kpi", ["card.*"])
    message = event("card.card_issued", 1)
    timer = threading.Timer(0.3, transport.publish, args=([message],))
    timer.start()
    try:
        assert subscription.fetch(100, 10) == [message.body]
    finally:
        timer.join()


def test_a_backlog_in_one_domain_does_not_starve_another(transport: NatsTransport) -> None:
    transport.publish([event("card.transaction_settled", n) for n in range(2000)])
    transport.publish([event("user.user_created", n) for n in range(10)])
    subscription = transport.subscribe("kpi", ["card.*", "user.*"])

    first = subscription.fetch(100, 1)
    assert len(first) == 100
    assert sum(b'"user.user_created"' in body for body in first) == 10


def test_depth_counts_what_the_group_has_not_acknowledged(transport: NatsTransport) -> None:
    transport.publish([event("card.card_issued", n) for n in range(10)])
    transport.publish([event("user.user_created", n) for n in range(5)])
    subscription = transport.subscribe("kpi", ["card.*", "user.*"])
    assert transport.depth("kpi") == 15
    assert transport.depth("nobody") == 0

    assert len(subscription.fetch(6, 1)) == 6
    assert transport.depth("kpi") == 15
    subscription.commit()
    assert transport.depth("kpi") == 9
    drain(subscription)
    assert transport.lag("kpi") == {"card": 0, "user": 0}


def free_port() -> int:
    with socket.socket() as probe:  # a port where nothing listens (until someone takes it)
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_deleted_stream_is_created_again(
    transport: NatsTransport, server: str, prefix: str
) -> None:
    transport.publish([event("card.card_issued", 1)])

    async def delete(js: Any) -> None:
        await js.delete_stream(f"{prefix}_card")

    admin(server, delete)
    message = event("card.card_issued", 2)
    with pytest.raises(TransportUnavailable, match="no stream"):
        transport.publish([message])
    transport.publish([message])  # as the caller retries

    assert drain(transport.subscribe("kpi", ["card.*"])) == [message.body]


class PrivateServer:
    """A NATS server of this test's own, to stop and start (the shared one must stay up)."""

    def __init__(self, store: Path) -> None:
        executable = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not Path(executable).exists():
            pytest.skip("nats-server is not installed")
        self.port = free_port()
        self.command = [executable, "-a", "127.0.0.1", "-p", str(self.port), "-js"]
        self.command += ["-sd", str(store)]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"{self.command} did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[PrivateServer]:
    private = PrivateServer(tmp_path / "jetstream")
    private.start()
    yield private
    private.stop()


def test_reading_goes_on_after_the_server_restarts(private_server: PrivateServer) -> None:
    transport = NatsTransport(f"nats://127.0.0.1:{private_server.port}", ack_wait=1, timeout=2)
    try:
        sent = [event("card.card_issued", n) for n in range(10)]
        transport.publish(sent)
        subscription = transport.subscribe("kpi", ["card.*"])
        assert len(subscription.fetch(5, 1)) == 5

        private_server.stop()
        with pytest.raises(TransportUnavailable):
            subscription.fetch(5, 1)
        with pytest.raises(TransportUnavailable):
            subscription.commit()
        subscription.close()
        private_server.start()

        for _ in range(50):  # as the runtime does: back off, subscribe again
            try:
                subscription = transport.subscribe("kpi", ["card.*"])
                break
            except TransportUnavailable:
                time.sleep(0.1)
        received: list[bytes] = []
        while len(received) < 10 and (fetched := subscription.fetch(10, 3)):
            received += fetched  # the 5 uncommitted ones come after ack_wait
            subscription.commit()
        assert sorted(received) == sorted(message.body for message in sent)
    finally:
        transport.close()


def test_an_unreachable_server_raises_transport_unavailable() -> None:
    port = free_port()
    transport = NatsTransport(f"nats://factflow:s3cret@127.0.0.1:{port}", timeout=1)
    try:
        with pytest.raises(TransportUnavailable) as raised:
            transport.publish([event("card.card_issued", 1)])
        assert "s3cret" not in str(raised.value)
        with pytest.raises(TransportUnavailable):
            transport.subscribe("kpi", ["card.*"])
    finally:
        transport.close()


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("http://127.0.0.1:4222", {}),
        ("nats://127.0.0.1:4222?prefix=a b", {}),
        ("nats://127.0.0.1:4222?ack_wait=soon", {}),
        ("nats://127.0.0.1:4222?ack_wait=2", {"ack_wait": 2.0}),
        ("nats://127.0.0.1:4222", {"max_deliver": 0}),
    ],
)
def test_bad_settings_are_configuration_errors(url: str, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        NatsTransport(url, **options)


def test_types_that_are_no_subjects_are_refused(transport: NatsTransport) -> None:
    for bad in ("card", "card.>", "card.a b", "ca rd.x", "card..x"):
        with pytest.raises(ValueError, match="event type"):
            transport.publish([Outgoing(type=bad, id="1", body=b"{}")])
    with pytest.raises(ValueError, match="event type"):
        transport.subscribe("kpi", ["card.>"])


def test_a_closed_transport_refuses_work(connect: Callable[..., NatsTransport]) -> None:
    transport = connect()
    subscription = transport.subscribe("kpi", ["card.*"])
    transport.close()

    with pytest.raises(ValueError, match="closed"):
        transport.publish([event("card.card_issued", 1)])
    with pytest.raises(ValueError, match="closed"):
        subscription.fetch(1, 0)


def test_the_runtime_consumes_from_nats_to_the_same_kpis(transport: NatsTransport) -> None:
    from banking_oracle import expected_kpis
    from factflow.examples.banking import app
    from factflow.examples.banking.simulator import SimulationOptions, simulate
    from factflow.runtime.consumer import ConsumerOptions, run_consumer
    from factflow.testing import Harness
    from factflow.transport.publishing import outgoing
    from factflow.warehouse.duckdb import DuckDBWarehouse

    options = SimulationOptions(events=2000, seed=3, duplicates=0.05, shuffle_window=200)
    messages = list(simulate(options))
    transport.publish(outgoing(messages, []))
    with DuckDBWarehouse(None) as warehouse:
        run_consumer(
            app,
            transport,
            warehouse,
            ConsumerOptions(batch_size=500, max_wait=0.05, stop_when_idle=True),
        )
        harness = Harness(app, warehouse)
        expected = expected_kpis(messages)
        for name in app.kpis:
            assert harness.kpi(name) == expected[name], name
    assert transport.depth(ConsumerOptions().group) == 0
