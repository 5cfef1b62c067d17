"""The seam between factflow and where the model lives.

A warehouse creates the tables of a `Schema`, applies a `ChangeSet` in one transaction, and
answers read-only queries. Semantics every backend keeps (and the shared contract tests check):

* facts are inserted first-wins by natural key;
* dimension changes are kept by event time, and the current and historical views are derived
  from them, so any arrival order gives the in-order result;
* a referenced but unknown dimension key becomes an inferred member;
* dead letters are written in the same transaction as the batch they came in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import msgspec

from factflow.model.schema import Schema
from factflow.pipeline.changes import ChangeSet

__all__ = [
    "DEAD_LETTERS",
    "EVENT_STATS",
    "QueryResult",
    "StoredDeadLetter",
    "Warehouse",
    "dead_letters_query",
]

DEAD_LETTERS = "factflow_dead_letters"
EVENT_STATS = "factflow_event_stats"


class QueryResult(msgspec.Struct, frozen=True):
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class StoredDeadLetter(msgspec.Struct, frozen=True):
    id: str
    event_type: str | None
    event_id: str | None
    reason: str
    raw: bytes
    received_at: datetime

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> StoredDeadLetter:
        """From a row of `dead_letters_query`."""
        id_, event_type, event_id, reason, raw, received_at = row
        return cls(id_, event_type, event_id, reason, bytes(raw), received_at)


def dead_letters_query(limit: int | None) -> str:
    """The dead letters, oldest first, as `StoredDeadLetter.from_row` reads them."""
    return (
        f"SELECT id, event_type, event_id, reason, raw, received_at FROM {DEAD_LETTERS} "
        "ORDER BY received_at, id" + (f" LIMIT {int(limit)}" if limit is not None else "")
    )


class Warehouse(Protocol):
    def prepare(self, schema: Schema) -> None:
        """Create whatever tables of `schema` (and factflow's own) do not exist yet."""
        ...

    def stage(self, changes: ChangeSet) -> None:
        """Convert the rows for writing ahead of `write`, possibly on another thread (so that a
        bootstrap prepares the next batch while the previous one is written); may do nothing."""
        ...

    def write(self, changes: ChangeSet) -> None:
        """Apply every change in one transaction; raise `TransientError` if worth retrying."""
        ...

    def query(self, sql: str, parameters: tuple[Any, ...] = ()) -> QueryResult:
        """Run one read-only statement; anything that could write is refused."""
        ...

    def dead_letters(self, limit: int | None = None) -> list[StoredDeadLetter]:
        """The dead letters, oldest first."""
        ...

    def close(self) -> None: ...
