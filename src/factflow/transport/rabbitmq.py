"""RabbitMQ as the transport: the contract's exchanges on the publishing side, one quorum queue
per consumer group on the consuming side.

Topology (declared idempotently: exchanges on publish and subscribe, the rest on subscribe)::

    exchange <domain>             durable topic; events are published with routing key = type
    queue    <group>              durable quorum queue, bound to each domain exchange with every
                                  exact type and `<domain>.#` for each `<domain>.*` entry
    queue    <group>.bootstrap    durable quorum queue of replayed history for this group only
                                  (`factflow bootstrap --via`), published to by name
    exchange <group>.dead-letter  durable fanout, the group queues' dead-letter exchange
    queue    <group>.dead-letter  durable quorum queue bound to it

Messages follow banking.md: body = envelope JSON, ``content_type=application/json``,
``message_id=id``, ``type=type``, persistent. `publish` returns once the broker confirmed every
message (publisher confirms), so a returned call survives a broker restart.

Consuming: several processes of one group read the same queue and share its messages. Nothing
is acknowledged before `commit`; a consumer that dies or loses its connection gets its
unacknowledged messages redelivered (to itself or another process of the group). A message
returned unacknowledged more than `delivery_limit` times (a poison message that kills its
consumer every time) is moved by the broker to ``<group>.dead-letter``, so it never blocks the
queue; its envelope is kept there for inspection and republishing.

A crash returns every message the consumer held, not only the one that caused it, and each
return counts toward the limit (the quorum queue's ``x-delivery-count``). So that a poison
message reaches the limit alone, a message returned `SUSPECT_RETURNS` (2) times or more is
handed out alone (`Fetched.suspect`), written and acknowledged alone, and a new subscription
starts by taking its queues' first messages one at a time (``basic.get``) for as long as they
are suspect (the broker hands returned messages out first), consuming with the full prefetch
from the first other message, or from an empty queue, on. A restart returns what the process
held once, which costs nothing; the messages held with a poison message spend two deliveries
each, so `delivery_limit` is at least 2.

Settings that live outside the URL's path travel as pika's URL query parameters, for instance
``amqp://kpi:secret@mq:5672/%2F?heartbeat=120&connection_attempts=3``. The connection is
served only inside `fetch` and `commit`, so a batch must be written to the warehouse within the
heartbeat timeout (the server's default: 60 s) or the broker drops the connection; the batch is
then redelivered and `commit` raises `TransportUnavailable` (harmless: the warehouse ignores
what it already has). `publish` and `depth` may be called from several threads; a subscription
belongs to one thread. Needs RabbitMQ 3.10 or later (quorum queues with at-least-once
dead-lettering) and the `rabbitmq` extra: ``pip install 'factflow[rabbitmq]'``.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

from factflow._closing import ClosesOnExit
from factflow._urls import redact, redact_text
from factflow.errors import ConfigurationError, TransportUnavailable
from factflow.model.envelope import encode_envelope
from factflow.transport.base import SUSPECT_RETURNS, Fetched, Outgoing
from factflow.transport.log import MAX_BODY

try:
    import pika
    import pika.adapters.utils.connection_workflow
    import pika.exceptions
    import pika.spec
except ImportError:  # pragma: no cover - depends on the installed extras
    raise ConfigurationError(
        "the RabbitMQ transport needs pika: pip install 'factflow[rabbitmq]'"
    ) from None

__all__ = [
    "BOOTSTRAP_SHARE",
    "DEFAULT_DELIVERY_LIMIT",
    "DEFAULT_PREFETCH",
    "Publisher",
    "RabbitMQSubscription",
    "RabbitMQTransport",
]

DEFAULT_PREFETCH = 10_000
"""Unacknowledged messages the broker may hand one subscription: twice the runtime's default
batch (5000), so the next batch streams in while the current one is written."""

DEFAULT_DELIVERY_LIMIT = 20
"""Returns without acknowledgement after which the broker dead-letters a message (so it is
delivered at most 21 times)."""

_LINGER = 0.01  # seconds a fetch waits for more once messages stopped arriving
_CONFIRM_WINDOW = 5000  # messages published and not yet confirmed, at most
_FLUSH_EVERY = 500  # messages between two writes of the publish buffer to the socket
_POLL = 0.005  # seconds per wait for confirms
_MAX_SHORT = 255  # bytes of an AMQP short string: routing keys, message ids, queue names
_DEAD_LETTER = ".dead-letter"
_BOOTSTRAP = ".bootstrap"

BOOTSTRAP_SHARE = 0.25
"""The part of a batch kept for the bootstrap queue while live events are waiting too."""
_DOMAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*\Z")
_GROUP = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_NOT_FOUND = 404
# The broker refused the credentials or the vhost: retrying cannot help.
_REFUSED = (
    pika.exceptions.AuthenticationError,
    pika.exceptions.ProbableAuthenticationError,
    pika.exceptions.ProbableAccessDeniedError,
)
# Everything else pika raises when the broker, the network or a channel goes away. OSError is
# there for socket errors raised before pika wraps them; AMQPConnectorException for a broker
# that accepts the TCP connection but never completes the handshake (paused, overloaded): pika
# raises its connection workflow's own error then (AMQPConnectorStackTimeout), no AMQPError.
_LOST = (
    pika.exceptions.AMQPError,
    OSError,
    pika.adapters.utils.connection_workflow.AMQPConnectorException,
)


class RabbitMQTransport(ClosesOnExit):
    """Events on RabbitMQ at `url` (``amqp://user:password@host:5672/vhost``; ``/`` or ``%2F``
    is the default vhost).

    >>> mq = RabbitMQTransport("amqp://guest:guest@localhost:5672/")
    >>> mq.publish([Outgoing(type="card.card_issued", id="e-1", body=b'{"id": "e-1", ...}')])
    1
    >>> sub = mq.subscribe("kpi", ["card.card_issued", "card.*"])
    >>> bodies = sub.fetch(5000, max_wait=0.5)
    >>> sub.commit()

    Args:
        prefetch: unacknowledged messages the broker hands one subscription at most; a fetch
            returns at most this many minus those fetched and not committed yet, so keep it at
            least the runtime's batch size (twice is better: the next batch arrives while one
            is written).
        delivery_limit: returns without acknowledgement (a consumer closed or lost its
            connection holding the message) after which the message goes to
            ``<group>.dead-letter`` instead of being delivered again. It is an argument of
            the group's queue, fixed when the queue is created: a different value for an
            existing queue raises `ConfigurationError`.
        confirm_timeout: seconds `publish` waits for the broker's confirms after its last sign
            of progress before raising `TransportUnavailable`.

    Raises `ConfigurationError` for a malformed URL or bad settings. Connections open lazily.
    """

    def __init__(
        self,
        url: str,
        *,
        prefetch: int = DEFAULT_PREFETCH,
        delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
        confirm_timeout: float = 30.0,
    ) -> None:
        if not 1 <= prefetch <= 65535:
            raise ConfigurationError(f"prefetch must be between 1 and 65535, got {prefetch}")
        if delivery_limit < 1:
            raise ConfigurationError(f"delivery_limit must be 1 or more, got {delivery_limit}")
        if confirm_timeout <= 0:
            raise ConfigurationError(f"confirm_timeout must be positive, got {confirm_timeout}")
        try:
            self._parameters = pika.URLParameters(url)
        except (ValueError, TypeError) as error:
            raise ConfigurationError(
                f"malformed RabbitMQ URL {redact(url)}: {redact_text(str(error), url)}; expected"
                " amqp://user:password@host:5672/vhost"
            ) from None
        self._url = url
        self.prefetch = prefetch
        self.delivery_limit = delivery_limit
        self.confirm_timeout = confirm_timeout
        self._link: _Link | None = None
        self._subscriptions: weakref.WeakSet[RabbitMQSubscription] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"RabbitMQTransport({redact(self._url)!r})"

    def publish(self, messages: Iterable[Outgoing]) -> int:
        """Publish `messages` to their domains' exchanges; returns how many, once all are
        confirmed by the broker.

        Raises `ValueError` for a message that AMQP cannot carry (a type whose domain cannot
        name an exchange, a type or id over 255 bytes, a body over `MAX_BODY`), and
        `TransportUnavailable` when the broker is unreachable, refuses a message or does not
        confirm in time. In both cases messages before the failing one may have been published;
        publishing them again is safe (consumers ignore duplicate ids).
        """
        return self._on_link(lambda link: link.publish(messages, self.confirm_timeout))

    def publish_bootstrap(self, group: str, messages: Iterable[Outgoing]) -> int:
        """Publish `messages` to `group`'s bootstrap queue only: the group's running consumers
        take them beside live events (see `RabbitMQSubscription.fetch`), and no other group
        sees them. A message may lack a type and id (an unreadable line of an event file): its
        consumer keeps it as a dead letter. Returns how many, once all are confirmed; errors as
        for `publish`.
        """
        queue = _group_name(group)

        def publish(link: _Link) -> int:
            link.declare_group(queue, self.delivery_limit)
            return link.publish(messages, self.confirm_timeout, queue=queue + _BOOTSTRAP)

        return self._on_link(publish)

    def subscribe(self, group: str, event_types: Collection[str]) -> RabbitMQSubscription:
        """Consume as `group` from its queue, declaring the topology for `event_types` first.

        Entries are exact types (`card.card_issued`) or `<domain>.*` for every type of a domain.
        Bindings are only ever added: to stop receiving a type, unbind it from the queue by hand
        (or delete the queue). Raises `ConfigurationError` for a bad group or type, refused
        credentials or vhost, or existing exchanges and queues declared differently, and
        `TransportUnavailable` when the broker cannot be reached.
        """
        self._check_open()
        bindings = _bindings(event_types)
        queue = _group_name(group)
        connection = _connect(self._parameters, self._url)
        try:
            channel = connection.channel()
            _declare_group(channel, queue, bindings, self.delivery_limit)
            subscription = RabbitMQSubscription(connection, (queue, queue + _BOOTSTRAP), self)
        except _LOST as error:
            _close_quietly(connection)
            _raise_if_configuration(error, self._url)
            raise _unavailable(error, self._url) from error
        except BaseException:
            _close_quietly(connection)
            raise
        self._subscriptions.add(subscription)
        return subscription

    def depth(self, group: str) -> int:
        """Messages ready in `group`'s queue (0 when it does not exist), for `factflow status`.

        ``depth("kpi.dead-letter")`` counts the messages the broker set aside for `kpi`.
        """
        queue = _group_name(group)
        with self._lock:
            self._check_open()
            try:
                return self._connect_link().depth(queue)
            except _LOST as error:
                self._drop_link()
                _raise_if_configuration(error, self._url)
                raise _unavailable(error, self._url) from error

    def close(self) -> None:
        """Close the publishing connection and every subscription opened here."""
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription.close()
        with self._lock:
            self._drop_link()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self!r} is closed")

    def _on_link(self, publish: Callable[[_Link], int]) -> int:
        """`publish` on the publishing connection (made if need be), with errors translated;
        a connection that failed is dropped, for the next call to make a new one."""
        with self._lock:
            self._check_open()
            try:
                return publish(self._connect_link())
            except _Unconfirmed as error:
                self._drop_link()
                raise TransportUnavailable(
                    f"RabbitMQ at {redact(self._url)}: {error}; publish again"
                ) from None
            except _LOST as error:
                self._drop_link()
                _raise_if_configuration(error, self._url)
                raise _unavailable(error, self._url) from error

    def _connect_link(self) -> _Link:
        if self._link is None:
            connection = _connect(self._parameters, self._url)
            try:
                self._link = _Link(connection)
            except BaseException:
                _close_quietly(connection)
                raise
        return self._link

    def _drop_link(self) -> None:
        if self._link is not None:
            _close_quietly(self._link.connection)
            self._link = None


class RabbitMQSubscription(ClosesOnExit):
    """Consumption of one group's queue on a connection of its own (see `RabbitMQTransport`),
    and of the group's bootstrap queue beside it."""

    def __init__(
        self, connection: Any, queues: tuple[str, str], transport: RabbitMQTransport
    ) -> None:
        self._connection = connection
        self._queue = queues[0]
        self._url = transport._url
        self._prefetch = transport.prefetch
        self._failure: str | None = None
        self._closed = False
        # Each queue on a channel of its own: delivery tags and prefetch are per channel.
        self._live = _Consumed(connection.channel(), queues[0], self._prefetch, self._on_cancel)
        self._bootstrap = _Consumed(
            connection.channel(), queues[1], self._prefetch, self._on_cancel
        )
        self._queues = (self._live, self._bootstrap)
        #: Per fetch not committed yet: the last delivery tag it took from each queue (None:
        #: nothing from that one), and its size.
        self._fetches: deque[tuple[int | None, int | None, int]] = deque()
        self._handed = 0  # messages handed out and not committed

    def __repr__(self) -> str:
        return f"<RabbitMQSubscription {self._queue!r} at {redact(self._url)}>"

    def fetch(self, max_messages: int, max_wait: float) -> Fetched:
        """Up to `max_messages` bodies, waiting at most `max_wait` seconds for them.

        Returns as soon as `max_messages` arrived, or when no more arrived for a few
        milliseconds after the first, or at `max_wait`. Returns at most the prefetch minus the
        messages fetched and not committed (none at all once that many are held).
        While both have messages, live events fill at least `1 - BOOTSTRAP_SHARE` of a batch
        and the bootstrap queue the rest: a bootstrap never starves live traffic, nor the
        reverse. A suspect message (returned twice or more) comes alone, in a fetch of its own
        marked `suspect`; the others stop short of it. Raises `TransportUnavailable` when the
        connection or channel is lost, or when nothing arrived and the broker does not answer a
        round trip (an empty result means empty queues, not a broker that stopped answering).
        """
        self._check_usable()
        if max_messages < 1:
            raise ValueError(f"max_messages must be 1 or more, got {max_messages}")
        want = min(max_messages, self._prefetch - self._handed)
        if want <= 0:
            return Fetched()
        live, bootstrap = self._live.arrived, self._bootstrap.arrived
        deadline = time.monotonic() + max(0.0, max_wait)
        try:
            self._connection.process_data_events(0)
            self._check_channels()
            for consumed in self._queues:
                consumed.probe()
            self._check_channels()
            for consumed in self._queues:
                if consumed.suspect_next():
                    return self._take_suspect(consumed)
            while len(live) + len(bootstrap) < want:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                before = len(live) + len(bootstrap)
                # Wait for the first message up to the deadline, then for more only briefly:
                # a burst arrives within milliseconds, and a half-full batch should not wait.
                self._connection.process_data_events(
                    min(remaining, _LINGER) if before else remaining
                )
                self._check_channels()
                if before and len(live) + len(bootstrap) == before:
                    break
        except _LOST as error:
            self._fail(error)
        from_bootstrap = min(len(bootstrap), max(want - len(live), int(want * BOOTSTRAP_SHARE)))
        from_live = min(len(live), want - from_bootstrap)
        if not from_live + from_bootstrap:
            self._confirm_alive()
            return Fetched()
        bodies = Fetched()
        last_live = self._live.take(from_live, bodies)
        last_bootstrap = self._bootstrap.take(from_bootstrap, bodies)
        if not bodies:  # what there was to take starts with a message returned meanwhile
            return self._take_suspect(next(c for c in self._queues if c.suspect_next()))
        self._fetches.append((last_live, last_bootstrap, len(bodies)))
        self._handed += len(bodies)
        return bodies

    def ready(self) -> int:
        """Messages the broker holds ready in the group's queue and its bootstrap queue: not
        delivered to any consumer yet. An empty `fetch` with some ready means the broker has
        not pushed them yet (a quorum queue can take a while to start a new consumer, busy
        storing what was just published), not that the group caught up. A round trip.

        Raises `TransportUnavailable` when the connection or channel is lost.
        """
        self._check_usable()
        try:
            return sum(consumed.ready() for consumed in self._queues)
        except _LOST as error:
            self._fail(error)

    def _take_suspect(self, consumed: _Consumed) -> Fetched:
        """The suspect message at the head of `consumed`, as a fetch of its own."""
        tag, body, _ = consumed.arrived.popleft()
        live = consumed is self._live
        self._fetches.append((tag if live else None, None if live else tag, 1))
        self._handed += 1
        return Fetched((body,), suspect=True)

    def commit(self, batches: int | None = None) -> None:
        """Acknowledge the oldest `batches` fetches not committed yet (all by default).

        Returns once the broker has the acknowledgement (a round trip after it). Raises
        `TransportUnavailable` when the connection was lost: the messages will be delivered
        again, to this group's next subscription or another process of the group.
        """
        self._check_usable()
        fetches = self._fetches
        count = len(fetches) if batches is None else min(batches, len(fetches))
        if count <= 0:
            return
        done = [fetches[i] for i in range(count)]
        try:
            # Delivery tags grow on a channel: one multiple-ack covers every earlier fetch.
            self._live.acknowledge(max((f[0] for f in done if f[0] is not None), default=None))
            self._bootstrap.acknowledge(max((f[1] for f in done if f[1] is not None), default=None))
        except _LOST as error:
            self._fail(error)
        for _ in range(count):
            self._handed -= fetches.popleft()[2]

    def close(self) -> None:
        """Stop consuming; what was fetched and not committed will be delivered again."""
        if not self._closed:
            self._closed = True
            self._live.arrived.clear()
            self._bootstrap.arrived.clear()
            _close_quietly(self._connection)

    def _on_cancel(self, method_frame: Any) -> None:
        self._failure = (
            f"RabbitMQ at {redact(self._url)} cancelled consumption of queue"
            f" {self._queue!r} or its bootstrap queue (was it deleted?)"
        )

    def _check_usable(self) -> None:
        if self._closed:
            raise ValueError(f"{self!r} is closed")
        if self._failure is not None:
            raise TransportUnavailable(self._failure)

    def _check_channels(self) -> None:
        if self._failure is None and (self._live.closed or self._bootstrap.closed):
            self._failure = (
                f"RabbitMQ at {redact(self._url)} closed the channel consuming queue"
                f" {self._queue!r} or its bootstrap queue"
            )
        if self._failure is not None:
            _close_quietly(self._connection)
            self._check_usable()

    def _confirm_alive(self) -> None:
        """Nothing arrived: make sure that is because the queues are empty, not because the
        broker stopped answering (paused, or the network black-holed), which pika notices only
        a few seconds after the heartbeat timeout. A round trip (a no-op basic.qos) blocks until
        the broker answers or the heartbeat gives up, raising `TransportUnavailable`; otherwise
        a consumer run until idle would stop with the queue still full."""
        try:
            self._live.channel.basic_qos(prefetch_count=self._prefetch)
            self._check_channels()
        except _LOST as error:
            self._fail(error)

    def _fail(self, error: BaseException) -> NoReturn:
        unavailable = _unavailable(error, self._url)
        self._failure = str(unavailable)
        _close_quietly(self._connection)
        raise unavailable from error


