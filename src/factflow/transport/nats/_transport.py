"""`NatsTransport`: the connection, the streams, and the synchronous API over the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import weakref
from collections.abc import Collection, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from factflow._closing import ClosesOnExit
from factflow._urls import redact, redact_text
from factflow.errors import ConfigurationError, FactflowError, TransportUnavailable
from factflow.transport.base import Outgoing
from factflow.transport.nats._config import (
    INSTALL,
    PREFIX,
    domain_of,
    durable_name,
    stream_name,
    url_option,
)
from factflow.transport.nats._consumer import Consumer
from factflow.transport.nats._loop import EventLoop
from factflow.transport.nats._publish import CHUNK, PUBLISH_WAITS, publish_chunk
from factflow.transport.nats._subscription import NatsSubscription

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.client import JetStreamContext

__all__ = ["NatsTransport"]

# The package's name, as before it was split into modules: logging configuration refers to it.
log = logging.getLogger("factflow.transport.nats")

T = TypeVar("T")


class NatsTransport(ClosesOnExit):
    """Events on NATS JetStream at `url` (``nats://user:password@host:4222``).

    >>> nats = NatsTransport("nats://127.0.0.1:4222?prefix=acme")
    >>> nats.publish([Outgoing(type="card.card_issued", id="e-1", body=b'{"id": "e-1", ...}')])
    1
    >>> sub = nats.subscribe("kpi", ["card.*"])
    >>> bodies = sub.fetch(5000, max_wait=0.5)
    >>> sub.commit()

    Args:
        url: the server; the query may set the options below (``?prefix=acme&ack_wait=30``),
            which are then not given as arguments.
        prefix: put in front of every subject (``acme.card.card_issued``) and stream name
            (``acme_card``), to keep apps or tests apart on one server.
        ack_wait: seconds JetStream waits for the commit of a fetched message before handing it
            out again; longer than writing a batch. Default 60.
        max_deliver: deliveries of one message before JetStream gives up on it (see the package
            documentation). Default 20.
        max_ack_pending: messages a group may have fetched and not committed, across all its
            processes: at least the batch size times the processes. Default 20000.
        timeout: seconds to wait for the server to answer (connect, requests, acknowledgements).

    Raises `ConfigurationError` for a malformed URL or option, or when nats-py is missing. The
    connection is made on first use; `TransportUnavailable` when the server cannot be reached.
    The consumer settings apply when `subscribe` creates or updates the group's consumers.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        ack_wait: float | None = None,
        max_deliver: int | None = None,
        max_ack_pending: int | None = None,
        timeout: float = 5.0,
    ) -> None:
        try:
            import nats  # noqa: F401  (only to fail early and clearly)
        except ImportError:
            raise ConfigurationError(
                f"the NATS transport needs the nats-py package: {INSTALL}"
            ) from None
        self._url = url
        server, prefix = url_option(url, "prefix", prefix, str)
        server, ack_wait = url_option(server, "ack_wait", ack_wait, float)
        server, max_deliver = url_option(server, "max_deliver", max_deliver, int)
        server, max_ack_pending = url_option(server, "max_ack_pending", max_ack_pending, int)
        if urlsplit(server).scheme not in ("nats", "tls", "ws", "wss"):
            raise ConfigurationError(
                f"NATS URL {redact(url)!r}: expected nats://host:4222 (or tls://, ws://, wss://)"
            )
        if prefix and not PREFIX.match(prefix):
            raise ConfigurationError(
                f"NATS prefix {prefix!r}: use letters, digits, `_` or `-`, in tokens separated"
                " by dots (it starts every subject and stream name), e.g. 'acme'"
            )
        self._server = server
        self._prefix = prefix or ""
        self._ack_wait = 60.0 if ack_wait is None else ack_wait
        self._max_deliver = 20 if max_deliver is None else max_deliver
        self._max_ack_pending = 20_000 if max_ack_pending is None else max_ack_pending
        if self._ack_wait <= 0 or self._max_deliver < 1 or self._max_ack_pending < 1:
            raise ConfigurationError(
                f"NATS transport: ack_wait ({self._ack_wait}) must be over 0, max_deliver"
                f" ({self._max_deliver}) and max_ack_pending ({self._max_ack_pending}) at least 1"
            )
        self._timeout = timeout
        self._loop = EventLoop()
        self._nc: Client | None = None  # used in the loop only, like everything below
        self._js: JetStreamContext | None = None
        self._connecting = asyncio.Lock()
        self._streams: set[str] = set()
        self._subscriptions: weakref.WeakSet[NatsSubscription] = weakref.WeakSet()
        self._closed = False

    def __repr__(self) -> str:
        return f"NatsTransport({redact(self._url)!r})"

    def subject(self, event_type: str) -> str:
        """The subject events of `event_type` are published to."""
        return f"{self._prefix}.{event_type}" if self._prefix else event_type

    def stream(self, domain: str) -> str:
        """The name of the stream of `domain`."""
        return stream_name(self._prefix, domain)

    def publish(self, messages: Iterable[Outgoing]) -> int:
        """Publish `messages` to JetStream; returns how many, once JetStream stored them all.

        Messages go out many at a time, in chunks. Raises `ValueError` for a type that is no
        subject or a body over the server's `max_payload` (nothing of that chunk is published),
        and `TransportUnavailable` when the server does not acknowledge in time (what it did
        acknowledge stays; publishing again is harmless).
        """
        self._check_open()
        count = 0
        chunk: list[Outgoing] = []
        for message in messages:
            chunk.append(message)
            if len(chunk) == CHUNK:
                count += self._run(publish_chunk(self, chunk), "publish", PUBLISH_WAITS)
                chunk = []
        if chunk:
            count += self._run(publish_chunk(self, chunk), "publish", PUBLISH_WAITS)
        return count

    def subscribe(self, group: str, event_types: Collection[str]) -> NatsSubscription:
        """Read as consumer group `group` (creating its streams and consumers), `event_types` only.

        An entry `<domain>.*` stands for every type of that domain.
        """
        self._check_open()
        durable = durable_name(group)
        wanted: dict[str, set[str] | None] = {}
        for event_type in event_types:
            domain = domain_of(event_type)
            if event_type == f"{domain}.*":
                wanted[domain] = None
            elif (types := wanted.setdefault(domain, set())) is not None:
                types.add(self.subject(event_type))
        subscription = NatsSubscription(self, group)
        consumers = [
            Consumer(domain, durable, None if types is None else frozenset(types))
            for domain, types in sorted(wanted.items())
        ]
        self._run(subscription._start(consumers), f"subscribe as {group!r}")
        self._subscriptions.add(subscription)
        return subscription

    def lag(self, group: str) -> dict[str, int]:
        """Per domain: messages `group` has not acknowledged yet (`num_pending` plus
        `num_ack_pending` of its consumer). Counts every type of the domain; domains the group
        does not read are left out."""
        self._check_open()
        return self._run(self._lag(durable_name(group)), f"read the lag of {group!r}")

    def depth(self, group: str) -> int:
        """Messages `group` has not acknowledged yet, over all its domains (see `lag`)."""
        return sum(self.lag(group).values())

    def close(self) -> None:
        """Close every subscription made here (see `NatsSubscription.close`) and the connection."""
        if self._closed:
            return
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription.close()
        with contextlib.suppress(FactflowError):
            self._run(self._disconnect(), "close")
        self._loop.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self!r} is closed")

    def _run(self, coroutine: Coroutine[Any, Any, T], what: str, waits: float = 0.0) -> T:
        """Run `coroutine` (which `waits` seconds on purpose at most) in the loop, turning the
        client's failures into factflow errors."""
        from nats.errors import Error as NatsError
        from nats.js.errors import APIError

        try:
            # Every step in the loop has its own timeout; this one only guards against a hang.
            return self._loop.run(coroutine, waits + 4 * self._timeout + 5)
        except FactflowError:
            raise
        except APIError as error:
            if error.code == 400:
                raise ConfigurationError(self._describe(what, error)) from None
            raise TransportUnavailable(self._describe(what, error)) from error
        except (NatsError, OSError, TimeoutError) as error:
            raise TransportUnavailable(self._describe(what, error)) from error

    def _describe(self, what: str, error: BaseException) -> str:
        text = redact_text(str(error) or type(error).__name__, self._url)
        return f"NATS at {redact(self._server)}: cannot {what}: {text}"

    async def _connection(self) -> tuple[Client, JetStreamContext]:
        async with self._connecting:  # publish and subscribe may come from two threads at once
            if self._nc is None or self._js is None or self._nc.is_closed:
                self._nc, self._js = await self._connect()
            return self._nc, self._js

    async def _connect(self) -> tuple[Client, JetStreamContext]:
        from nats.aio.client import Client

        nc = Client()

        async def error_cb(error: Exception) -> None:
            log.debug("NATS: %s", redact_text(str(error), self._url))

        async def disconnected_cb() -> None:
            if not nc.is_closed:  # not our own `close`
                log.warning("NATS at %s: disconnected, reconnecting", redact(self._server))

        async def reconnected_cb() -> None:
            log.warning("NATS at %s: reconnected", redact(self._server))

        try:
            # The client retries the first connection forever (max_reconnect_attempts=-1), which
            # is also what keeps it reconnecting later: bound the first one here.
            await asyncio.wait_for(
                nc.connect(
                    self._server,
                    name="factflow",
                    error_cb=error_cb,
                    disconnected_cb=disconnected_cb,
                    reconnected_cb=reconnected_cb,
                    connect_timeout=max(1, math.ceil(self._timeout)),
                    reconnect_time_wait=1,
                    max_reconnect_attempts=-1,
                    ping_interval=20,  # a dead connection is noticed within a minute
                ),
                self._timeout,
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await nc.close()
            raise
        return nc, nc.jetstream(timeout=self._timeout)

    async def _disconnect(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            await asyncio.wait_for(self._nc.close(), self._timeout)

    async def _ensure_stream(self, js: JetStreamContext, domain: str, cached: bool = True) -> str:
        """The name of the stream of `domain`, created or given our subject if needed."""
        from nats.js.api import StorageType
        from nats.js.errors import BadRequestError

        name = self.stream(domain)
        if cached and name in self._streams:
            return name
        subject = self.subject(f"{domain}.>")
        try:
            await js.add_stream(name=name, subjects=[subject], storage=StorageType.FILE)
        except BadRequestError as error:
            if error.err_code != 10058:  # stream name already in use (with another config)
                raise ConfigurationError(
                    f"NATS: cannot create stream {name!r} for subjects {subject!r}:"
                    f" {error.description} (another stream may hold these subjects)"
                ) from None
            config = (await js.stream_info(name)).config
            if subject not in (config.subjects or []):
                config.subjects = [*(config.subjects or []), subject]
                await js.update_stream(config)
        self._streams.add(name)
        return name

    async def _lag(self, durable: str) -> dict[str, int]:
        from nats.js.errors import NotFoundError

        _, js = await self._connection()
        lag: dict[str, int] = {}
        offset = 0
        while True:
            page = await js.streams_info(offset)
            for stream in page:
                name = stream.config.name or ""
                domain = name.removeprefix(stream_name(self._prefix, ""))
                if self.stream(domain) != name or self.subject(f"{domain}.>") not in (
                    stream.config.subjects or []
                ):
                    continue  # not a stream of ours
                try:
                    info = await js.consumer_info(name, durable)
                except NotFoundError:
                    continue
                lag[domain] = info.num_pending + info.num_ack_pending
            offset += len(page)
            if not page:
                return lag
