"""The consumer loop of `factflow run`: fetch a batch, write it, only then acknowledge it."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple

import msgspec

from factflow import _faults
from factflow.errors import ConfigurationError, TransportUnavailable
from factflow.model.decoding import DEFAULT_MAX_MESSAGE_SIZE
from factflow.pipeline.app import App
from factflow.runtime.columnar import ColumnarProcessor
from factflow.runtime.interpreter import tuned_for_batches
from factflow.runtime.metrics import Metrics
from factflow.runtime.writer import (
    Backoff,
    BatchOutcome,
    BatchWriter,
    Stopped,
    wait_while_unavailable,
)
from factflow.transport.base import Fetched, Subscription, Transport
from factflow.warehouse.base import Warehouse

__all__ = ["DEFAULT_BATCH_SIZE", "LOG_BATCH_SIZE", "ConsumerOptions", "run_consumer"]

log = logging.getLogger("factflow.runtime")

#: The most messages written in one transaction, from a broker: half its prefetch window
#: (RabbitMQ's 10,000), so the next batch streams in while one is written. A batch is this
#: large only when a backlog fills it (catching up, a burst); otherwise `max_wait` cuts it.
DEFAULT_BATCH_SIZE = 5000

#: The same from the embedded log, which has no window to share: per-batch costs (a dozen
#: statements, a commit) made batches of 5000 spend a third of the time of a log → DuckDB run
#: (300,000 events: 9.4 s, against 6.1 s with 15,000 and 4.5 s with 50,000). Three batches at
#: most are held (one read, one processed, one written).
LOG_BATCH_SIZE = 20_000


class ConsumerOptions(msgspec.Struct, frozen=True):
    """How a consumer batches and retries.

    Args:
        group: the consumer group to read as.
        batch_size: the most messages written in one warehouse transaction.
        max_wait: seconds to wait for a batch to fill before writing what there is.
        stop_when_idle: return once a fetch finds nothing and the transport holds nothing ready
            for the group either (for demos, tests and catch-up runs).
        backoff: waits between retries when the transport or the warehouse is unavailable.
        backlog_every: seconds between two readings of the transport's backlog (for metrics).
        max_message_size: the largest message decoded, in bytes; a larger one becomes a dead
            letter without being parsed.
    """

    group: str = "kpi"
    batch_size: int = DEFAULT_BATCH_SIZE
    max_wait: float = 0.5
    stop_when_idle: bool = False
    backoff: Backoff = Backoff()
    backlog_every: float = 5.0
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE


def run_consumer(
    app: App,
    transport: Transport,
    warehouse: Warehouse,
    options: ConsumerOptions | None = None,
    *,
    stop: threading.Event | None = None,
    on_batch: Callable[[BatchOutcome], None] | None = None,
    metrics: Metrics | None = None,
) -> BatchOutcome:
    """Consume until `stop` is set (or, with `stop_when_idle`, until caught up).

    Every batch is written in one transaction and acknowledged only after it committed; the
    batch in hand when `stop` is set is finished and acknowledged before returning. A lost
    transport is reconnected with backoff; a warehouse that is down is retried with backoff,
    acknowledging nothing meanwhile, also when it is down at the start (preparing the model).

    A message the transport returned twice already (suspect, see `Fetched`) comes alone and is
    written and acknowledged alone: if it is one that crashes the process, the crash costs no
    other message a delivery, and the broker's delivery limit sets it aside by itself.
    """
    options = options or ConsumerOptions()
    stop = stop or threading.Event()
    processor = ColumnarProcessor(
        app, options.group, max_message_size=options.max_message_size, warehouse=warehouse
    )
    if not processor.event_types:
        raise ConfigurationError(
            f"app {app.name!r} has no consumer in group {options.group!r}; "
            f"its groups are: {', '.join(app.groups) or 'none'}"
        )
    if not wait_while_unavailable(lambda: warehouse.prepare(app.schema), options.backoff, stop):
        return BatchOutcome()
    writer = BatchWriter(processor, warehouse, backoff=options.backoff, stop=stop)
    reader = _Reader(transport, options, processor.subscription, stop, metrics)
    total = BatchOutcome()
    alone = 0  # suspect messages written one at a time since the last other batch
    in_flight: _Write | None = None

    def settle() -> bool:
        """Wait for the write in flight (if any), then acknowledge its batch; False if stopping
        left it unwritten."""
        nonlocal in_flight
        write, in_flight = in_flight, None
        if write is None:
            return True
        try:
            outcome = write.outcome.result()
        except Stopped:
            log.warning("stopping with %d messages unacknowledged", write.size)
            return False
        _faults.reached("commit-before-ack")
        reader.commit(write.subscription)
        total.add(outcome)
        if metrics is not None:
            metrics.batch_written(outcome, time.perf_counter() - write.started)
        if on_batch is not None:
            on_batch(outcome)
        return True

    with (
        tuned_for_batches(),
        contextlib.closing(reader),
        ThreadPoolExecutor(1, thread_name_prefix="factflow-writer") as writing,
    ):
        while not stop.is_set():
            if metrics is not None:
                metrics.heartbeat()
            messages = reader.fetch()
            if messages is None:
                continue  # reconnecting
            suspect = isinstance(messages, Fetched) and messages.suspect
            if alone and not suspect:
                log.warning("wrote %d suspect messages one at a time", alone)
                alone = 0
            if not messages:
                if not settle():  # nothing more to overlap it with: acknowledge it
                    break
                if options.stop_when_idle and reader.caught_up():
                    break
                continue
            if suspect:
                if not alone:
                    log.warning(
                        "writing messages returned unacknowledged twice or more one at a time,"
                        " each acknowledged after its commit: one of them may crash the"
                        " consumer, and only its own deliveries should count toward the"
                        " transport's delivery limit"
                    )
                alone += len(messages)
            started = time.perf_counter()
            if suspect and not settle():  # processed with nothing else at stake
                break
            # Decoding and mapping this batch overlaps with writing the previous one (the
            # warehouse works outside the interpreter lock); its acknowledgement waits for it.
            changes = processor.process(messages)
            warehouse.stage(changes)
            if in_flight is not None and (not settle() or stop.is_set()):
                break  # what was fetched since goes back to the transport, unacknowledged
            in_flight = _Write(
                writing.submit(writer.write_processed, messages, changes),
                len(messages),
                started,
                reader.subscription,
            )
            if suspect and not settle():
                break
        settle()  # the batch in hand is finished and acknowledged
    return total


class _Write(NamedTuple):
    """A batch being written: its outcome to come, and what acknowledging it needs."""

    outcome: Future[BatchOutcome]
    size: int
    started: float
    subscription: Subscription | None  # the one it came from


class _Reader:
    """The subscription, reopened with backoff whenever the transport drops it."""

    def __init__(
        self,
        transport: Transport,
        options: ConsumerOptions,
        event_types: frozenset[str],
        stop: threading.Event,
        metrics: Metrics | None,
    ) -> None:
        self._transport = transport
        self._options = options
        self._event_types = event_types
        self._stop = stop
        self._metrics = metrics
        self._subscription: Subscription | None = None
        self._next_wait = options.backoff.waits()
        self._backlog_at = 0.0

    def fetch(self) -> Sequence[bytes] | None:
        """A batch (maybe empty), or None while the transport is unavailable."""
        try:
            if self._subscription is None:
                self._subscription = self._transport.subscribe(
                    self._options.group, self._event_types
                )
                self._next_wait = self._options.backoff.waits()
            self._read_backlog()
            return self._subscription.fetch(self._options.batch_size, self._options.max_wait)
        except TransportUnavailable as error:
            self._lost(error)
            return None

    def caught_up(self) -> bool:
        """After a fetch that found nothing: whether the group has caught up, that is, the
        transport holds nothing ready for it either, where it can tell (`ready()`: RabbitMQ,
        whose broker may be slow to start pushing to a new consumer). A lost transport has not
        caught up: it is reopened."""
        ready = getattr(self._subscription, "ready", None)
        if ready is None:
            return True
        try:
            waiting = int(ready())
        except TransportUnavailable as error:
            self._lost(error)
            return False
        if waiting:
            log.debug("nothing fetched, but %d messages are ready: not idle yet", waiting)
        return waiting == 0

    @property
    def subscription(self) -> Subscription | None:
        return self._subscription

    def commit(self, fetched_from: Subscription | None) -> None:
        """Acknowledge the oldest batch not acknowledged yet, fetched from `fetched_from`: if
        that subscription was dropped since, the transport delivers the batch again, and the
        warehouse, which has it, ignores it."""
        if self._subscription is None or self._subscription is not fetched_from:
            return
        try:
            self._subscription.commit(1)
        except TransportUnavailable as error:
            # The batch is in the warehouse; the transport will deliver it again, harmlessly.
            self._lost(error)

    def close(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(TransportUnavailable):
                self._subscription.close()
            self._subscription = None

    def _lost(self, error: TransportUnavailable) -> None:
        self.close()
        wait = self._next_wait()
        log.warning("transport unavailable, reconnecting in %.1fs: %s", wait, error)
        if self._metrics is not None:
            self._metrics.reconnecting()
        self._stop.wait(wait)

    def _read_backlog(self) -> None:
        depth = getattr(self._transport, "depth", None)
        now = time.monotonic()
        if self._metrics is None or depth is None or now < self._backlog_at:
            return
        self._backlog_at = now + self._options.backlog_every
        try:
            self._metrics.backlog(depth(self._options.group))
        except TransportUnavailable:
            raise
        except Exception as error:  # a backlog reading must never stop consumption
            log.debug("cannot read the backlog: %s", error)
