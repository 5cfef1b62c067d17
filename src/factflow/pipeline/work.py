"""The batch a pipeline works on: its events, what the map step made of them, staged changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec

from factflow.model.dead_letter import DeadLetter
from factflow.model.declare import Dimension, Event, Fact
from factflow.model.envelope import Envelope
from factflow.model.types import encode_hook
from factflow.pipeline.changes import ChangeSet

__all__ = ["Mapped", "Work"]

P = TypeVar("P", bound=Event)

#: A row the map step produced, with the envelope it came from.
Mapped = tuple[Envelope[Any], Fact | Dimension]

_encoder = msgspec.json.Encoder(decimal_format="string", enc_hook=encode_hook)


class Work(Generic[P]):
    """One pipeline's slice of a batch, passed through every step in turn.

    Steps read `events` and `mapped`, and stage warehouse writes in `changes`. A step refuses
    one event with `reject`; the event becomes a dead letter and the others go on.
    """

    __slots__ = ("_raw_of", "changes", "events", "mapped", "pipeline", "stored")

    def __init__(
        self,
        events: list[Envelope[P]],
        *,
        pipeline: str = "pipeline",
        raw_of: Callable[[Envelope[Any]], bytes | None] | None = None,
        changes: ChangeSet | None = None,
    ) -> None:
        self.events = events
        self.pipeline = pipeline
        self.mapped: list[Mapped] = []
        self.changes = changes if changes is not None else ChangeSet()
        #: Row classes some step has stored; any other mapped row would be lost.
        self.stored: set[type[Any]] = set()
        self._raw_of = raw_of

    def reject(self, envelope: Envelope[Any], reason: str) -> None:
        """Set one event aside as a dead letter, and drop what was mapped from it."""
        raw = (self._raw_of and self._raw_of(envelope)) or _encoder.encode(envelope)
        self.changes.dead_letters.append(
            DeadLetter.of(raw, f"{self.pipeline}: {reason}", envelope.type, envelope.id)
        )
        self.events = [e for e in self.events if e is not envelope]
        self.mapped = [m for m in self.mapped if m[0] is not envelope]