def _suspect(properties: Any) -> bool:
    """Whether a quorum queue returned the message `SUSPECT_RETURNS` times or more."""
    headers = getattr(properties, "headers", None) or {}
    return int(headers.get("x-delivery-count", 0)) >= SUSPECT_RETURNS


class _Consumed:
    """One queue consumed on a channel of its own: what arrived, and acknowledging it.

    It starts by probing: taking the queue's first message with ``basic.get``, one per fetch,
    for as long as they are suspect (returned `SUSPECT_RETURNS` times or more); consuming (the
    broker pushing up to `prefetch` messages) starts with the first other message, or once the
    queue is empty. A subscription made after crashes thus holds only the message it writes
    while suspect ones are at the head of the queue, so that a crash costs no other message a
    delivery.
    """

    def __init__(
        self, channel: Any, queue: str, prefetch: int, on_cancel: Callable[[Any], None]
    ) -> None:
        self.channel = channel
        self.queue = queue
        self.prefetch = prefetch
        self.consuming = False
        #: Delivery tag, body, and whether it is suspect.
        self.arrived: deque[tuple[int, bytes, bool]] = deque()
        channel.add_on_cancel_callback(on_cancel)
        channel.basic_qos(prefetch_count=prefetch)

    @property
    def closed(self) -> bool:
        return bool(self.channel.is_closed)

    def probe(self) -> None:
        """While probing and holding nothing: take the queue's first message, and start
        consuming unless it is a suspect one."""
        if self.consuming or self.arrived:
            return
        method, properties, body = self.channel.basic_get(self.queue, auto_ack=False)
        if method is not None:
            suspect = _suspect(properties)
            self.arrived.append((method.delivery_tag, body, suspect))
            if suspect:
                return
        self.consuming = True
        self.channel.basic_consume(self.queue, self._on_message, auto_ack=False)

    def ready(self) -> int:
        """Messages ready in the queue (a passive declare: a round trip on this channel)."""
        return int(self.channel.queue_declare(self.queue, passive=True).method.message_count)

    def suspect_next(self) -> bool:
        """Whether the next arrived message is a suspect one."""
        return bool(self.arrived) and self.arrived[0][2]

    def take(self, count: int, bodies: list[bytes]) -> int | None:
        """Move up to `count` arrived bodies to `bodies`, stopping short of a suspect one;
        the delivery tag of the last one moved."""
        arrived, last = self.arrived, None
        for _ in range(count):
            if arrived[0][2]:
                break
            last, body, _ = arrived.popleft()
            bodies.append(body)
        return last

    def acknowledge(self, last_tag: int | None) -> None:
        """Acknowledge every message up to `last_tag`, and wait until the broker has it."""
        if last_tag is None:
            return
        self.channel.basic_ack(delivery_tag=last_tag, multiple=True)
        # basic.ack has no answer; a synchronous method after it on the same channel proves
        # that the broker processed the ack, or reveals that the connection is gone.
        self.channel.basic_qos(prefetch_count=self.prefetch)

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        self.arrived.append((method.delivery_tag, body, _suspect(properties)))


