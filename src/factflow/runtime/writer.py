"""Write batches to the warehouse: retry what may pass, isolate what never will."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import msgspec

from factflow.errors import TerminalError, TransientError
from factflow.model.dead_letter import DeadLetter
from factflow.pipeline.changes import ChangeSet
from factflow.runtime.processor import BatchProcessor
from factflow.warehouse.base import Warehouse

__all__ = ["Backoff", "BatchOutcome", "BatchWriter", "Stopped"]

log = logging.getLogger("factflow.runtime")


class Backoff(msgspec.Struct, frozen=True):
    """Waits between retries of a transient failure: `first`, doubling up to `longest` seconds."""

    first: float = 0.2
    longest: float = 30.0


class BatchOutcome(msgspec.Struct):
    messages: int = 0
    rows: int = 0
    dead_letters: int = 0

    def add(self, other: BatchOutcome) -> None:
        self.messages += other.messages
        self.rows += other.rows
        self.dead_letters += other.dead_letters


class Stopped(Exception):
    """Stopping was requested while a batch could not be written; it was not acknowledged."""


class BatchWriter:
    """Processes a batch of messages and writes it in one warehouse transaction.

    A `TransientError` is retried with backoff for as long as it lasts (nothing is acknowledged
    meanwhile). A `TerminalError` from the warehouse splits the batch until the message that
    causes it is alone; that message becomes a dead letter and the rest is written.
    """

    def __init__(
        self,
        processor: BatchProcessor,
        warehouse: Warehouse,
        *,
        backoff: Backoff | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.processor = processor
        self.warehouse = warehouse
        self.backoff = backoff or Backoff()
        self.should_stop = should_stop

    def write(self, messages: Sequence[bytes]) -> BatchOutcome:
        changes = self.processor.process(messages)
        try:
            self._write_retrying(changes)
        except TerminalError as error:
            if len(messages) == 1:
                letter = DeadLetter.of(bytes(messages[0]), f"warehouse refused it: {error}")
                alone = ChangeSet()
                alone.dead_letters.append(letter)
                self._write_retrying(alone)
                return BatchOutcome(messages=1, dead_letters=1)
            middle = len(messages) // 2
            outcome = self.write(messages[:middle])
            outcome.add(self.write(messages[middle:]))
            return outcome
        return BatchOutcome(
            messages=len(messages),
            rows=len(changes) - len(changes.dead_letters),
            dead_letters=len(changes.dead_letters),
        )

    def _write_retrying(self, changes: ChangeSet) -> None:
        wait = self.backoff.first
        while True:
            try:
                self.warehouse.write(changes)
                return
            except TransientError as error:
                if self.should_stop():
                    raise Stopped("stopped while the warehouse was unavailable") from error
                log.warning("warehouse unavailable, retrying in %.1fs: %s", wait, error)
                time.sleep(wait)
                wait = min(wait * 2, self.backoff.longest)
