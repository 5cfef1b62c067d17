"""Write batches to the warehouse: retry what may pass, isolate what never will."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import msgspec

from factflow.errors import TerminalError, TransientError
from factflow.model.dead_letter import DeadLetter
from factflow.pipeline.changes import ChangeSet
from factflow.runtime.processor import BatchProcessor
from factflow.warehouse.base import StoredRowsDiffer, Warehouse

__all__ = [
    "Backoff",
    "BatchOutcome",
    "BatchWriter",
    "Stopped",
    "wait_while_unavailable",
    "write_retrying",
]

log = logging.getLogger("factflow.runtime")


class Backoff(msgspec.Struct, frozen=True):
    """Waits between retries of a transient failure: `first`, doubling up to `longest` seconds."""

    first: float = 0.2
    longest: float = 30.0

    def waits(self) -> Callable[[], float]:
        """A fresh sequence of waits: each call returns the next one."""
        current = self.first / 2

        def next_wait() -> float:
            nonlocal current
            current = min(current * 2, self.longest)
            return current

        return next_wait


def wait_while_unavailable(
    action: Callable[[], object], backoff: Backoff, stop: threading.Event
) -> bool:
    """Run `action`, retrying it with backoff while it raises `TransientError`: a service
    started while its database restarts waits, as it does for a batch, instead of exiting.
    True once it succeeded; False if `stop` was set first."""
    next_wait = backoff.waits()
    while True:
        try:
            action()
            return True
        except TransientError as error:
            wait = next_wait()
            log.warning("warehouse unavailable, retrying in %.1fs: %s", wait, error)
            if stop.wait(wait):
                return False


class BatchOutcome(msgspec.Struct):
    """What batches did: messages taken, rows staged, dead letters kept, events per type."""

    messages: int = 0
    rows: int = 0
    dead_letters: int = 0
    retries: int = 0
    #: Event type → (envelopes processed, latest `occurred_at`).
    seen: dict[str, tuple[int, datetime]] = msgspec.field(default_factory=dict)

    def add(self, other: BatchOutcome) -> None:
        self.messages += other.messages
        self.rows += other.rows
        self.dead_letters += other.dead_letters
        self.retries += other.retries
        for event_type, (count, latest) in other.seen.items():
            known = self.seen.get(event_type)
            self.seen[event_type] = (
                (count, latest) if known is None else (known[0] + count, max(known[1], latest))
            )


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
        stop: threading.Event | None = None,
    ) -> None:
        self.processor = processor
        self.warehouse = warehouse
        self.backoff = backoff or Backoff()
        self.stop = stop or threading.Event()

    def write(self, messages: Sequence[bytes]) -> BatchOutcome:
        """Process `messages` and write them in one transaction."""
        return self.write_processed(messages, self.processor.process(messages))

    def write_processed(self, messages: Sequence[bytes], changes: ChangeSet) -> BatchOutcome:
        """Write `changes`, already processed from `messages` (kept to isolate a bad one)."""
        try:
            retries = self._write_retrying(changes)
        except TerminalError as error:
            if len(messages) == 1:
                letter = DeadLetter.of(bytes(messages[0]), f"warehouse refused it: {error}")
                alone = ChangeSet()
                alone.dead_letters.append(letter)
                return BatchOutcome(messages=1, dead_letters=1, retries=self._write_retrying(alone))
            middle = len(messages) // 2
            outcome = self.write(messages[:middle])
            outcome.add(self.write(messages[middle:]))
            return outcome
        return BatchOutcome(
            messages=len(messages),
            rows=len(changes) - len(changes.dead_letters),
            dead_letters=len(changes.dead_letters),
            retries=retries,
            seen=changes.seen,
        )

    def _write_retrying(self, changes: ChangeSet) -> int:
        return write_retrying(self.warehouse, changes, self.backoff, self.stop)


def write_retrying(
    warehouse: Warehouse,
    changes: ChangeSet,
    backoff: Backoff,
    stop: threading.Event | None = None,
) -> int:
    """Write, retrying transient failures with backoff until success (or `stop`, raising
    `Stopped`); returns the retries. Envelopes the warehouse finds reusing a stored id with
    other values are set aside as dead letters first (`ChangeSet.check_stored_ids`)."""
    next_wait = backoff.waits()
    retries = 0
    while True:
        try:
            _write_checked(warehouse, changes)
            return retries
        except TransientError as error:
            if stop is not None and stop.is_set():
                raise Stopped("stopped while the warehouse was unavailable") from error
            wait = next_wait()
            log.warning("warehouse unavailable, retrying in %.1fs: %s", wait, error)
            retries += 1
            if stop is None:
                time.sleep(wait)
            elif stop.wait(wait):
                raise Stopped("stopped while the warehouse was unavailable") from error


def _write_checked(warehouse: Warehouse, changes: ChangeSet) -> None:
    """Write `changes`; if the warehouse refuses them for a row stored under its key and
    envelope id with other values, set the envelopes concerned aside and write the rest.

    Only a batch with such a row (a publisher's mistake) pays for the lookup that finds them;
    a transient failure of it leaves the check in place for the next attempt.
    """
    try:
        warehouse.write(changes)
    except StoredRowsDiffer:
        check = changes.check_stored_ids
        if check is None:
            raise
        check(changes)
        changes.check_stored_ids = None
        warehouse.write(changes)
