"""The consumer loop of `factflow run`: fetch a batch, write it, only then acknowledge it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import msgspec

from factflow.errors import ConfigurationError
from factflow.pipeline.app import App
from factflow.runtime.processor import BatchProcessor
from factflow.runtime.writer import Backoff, BatchOutcome, BatchWriter, Stopped
from factflow.transport.base import Transport
from factflow.warehouse.base import Warehouse

__all__ = ["ConsumerOptions", "run_consumer"]

log = logging.getLogger("factflow.runtime")


class ConsumerOptions(msgspec.Struct, frozen=True):
    """How a consumer batches.

    Args:
        group: the consumer group to read as.
        batch_size: the most messages written in one warehouse transaction.
        max_wait: seconds to wait for a batch to fill before writing what there is.
        stop_when_idle: return once a fetch finds nothing (for demos, tests and catch-up runs).
    """

    group: str = "kpi"
    batch_size: int = 5000
    max_wait: float = 0.5
    stop_when_idle: bool = False
    backoff: Backoff = Backoff()


def run_consumer(
    app: App,
    transport: Transport,
    warehouse: Warehouse,
    options: ConsumerOptions | None = None,
    *,
    stop: threading.Event | None = None,
    on_batch: Callable[[BatchOutcome], None] | None = None,
) -> BatchOutcome:
    """Consume until `stop` is set (or, with `stop_when_idle`, until caught up).

    Every batch is written in one transaction and acknowledged only after it committed; the
    batch in hand when `stop` is set is finished and acknowledged before returning.
    """
    options = options or ConsumerOptions()
    stop = stop or threading.Event()
    processor = BatchProcessor(app, options.group)
    if not processor.event_types:
        raise ConfigurationError(
            f"app {app.name!r} has no consumer in group {options.group!r}; "
            f"its groups are: {', '.join(app.groups) or 'none'}"
        )
    warehouse.prepare(app.schema)
    writer = BatchWriter(processor, warehouse, backoff=options.backoff, should_stop=stop.is_set)
    total = BatchOutcome()
    subscription = transport.subscribe(options.group, processor.subscription)
    try:
        while not stop.is_set():
            messages = subscription.fetch(options.batch_size, options.max_wait)
            if not messages:
                if options.stop_when_idle:
                    break
                continue
            started = time.perf_counter()
            try:
                outcome = writer.write(messages)
            except Stopped:
                log.warning("stopping with %d messages unacknowledged", len(messages))
                break
            subscription.commit()
            total.add(outcome)
            log.debug("batch of %d written in %.3fs", len(messages), time.perf_counter() - started)
            if on_batch is not None:
                on_batch(outcome)
    finally:
        subscription.close()
    return total
