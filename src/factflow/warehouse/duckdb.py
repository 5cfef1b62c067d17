"""The embedded warehouse: a DuckDB file (or memory), written in columnar batches via Arrow."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence, Set
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from factflow._closing import ClosesOnExit
from factflow.errors import ConfigurationError, TerminalError, WarehouseUnavailable
from factflow.model.dead_letter import DeadLetter
from factflow.model.schema import ColumnType, DimensionSpec, FactSpec, Schema, Table
from factflow.model.types import MONEY_PRECISION, MONEY_SCALE
from factflow.pipeline.arrow import arrow_table, utc_timestamps
from factflow.pipeline.changes import ChangeSet, Row
from factflow.warehouse.base import (
    DEAD_LETTER_COLUMNS_QUERY,
    DEAD_LETTERS,
    EVENT_STATS,
    QueryResult,
    StoredDeadLetter,
    StoredRowsDiffer,
    added_dead_letter_columns,
    dead_letters_query,
    rebuild_table,
)
from factflow.warehouse.ddl import (
    SEED_LATE,
    SEED_STORED,
    Dialect,
    TypeNames,
    close_versions,
    create_table,
    current_rows,
    history_rows,
    internal_tables,
    member_keys_of,
    merged_current_rows,
    merged_history_rows,
    quote,
    rederived_keys,
    reused_id_conditions,
    seed_rows,
)
from factflow.warehouse.members import KnownMembers
from factflow.warehouse.views import comment_statements, comments_query, model_views

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "DIALECT",
    "KNOWN_MEMBERS",
    "WRITER_MEMORY_LIMIT",
    "DuckDBWarehouse",
]

log = logging.getLogger("factflow.warehouse")

#: DuckDB caches table data up to its memory limit (by default most of the machine's memory):
#: a modest cap keeps a long-running service's memory flat; data beyond it is read from disk.
#: Queries (read-only opens: KPIs, the dashboard) get the larger cache; a writer touches mostly
#: the recent row groups, and at 10^7 events a bootstrap's peak memory is ~600 MiB with 128 MB
#: against ~760 MiB with 256 MB, for the same time (5 % slower at 10^6).
DEFAULT_MEMORY_LIMIT = "256MB"
WRITER_MEMORY_LIMIT = "128MB"

#: The write-ahead log DuckDB lets grow before it checkpoints (writes the changed row groups into
#: the file). At its default of 16 MB a bootstrap batch checkpoints at every commit, rewriting
#: the fact tables' unfilled last row group each time: about 40 % of the writing thread's time
#: beyond 5·10^6 events. Checkpointing every few batches writes most rows once, at the same peak
#: memory (the data not yet checkpointed stays within `memory_limit`).
CHECKPOINT_THRESHOLD = "64MB"


#: The dimension keys a writer remembers as existing, per dimension (`KnownMembers`). DuckDB
#: checks the others in one set-based statement whose cost hardly depends on how many it is
#: given: at 10^7 banking events (about 200,000 members a dimension) a bound of 10,000 wrote in
#: 100.5 s at a peak of 454 MiB, one of 100,000 in 99.1 s at 482 MiB.
KNOWN_MEMBERS = 10_000


def writer_threads() -> int:
    """DuckDB's threads for a writer: one core left to the thread that decodes the next batch.

    A writer runs beside the decoding of the next batch, which keeps a core busy (Arrow parses
    on that one thread: `factflow.runtime.columnar`). On two cores DuckDB's second thread only
    competes with it, and a statement split between two threads waits for the one preempted.
    With one thread on this 2-core machine, a bootstrap of 10^5 events took 0.95 s against
    1.01 s (medians of eight interleaved pairs, every pair faster or equal), 10^6 events 3 to
    6 % less (three pairs), 10^7 the same.
    """
    return max(1, (os.cpu_count() or 1) - 1)


TYPES: TypeNames = {
    ColumnType.TEXT: "VARCHAR",
    ColumnType.INTEGER: "BIGINT",
    ColumnType.FLOAT: "DOUBLE",
    ColumnType.BOOLEAN: "BOOLEAN",
    ColumnType.MONEY: f"DECIMAL({MONEY_PRECISION}, {MONEY_SCALE})",
    ColumnType.DECIMAL: "DECIMAL(38, 10)",
    ColumnType.TIMESTAMP: "TIMESTAMP",
    ColumnType.DATE: "DATE",
}
# Key indexes live in memory in DuckDB: only the dimensions' current rows carry one.
DIALECT = Dialect("duckdb", TYPES, keys_everywhere=False)
_READ_ONLY = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def _last_value(column: str, window: str) -> str:
    return f"last_value({column} IGNORE NULLS) OVER ({window})"


def _latest(column: str) -> str:
    # An aggregate: under half the time of a window over the batch's many small partitions.
    return f"arg_max({column}, (occurred_at, event_id)) FILTER (WHERE {column} IS NOT NULL)"


class DuckDBWarehouse(ClosesOnExit):
    """A warehouse in one DuckDB file; `path=None` keeps it in memory (for tests).

    `memory_limit` caps DuckDB's memory (`duckdb:///kpi.duckdb?memory_limit=1GB` on the command
    line; by default 256 MB read-only, 128 MB for writing); queries that need more spill to disk
    next to the file.

    One process may open a file for writing at a time (DuckDB's rule); `read_only=True` opens it
    for queries while no writer holds it, with no access to other files and settings locked, so
    that `read` can run any SQL: DuckDB itself refuses whatever would change something.
    """

    dialect = DIALECT

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        read_only: bool = False,
        memory_limit: str | None = None,
    ) -> None:
        self.path = None if path is None or str(path) == ":memory:" else Path(path)
        self.read_only = read_only
        memory_limit = memory_limit or (DEFAULT_MEMORY_LIMIT if read_only else WRITER_MEMORY_LIMIT)
        config: dict[str, str | bool | int | float | list[str]] = {"memory_limit": memory_limit}
        if read_only:
            # No COPY TO, EXPORT, ATTACH, read_csv of other files or extensions, and no SET:
            # what a query run by `read` cannot change.
            config |= {"enable_external_access": False, "lock_configuration": True}
        else:
            config |= {"checkpoint_threshold": CHECKPOINT_THRESHOLD, "threads": writer_threads()}
        try:
            if self.path is not None and not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(
                ":memory:" if self.path is None else str(self.path),
                read_only=read_only,
                config=config,
            )
        except (duckdb.InvalidInputException, duckdb.ParserException) as error:
            raise ConfigurationError(f"DuckDB memory_limit {memory_limit!r}: {error}") from None
        except duckdb.IOException as error:
            raise ConfigurationError(
                f"cannot open the DuckDB warehouse {self.path}: {error}. A DuckDB file has one "
                "writer at a time: stop the process that holds it, or query a copy."
            ) from None
        self._schema: Schema | None = None
        self._lock = threading.Lock()  # a DuckDB connection is not safe to share across threads
        self._members = KnownMembers(KNOWN_MEMBERS)

    # -- Warehouse -------------------------------------------------------------------------

    def prepare(self, schema: Schema) -> None:
        with self._lock:
            try:
                # One transaction: committing each of the hundred-odd statements on its own
                # (a write to the log each) took a new warehouse's preparation from 22 to 66 ms.
                self._con.begin()
                self._create(schema)
                self._describe(schema, self._con.execute)
                self._con.commit()
            except duckdb.Error:
                _rollback(self._con)
                # Again, each statement on its own: a view or comment DuckDB refuses is logged
                # and left out, and the next `prepare` tries it again.
                self._create(schema)
                self._describe(schema, self._attempt)
            except BaseException:
                _rollback(self._con)
                raise
        self._schema = schema

    def refresh_statistics(self) -> None:
        """Nothing to do: DuckDB keeps its tables' statistics up to date as it writes."""

    def stage(self, changes: ChangeSet) -> None:
        """Build the Arrow tables of the batch now: the interpreter-bound part of a write."""
        schema = self._require_schema()
        tables = [(fact.table, changes.facts.get(fact.name)) for fact in schema.facts] + [
            (dim.changes, changes.dimension_changes.get(dim.name)) for dim in schema.dimensions
        ]
        for table, rows in tables:
            # A value Arrow refuses is left for `write`, which meets it again and isolates it.
            with contextlib.suppress(pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
                if rows:
                    changes.staged[table.name] = arrow_table(table, rows)

    def write(self, changes: ChangeSet) -> None:
        schema = self._require_schema()
        check = changes.check_stored_ids is not None
        with self._transaction():
            # Dimensions, then members only referred to: facts take their member keys from both.
            for dim in schema.dimensions:
                rows = changes.dimension_changes.get(dim.name)
                if rows:
                    self._record_changes(
                        dim, rows, changes.staged.get(dim.changes.name), check=check
                    )
            for dim in schema.dimensions:
                keys = changes.references.get(dim.name)
                if keys and (new := self._members.unknown(dim.name, keys)):
                    self._ensure_members(dim, new)
            for fact in schema.facts:
                rows = changes.facts.get(fact.name)
                if rows:
                    into = changes.rebuild_into.get(fact.name)
                    self._insert_first(
                        fact,
                        rows,
                        changes.staged.get(fact.table.name),
                        into=into,
                        check=check and into is None,
                    )
            if changes.dead_letters:
                self._insert_dead_letters(changes.dead_letters)
            if changes.replayed:
                self._settle_replayed(changes.replayed, changes.dead_letters)
            if changes.seen:
                self._count_events(changes.seen)
        for name, keys in changes.references.items():  # committed: they exist now
            self._members.add(name, keys)

    def query(self, sql: str, parameters: tuple[Any, ...] = ()) -> QueryResult:
        statements = duckdb.extract_statements(sql)
        if len(statements) != 1 or statements[0].type not in _READ_ONLY:
            raise ConfigurationError(
                "only one read-only statement (SELECT, WITH … SELECT, EXPLAIN) can be queried"
            )
        with self._lock:
            cursor = self._con.execute(sql, list(parameters))
            columns = tuple(d[0] for d in cursor.description or ())
            return QueryResult(columns, cursor.fetchall())

    def read(
        self, sql: str, parameters: Sequence[Any] = (), *, timeout: float | None = None
    ) -> pa.Table:
        """Run one statement on a warehouse opened read-only; its result as an Arrow table.

        DuckDB refuses whatever would change the file (the connection is read-only), touch
        other files or change a setting: nothing is checked here but the statement count.
        `$1`, `$2`, … (or `?`) mark `parameters`; `timeout` (seconds) interrupts a longer query.

        Raises:
            ConfigurationError: the warehouse is not read-only; not exactly one statement; one
                DuckDB refused or could not run (its message says why); the timeout ran out.
        """
        if not self.read_only:
            raise ConfigurationError(
                "read() runs any SQL, so only on a warehouse opened read-only (read_only=True)"
            )
        try:
            statements = duckdb.extract_statements(sql)
        except duckdb.Error as error:
            raise ConfigurationError(f"DuckDB cannot parse the statement: {error}") from None
        if len(statements) != 1:
            raise ConfigurationError(
                f"refused: give exactly one statement, got {len(statements)} (none of them ran)"
            )
        with self._lock:
            timer = threading.Timer(timeout, self._con.interrupt) if timeout else None
            try:
                if timer is not None:
                    timer.start()
                relation = self._con.sql(statements[0].query, params=list(parameters) or None)
                return pa.table({}) if relation is None else relation.to_arrow_table()
            except duckdb.InterruptException:
                raise ConfigurationError(
                    f"the query ran longer than {timeout:g} s and was stopped"
                ) from None
            except duckdb.Error as error:
                raise ConfigurationError(_refusal(error)) from None
            finally:
                if timer is not None:
                    timer.cancel()

    def dead_letters(
        self,
        limit: int | None = None,
        *,
        event_type: str | None = None,
        after_id: str | None = None,
        id_prefix: str | None = None,
    ) -> list[StoredDeadLetter]:
        sql, parameters = dead_letters_query(
            limit, event_type=event_type, after_id=after_id, id_prefix=id_prefix
        )
        with self._lock:
            try:
                rows = self._con.execute(sql, list(parameters)).fetchall()
            except duckdb.CatalogException:
                return []
            except duckdb.BinderException as error:
                raise ConfigurationError(
                    f"the dead letters of {self.path or 'this warehouse'} were kept by an earlier "
                    f"factflow ({error}); open it for writing once (factflow run, bootstrap or "
                    "dlq replay) to add what they lack"
                ) from None
        return [StoredDeadLetter.from_row(r) for r in rows]

    def begin_rebuild(self, fact: str) -> str:
        table = self._require_schema().fact(fact).stored
        shadow = rebuild_table(table.name)
        renamed = msgspec.structs.replace(table, name=shadow)
        with self._lock:
            self._con.execute(f"DROP TABLE IF EXISTS {quote(shadow)}")
            self._con.execute(create_table(renamed, TYPES, primary_key=False))
        return shadow

    def finish_rebuild(self, fact: str) -> int:
        table = self._require_schema().fact(fact).stored
        live, shadow = quote(table.name), quote(rebuild_table(table.name))
        same_key = " AND ".join(f"rebuilt.{quote(k)} = old.{quote(k)}" for k in table.key)
        # By name: a migrated table has the columns it gained last, the rebuilt one in model order.
        columns = ", ".join(map(quote, table.column_names))
        with self._transaction() as con:
            con.execute(
                f"INSERT INTO {shadow} ({columns}) SELECT {columns} FROM {live} AS old "
                f"WHERE NOT EXISTS (SELECT 1 FROM {shadow} AS rebuilt WHERE {same_key})"
            )
            con.execute(f"DELETE FROM {live}")
            con.execute(f"INSERT INTO {live} ({columns}) SELECT {columns} FROM {shadow}")
            con.execute(f"DROP TABLE {shadow}")
            (count,) = con.execute(f"SELECT count(*) FROM {live}").fetchone() or (0,)
        return int(count)

    def migrate(self, statements: Sequence[str]) -> None:
        """Create factflow's own tables if missing, then run `statements`, in one transaction.

        Raises:
            ConfigurationError: naming the statement DuckDB refused; nothing was changed.
        """
        statement = "BEGIN"
        self._members.forget()
        with self._lock:
            try:
                self._con.begin()
                for statement in [*internal_tables(TYPES, "BLOB"), *statements]:
                    self._con.execute(statement)
                statement = "COMMIT"
                self._con.commit()
            except duckdb.Error as error:
                _rollback(self._con)
                raise ConfigurationError(
                    f"DuckDB refused `{statement}`: {error}; nothing was changed"
                ) from None
            except BaseException:
                _rollback(self._con)
                raise

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def _create(self, schema: Schema) -> None:
        """The tables and sequences of `schema` and factflow's own, where missing."""
        for statement in [
            *internal_tables(TYPES, "BLOB"),
            *DIALECT.create_sequences(schema),
            *DIALECT.create_tables(schema).values(),
        ]:
            self._con.execute(statement)
        present = {row[0] for row in self._con.execute(DEAD_LETTER_COLUMNS_QUERY).fetchall()}
        for statement in added_dead_letter_columns(TYPES, present):
            self._con.execute(statement)

    def _describe(self, schema: Schema, run: Callable[[str], object]) -> None:
        """The views and comments of `factflow.warehouse.views`, each statement through `run`."""
        for view in model_views(schema):
            run(view.create)
        # Replacing a view drops its comments: they are read after.
        rows = self._con.execute(comments_query("duckdb")).fetchall()
        present = {(relation, column): text for relation, column, text in rows}
        for statement in comment_statements(schema, present):
            run(statement)

    def _attempt(self, statement: str) -> None:
        try:
            self._con.execute(statement)
        except duckdb.Error as error:
            log.warning("the DuckDB warehouse refused `%s`: %s", statement.split(" AS")[0], error)

    # -- set-based writes ------------------------------------------------------------------

    def _insert_first(
        self,
        fact: FactSpec,
        rows: Sequence[Row],
        staged: pa.Table | None = None,
        *,
        into: str | None = None,
        check: bool = False,
    ) -> None:
        """Insert the rows whose key is not stored yet (the earliest event of a key wins), with
        their member keys, into the fact's table or the table named `into` (of the same
        columns); with `check`, refuse rows stored under their key and envelope id with other
        values (`_refuse_reused_ids`)."""
        table = fact.table
        batch = staged if staged is not None else arrow_table(table, rows)
        keys = _distinct_keys(batch, table.key)
        members = member_keys_of(fact, self._require_schema(), "batch_rows")
        with self._registered("batch_rows", batch):
            [(inserted,)] = self._con.execute(
                *_first_wins(table, batch, into or table.name, keys, fact.stored, members)
            ).fetchall()
            if check:
                self._refuse_reused_ids(table, batch, int(inserted), keys)

    def _record_changes(
        self,
        dim: DimensionSpec,
        rows: Sequence[Row],
        staged: pa.Table | None = None,
        *,
        check: bool = False,
    ) -> None:
        batch = staged if staged is not None else arrow_table(dim.changes, rows)
        keys = _distinct_keys(batch, dim.changes.key)
        sql, bounds = _first_wins(dim.changes, batch, dim.changes.name, keys)
        with self._registered("batch_rows", batch):
            # Only the changes stored now: a duplicate of a stored one changes no derived row,
            # so when all are duplicates (a redelivery) there is nothing to derive.
            new = self._con.sql(f"{sql} RETURNING *", params=bounds).to_arrow_table()
            if check:
                self._refuse_reused_ids(dim.changes, batch, new.num_rows, keys)
        if new.num_rows:
            with self._registered("new_changes", new):
                self._derive(dim)

    def _refuse_reused_ids(self, table: Table, batch: pa.Table, inserted: int, keys: int) -> None:
        """Raise `StoredRowsDiffer` if a row of `batch_rows` (`batch`, registered, just inserted
        first-wins into `table`) shares its key and envelope id with a stored row of other
        values. Looked for only when the insert skipped one of the batch's `keys` distinct
        keys (it inserted fewer rows): a batch of new keys pays nothing more."""
        if inserted >= keys:
            return
        if self._con.execute(*_reused_ids(table, batch)).fetchall():
            raise StoredRowsDiffer(table.name)

    def _derive(self, dim: DimensionSpec) -> None:
        """Bring the current rows (and versions) of the keys of `new_changes` up to date.

        Re-deriving a key from all its stored changes reads the change table, whose size grows
        with the stream, for every batch; so a key whose new changes all come after its stored
        ones (the usual case) is derived from its stored current row and the new changes alone,
        and only the late keys from all their changes (`seed_rows` tells which is which).
        """
        # Taken before any row changes: the current rows as they were before this batch.
        seeds = self._con.sql(seed_rows(dim, "new_changes")).to_arrow_table()
        late = _count(seeds[SEED_LATE])
        with self._registered("seeds", seeds):
            if dim.history is not None:
                self._derive_history(dim, dim.history, seeds, late)
            key = quote(dim.key)
            columns = ", ".join(map(quote, dim.current.column_names))
            updates = ", ".join(
                f"{quote(c)} = excluded.{quote(c)}"
                for c in (*dim.attributes, "inferred", "updated_at")
            )
            self._con.execute(
                f"INSERT INTO {quote(dim.current.name)} ({columns}) "
                f"{merged_current_rows(dim, 'new_changes', 'seeds', _latest)} "
                f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
            )
            if late:
                self._con.execute(
                    f"INSERT INTO {quote(dim.current.name)} ({columns}) "
                    f"{current_rows(dim, rederived_keys(dim, 'seeds', None), _last_value)} "
                    f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
                )

    def _derive_history(
        self, dim: DimensionSpec, history: Table, seeds: pa.Table, late: int
    ) -> None:
        """The SCD type 2 part of `_derive`: close each open version at the key's first new
        change and add the versions of the new changes; re-derive the late keys' versions."""
        columns = ", ".join(map(quote, history.column_names))
        closed = self._con.sql(close_versions(dim, history.name, "seeds")).to_arrow_table()
        with self._registered("closed_versions", closed):
            added = merged_history_rows(dim, "new_changes", "seeds", "closed_versions", _last_value)
            self._con.execute(f"INSERT INTO {quote(history.name)} ({columns}) {added}")
            # Keys with stored changes but no open version to close: a history begun after
            # them (the dimension became SCD type 2), derived in full like the late ones.
            stored = pc.and_(pc.invert(seeds[SEED_LATE]), pc.is_valid(seeds[SEED_STORED]))
            if late or closed.num_rows < _count(stored):
                rederived = rederived_keys(dim, "seeds", "closed_versions")
                self._con.execute(
                    f"DELETE FROM {quote(history.name)} "
                    f"WHERE {quote(dim.key)} IN (SELECT key FROM {rederived})"
                )
                self._con.execute(
                    f"INSERT INTO {quote(history.name)} ({columns}) "
                    f"{history_rows(dim, rederived, _last_value)}"
                )

    def _ensure_members(self, dim: DimensionSpec, keys: Set[str]) -> None:
        with self._registered(
            "referenced_keys", pa.table({"key": pa.array(list(keys), pa.string())})
        ):
            # The members already stored are set aside by one join before the insert: checking
            # each key against the key index instead (ON CONFLICT alone) took twice as long
            # (a batch of 10^7 events: 42,000 users referenced, 20 ms against 12).
            current, key = quote(dim.current.name), quote(dim.key)
            self._con.execute(
                f"INSERT INTO {current} ({key}, inferred) SELECT key, true FROM referenced_keys "
                f"WHERE NOT EXISTS (SELECT 1 FROM {current} AS stored "
                f"WHERE stored.{key} = referenced_keys.key) ON CONFLICT DO NOTHING"
            )

    def _insert_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        now = datetime.now(UTC)
        batch = pa.table(
            {
                "id": [d.id for d in letters],
                "event_type": pa.array([d.event_type for d in letters], pa.string()),
                "event_id": pa.array([d.event_id for d in letters], pa.string()),
                "reason": [d.reason for d in letters],
                "raw": pa.array([d.raw for d in letters], pa.binary()),
                "received_at": utc_timestamps([now] * len(letters)),
            }
        )
        with self._registered("batch_dead_letters", batch):
            self._con.execute(
                f"INSERT INTO {DEAD_LETTERS} BY NAME SELECT * FROM batch_dead_letters "
                "QUALIFY row_number() OVER (PARTITION BY id) = 1 ON CONFLICT DO NOTHING"
            )

    def _settle_replayed(self, replayed: set[str], letters: Sequence[DeadLetter]) -> None:
        """Remove the replayed dead letters that now succeeded; give the others (already stored,
        or just inserted) their new reason, one more replay and its time."""
        again: dict[str, DeadLetter] = {}
        for letter in letters:
            if letter.id in replayed:
                again.setdefault(letter.id, letter)
        gone = pa.table({"id": pa.array(sorted(replayed - again.keys()), pa.string())})
        with self._registered("replayed_gone", gone):
            self._con.execute(
                f"DELETE FROM {DEAD_LETTERS} WHERE id IN (SELECT id FROM replayed_gone)"
            )
        if not again:
            return
        kept = list(again.values())
        batch = pa.table(
            {
                "id": [d.id for d in kept],
                "event_type": pa.array([d.event_type for d in kept], pa.string()),
                "event_id": pa.array([d.event_id for d in kept], pa.string()),
                "reason": [d.reason for d in kept],
                "replayed_at": utc_timestamps([datetime.now(UTC)] * len(kept)),
            }
        )
        with self._registered("replayed_again", batch):
            self._con.execute(
                f"UPDATE {DEAD_LETTERS} AS stored SET reason = again.reason, "
                "event_type = coalesce(again.event_type, stored.event_type), "
                "event_id = coalesce(again.event_id, stored.event_id), "
                "replays = stored.replays + 1, replayed_at = again.replayed_at "
                "FROM replayed_again AS again WHERE stored.id = again.id"
            )

    def _count_events(self, seen: dict[str, tuple[int, datetime]]) -> None:
        types = list(seen)
        batch = pa.table(
            {
                "event_type": types,
                "events": pa.array([seen[t][0] for t in types], pa.int64()),
                "last_occurred_at": utc_timestamps([seen[t][1] for t in types]),
            }
        )
        with self._registered("batch_seen", batch):
            self._con.execute(
                f"INSERT INTO {EVENT_STATS} SELECT * FROM batch_seen ON CONFLICT (event_type) "
                "DO UPDATE SET events = events + excluded.events, "
                "last_occurred_at = greatest(last_occurred_at, excluded.last_occurred_at)"
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction on the connection: committed, or rolled back with the error told
        apart for the runtime (retry or isolate)."""
        with self._lock:
            con = self._con
            try:
                con.begin()
                yield con
                con.commit()
            except BaseException as error:
                _rollback(con)
                classified = _classify(error)
                if classified is error:
                    raise
                raise classified from error

    def _registered(self, name: str, table: pa.Table) -> _Registered:
        return _Registered(self._con, name, table)

    def _require_schema(self) -> Schema:
        if self._schema is None:
            raise ConfigurationError("call prepare(schema) before writing to the warehouse")
        return self._schema


class _Registered:
    """Expose an Arrow table to SQL under `name` for the duration of a `with` block."""

    def __init__(self, con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
        self._con, self._name, self._table = con, name, table

    def __enter__(self) -> None:
        self._con.register(self._name, self._table)

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._con.unregister(self._name)
        except duckdb.Error:
            # A statement failed and aborted the transaction, which refuses everything until
            # rolled back (the name goes with it): the statement's error is the one to tell,
            # e.g. running out of memory, which says what to raise.
            if exc_info[0] is None:
                raise


def _distinct_keys(batch: pa.Table, key: Sequence[str]) -> int:
    """How many distinct keys the rows of `batch` have (counted by Arrow, in C++)."""
    # A composite key is distinct in every row if one of its columns is, as a change's envelope
    # id usually is: counting that column spares grouping (and importing Arrow's grouping
    # engine, Acero, which took 20 ms of a short bootstrap's first write).
    for column in reversed(key):
        distinct = int(pc.count_distinct(batch[column], mode="all").as_py())
        if len(key) == 1 or distinct == batch.num_rows:
            return distinct
    return int(batch.group_by(list(key)).aggregate([]).num_rows)


def _first_wins(
    table: Table,
    batch: pa.Table,
    target: str,
    keys: int,
    stored_as: Table | None = None,
    members: tuple[str, str] = ("", ""),
) -> tuple[str, list[Any]]:
    """The insert of the rows of `batch_rows` (`batch`, registered, with `keys` distinct keys)
    whose key is not stored in `target` yet, the earliest event of a key winning; and its
    parameters. A fact's rows go in with their member keys: `stored_as` is its stored table,
    `members` the select list and joins of `member_keys_of`."""
    key_list = ", ".join(f"batch_rows.{quote(k)}" for k in table.key)
    stored = " AND ".join(f"stored.{quote(k)} = batch_rows.{quote(k)}" for k in table.key)
    # By name: a migrated table has the columns it gained last.
    columns = ", ".join(map(quote, (stored_as or table).column_names))
    values, joins = members
    # The stored keys between the batch's least and greatest: a constant range DuckDB checks
    # against each row group's min/max, so with keys that grow over time (ids, counters,
    # time-ordered ids) a batch reads the few recent row groups, not the whole table.
    lowest, highest = _key_range(batch, table.key[0])
    return (
        f"INSERT INTO {quote(target)} ({columns}) SELECT batch_rows.*{values} "
        f"FROM batch_rows{joins} "
        f"WHERE NOT EXISTS (SELECT 1 FROM {quote(target)} AS stored WHERE {stored} "
        f"AND stored.{quote(table.key[0])} BETWEEN ? AND ?) "
        # Only a batch with a key twice has a winner to pick (a fifth of the insert's time).
        + (
            ""
            if keys == batch.num_rows
            else f"QUALIFY row_number() OVER (PARTITION BY {key_list} "
            "ORDER BY batch_rows.occurred_at, batch_rows.event_id) = 1"
        ),
        [lowest, highest],
    )


def _reused_ids(table: Table, batch: pa.Table) -> tuple[str, list[Any]]:
    """The query finding a row of `batch_rows` (`batch`, registered) stored in `table` under its
    key and envelope id with other values (a row, or none), and its parameters. The rows the
    batch just inserted match themselves, with the same values."""
    same, differ = reused_id_conditions(table, "batch_rows")
    lowest, highest = _key_range(batch, table.key[0])
    return (
        f"SELECT 1 FROM batch_rows JOIN {quote(table.name)} AS stored ON {same} "
        f"AND stored.{quote(table.key[0])} BETWEEN ? AND ? WHERE {differ} LIMIT 1",
        [lowest, highest],
    )


def _count(flags: pa.ChunkedArray) -> int:
    """How many of `flags` are true."""
    return int(pc.sum(flags).as_py() or 0)


def _key_range(batch: pa.Table, column: str) -> tuple[Any, Any]:
    """The least and greatest value of `column` in `batch` (computed by Arrow, in C++)."""
    bounds = pc.min_max(batch.column(column))
    return bounds["min"].as_py(), bounds["max"].as_py()


def _refusal(error: duckdb.Error) -> str:
    """What DuckDB said about a statement `read` ran, in the user's terms."""
    if isinstance(error, duckdb.InvalidInputException) and "read-only mode" in str(error):
        return f"DuckDB refused the statement: the warehouse is read-only here ({error})"
    if isinstance(error, duckdb.PermissionException):
        return f"DuckDB refused the statement: a query cannot touch other files ({error})"
    return f"DuckDB could not run the statement: {error}"


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    # Nothing begun, or the connection gone: either way nothing was written.
    with contextlib.suppress(duckdb.Error):
        con.rollback()


def _classify(error: BaseException) -> BaseException:
    """Tell the runtime whether retrying the batch can help."""
    if isinstance(error, duckdb.OutOfMemoryException):
        # The cap is this process's own: the same batch would run out again, forever.
        return ConfigurationError(
            "the DuckDB warehouse ran out of the memory it may use writing a batch: raise its "
            "memory_limit (e.g. duckdb:///kpi.duckdb?memory_limit=1GB) or write smaller "
            f"batches (bootstrap --batch-size); DuckDB said: {str(error).splitlines()[0]}"
        )
    if isinstance(error, duckdb.IOException) or (
        # A commit whose write-ahead log could not be written (a full disk): nothing of the
        # batch was kept, and the same connection commits again once there is room.
        isinstance(error, duckdb.TransactionException) and "Failed to commit" in str(error)
    ):
        return WarehouseUnavailable(f"the DuckDB warehouse cannot write now: {error}")
    if isinstance(
        error,
        pa.ArrowInvalid
        | pa.ArrowTypeError
        | duckdb.ConversionException
        | duckdb.ConstraintException
        | duckdb.InvalidInputException
        | OverflowError
        | TypeError,
    ):
        return TerminalError(f"the warehouse refused a value of this batch: {error}")
    return error
