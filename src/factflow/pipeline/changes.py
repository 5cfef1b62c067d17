"""What one batch will change in the warehouse, staged by the pipelines and written at once."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any, overload

import msgspec

from factflow.model.dead_letter import DeadLetter

__all__ = ["ChangeSet", "Row", "RowBlock"]

#: One table row as a tuple in the table's column order (see `factflow.model.schema`).
Row = tuple[Any, ...]

_astuple = msgspec.structs.astuple


class RowBlock(Sequence[Row]):
    """Rows of one table as the mapped records and the envelopes they came from.

    A sequence of row tuples (the declared fields, then `event_id` and `occurred_at`) for
    whoever reads it row by row, and `column` for whoever reads it column by column (Arrow):
    staging a row is two appends, instead of building a tuple per row on the hottest loop.
    """

    __slots__ = ("envelopes", "fields", "records")

    def __init__(self, fields: Sequence[str]) -> None:
        self.fields = tuple(fields)
        self.records: list[Any] = []
        self.envelopes: list[Any] = []

    def append(self, record: Any, envelope: Any) -> None:
        self.records.append(record)
        self.envelopes.append(envelope)

    def extend(self, other: RowBlock) -> None:
        self.records.extend(other.records)
        self.envelopes.extend(other.envelopes)

    def column(self, index: int) -> list[Any]:
        """The values of column `index` (in the table's column order), in row order."""
        if index < len(self.fields):
            return list(map(attrgetter(self.fields[index]), self.records))
        name = ("id", "occurred_at")[index - len(self.fields)]
        return list(map(attrgetter(name), self.envelopes))

    def __len__(self) -> int:
        return len(self.records)

    @overload
    def __getitem__(self, index: int) -> Row: ...

    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...

    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        if isinstance(index, slice):
            return [self._row(i) for i in range(*index.indices(len(self)))]
        return self._row(index)

    def __iter__(self) -> Iterator[Row]:
        for record, envelope in zip(self.records, self.envelopes, strict=True):
            yield _astuple(record) + (envelope.id, envelope.occurred_at)  # noqa: RUF005

    def _row(self, index: int) -> Row:
        envelope = self.envelopes[index]
        return _astuple(self.records[index]) + (envelope.id, envelope.occurred_at)  # noqa: RUF005


class ChangeSet:
    """Facts to insert, dimension changes to record, references to ensure, dead letters to keep.

    A warehouse applies a whole change set in one transaction. Facts and dimension changes are
    rows of their tables: the declared fields in order, then `event_id` and `occurred_at`.

    A replay of stored dead letters names them in `replayed`: the warehouse removes each one the
    change set does not keep again as a dead letter (it now succeeded), and gives each one it
    keeps its new reason, in the same transaction as the rows the replay produced.

    A processor that leaves checking envelope ids against the warehouse to the write sets
    `check_stored_ids`: the warehouse then refuses the change set with `StoredRowsDiffer` if a
    row shares its key and envelope id with a stored row of other values (an id reused with
    other contents), and whoever writes calls it (it sets those envelopes aside as dead
    letters), clears it and writes again: only such a batch pays for looking them up.
    """

    __slots__ = (
        "check_stored_ids",
        "dead_letters",
        "dimension_changes",
        "facts",
        "rebuild_into",
        "references",
        "replayed",
        "seen",
        "staged",
    )

    def __init__(self) -> None:
        self.facts: dict[str, Sequence[Row]] = {}
        self.dimension_changes: dict[str, Sequence[Row]] = {}
        self.references: dict[str, set[str]] = {}
        self.dead_letters: list[DeadLetter] = []
        #: Ids of stored dead letters this change set re-ran (see the class docstring).
        self.replayed: set[str] = set()
        #: Fact name → the table its rows go to instead: a rebuild's table being refilled.
        self.rebuild_into: dict[str, str] = {}
        #: Per event type: how many envelopes and the latest `occurred_at`, for status reports.
        self.seen: dict[str, tuple[int, datetime]] = {}
        #: Table → the rows already converted by `Warehouse.stage` into the backend's format.
        self.staged: dict[str, Any] = {}
        #: Sets aside the envelopes whose rows are stored with other values (see the class
        #: docstring); None: nothing to check, the warehouse writes first-wins as it is.
        self.check_stored_ids: Callable[[ChangeSet], None] | None = None

    def merge(self, other: ChangeSet) -> None:
        _merge_rows(self.facts, other.facts)
        _merge_rows(self.dimension_changes, other.dimension_changes)
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


def _merge_rows(into: dict[str, Sequence[Row]], rows_by_table: dict[str, Sequence[Row]]) -> None:
    for table, rows in rows_by_table.items():
        mine = into.get(table)
        if mine is None:
            into[table] = rows
        elif isinstance(mine, RowBlock) and isinstance(rows, RowBlock):
            mine.extend(rows)
        else:
            into[table] = [*mine, *rows]
