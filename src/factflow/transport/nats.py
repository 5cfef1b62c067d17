"""NATS JetStream as a transport: streams per domain, a durable pull consumer per group.

What the transport keeps on the server, for the URL ``nats://host:4222?prefix=acme`` (without a
prefix, subjects and names start at the domain)::

    subject   acme.card.transaction_settled    an event's subject is its `type`
    stream    acme_card                        one per domain (file storage), subjects acme.card.>
    consumer  acme_card / kpi                  one durable pull consumer per consumer group and
                                               domain, named after the group

Both `publish` (for the domains it publishes to) and `subscribe` create the streams, and
`subscribe` the consumers, idempotently: an existing stream of that name is left alone when it
has the subject, and otherwise gets it added. A new consumer group starts at the beginning of
each stream. Other programs may publish plain JetStream messages to the same subjects; they are
read the same way.

Delivery, and what survives what:

- `publish` returns once JetStream acknowledged every message: stored by the server (by a quorum
  for replicated streams). A single server's file store syncs to disk every `sync_interval`
  (2 minutes by default; `sync_always` in the server configuration syncs every write). The
  header ``Nats-Msg-Id`` carries the envelope id, so JetStream drops a republished envelope
  within its duplicate window (2 minutes by default).
- Several processes reading as one group pull from the same durable consumer and share the
  load. Every message is acknowledged one by one (`AckPolicy.EXPLICIT`) at `commit`, never
  before; what a process fetched and did not commit is handed out again: at once after a clean
  `close` (negatively acknowledged), after `ack_wait` seconds after a crash.
- A consumer reads every type of its domain (filter ``<domain>.>``, so a group's consumer never
  has to change when its app's event types do). `<domain>.*` returns them all, unknown types
  included, so the runtime can set those aside; with exact types only, messages of other types
  are acknowledged without being returned, with the next `commit` (or at once by a fetch that
  returns nothing): they are not this group's, and the group will not see them later either.
- A message delivered `max_deliver` times without being acknowledged (a poison message that kills
  the consumer process each time) is no longer delivered to that group; JetStream publishes the
  advisory ``$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>``, which monitoring
  should watch. The message stays in the stream (``nats stream get``) to be inspected and
  republished. Bad *input* never gets there: the runtime turns it into a dead letter and
  acknowledges it.
- The client reconnects by itself. Meanwhile `fetch` and `commit` raise `TransportUnavailable`
  (so the runtime backs off and subscribes again), as does any call the server does not answer
  within `timeout` seconds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import math
import re
import threading
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import urlsplit

from factflow._urls import pop_query_parameter, redact, redact_text
from factflow.errors import ConfigurationError, FactflowError, TransportUnavailable
from factflow.transport.base import Outgoing

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription as CoreSubscription
    from nats.js.client import JetStreamContext

__all__ = ["NatsSubscription", "NatsTransport"]

log = logging.getLogger("factflow.transport.nats")

T = TypeVar("T")

_INSTALL = "pip install 'factflow[nats]'"
_DOMAIN = re.compile(r"[A-Za-z0-9_-]+\Z")
_TYPE = re.compile(r"([A-Za-z0-9_-]+)(\.[^\s.*>]+)+\Z")  # a NATS subject of two tokens or more
_PREFIX = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\Z")
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_-]")
_CHUNK = 10_000  # messages handed to the event loop at once by `publish`
_IN_FLIGHT = 4_000  # publishes awaiting their JetStream acknowledgement at once
_GRACE = 2.0  # seconds a lingering pull may outlive its expiry before it counts as lost
_PUBLISH_WAITS = 600.0  # seconds a chunk may take, acknowledged bit by bit (each step is timed)


def _stream_name(prefix: str, domain: str) -> str:
    return f"{prefix.replace('.', '_')}_{domain}" if prefix else domain


def _durable_name(group: str) -> str:
    """A consumer name NATS accepts, distinct for distinct groups."""
    if not group:
        raise ConfigurationError("consumer group: must not be empty, e.g. 'kpi'")
    name = _NOT_IN_NAME.sub("_", group)
    if name != group:  # e.g. `kpi.eu` and `kpi_eu` must not share a consumer
        name += "-" + hashlib.sha256(group.encode()).hexdigest()[:8]
    return name


def _domain_of(event_type: str) -> str:
    """The domain of `event_type`, or of a pattern `<domain>.*`."""
    domain = event_type.partition(".")[0]
    if not _DOMAIN.match(domain) or not (event_type == f"{domain}.*" or _TYPE.match(event_type)):
        raise ValueError(
            f"event type {event_type!r}: must be <domain>.<event_name>, the domain made of letters,"
            " digits, `_` or `-` (it names a stream) and no whitespace, `*` or `>` (it is the NATS"
            " subject), e.g. 'card.card_issued'"
        )
    return domain


def _option(
    url: str, name: str, given: T | None, parse: Callable[[str], T]
) -> tuple[str, T | None]:
    url, text = pop_query_parameter(url, name)
    if text is None:
        return url, given
    if given is not None:
        raise ConfigurationError(
            f"NATS URL {redact(url)!r}: `{name}` is given both in the URL and as an argument;"
            " keep one"
        )
    try:
        return url, parse(text)
    except ValueError:
        raise ConfigurationError(f"NATS URL: `{name}={text}` is not a valid value") from None


class _EventLoop:
    """An asyncio loop in a daemon thread, for the synchronous API to call into."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="factflow-nats", daemon=True
        )
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None) -> T:
        """The result of `coroutine`, run in the loop; `TimeoutError` after `timeout` seconds."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        # Not `future.result(timeout)`: the coroutine's own TimeoutError would look the same.
        concurrent.futures.wait([future], timeout)
        if not future.done():
            future.cancel()
            raise TimeoutError(f"no result within {timeout} s")
        return future.result()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        with contextlib.suppress(TimeoutError, RuntimeError):
            self.run(_cancel_other_tasks(), 5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()


async def _cancel_other_tasks() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class NatsTransport:
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
        max_deliver: deliveries of one message before JetStream gives up on it (see the module
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
                f"the NATS transport needs the nats-py package: {_INSTALL}"
            ) from None
        self._url = url
        server, prefix = _option(url, "prefix", prefix, str)
        server, ack_wait = _option(server, "ack_wait", ack_wait, float)
        server, max_deliver = _option(server, "max_deliver", max_deliver, int)
        server, max_ack_pending = _option(server, "max_ack_pending", max_ack_pending, int)
        if urlsplit(server).scheme not in ("nats", "tls", "ws", "wss"):
            raise ConfigurationError(
                f"NATS URL {redact(url)!r}: expected nats://host:4222 (or tls://, ws://, wss://)"
            )
        if prefix and not _PREFIX.match(prefix):
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
        self._loop = _EventLoop()
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
        return _stream_name(self._prefix, domain)

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
            if len(chunk) == _CHUNK:
                count += self._run(self._publish(chunk), "publish", _PUBLISH_WAITS)
                chunk = []
        if chunk:
            count += self._run(self._publish(chunk), "publish", _PUBLISH_WAITS)
        return count

    def subscribe(self, group: str, event_types: Collection[str]) -> NatsSubscription:
        """Read as consumer group `group` (creating its streams and consumers), `event_types` only.

        An entry `<domain>.*` stands for every type of that domain.
        """
        self._check_open()
        durable = _durable_name(group)
        wanted: dict[str, set[str] | None] = {}
        for event_type in event_types:
            domain = _domain_of(event_type)
            if event_type == f"{domain}.*":
                wanted[domain] = None
            elif (types := wanted.setdefault(domain, set())) is not None:
                types.add(self.subject(event_type))
        subscription = NatsSubscription(self, group)
        consumers = [
            _Consumer(domain, durable, None if types is None else frozenset(types))
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
        return self._run(self._lag(_durable_name(group)), f"read the lag of {group!r}")

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

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

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

    async def _publish(self, messages: list[Outgoing]) -> int:
        nc, js = await self._connection()
        limit = nc.max_payload
        subjects: dict[str, str] = {}
        for message in messages:
            if message.type not in subjects:
                await self._ensure_stream(js, _domain_of(message.type))
                subjects[message.type] = self.subject(message.type)
            if len(message.body) > limit:
                raise ValueError(
                    f"event {message.id!r} ({message.type}): body of {len(message.body)} bytes"
                    f" exceeds the NATS server's max_payload of {limit} bytes"
                )
        # Not `js.publish_async`: a future and a timeout task per message make it ten times
        # slower. The acknowledgements come to one inbox and are only counted.
        batch = _Publishing(nc.new_inbox())
        subscription = await nc.subscribe(f"{batch.inbox}.*", cb=batch.acknowledged)
        try:
            for number, message in enumerate(messages):
                if len(batch.waiting) >= _IN_FLIGHT:
                    await self._progress(batch, _IN_FLIGHT // 2)
                batch.waiting[str(number)] = message
                await nc.publish(
                    subjects[message.type],
                    message.body,
                    reply=f"{batch.inbox}.{number}",
                    headers={"Nats-Msg-Id": message.id, "Content-Type": "application/json"},
                )
            await self._progress(batch, 0)
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        return len(messages)

    async def _progress(self, batch: _Publishing, waiting: int) -> None:
        """Wait until at most `waiting` publishes of `batch` await their acknowledgement."""
        batch.low = waiting
        while len(batch.waiting) > waiting and not batch.failures:
            batch.changed.clear()
            try:
                await asyncio.wait_for(batch.changed.wait(), self._timeout)
            except TimeoutError:
                raise TransportUnavailable(
                    f"NATS at {redact(self._server)}: JetStream acknowledged no publish for"
                    f" {self._timeout} s; {len(batch.waiting)} are unacknowledged"
                ) from None
        if batch.failures:
            problem = "; ".join(batch.failures[:3])
            if batch.unavailable:
                self._streams.clear()  # perhaps deleted: the next call creates them again
                raise TransportUnavailable(f"NATS at {redact(self._server)}: {problem}")
            raise ConfigurationError(f"NATS at {redact(self._server)}: JetStream refused {problem}")

    async def _lag(self, durable: str) -> dict[str, int]:
        from nats.js.errors import NotFoundError

        _, js = await self._connection()
        lag: dict[str, int] = {}
        offset = 0
        while True:
            page = await js.streams_info(offset)
            for stream in page:
                name = stream.config.name or ""
                domain = name.removeprefix(_stream_name(self._prefix, ""))
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


class _Publishing:
    """The publishes of one call that JetStream has not acknowledged yet."""

    def __init__(self, inbox: str) -> None:
        self.inbox = inbox  # acknowledgements come to <inbox>.<number>
        self.waiting: dict[str, Outgoing] = {}
        self.low = 0  # `changed` is set once no more than this many are waiting
        self.changed = asyncio.Event()
        self.failures: list[str] = []
        self.unavailable = False

    async def acknowledged(self, msg: Msg) -> None:
        message = self.waiting.pop(msg.subject[len(self.inbox) + 1 :], None)
        if message is None:
            return
        data = msg.data
        if msg.headers and msg.headers.get("Status") == "503":
            problem, self.unavailable = "no stream answered (is JetStream enabled?)", True
        elif b'"error"' in data:
            error = json.loads(data)["error"]
            problem = f"{error.get('description')} (error {error.get('err_code')})"
            self.unavailable |= error.get("code", 503) >= 500
        else:
            if len(self.waiting) <= self.low:
                self.changed.set()
            return
        self.failures.append(f"event {message.id!r} ({message.type}): {problem}")
        self.changed.set()


class _Pull:
    """One pull request to a consumer: the server answers with up to `wanted` messages."""

    __slots__ = ("done", "received", "reply", "until", "wanted")

    def __init__(self, reply: str, wanted: int, until: float) -> None:
        self.reply = reply
        self.wanted = wanted
        self.received = 0
        self.until = until  # when to stop waiting for the server to end it
        self.done = False


class _Consumer:
    """A subscription's reading of one domain's durable consumer."""

    def __init__(self, domain: str, durable: str, wanted: frozenset[str] | None) -> None:
        self.domain = domain
        self.stream = ""  # known once the stream is there
        self.durable = durable
        self.wanted = wanted  # the subjects to return; None: all
        self.buffer: deque[Msg] = deque()  # delivered, not fetched yet
        self.pull: _Pull | None = None  # at most one open pull at a time
        self.inbox = ""
        self.serial = 0
        self.subscription: CoreSubscription | None = None

    def received(self, msg: Msg) -> str | None:
        """Take `msg` from the server; returns a problem that makes the subscription unusable."""
        pull = self.pull
        if msg.reply:  # a stream message: acknowledged at its reply subject
            self.buffer.append(msg)
            if pull is not None:
                pull.received += 1
                if pull.received >= pull.wanted:
                    self.end_pull()
            return None
        headers = msg.headers or {}
        status = headers.get("Status", "")
        if status == "100":  # a heartbeat
            return None
        if pull is not None and msg.subject == pull.reply:
            self.end_pull()
        from nats.js.api import Header

        description = str(headers.get(Header.DESCRIPTION, ""))
        if status in ("404", "408") or (status == "409" and "deleted" not in description.lower()):
            return None  # no (more) messages, expired, or a passing conflict: the pull is over
        return (
            f"consumer {self.durable!r} of stream {self.stream!r} answered {status} {description}"
        )

    def end_pull(self) -> None:
        if self.pull is not None:
            self.pull.done = True
            self.pull = None


class NatsSubscription:
    """A consumer group's reading of JetStream; made by `NatsTransport.subscribe`.

    Not thread-safe: one reader per subscription. Several subscriptions of one group, in one
    process or many, share the group's messages.
    """

    def __init__(self, transport: NatsTransport, group: str) -> None:
        self._transport = transport
        self._group = group
        self._consumers: list[_Consumer] = []
        self._fetched: list[Msg] = []  # returned, to acknowledge at commit
        self._skipped: list[Msg] = []  # not this group's types, to acknowledge at commit
        self._arrived = asyncio.Event()
        self._broken: str | None = None
        self._turn = 0
        self._closed = False

    @property
    def group(self) -> str:
        """The consumer group."""
        return self._group

    def fetch(self, max_messages: int, max_wait: float) -> list[bytes]:
        """Up to `max_messages` bodies, waiting at most `max_wait` seconds for the first.

        Returns an empty list when nothing arrived in time. Domains take turns, so a backlog in
        one does not starve the others. Raises `TransportUnavailable` while disconnected or when
        the server does not answer.
        """
        self._check_open()
        if max_messages <= 0:
            return []
        max_wait = max(0.0, max_wait)
        return self._transport._run(self._fetch(max_messages, max_wait), "fetch", max_wait)

    def commit(self) -> None:
        """Acknowledge every message fetched so far, and wait for the server to have them.

        Raises `TransportUnavailable` when that fails; the messages may then come again (the
        warehouse makes that harmless).
        """
        self._check_open()
        self._transport._run(self._commit(), "commit")

    def close(self) -> None:
        """Stop reading; what was fetched and not committed is handed out again at once.

        Best effort: when the server cannot be told, JetStream hands it out after `ack_wait`.
        """
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(FactflowError):
            self._transport._run(self._close(), "close a subscription")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"the subscription of group {self._group!r} is closed")

    async def _start(self, consumers: list[_Consumer]) -> None:
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

    def _handler(self, consumer: _Consumer) -> Callable[[Msg], Awaitable[None]]:
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

    async def _fetch(self, max_messages: int, max_wait: float) -> list[bytes]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        bodies: list[bytes] = []
        while True:
            self._take(max_messages - len(bodies), bodies)
            # Ask for what is there now, and wait for the answers; again while pulls come back
            # full, from those consumers only, so that a backlog fills the batch.
            asking = self._consumers
            while len(bodies) < max_messages and asking:
                pulls = await self._pull(asking, max_messages - len(bodies), None)
                await self._answers(pulls)
                self._take(max_messages - len(bodies), bodies)
                asking = [consumer for pull, consumer in pulls if pull.received == pull.wanted]
            remaining = deadline - loop.time()
            if bodies or remaining < 0.01:
                break
            # Nothing yet: leave pulls open until the deadline, and return once one answers.
            await self._pull(self._consumers, max_messages, remaining)
            await self._wait(lambda: any(c.buffer for c in self._consumers), deadline)
        if not bodies and self._skipped:
            await self._acknowledge(self._skipped, b"")  # nothing to commit: do it now
        return bodies

    async def _answers(self, pulls: list[tuple[_Pull, _Consumer]]) -> None:
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
        self, consumers: list[_Consumer], capacity: int, expires: float | None
    ) -> list[tuple[_Pull, _Consumer]]:
        """Ask each of `consumers` without an open pull for its share of `capacity` messages;
        with `expires` (seconds) the server waits for messages, without it answers at once."""
        nc = self._nc()
        if not consumers:
            return []
        now = asyncio.get_running_loop().time()
        share = -(-capacity // len(consumers))
        request: dict[str, object] = {"batch": share}
        if expires is None:
            request["no_wait"] = True
        else:
            request["expires"] = int(expires * 1e9)
        data = json.dumps(request).encode()
        pulls = []
        for consumer in consumers:
            if consumer.pull is not None and consumer.pull.until < now:
                consumer.end_pull()  # its end never came: lost with a connection
            if consumer.pull is None:
                consumer.serial += 1
                until = now + (expires or 0) + _GRACE
                pull = consumer.pull = _Pull(f"{consumer.inbox}.{consumer.serial}", share, until)
                pulls.append((pull, consumer))
                next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{consumer.stream}.{consumer.durable}"
                await nc.publish(next_subject, data, reply=pull.reply)
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

    def _take(self, capacity: int, bodies: list[bytes]) -> None:
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

    def _take_from(self, consumer: _Consumer, end: int, bodies: list[bytes]) -> None:
        buffer, wanted, fetched = consumer.buffer, consumer.wanted, self._fetched
        while buffer and len(bodies) < end:
            msg = buffer.popleft()
            if wanted is None or msg.subject in wanted:
                fetched.append(msg)
                bodies.append(msg.data)
            else:
                self._skipped.append(msg)

    async def _acknowledge(self, messages: list[Msg], payload: bytes) -> None:
        """Send `payload` (b"": ack, b"-NAK") for each message without waiting; forget them."""
        nc = self._nc()
        publish = nc.publish
        for msg in messages:
            await publish(msg.reply, payload)
        messages.clear()

    async def _commit(self) -> None:
        if self._broken is not None:
            raise TransportUnavailable(f"NATS: {self._broken}")
        if not self._fetched and not self._skipped:
            return
        nc = self._nc()
        await self._acknowledge(self._fetched, b"")
        await self._acknowledge(self._skipped, b"")
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
