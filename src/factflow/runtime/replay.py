"""Dead letters back into the stream: re-run them through the app's current pipelines after a fix.

Stored dead letters are read in pages by id and each page is processed exactly like a batch of
live messages (decoded, routed, run through every pipeline of its type). What the page became
is written in one warehouse transaction together with the fate of its letters: those that now
succeed are removed, the others are kept with their new reason and one more replay counted
(`received_at` stays). A crash at any point leaves every letter either still stored or turned
into rows, and replaying again changes nothing that already succeeded.

```python
outcome = replay_dead_letters(app, warehouse, "card.*")
print(outcome.stored, outcome.still_dead)
```
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from factflow.errors import TerminalError
from factflow.model.dead_letter import DeadLetter
from factflow.model.decoding import DEFAULT_MAX_MESSAGE_SIZE
from factflow.pipeline.app import App
from factflow.pipeline.changes import ChangeSet
from factflow.runtime.processor import BatchProcessor
from factflow.runtime.writer import Backoff, write_retrying
from factflow.warehouse.base import (
    StoredDeadLetter,
    Warehouse,
    dead_letters_count_query,
    event_type_condition,
)

__all__ = ["DEFAULT_BATCH_SIZE", "ReplayOutcome", "replay_dead_letters"]

log = logging.getLogger("factflow.runtime")

#: Dead letters read (with their raw bytes) and written per transaction.
DEFAULT_BATCH_SIZE = 1000


class ReplayOutcome(msgspec.Struct):
    """What a replay did: letters re-run, how many are now rows and how many failed again."""

    #: Dead letters re-run through the pipelines.
    replayed: int = 0
    #: Of those, the ones that now succeeded: their rows are written, the letters removed.
    stored: int = 0
    #: Of those, the ones that failed again: still dead letters, with their new reason.
    still_dead: int = 0
    #: Facts and dimension changes staged by the letters that succeeded (first-wins keeps any
    #: already stored as they were).
    rows: int = 0
    #: Writes retried because the warehouse was unavailable.
    retries: int = 0

    def add(self, other: ReplayOutcome) -> None:
        self.replayed += other.replayed
        self.stored += other.stored
        self.still_dead += other.still_dead
        self.rows += other.rows
        self.retries += other.retries


def replay_dead_letters(
    app: App,
    warehouse: Warehouse,
    event_type: str | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[ReplayOutcome, int], None] | None = None,
    backoff: Backoff | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> ReplayOutcome:
    """Re-run the stored dead letters (of `event_type`: a type, or a domain as `card.*`) through
    every pipeline of `app`, `batch_size` letters per transaction; return what became of them.

    Letters without a known type (not JSON, no `type` field) are only replayed without
    `event_type`. `on_progress(done, total)` is called after each page with the running outcome
    and the number of letters there were to replay when it began. A warehouse that is
    unavailable is retried with `backoff`, as the consumer does. `max_message_size` is the
    largest message decoded (a letter set aside for its size replays once it is raised).

    Raises:
        ConfigurationError: `event_type` is neither a type nor a domain pattern.
    """
    if event_type is not None:
        event_type_condition(event_type)  # a malformed pattern fails before anything is touched
    warehouse.prepare(app.schema)
    processor = BatchProcessor(app, max_message_size=max_message_size, warehouse=warehouse)
    replayer = _Replayer(processor, warehouse, backoff or Backoff())
    total = _count(warehouse, event_type) if on_progress is not None else 0
    done = ReplayOutcome()
    after = ""  # every id sorts after it
    while page := warehouse.dead_letters(batch_size, event_type=event_type, after_id=after):
        # Letters that fail again keep their id, so the next page starts after this one.
        after = page[-1].id
        for letters in _apart(page):
            done.add(replayer.replay(letters))
        if on_progress is not None:
            on_progress(done, total)
    return done


def _count(warehouse: Warehouse, event_type: str | None) -> int:
    [(count,)] = warehouse.query(*dead_letters_count_query(event_type)).rows
    return int(count)


class _Replayer:
    """Processes letters like live messages and writes them with their fate, isolating any the
    warehouse refuses (as `BatchWriter` does for live batches)."""

    def __init__(self, processor: BatchProcessor, warehouse: Warehouse, backoff: Backoff) -> None:
        self.processor = processor
        self.warehouse = warehouse
        self.backoff = backoff

    def replay(self, letters: Sequence[StoredDeadLetter]) -> ReplayOutcome:
        changes = self.processor.process([letter.raw for letter in letters])
        # Each message was counted when it arrived from the transport; a replay is no arrival.
        changes.seen.clear()
        changes.dead_letters = _one_per_id(changes.dead_letters)
        changes.replayed = {letter.id for letter in letters}
        try:
            retries = self._write_retrying(changes)
        except TerminalError as error:
            if len(letters) == 1:
                return self._refused(letters[0], error)
            middle = len(letters) // 2
            outcome = self.replay(letters[:middle])
            outcome.add(self.replay(letters[middle:]))
            return outcome
        again = changes.replayed.intersection(d.id for d in changes.dead_letters)
        return ReplayOutcome(
            replayed=len(letters),
            stored=len(letters) - len(again),
            still_dead=len(again),
            rows=len(changes) - len(changes.dead_letters),
            retries=retries,
        )

    def _refused(self, letter: StoredDeadLetter, error: TerminalError) -> ReplayOutcome:
        """The warehouse refuses what `letter` became: keep it, with that as its reason."""
        alone = ChangeSet()
        alone.dead_letters.append(
            DeadLetter(
                letter.id,
                letter.raw,
                f"warehouse refused it: {error}",
                letter.event_type,
                letter.event_id,
            )
        )
        alone.replayed = {letter.id}
        return ReplayOutcome(replayed=1, still_dead=1, retries=self._write_retrying(alone))

    def _write_retrying(self, changes: ChangeSet) -> int:
        return write_retrying(self.warehouse, changes, self.backoff)


class _Head(msgspec.Struct):
    id: Any = None


_head = msgspec.json.Decoder(_Head)


def _envelope_id(raw: bytes) -> str | None:
    try:
        head = _head.decode(raw)
    except msgspec.DecodeError:
        return None  # it will not decode as an envelope either: a dead letter of its own bytes
    return head.id if isinstance(head.id, str) else None


def _apart(letters: Sequence[StoredDeadLetter]) -> list[list[StoredDeadLetter]]:
    """`letters` in batches that hold no two messages of one envelope id.

    The processor knows an event's raw bytes by its envelope id: were two different messages of
    one id in a batch, a failure of one would be kept under the other's bytes, and the first
    removed as if it had succeeded.
    """
    batches: list[tuple[set[str], list[StoredDeadLetter]]] = []
    for letter in letters:
        key = _envelope_id(letter.raw)
        ids, batch = next((b for b in batches if key not in b[0]), (set(), []))
        if not batch:
            batches.append((ids, batch))
        if key is not None:
            ids.add(key)
        batch.append(letter)
    return [batch for _, batch in batches]


def _one_per_id(letters: list[DeadLetter]) -> list[DeadLetter]:
    """One letter per message: one that several pipelines failed on keeps every reason."""
    reasons: dict[str, list[str]] = {}
    first: dict[str, DeadLetter] = {}
    for letter in letters:
        first.setdefault(letter.id, letter)
        known = reasons.setdefault(letter.id, [])
        if letter.reason not in known:
            known.append(letter.reason)
    return [
        msgspec.structs.replace(letter, reason="; ".join(reasons[id_]))
        if len(reasons[id_]) > 1
        else letter
        for id_, letter in first.items()
    ]
