"""The sidekick for event files: every envelope of a `.jsonl`, `.jsonl.gz` or `.parquet` file
through the app's pipelines into the warehouse, in batches. Bad lines become dead letters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from factflow.bootstrap.replay import DEFAULT_BATCH_SIZE, Batch, replay
from factflow.pipeline.app import App
from factflow.runtime.writer import BatchOutcome
from factflow.transport.files import read_events
from factflow.warehouse.base import Warehouse

__all__ = ["DEFAULT_BATCH_SIZE", "FilePosition", "bootstrap_file", "file_batches"]


class FilePosition(msgspec.Struct, frozen=True):
    """How far into an event file a batch reaches.

    Attributes:
        events: envelopes (lines, rows) from the start of the file through this batch.
        bytes: bytes of the file read when the batch was taken (for progress; the reader reads
            ahead, and for Parquet it is an estimate).
    """

    events: int
    bytes: int


def file_batches(path: Path, batch_size: int, *, skip: int = 0) -> Iterator[Batch[FilePosition]]:
    """The envelopes of an event file in batches of `batch_size`, each with its position;
    without the first `skip` envelopes (done by an earlier, interrupted bootstrap)."""
    read = 0
    events = 0

    def note(bytes_read: int) -> None:
        nonlocal read
        read = bytes_read

    for messages in read_events(path, batch_size, on_progress=note):
        start = events
        events += len(messages)
        if events <= skip:
            continue
        yield messages[max(0, skip - start) :], FilePosition(events=events, bytes=read)


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

    The format follows the suffix: `.parquet` (see `factflow.transport.parquet`), `.gz` for
    gzip-compressed lines, else one envelope per line. `on_batch` receives each batch's outcome
    once it is committed; `on_progress` the bytes of the file read by then.
    """

    def committed(outcome: BatchOutcome, position: FilePosition) -> None:
        if on_batch is not None:
            on_batch(outcome)
        if on_progress is not None:
            on_progress(position.bytes)

    return replay(app, file_batches(Path(path), batch_size), warehouse, on_batch=committed)
