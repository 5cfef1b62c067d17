"""Turn a batch of raw messages into one `ChangeSet`: decode, route by type, run the pipelines."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

from factflow.errors import TransientError
from factflow.model.dead_letter import DeadLetter
from factflow.model.decoding import DEFAULT_MAX_MESSAGE_SIZE, EventDecoder
from factflow.model.envelope import Envelope
from factflow.pipeline.app import App
from factflow.pipeline.builder import Pipeline
from factflow.pipeline.changes import ChangeSet
from factflow.pipeline.work import Work
from factflow.runtime.conflicts import conflicts_in_batch, drop_envelopes, stored_conflicts
from factflow.warehouse.base import Warehouse

__all__ = ["BatchProcessor"]

log = logging.getLogger("factflow.runtime")


class BatchProcessor:
    """Runs the pipelines of one consumer group (or of the whole app) on batches of messages.

    Bad messages become dead letters; an event a pipeline fails on becomes a dead letter with the
    failure as reason, found by splitting the failing slice until the culprits are isolated.

    Args:
        app: the app whose pipelines run.
        group: the consumer group whose pipelines run (None: all of them).
        max_message_size: the largest message decoded, in bytes; a larger one becomes a dead
            letter without being parsed.
        warehouse: the warehouse the batches go to, to find envelopes whose id it already
            holds with other values (`factflow.runtime.conflicts`): the change sets ask the
            write to check (`ChangeSet.check_stored_ids`), so that only a batch with such an
            envelope pays for the lookup. None checks nothing against the warehouse (an
            envelope that reuses an id of the same batch is always found).
    """

    def __init__(
        self,
        app: App,
        group: str | None = None,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        warehouse: Warehouse | None = None,
    ) -> None:
        self.routes = app.pipelines_by_type(group)
        self.schema = app.schema
        self.warehouse = warehouse
        self.decoder = EventDecoder(app.events, app.upcasters, max_message_size=max_message_size)
        self.event_types = frozenset(self.routes)
        #: What the group subscribes to: the types it handles and, as `<domain>.*`, every other
        #: type of those domains, so that an unknown type becomes a dead letter, never unseen.
        self.subscription = self.event_types | {
            f"{t.partition('.')[0]}.*" for t in self.event_types
        }

    def process(self, messages: Sequence[bytes]) -> ChangeSet:
        envelopes, raws, dead = self.decoder.decode_batch(messages)
        changes = ChangeSet()
        changes.dead_letters.extend(dead)
        raw_of = _RawOf(envelopes, raws)
        by_type: dict[str, list[Envelope[Any]]] = {}
        for envelope in envelopes:
            by_type.setdefault(envelope.type, []).append(envelope)
        for event_type, events in by_type.items():
            pipelines = self.routes.get(event_type)
            if pipelines is None:
                continue  # handled by another consumer group of the app
            changes.note_seen(event_type, len(events), max(e.occurred_at for e in events))
            for pipeline in pipelines:
                self._run_isolating(pipeline, events, raw_of, changes)
        self._set_aside_conflicts(envelopes, changes, raw_of)
        return changes

    def _set_aside_conflicts(
        self, envelopes: list[Envelope[Any]], changes: ChangeSet, raw_of: _RawOf
    ) -> None:
        """Envelopes reusing an id with other contents become dead letters: first those that
        differ from what the warehouse holds under their id, then, of the rest, those that
        differ from an earlier envelope of the batch (`factflow.runtime.conflicts`).

        The write checks against the warehouse (`ChangeSet.check_stored_ids`): it compares only
        the rows whose key it finds stored, and only a batch with a differing one pays for the
        lookup here. A batch that reuses an id within itself is looked up now, as which of its
        versions to keep depends on what is stored.
        """
        routed = [e for e in envelopes if e.type in self.routes]
        refused = conflicts_in_batch(routed)
        if self.warehouse is not None:
            changes.check_stored_ids = partial(self._set_aside_stored, raw_of)
            if refused:
                try:
                    stored = stored_conflicts(self.schema, changes, self.warehouse)
                except TransientError as error:
                    # The write waits for the warehouse, and checks the stored ids then.
                    log.warning("cannot check envelope ids against the warehouse: %s", error)
                else:
                    gone = {id(envelope) for envelope, _ in stored}
                    refused = stored + conflicts_in_batch([e for e in routed if id(e) not in gone])
        _set_aside(refused, raw_of, changes)

    def _set_aside_stored(self, raw_of: _RawOf, changes: ChangeSet) -> None:
        """The `check_stored_ids` of a batch: its envelopes whose rows the warehouse holds under
        their key and id with other values become dead letters; their rows are dropped."""
        if self.warehouse is None:
            return
        _set_aside(stored_conflicts(self.schema, changes, self.warehouse), raw_of, changes)

    def _run_isolating(
        self,
        pipeline: Pipeline[Any],
        events: list[Envelope[Any]],
        raw_of: _RawOf,
        changes: ChangeSet,
    ) -> None:
        work = Work(events, pipeline=pipeline.name, raw_of=raw_of)
        try:
            pipeline.run(work)
        except Exception as error:  # one bad event must not take the batch down with it
            if len(events) == 1:
                envelope = events[0]
                changes.dead_letters.append(
                    DeadLetter.of(
                        raw_of(envelope) or b"",
                        f"{pipeline.name}: {type(error).__name__}: {error}",
                        envelope.type,
                        envelope.id,
                    )
                )
                return
            middle = len(events) // 2
            self._run_isolating(pipeline, events[:middle], raw_of, changes)
            self._run_isolating(pipeline, events[middle:], raw_of, changes)
            return
        changes.merge(work.changes)


def _set_aside(
    refused: list[tuple[Envelope[Any], str]], raw_of: _RawOf, changes: ChangeSet
) -> None:
    """Make each refused envelope a dead letter with its reason, its rows out of `changes`."""
    if not refused:
        return
    drop_envelopes(changes, (envelope for envelope, _ in refused))
    for envelope, reason in refused:
        changes.dead_letters.append(
            DeadLetter.of(raw_of(envelope) or b"", reason, envelope.type, envelope.id)
        )


class _RawOf:
    """The raw bytes each envelope of a batch was decoded from, for dead letters.

    By the envelope object, not its id: two different messages may carry one id. Only looked
    up when an event fails, so the index is built then, not for every batch.
    """

    def __init__(self, envelopes: list[Envelope[Any]], raws: list[bytes]) -> None:
        self._envelopes, self._raws = envelopes, raws
        self._index: dict[int, bytes] | None = None

    def __call__(self, envelope: Envelope[Any]) -> bytes | None:
        if self._index is None:
            self._index = dict(zip(map(id, self._envelopes), self._raws, strict=True))
        return self._index.get(id(envelope))
