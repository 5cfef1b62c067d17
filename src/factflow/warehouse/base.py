"""The seam between factflow and where the model lives.

A warehouse creates the tables of a `Schema`, applies a `ChangeSet` in one transaction, and
answers read-only queries. Semantics every backend keeps (and the shared contract tests check):

* facts are inserted first-wins by natural key;
* dimension changes are kept by event time, and the current and historical views are derived
  from them, so any arrival order gives the in-order result;
* a referenced but unknown dimension key becomes an inferred member;
* a rebuild refills a fact table beside it (`begin_rebuild`, then change sets with
  `rebuild_into`) and swaps the contents in one transaction (`finish_rebuild`), keeping the rows
  only the old table has: readers never see it empty or half full;
* a change set with `check_stored_ids` is refused whole, with `StoredRowsDiffer`, if one of its
  rows shares its key and envelope id with a stored row of other values (checked only when
  first-wins skipped a row, so that batches of new keys pay nothing);
* dead letters are written in the same transaction as the batch they came in, and a replay
  removes those that now succeed (and gives the rest their new reason) in the same
  transaction as the rows it produced;
* a migration (`factflow.warehouse.migrations`) runs all its statements in one transaction,
  or none of them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from factflow.errors import ConfigurationError, FactflowError
from factflow.model.schema import ColumnType, Schema
from factflow.pipeline.changes import ChangeSet

if TYPE_CHECKING:
    import pyarrow as pa

    from factflow.warehouse.ddl import Dialect

__all__ = [
    "DEAD_LETTERS",
    "DEAD_LETTER_COLUMNS_QUERY",
    "EVENT_STATS",
    "QueryResult",
    "StoredDeadLetter",
    "StoredRowsDiffer",
    "Warehouse",
    "added_dead_letter_columns",
    "dead_letters_count_query",
    "dead_letters_query",
    "event_type_condition",
    "rebuild_table",
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
    #: How often `factflow dlq replay` re-ran it (and it failed again), and when it last did.
    replays: int = 0
    replayed_at: datetime | None = None

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> StoredDeadLetter:
        """From a row of `dead_letters_query`."""
        id_, event_type, event_id, reason, raw, received_at, replays, replayed_at = row
        return cls(id_, event_type, event_id, reason, bytes(raw), received_at, replays, replayed_at)


class StoredRowsDiffer(FactflowError):
    """`Warehouse.write` refused a change set with `check_stored_ids`: a row of `table` shares
    its key and envelope id with a stored row of other values. Nothing was written.

    Neither transient nor terminal: the change set's `check_stored_ids` finds the envelopes
    concerned and sets them aside as dead letters, then the rest is written again unchecked
    (`factflow.runtime.writer.write_retrying` does this).
    """

    def __init__(self, table: str) -> None:
        super().__init__(
            f"a row of this batch is already stored in {table} under its key and envelope id "
            "with other values; check the batch's envelope ids (ChangeSet.check_stored_ids) "
            "and write it again"
        )
        self.table = table


def event_type_condition(pattern: str) -> tuple[str, str]:
    """SQL with one `?` selecting the dead letters of an event type, or of a domain as `card.*`.

    Raises:
        ConfigurationError: a pattern that is neither (`*`, `card*`, `*.created`).
    """
    domain, dot, rest = pattern.partition(".")
    if rest == "*" and domain and "*" not in domain:
        return "starts_with(event_type, ?)", domain + dot
    if not domain or "*" in pattern:
        raise ConfigurationError(
            f"event type {pattern!r}: give a type (card.transaction_settled) or a domain (card.*)"
        )
    return "event_type = ?", pattern


def _where(
    event_type: str | None, after_id: str | None, id_prefix: str | None
) -> tuple[str, tuple[Any, ...]]:
    conditions: list[str] = []
    parameters: list[Any] = []
    if event_type is not None:
        condition, value = event_type_condition(event_type)
        conditions.append(condition)
        parameters.append(value)
    if after_id is not None:
        conditions.append("id > ?")
        parameters.append(after_id)
    if id_prefix is not None:
        conditions.append("starts_with(id, ?)")
        parameters.append(id_prefix)
    return (" WHERE " + " AND ".join(conditions) if conditions else ""), tuple(parameters)


def dead_letters_query(
    limit: int | None,
    *,
    event_type: str | None = None,
    after_id: str | None = None,
    id_prefix: str | None = None,
) -> tuple[str, tuple[Any, ...]]:
    """SQL (with `?` parameters) and its parameters reading dead letters as `from_row` does.

    Oldest first, or with `after_id` in id order from just after it: pages that stay put while
    the letters of earlier pages are removed (`after_id=""` starts at the first). `event_type`
    is a type or a domain as `card.*`; `id_prefix` keeps the ids starting with it.
    """
    where, parameters = _where(event_type, after_id, id_prefix)
    return (
        "SELECT id, event_type, event_id, reason, raw, received_at, replays, replayed_at "
        f"FROM {DEAD_LETTERS}{where} ORDER BY "
        + ("id" if after_id is not None else "received_at, id")
        + (f" LIMIT {int(limit)}" if limit is not None else ""),
        parameters,
    )


def dead_letters_count_query(event_type: str | None = None) -> tuple[str, tuple[Any, ...]]:
    """SQL (with `?` parameters) and its parameters counting the dead letters of `event_type`."""
    where, parameters = _where(event_type, None, None)
    return f"SELECT count(*) FROM {DEAD_LETTERS}{where}", parameters


#: The names of the dead letters' columns, to find those a warehouse made earlier lacks.
DEAD_LETTER_COLUMNS_QUERY = (
    "SELECT column_name FROM information_schema.columns "
    f"WHERE table_schema = current_schema() AND table_name = '{DEAD_LETTERS}'"
)


def added_dead_letter_columns(
    types: Mapping[ColumnType, str], present: Collection[str]
) -> list[str]:
    """Statements adding the columns the dead letters gained after their table was first made,
    of those not `present` (from `DEAD_LETTER_COLUMNS_QUERY`): `prepare` upgrades in place."""
    added = {
        "replays": f"{types[ColumnType.INTEGER]} NOT NULL DEFAULT 0",
        "replayed_at": types[ColumnType.TIMESTAMP],
    }
    return [
        f"ALTER TABLE {DEAD_LETTERS} ADD COLUMN {name} {definition}"
        for name, definition in added.items()
        if name not in present
    ]


def rebuild_table(fact_table: str) -> str:
    """The table a rebuild of `fact_table` fills before the swap."""
    return f"{fact_table}__rebuild"


class Warehouse(Protocol):
    @property
    def dialect(self) -> Dialect:
        """How this backend spells the model's tables (for `factflow schema` and migrations)."""
        ...

    def prepare(self, schema: Schema) -> None:
        """Create whatever tables of `schema` (and factflow's own) do not exist yet."""
        ...

    def stage(self, changes: ChangeSet) -> None:
        """Convert the rows for writing ahead of `write`, possibly on another thread (so that a
        bootstrap prepares the next batch while the previous one is written); may do nothing."""
        ...

    def write(self, changes: ChangeSet) -> None:
        """Apply every change in one transaction; raise `TransientError` if worth retrying,
        `StoredRowsDiffer` (with `changes.check_stored_ids` set) if a row reuses a stored key and
        envelope id with other values."""
        ...

    def refresh_statistics(self) -> None:
        """After a bulk load: let the query planner see the tables' new sizes and values (the
        first KPI after a bootstrap into PostgreSQL is several times faster for it)."""
        ...

    def query(self, sql: str, parameters: tuple[Any, ...] = ()) -> QueryResult:
        """Run one read-only statement; anything that could write is refused."""
        ...

    def read(
        self, sql: str, parameters: Sequence[Any] = (), *, timeout: float | None = None
    ) -> pa.Table:
        """Run any one statement of a user's on a warehouse opened read-only, as an Arrow
        table with exact decimals (`factflow query`, `factflow.insight`): the database itself
        refuses whatever would change something. `$1`, `$2`, … mark `parameters`.

        Raises:
            ConfigurationError: not opened read-only; a statement the database refused or
                could not run, saying why; `timeout` (seconds) ran out.
        """
        ...

    def dead_letters(
        self,
        limit: int | None = None,
        *,
        event_type: str | None = None,
        after_id: str | None = None,
        id_prefix: str | None = None,
    ) -> list[StoredDeadLetter]:
        """The dead letters, oldest first; see `dead_letters_query` for the arguments."""
        ...

    def begin_rebuild(self, fact: str) -> str:
        """Make an empty table beside fact table `fact` (dropping one a failed rebuild left)
        and return its name, for change sets to fill through `rebuild_into`."""
        ...

    def finish_rebuild(self, fact: str) -> int:
        """In one transaction: add to the rebuilt table the rows of `fact` whose key it lacks
        (written meanwhile, or by events the rebuild's source does not have), replace the
        contents of `fact` with it, drop it. Returns the rows `fact` holds now."""
        ...

    def migrate(self, statements: Sequence[str]) -> None:
        """In one transaction: create factflow's own tables if missing, then run `statements`
        (schema changes, from `factflow.warehouse.migrations`); all of them, or none.

        Raises:
            ConfigurationError: naming the statement the warehouse refused.
        """
        ...

    def close(self) -> None: ...
