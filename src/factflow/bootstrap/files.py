"""The sidekick for event files: every line of a `.jsonl` (or `.jsonl.gz`) file through the
app's pipelines into the warehouse, in batches. Bad lines become dead letters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from factflow.pipeline.app import App
from factflow.runtime.processor import BatchProcessor
from factflow.runtime.writer import BatchOutcome, BatchWriter
from factflow.transport.files import read_lines
from factflow.warehouse.base import Warehouse

__all__ = ["bootstrap_file"]


def bootstrap_file(
    app: App,
    path: Path,
    warehouse: Warehouse,
    *,
    batch_size: int = 5000,
    on_batch: Callable[[BatchOutcome], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BatchOutcome:
    """Replay an event file through every pipeline of `app`; safe to run again (idempotent).

    `on_progress` receives the bytes of the file read so far; `on_batch` each batch's outcome.
    """
    warehouse.prepare(app.schema)
    writer = BatchWriter(BatchProcessor(app), warehouse)
    total = BatchOutcome()
    for lines in read_lines(path, batch_size, on_progress=on_progress):
        outcome = writer.write(lines)
        total.add(outcome)
        if on_batch is not None:
            on_batch(outcome)
    return total