class Publisher(ClosesOnExit):
    """Publishing events to RabbitMQ as a source service would, in the contract's format.

    >>> with Publisher("amqp://card-service:secret@mq:5672/") as publisher:
    ...     event_id = publisher.publish(
    ...         "card.card_issued",
    ...         {"card_id": "c-1", "user_id": "u-1", "account_id": "a-1", "product": "travel_card"},
    ...         source="card-service",
    ...     )

    Each call returns once the broker confirmed the event. Errors are those of
    `RabbitMQTransport.publish`.
    """

    def __init__(self, url: str, *, confirm_timeout: float = 30.0) -> None:
        self._transport = RabbitMQTransport(url, confirm_timeout=confirm_timeout)

    def __repr__(self) -> str:
        return f"Publisher({redact(self._transport._url)!r})"

    def publish(
        self,
        type: str,
        data: Mapping[str, Any],
        *,
        source: str,
        id: str | None = None,
        occurred_at: datetime | None = None,
        version: int = 1,
    ) -> str:
        """Publish one event; returns its envelope id (a new UUID unless `id` is given).

        `occurred_at` (the business time; now by default) must carry a time zone. Decimal
        amounts in `data` are written as strings.
        """
        if occurred_at is None:
            occurred_at = datetime.now(UTC)
        elif occurred_at.utcoffset() is None:
            raise ValueError(f"occurred_at must carry a time zone, got {occurred_at.isoformat()}")
        event_id = str(uuid.uuid4()) if id is None else id
        body = encode_envelope(
            id=event_id,
            type=type,
            source=source,
            occurred_at=occurred_at,
            version=version,
            data=dict(data),
        )
        self._transport.publish([Outgoing(type=type, id=event_id, body=body)])
        return event_id

    def publish_raw(self, messages: Iterable[Outgoing]) -> int:
        """Publish ready envelopes (e.g. lines of an event file); returns how many."""
        return self._transport.publish(messages)

    def close(self) -> None:
        self._transport.close()


