"""The sidekick's batch loop: raw envelopes, batch by batch, through pipelines into a warehouse.

Every way of bootstrapping (event files, bootstrap sources) ends here, so they share one path
with the running service: `ColumnarProcessor` decodes and maps (column-wise where the
pipelines allow, as `BatchProcessor` does elsewhere), `Warehouse.stage` converts,
`BatchWriter.write_processed` writes each batch in one transaction. Each batch comes with a
*position*, whatever its source says about how far it got (bytes of a file, events of a source);
`on_batch` receives it once the batch is committed, which is where a checkpoint belongs.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeAlias, TypeVar

from factflow.pipeline.app import App
from factflow.pipeline.changes import ChangeSet
from factflow.runtime.columnar import ColumnarProcessor
from factflow.runtime.interpreter import tuned_for_batches
from factflow.runtime.processor import BatchProcessor
from factflow.runtime.writer import BatchOutcome, BatchWriter
from factflow.warehouse.base import Warehouse

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "REFRESH_STATISTICS_ROWS",
    "Batch",
    "refresh_statistics",
    "replay",
]

#: Events per transaction when replaying history: large, since nobody waits for a single event.
DEFAULT_BATCH_SIZE = 50_000

#: Rows a replay writes from which it refreshes the warehouse's statistics at the end: below,
#: the tables change too little for the query planner's picture of them to matter.
REFRESH_STATISTICS_ROWS = 10_000

P = TypeVar("P")

#: Raw envelopes to write in one transaction, and how far the source is once they are written.
Batch: TypeAlias = tuple[Sequence[bytes], P]


class _Handoff(Generic[P]):
    """Processed batches from the reading thread to the writing one; None ends the stream."""

    def __init__(self) -> None:
        # A rendezvous: the reader hands a batch over only once the writer has taken it, so at
        # most two batches are in memory (one being written, the next being processed) however
        # long the stream: peak memory does not depend on how far ahead reading could run.
        self.queue: queue.Queue[tuple[Sequence[bytes], ChangeSet, P] | None] = queue.Queue(1)
        self.failure: list[BaseException] = []


def replay(
    app: App,
    batches: Iterable[Batch[P]],
    warehouse: Warehouse,
    *,
    on_batch: Callable[[BatchOutcome, P], None] | None = None,
    processor: BatchProcessor | None = None,
    prepared: bool = False,
    final: bool = True,
) -> BatchOutcome:
    """Write every batch through every pipeline of `app`; returns the totals.

    Decoding and mapping the next batch overlaps with writing the previous one (the warehouse
    works outside the interpreter lock). `on_batch(outcome, position)` is called on the writing
    thread after each commit, in order. The first failure stops the replay and is raised; what
    was committed before it stays, and replaying again changes nothing already written.
    `processor` replaces the one running every pipeline of `app` (a rebuild keeps less).
    `prepared` says the caller already prepared the warehouse for `app` (creating what the
    model lacks also re-creates its views, which is not free). `final` False says the caller
    changes the tables further (a rebuild swaps its table in) and calls `refresh_statistics`
    after that.
    """
    if not prepared:
        warehouse.prepare(app.schema)
    processor = processor or ColumnarProcessor(app)
    writer = BatchWriter(processor, warehouse)
    total = BatchOutcome()
    handoff: _Handoff[P] = _Handoff()

    def write_batches() -> None:
        while (work := handoff.queue.get()) is not None:
            handoff.queue.task_done()
            if handoff.failure:
                continue  # drain, so the reader is never blocked
            messages, changes, position = work
            try:
                outcome = writer.write_processed(messages, changes)
                total.add(outcome)
                if on_batch is not None:
                    on_batch(outcome, position)
            except BaseException as error:
                handoff.failure.append(error)

    thread = threading.Thread(target=write_batches, name="factflow-bootstrap-writer")
    thread.start()
    iterator = iter(batches)
    try:
        with tuned_for_batches():
            for messages, position in iterator:
                if handoff.failure:
                    break
                changes = processor.process(messages)
                warehouse.stage(changes)
                handoff.queue.put((messages, changes, position))
                del messages, changes  # the writer holds them now
                handoff.queue.join()  # until the writer took them
    finally:
        handoff.queue.put(None)
        thread.join()
        close = getattr(iterator, "close", None)
        if close is not None:
            close()  # a generator stopped early releases its file or database cursor now
    if handoff.failure:
        raise handoff.failure[0]
    if final:
        refresh_statistics(warehouse, total)
    return total


def refresh_statistics(warehouse: Warehouse, written: BatchOutcome) -> None:
    """Refresh the warehouse's statistics after a bulk load that wrote `written`, if it wrote
    `REFRESH_STATISTICS_ROWS` rows or more."""
    if written.rows >= REFRESH_STATISTICS_ROWS:
        warehouse.refresh_statistics()
