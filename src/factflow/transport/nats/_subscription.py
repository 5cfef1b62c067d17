"""`NatsSubscription`: a consumer group's fetches and commits, over its domains' consumers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from factflow._closing import ClosesOnExit
from factflow._urls import redact
from factflow.errors import ConfigurationError, FactflowError, TransportUnavailable
from factflow.transport.base import Fetched
from factflow.transport.nats._consumer import Consumer, Pull, suspect

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg

    from factflow.transport.nats._transport import NatsTransport

__all__ = ["NatsSubscription"]

_GRACE = 2.0  # seconds a lingering pull may outlive its expiry before it counts as lost
_CAUTIOUS = 0.05  # seconds a pull for one message waits for it instead of `no_wait`


class NatsSubscription(ClosesOnExit):
    """A consumer group's reading of JetStream; made by `NatsTransport.subscribe`.

    Not thread-safe: one reader per subscription. Several subscriptions of one group, in one
    process or many, share the group's messages.
    """

    def __init__(self, transport: NatsTransport, group: str) -> None:
        self._transport = transport
        self._group = group
        self._consumers: list[Consumer] = []
        self._fetched: list[Msg] = []  # returned, to acknowledge at commit
        self._skipped: list[Msg] = []  # not this group's types, to acknowledge at commit
        #: Per fetch not committed yet: how many of `_fetched` and of `_skipped` it took.
        self._fetches: deque[tuple[int, int]] = deque()
        self._arrived = asyncio.Event()
        self._broken: str | None = None
        self._turn = 0
        self._closed = False

    @property
    def group(self) -> str:
        """The consumer group."""
        return self._group

    def fetch(self, max_messages: int, max_wait: float) -> Fetched:
        """Up to `max_messages` bodies, waiting at most `max_wait` seconds for the first.

        Returns an empty list when nothing arrived in time. Domains take turns, so a backlog in
        one does not starve the others. A suspect message (delivered `SUSPECT_RETURNS` times
        before) comes alone, in a fetch marked `suspect`; the others stop short of it. Each
        domain's consumer is pulled one message at a time at first and after a suspect message,
        until another comes: so that a process that crashes on a suspect message held no other.
        Raises `TransportUnavailable` while disconnected or when the server does not answer.
        """
        self._check_open()
        if max_messages <= 0:
            return Fetched()
        max_wait = max(0.0, max_wait)
        fetched, skipped = len(self._fetched), len(self._skipped)
        bodies = self._transport._run(self._fetch(max_messages, max_wait), "fetch", max_wait)
        if bodies:
            self._fetches.append(
                (len(self._fetched) - fetched, max(0, len(self._skipped) - skipped))
            )
        return bodies

    def commit(self, batches: int | None = None) -> None:
        """Acknowledge the oldest `batches` fetches not committed yet (all by default), and
        wait for the server to have them.

        Raises `TransportUnavailable` when that fails; the messages may then come again (the
        warehouse makes that harmless).
        """
        self._check_open()
        fetches = self._fetches
        done = len(fetches) if batches is None else min(max(batches, 0), len(fetches))
        if batches is None:
            fetched, skipped = len(self._fetched), len(self._skipped)
        else:
            fetched = sum(fetches[i][0] for i in range(done))
            skipped = sum(fetches[i][1] for i in range(done))
        self._transport._run(self._commit(fetched, skipped), "commit")
        for _ in range(done):
            fetches.popleft()

    def close(self) -> None:
        """Stop reading; what was fetched and not committed is handed out again at once.

        Best effort: when the server cannot be told, JetStream hands it out after `ack_wait`.
        """
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(FactflowError):
            self._transport._run(self._close(), "close a subscription")

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"the subscription of group {self._group!r} is closed")

    async def _start(self, consumers: list[Consumer]) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import BadRequestError

        transport = self._transport
        nc, js = await transport._connection()
        for consumer in consumers:
            consumer.stream = await transport._ensure_stream(js, consumer.domain, cached=False)
            config = ConsumerConfig(
                durable_name=consumer.durable,
                description=f"factflow consumer group {self._group!r}",
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=transport._ack_wait,
                max_deliver=transport._max_deliver,
                max_ack_pending=transport._max_ack_pending,
                filter_subject=transport.subject(f"{consumer.domain}.>"),
            )
            try:
                await js.add_consumer(consumer.stream, config)
            except BadRequestError as error:
                raise ConfigurationError(
                    f"NATS: cannot create or update consumer {consumer.durable!r} of stream"
                    f" {consumer.stream!r}: {error.description}. It may have been made by"
                    f" another program; remove it (nats consumer rm {consumer.stream}"
                    f" {consumer.durable}) or read as another group"
                ) from None
        for consumer in consumers:  # reading starts once every consumer is there
            consumer.inbox = nc.new_inbox()
            consumer.subscription = await nc.subscribe(
                f"{consumer.inbox}.*", cb=self._handler(consumer)
            )
            self._consumers.append(consumer)

    def _handler(self, consumer: Consumer) -> Callable[[Msg], Awaitable[None]]:
        async def handle(msg: Msg) -> None:
            problem = consumer.received(msg)
            if problem is not None:
                self._broken = problem
            self._arrived.set()

        return handle

    def _nc(self) -> Client:
        nc = self._transport._nc
        if nc is None or not nc.is_connected:
            raise TransportUnavailable(
                f"NATS at {redact(self._transport._server)}: disconnected (reconnecting)"
            )
        return nc

    async def _fetch(self, max_messages: int, max_wait: float) -> Fetched:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        bodies = Fetched()
        while True:
            self._take(max_messages - len(bodies), bodies)
            # Ask for what is there now, and wait for the answers; again while pulls come back
            # full, from those consumers only, so that a backlog fills the batch.
            asking = self._consumers
            while len(bodies) < max_messages and asking and not self._suspect(bodies):
                pulls = await self._pull(asking, max_messages - len(bodies), None)
                await self._answers(pulls)
                self._take(max_messages - len(bodies), bodies)
                asking = [consumer for pull, consumer in pulls if pull.received == pull.wanted]
            remaining = deadline - loop.time()
            if bodies or remaining < 0.01 or self._suspect(bodies):
                break
            # Nothing yet: leave pulls open until the deadline, and return once one answers.
            await self._pull(self._consumers, max_messages, remaining)
            await self._wait(lambda: any(c.buffer for c in self._consumers), deadline)
        if not bodies and self._skipped:
            await self._acknowledge(self._skipped, b"")  # nothing to commit: do it now
        return bodies

    def _suspect(self, bodies: Fetched) -> bool:
        """Whether `bodies` is a suspect message, or one may wait: pull nothing more then."""
        return bodies.suspect or any(c.cautious and c.buffer for c in self._consumers)

    async def _answers(self, pulls: list[tuple[Pull, Consumer]]) -> None:
        """Wait for the server to end `pulls` made without waiting (a round trip)."""
        await self._wait(lambda: all(pull.done for pull, _ in pulls), self._timeout())
        if not all(pull.done for pull, _ in pulls):
            for pull, consumer in pulls:
                if consumer.pull is pull:
                    consumer.end_pull()
            raise TransportUnavailable(
                f"NATS at {redact(self._transport._server)}: no answer to a fetch within"
                f" {self._transport._timeout} s"
            )

    async def _pull(
        self, consumers: list[Consumer], capacity: int, expires: float | None
    ) -> list[tuple[Pull, Consumer]]:
        """Ask each of `consumers` without an open pull for its share of `capacity` messages;
        with `expires` (seconds) the server waits for messages, without it answers at once."""
        nc = self._nc()
        if not consumers:
            return []
        now = asyncio.get_running_loop().time()
        share = -(-capacity // len(consumers))
        request: dict[str, object] = {}
        if expires is None:
            request["no_wait"] = True
        else:
            request["expires"] = int(expires * 1e9)
        data = json.dumps({"batch": share, **request}).encode()
        # A pull for one message is never `no_wait`: the server (2.9) may leave one unanswered
        # when what it has for the consumer is a message over `max_deliver`.
        one = json.dumps({"batch": 1, "expires": int((expires or _CAUTIOUS) * 1e9)}).encode()
        pulls = []
        for consumer in consumers:
            if consumer.pull is not None and consumer.pull.until < now:
                consumer.end_pull()  # its end never came: lost with a connection
            if consumer.pull is None:
                consumer.serial += 1
                until = now + (expires or (_CAUTIOUS if consumer.cautious else 0)) + _GRACE
                wanted = 1 if consumer.cautious else share
                pull = consumer.pull = Pull(f"{consumer.inbox}.{consumer.serial}", wanted, until)
                pulls.append((pull, consumer))
                next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{consumer.stream}.{consumer.durable}"
                await nc.publish(next_subject, one if consumer.cautious else data, reply=pull.reply)
        return pulls

    def _timeout(self) -> float:
        return asyncio.get_running_loop().time() + self._transport._timeout

    async def _wait(self, ready: Callable[[], bool], until: float) -> None:
        loop = asyncio.get_running_loop()
        while not ready() and self._broken is None:
            remaining = until - loop.time()
            if remaining <= 0:
                break
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        if self._broken is not None:
            raise TransportUnavailable(f"NATS: {self._broken}")

    def _take(self, capacity: int, bodies: Fetched) -> None:
        """Move up to `capacity` delivered messages to `bodies`, domains taking turns."""
        ready = [consumer for consumer in self._consumers if consumer.buffer]
        if not ready or capacity <= 0:
            return
        self._turn = turn = (self._turn + 1) % len(ready)
        ready = ready[turn:] + ready[:turn]
        share = -(-capacity // len(ready))
        end = len(bodies) + capacity
        for consumer in ready:
            self._take_from(consumer, min(len(bodies) + share, end), bodies)
        for consumer in ready:  # what the others left goes to the busy ones
            self._take_from(consumer, end, bodies)

    def _take_from(self, consumer: Consumer, end: int, bodies: Fetched) -> None:
        """Move messages of `consumer` to `bodies`: first deliveries up to `end`, stopping
        short of a suspect one; or a suspect one alone, when `bodies` is empty."""
        buffer, wanted, fetched = consumer.buffer, consumer.wanted, self._fetched
        while buffer and len(bodies) < end and not bodies.suspect:
            msg = buffer[0]
            if wanted is not None and msg.subject not in wanted:
                self._skipped.append(buffer.popleft())
                continue
            if suspect(msg):
                consumer.cautious = True
                if bodies:
                    return  # it comes alone, in the next fetch
                bodies.suspect = True
            else:
                consumer.cautious = False
            fetched.append(buffer.popleft())
            bodies.append(msg.data)

    async def _acknowledge(
        self, messages: list[Msg], payload: bytes, count: int | None = None
    ) -> None:
        """Send `payload` (b"": ack, b"-NAK") for the first `count` messages (all by default)
        without waiting; forget them."""
        nc = self._nc()
        publish = nc.publish
        for msg in messages[:count]:
            await publish(msg.reply, payload)
        del messages[:count]

    async def _commit(self, fetched: int, skipped: int) -> None:
        """Acknowledge the first `fetched` messages handed out and the first `skipped` ones
        set aside."""
        if self._broken is not None:
            raise TransportUnavailable(f"NATS: {self._broken}")
        if not fetched and not skipped:
            return
        nc = self._nc()
        await self._acknowledge(self._fetched, b"", fetched)
        await self._acknowledge(self._skipped, b"", skipped)
        await nc.flush(max(1, math.ceil(self._transport._timeout)))

    async def _close(self) -> None:
        nc = self._transport._nc
        connected = nc is not None and nc.is_connected
        for consumer in self._consumers:
            if consumer.subscription is None:
                continue
            with contextlib.suppress(Exception):
                if connected:
                    # Ends interest (the server drops our open pulls), lets delivered ones land.
                    draining = consumer.subscription.drain()  # type: ignore[no-untyped-call]
                    await asyncio.wait_for(draining, self._transport._timeout)
                else:
                    await consumer.subscription.unsubscribe()
        if nc is None or not connected:
            return  # nothing can be told: JetStream hands the messages out after ack_wait
        left = [msg for consumer in self._consumers for msg in consumer.buffer]
        await self._acknowledge(self._skipped, b"")
        await self._acknowledge(self._fetched + left, b"-NAK")
        self._fetched.clear()
        await nc.flush(max(1, math.ceil(self._transport._timeout)))
