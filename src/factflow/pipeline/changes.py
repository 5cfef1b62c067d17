"""What one batch will change in the warehouse, staged by the pipelines and written at once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from factflow.model.dead_letter import DeadLetter

__all__ = ["ChangeSet", "Row"]

#: One table row as a tuple in the table's column order (see `factflow.model.schema`).
Row = tuple[Any, ...]


class ChangeSet:
    """Facts to insert, dimension changes to record, references to ensure, dead letters to keep.

    A warehouse applies a whole change set in one transaction. Facts and dimension changes are
    rows of their tables: the declared fields in order, then `event_id` and `occurred_at`.

    A replay of stored dead letters names them in `replayed`: the warehouse removes each one the
    change set does not keep again as a dead letter (it now succeeded), and gives each one it
    keeps its new reason, in the same transaction as the rows the replay produced.
    """

    __slots__ = (
        "dead_letters",
        "dimension_changes",
        "facts",
        "references",
        "replayed",
        "seen",
        "staged",
    )

    def __init__(self) -> None:
        self.facts: dict[str, list[Row]] = {}
        self.dimension_changes: dict[str, list[Row]] = {}
        self.references: dict[str, set[str]] = {}
        self.dead_letters: list[DeadLetter] = []
        #: Ids of stored dead letters this change set re-ran (see the class docstring).
        self.replayed: set[str] = set()
        #: Per event type: how many envelopes and the latest `occurred_at`, for status reports.
        self.seen: dict[str, tuple[int, datetime]] = {}
        #: Table → the rows already converted by `Warehouse.stage` into the backend's format.
        self.staged: dict[str, Any] = {}

    def merge(self, other: ChangeSet) -> None:
        for table, rows in other.facts.items():
            self.facts.setdefault(table, []).extend(rows)
        for table, rows in other.dimension_changes.items():
            self.dimension_changes.setdefault(table, []).extend(rows)
        for table, keys in other.references.items():
            self.references.setdefault(table, set()).update(keys)
        self.dead_letters.extend(other.dead_letters)
        self.replayed.update(other.replayed)
        for type_, (count, latest) in other.seen.items():
            self.note_seen(type_, count, latest)

    def note_seen(self, event_type: str, count: int, latest: datetime) -> None:
        known = self.seen.get(event_type)
        if known is None:
            self.seen[event_type] = (count, latest)
        else:
            self.seen[event_type] = (known[0] + count, max(known[1], latest))

    def __len__(self) -> int:
        return (
            sum(map(len, self.facts.values()))
            + sum(map(len, self.dimension_changes.values()))
            + len(self.dead_letters)
        )

    def is_empty(self) -> bool:
        return not (
            self.facts
            or self.dimension_changes
            or self.references
            or self.dead_letters
            or self.replayed
            or self.seen
        )
