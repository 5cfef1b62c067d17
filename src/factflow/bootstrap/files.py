"""The sidekick for event files: every line of a `.jsonl` (or `.jsonl.gz`) file through the
app's pipelines into the warehouse, in batches. Bad lines become dead letters."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from factflow.pipeline.app import App
from factflow.pipeline.changes import ChangeSet
from factflow.runtime.interpreter import tuned_for_batches
from factflow.runtime.processor import BatchProcessor
from factflow.runtime.writer import BatchOutcome, BatchWriter
from factflow.transport.files import read_lines
from factflow.warehouse.base import Warehouse

__all__ = ["DEFAULT_BATCH_SIZE", "bootstrap_file"]

#: Events per transaction when replaying history: large, since nobody waits for a single event.
DEFAULT_BATCH_SIZE = 50_000

_Work = tuple[Sequence[bytes], ChangeSet] | None


def bootstrap_file(
    app: App,
    path: Path,
    warehouse: Warehouse,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[BatchOutcome], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BatchOutcome:
    """Replay an event file through every pipeline of `app`; safe to run again (idempotent).

    Decoding and mapping the next batch overlaps with writing the previous one (the warehouse
    works outside the interpreter lock), with at most one batch waiting in between, so memory
    stays bounded. `on_progress` receives the bytes of the file read so far; `on_batch` each
    batch's outcome.
    """
    warehouse.prepare(app.schema)
    processor = BatchProcessor(app)
    writer = BatchWriter(processor, warehouse)
    total = BatchOutcome()
    handoff: queue.Queue[_Work] = queue.Queue(maxsize=1)
    failure: list[BaseException] = []

    def write_batches() -> None:
        while (work := handoff.get()) is not None:
            if failure:
                continue  # drain, so the reader is never blocked
            try:
                outcome = writer.write_processed(*work)
            except BaseException as error:
                failure.append(error)
                continue
            total.add(outcome)
            if on_batch is not None:
                on_batch(outcome)

    thread = threading.Thread(target=write_batches, name="factflow-bootstrap-writer")
    thread.start()
    try:
        with tuned_for_batches():
            for lines in read_lines(path, batch_size, on_progress=on_progress):
                if failure:
                    break
                changes = processor.process(lines)
                warehouse.stage(changes)
                handoff.put((lines, changes))
    finally:
        handoff.put(None)
        thread.join()
    if failure:
        raise failure[0]
    return total