class _Unconfirmed(Exception):
    """The broker refused messages, or did not confirm them in time."""


class _Link:
    """The transport's own connection: publishing with batched confirms, and queue depths.

    pika's BlockingChannel waits for the confirm of each message before sending the next (about
    1400 messages/s here). Publishing on the underlying asynchronous channel with our own
    confirm callback keeps thousands in flight instead; the blocking connection still drives
    the I/O.
    """

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self._channel = connection.channel()
        self._declared: set[str] = set()
        self._declared_groups: set[str] = set()
        self._unconfirmed: deque[int] = deque()  # delivery tags, in publishing order
        self._acked: set[int] = set()  # confirmed singly, ahead of older unconfirmed ones
        self._refused = 0
        self._sequence = 0  # the delivery tag of the last message published on the channel
        selected: list[bool] = []
        # `_impl` is pika's asynchronous channel under the blocking one (pika 1.x).
        self._async = self._channel._impl
        self._async.confirm_delivery(
            ack_nack_callback=self._on_confirm, callback=lambda frame: selected.append(True)
        )
        while not selected:
            self.connection.process_data_events(_POLL)
            self._check_channel()

    def declare_group(self, queue: str, delivery_limit: int) -> None:
        if queue not in self._declared_groups:
            _declare_group(self._channel, queue, {}, delivery_limit)
            self._declared_groups.add(queue)

    def publish(self, messages: Iterable[Outgoing], timeout: float, queue: str = "") -> int:
        """Publish to the domains' exchanges, or with `queue` straight to that queue."""
        process = self.connection.process_data_events
        publish = self._async.basic_publish
        properties = pika.BasicProperties
        count = 0
        for message in messages:
            # To a queue by name, even a message without a readable type goes: its consumer
            # sets it aside as a dead letter, so nothing of a bootstrap is lost on the way.
            _check_message(message, routed=not queue)
            domain = message.domain
            if not queue and domain not in self._declared:
                self._channel.exchange_declare(domain, "topic", durable=True)
                self._declared.add(domain)
            publish(
                # The default exchange routes a message to the queue its routing key names.
                exchange="" if queue else domain,
                routing_key=queue or message.type,
                body=message.body,
                properties=properties(
                    content_type="application/json",
                    message_id=_short(message.id),
                    type=_short(message.type),
                    delivery_mode=2,
                ),
            )
            self._sequence += 1
            self._unconfirmed.append(self._sequence)
            count += 1
            if count % _FLUSH_EVERY == 0:
                process(0)
                self._check_channel()
                if self._pending() > _CONFIRM_WINDOW:
                    self._wait(_CONFIRM_WINDOW // 2, timeout)
        self._wait(0, timeout)
        if self._refused:
            refused, self._refused = self._refused, 0
            raise _Unconfirmed(f"the broker refused {refused} of {count} messages (nack)")
        return count

    def depth(self, queue: str) -> int:
        channel = self.connection.channel()
        try:
            declared = channel.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as error:
            if error.reply_code == _NOT_FOUND:
                return 0
            raise
        channel.close()
        return int(declared.method.message_count)

    def _pending(self) -> int:
        return len(self._unconfirmed) - len(self._acked)

    def _wait(self, most: int, timeout: float) -> None:
        """Process I/O until at most `most` messages await their confirm."""
        pending = self._pending()
        progress = time.monotonic()
        while pending > most:
            self.connection.process_data_events(_POLL)
            self._check_channel()
            now, before, pending = time.monotonic(), pending, self._pending()
            if pending < before:
                progress = now
            elif now - progress > timeout:
                raise _Unconfirmed(f"{pending} messages not confirmed within {timeout:g}s")

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tag, unconfirmed, acked = method.delivery_tag, self._unconfirmed, self._acked
        if isinstance(method, pika.spec.Basic.Nack):
            self._refused += (
                sum(1 for t in unconfirmed if t <= tag and t not in acked) if method.multiple else 1
            )
        if method.multiple:
            while unconfirmed and unconfirmed[0] <= tag:
                acked.discard(unconfirmed.popleft())
        else:
            acked.add(tag)
        while unconfirmed and unconfirmed[0] in acked:
            acked.remove(unconfirmed.popleft())

    def _check_channel(self) -> None:
        if self._channel.is_closed:
            raise pika.exceptions.ChannelClosed(-1, "the broker closed the publishing channel")


def _short(text: str) -> str | None:
    """`text` as an AMQP short string property, or None when empty or too long for one."""
    return text if 0 < len(text.encode()) <= _MAX_SHORT else None


def _check_message(message: Outgoing, *, routed: bool = True) -> None:
    if len(message.body) > MAX_BODY:
        raise ValueError(
            f"event {message.id!r} ({message.type}): body of {len(message.body)} bytes exceeds"
            f" the limit of {MAX_BODY} bytes"
        )
    if not routed:
        return
    if not _DOMAIN.match(message.domain):
        raise ValueError(
            f"event {message.id[:40]!r}: type {message.type[:40]!r} must be"
            " <domain>.<event_name>, the domain (it names the exchange) of letters, digits,"
            " `_` or `-`"
        )
    if len(message.type.encode()) > _MAX_SHORT or len(message.id.encode()) > _MAX_SHORT:
        raise ValueError(
            f"event {message.id[:40]!r}: AMQP carries a type and an id of at most"
            f" {_MAX_SHORT} bytes"
        )


def _bindings(event_types: Collection[str]) -> dict[str, list[str]]:
    """The binding keys per domain exchange for `event_types`."""
    bindings: dict[str, list[str]] = {}
    for entry in sorted(set(event_types)):
        domain, dot, name = entry.partition(".")
        if not (_DOMAIN.match(domain) and dot and name) or len(entry.encode()) > _MAX_SHORT:
            raise ConfigurationError(
                f"event type {entry!r}: expected <domain>.<event_name> or <domain>.*, the domain"
                " of letters, digits, `_` or `-`"
            )
        if name == "*":
            # `#` also matches types with further dots: they break the contract, and the
            # runtime must see them to set them aside instead of never receiving them.
            key = f"{domain}.#"
        elif "*" in name or "#" in name:
            raise ConfigurationError(f"event type {entry!r}: only <domain>.* is a pattern")
        else:
            key = entry
        bindings.setdefault(domain, []).append(key)
    return bindings


def _group_name(group: str) -> str:
    if (
        not _GROUP.match(group)
        or group.startswith("amq.")
        or len(group) + len(_DEAD_LETTER) > _MAX_SHORT
    ):
        raise ConfigurationError(
            f"consumer group {group!r}: use up to 240 letters, digits, `_`, `-` or `.` (it names"
            " a queue), starting with a letter, digit or `_`, and not with `amq.`"
        )
    return group


def _declare_group(
    channel: Any, queue: str, bindings: Mapping[str, Sequence[str]], delivery_limit: int
) -> None:
    dead_letter = queue + _DEAD_LETTER
    channel.exchange_declare(dead_letter, "fanout", durable=True)
    channel.queue_declare(dead_letter, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(dead_letter, dead_letter, routing_key="")  # fanout: any key
    arguments = {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": dead_letter,
        # At-least-once: the queue keeps a message until the dead-letter queue confirmed
        # it (it needs reject-publish overflow; the queue has no length limit anyway).
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    channel.queue_declare(queue, durable=True, arguments=arguments)
    channel.queue_declare(queue + _BOOTSTRAP, durable=True, arguments=arguments)
    for domain, keys in bindings.items():
        channel.exchange_declare(domain, "topic", durable=True)
        for key in keys:
            channel.queue_bind(queue, domain, routing_key=key)


def _connect(parameters: Any, url: str) -> Any:
    try:
        return pika.BlockingConnection(parameters)
    except _REFUSED as error:
        raise ConfigurationError(
            f"RabbitMQ at {redact(url)} refused the user or the vhost:"
            f" {redact_text(_describe(error), url)}"
        ) from None
    except _LOST as error:
        raise _unavailable(error, url) from error


def _close_quietly(connection: Any) -> None:
    try:
        if connection.is_open:
            connection.close()
    except _LOST:
        pass  # already gone: the broker redelivers what was not acknowledged


def _raise_if_configuration(error: BaseException, url: str) -> None:
    if not isinstance(error, pika.exceptions.ChannelClosedByBroker):
        return
    if error.reply_code == 403:
        hint = "grant the user configure, write and read permissions on the vhost"
    elif error.reply_code == 406:
        hint = (
            "an exchange or queue of that name exists with other settings (type, durability,"
            " queue arguments such as x-delivery-limit): delete it or use another group name"
        )
    else:
        return
    raise ConfigurationError(
        f"RabbitMQ at {redact(url)} refused: {redact_text(_describe(error), url)}; {hint}"
    ) from None


def _unavailable(error: BaseException, url: str) -> TransportUnavailable:
    return TransportUnavailable(
        f"RabbitMQ at {redact(url)} is unavailable: {redact_text(_describe(error), url)}"
    )


def _describe(error: BaseException) -> str:
    if isinstance(error, pika.exceptions.ConnectionClosed | pika.exceptions.ChannelClosed):
        return f"{type(error).__name__} ({error.reply_code}) {error.reply_text}"
    return f"{type(error).__name__} {error}".strip()
