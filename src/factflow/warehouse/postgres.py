"""PostgreSQL as the warehouse: the model in one schema, each batch COPYed in one transaction.

Semantics are exactly those of the embedded DuckDB warehouse (the shared contract tests run on
both); what differs is how they are reached:

* the model lives in one schema (`kpi` unless told otherwise, also as ``?schema=`` in the URL),
  and every connection reads it through its `search_path`, so KPI SQL needs no schema names;
* a batch is COPYed into temporary staging tables and applied with set-based statements;
* "last non-null value over a window" is the aggregate `last_non_null`, created in the schema,
  as PostgreSQL has no `IGNORE NULLS`;
* several writers may share the schema (one consumer group, several processes): dimension rows
  are derived under a per-dimension transaction lock, so the last writer sees every change;
* a lost connection surfaces as `WarehouseUnavailable` and is reopened on next use.

Requires the `postgres` extra: ``pip install 'factflow[postgres]'``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections.abc import Callable, Sequence, Set
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import msgspec
import pyarrow as pa
import pyarrow.csv as pa_csv

from factflow import _faults
from factflow._closing import ClosesOnExit
from factflow._urls import pop_query_parameter, redact, redact_text
from factflow.errors import ConfigurationError, TerminalError, WarehouseUnavailable
from factflow.model.dead_letter import DeadLetter
from factflow.model.schema import ColumnType, DimensionSpec, FactSpec, Schema, Table
from factflow.model.types import MONEY_PRECISION, MONEY_SCALE
from factflow.pipeline.arrow import ArrowRows
from factflow.pipeline.changes import ChangeSet, Row
from factflow.warehouse._statements import read_only_statement
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
    Dialect,
    TypeNames,
    create_table,
    current_rows,
    history_rows,
    internal_tables,
    member_keys_of,
    quote,
    reused_id_conditions,
)
from factflow.warehouse.members import KnownMembers
from factflow.warehouse.views import comment_statements, comments_query, model_views

try:
    import psycopg
    import psycopg.conninfo
    import psycopg.errors
    import psycopg.types.string

    from factflow.warehouse._postgres_arrow import TEXT_TYPES, to_arrow
except ImportError:  # pragma: no cover - depends on the installed extras
    raise ConfigurationError(
        "the PostgreSQL warehouse needs psycopg: pip install 'factflow[postgres]'"
    ) from None

__all__ = ["DEFAULT_SCHEMA", "DIALECT", "TYPES", "PostgresWarehouse"]

DEFAULT_SCHEMA = "kpi"
DECIMAL_SCALE = 10
TYPES: TypeNames = {
    ColumnType.TEXT: "text",
    ColumnType.INTEGER: "bigint",
    ColumnType.FLOAT: "double precision",
    ColumnType.BOOLEAN: "boolean",
    ColumnType.MONEY: f"numeric({MONEY_PRECISION}, {MONEY_SCALE})",
    ColumnType.DECIMAL: f"numeric(38, {DECIMAL_SCALE})",
    ColumnType.TIMESTAMP: "timestamp",  # UTC, without a zone, as in DuckDB
    ColumnType.DATE: "date",
}
DIALECT = Dialect("postgresql", TYPES)
# Staging keeps what arrived: numbers unrounded (so too many decimal places can be refused rather
# than rounded away) and instants with their offset (converted to UTC on the way in).
_STAGING: TypeNames = {
    **TYPES,
    ColumnType.MONEY: "numeric",
    ColumnType.DECIMAL: "numeric",
    ColumnType.TIMESTAMP: "timestamptz",
}
_SCALES = {ColumnType.MONEY: MONEY_SCALE, ColumnType.DECIMAL: DECIMAL_SCALE}
# PostgreSQL has no `last_value(x IGNORE NULLS)`; this aggregate, used over a window, is it.
_LAST_NON_NULL = (
    "CREATE FUNCTION last_non_null_step(state anyelement, value anyelement) "
    "RETURNS anyelement LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT coalesce(value, state)'",
    "CREATE AGGREGATE last_non_null(anyelement) "
    "(SFUNC = last_non_null_step, STYPE = anyelement, PARALLEL = SAFE)",
)
_DEAD_LETTER_COLUMNS = ("id", "event_type", "event_id", "reason", "raw")
_DEAD_LETTER_STAGE = "factflow_stage_dead_letters"
_TOUCHED = "factflow_touched"
_READER = "factflow_read"  # the cursor `read` declares
_VIEW_COLUMNS_CHANGED = "42P16"  # CREATE OR REPLACE VIEW cannot drop, rename or retype columns

log = logging.getLogger("factflow.warehouse")


P = ParamSpec("P")
T = TypeVar("T")
Cursor = psycopg.Cursor[Any]


def _last_value(column: str, window: str) -> str:
    return f"last_non_null({column}) OVER ({window})"


class PostgresWarehouse(ClosesOnExit):
    """A warehouse in one schema of a PostgreSQL database.

    Args:
        url: ``postgresql://user:password@host:port/database``, with any libpq parameter in the
            query string; ``?schema=name`` chooses the schema (factflow's, not libpq's).
        schema: the schema holding the model (default ``kpi``); give it here or in the URL.
        read_only: refuse `prepare` and `write`, and open every transaction read-only.

    Raises:
        ConfigurationError: a malformed URL, or two different schemas asked for.

    The connection opens on first use and reopens after it was lost. Several processes may write
    to one schema at once. Example::

        with PostgresWarehouse("postgresql://kpi@db/analytics?schema=bank") as warehouse:
            warehouse.prepare(app.schema)
            warehouse.write(changes)
    """

    dialect = DIALECT

    def __init__(self, url: str, *, schema: str | None = None, read_only: bool = False) -> None:
        self._url = url
        conninfo, in_url = pop_query_parameter(url, "schema")
        if schema is not None and in_url is not None and schema != in_url:
            raise ConfigurationError(
                f"{redact(url)} names the schema {in_url!r} but {schema!r} was asked for; "
                "give the schema once"
            )
        self.schema = schema or in_url or DEFAULT_SCHEMA
        if len(self.schema.encode()) > 63:
            raise ConfigurationError(
                f"schema name {self.schema!r} is longer than PostgreSQL's 63 bytes"
            )
        try:
            options = psycopg.conninfo.conninfo_to_dict(conninfo)
        except psycopg.ProgrammingError as error:
            raise ConfigurationError(
                f"cannot read the PostgreSQL URL {redact(url)}: {redact_text(str(error), url)}"
            ) from None
        options.setdefault("application_name", "factflow")
        options.setdefault("connect_timeout", 10)  # a host that never answers is unavailable
        self._conninfo = psycopg.conninfo.make_conninfo("", **options)
        self.read_only = read_only
        self._lock = threading.Lock()  # one transaction at a time on the shared connection
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = False
        self._model: Schema | None = None
        self._staged: Schema | None = None  # the model the connection's staging tables fit
        self._stages: dict[str, str] = {}  # table name → its staging table
        self._members = KnownMembers()

    # -- Warehouse -------------------------------------------------------------------------

    def prepare(self, schema: Schema) -> None:
        """Create the schema, factflow's tables and functions, and the model's missing tables.

        Safe to call from several processes at once; existing tables are left as they are.
        """
        self._refuse_if_read_only("prepare")
        name = quote(self.schema)
        statements = [
            *internal_tables(TYPES, "bytea"),
            *DIALECT.create_sequences(schema),
            *DIALECT.create_tables(schema).values(),
        ]
        with self._lock:
            self._run("prepare", self._prepare, name, statements)
            self._run("prepare the views and comments of", self._describe, schema)
        self._model = schema

    def stage(self, changes: ChangeSet) -> None:
        """Nothing to prepare: rows go to COPY as they are."""

    def write(self, changes: ChangeSet) -> None:
        """Apply `changes` in one transaction.

        Raises:
            WarehouseUnavailable: the connection was lost, or PostgreSQL refused the transaction
                for a passing reason (deadlock, serialization, shutdown); retry the batch.
            TerminalError: a value PostgreSQL cannot store (too many decimal places, out of
                range, text with NUL): split the batch to find the message that carries it.
            StoredRowsDiffer: with `changes.check_stored_ids`, a row is stored under its key
                and envelope id with other values.
        """
        self._refuse_if_read_only("write")
        schema = self._require_schema()
        with self._lock:
            self._run("write", self._write, schema, changes)
            for name, keys in changes.references.items():  # committed: they exist now
                self._members.add(name, keys)

    def refresh_statistics(self) -> None:
        """ANALYZE the model's tables, as after any bulk load: autovacuum would, but only a
        minute or more later, and until then the planner takes a table of a million rows for a
        few thousand (serial plans, sorts spilling to disk)."""
        self._refuse_if_read_only("refresh_statistics")
        schema = self._require_schema()
        with self._lock:
            self._run("analyze", _analyze, [table.name for table in schema.tables()])

    def query(self, sql: str, parameters: tuple[Any, ...] = ()) -> QueryResult:
        """Run one read-only statement (SELECT, WITH … SELECT, VALUES, EXPLAIN).

        `?` marks a parameter, as in DuckDB. Anything else is refused with `ConfigurationError`,
        and the statement runs in a READ ONLY transaction, so a data-modifying `WITH` is refused
        by PostgreSQL too.
        """
        statement = read_only_statement(sql, placeholders=bool(parameters))
        with self._lock:
            return self._read(self._query, statement, parameters or None)

    def read(
        self, sql: str, parameters: Sequence[Any] = (), *, timeout: float | None = None
    ) -> pa.Table:
        """Run one query on a warehouse opened read-only; its result as an Arrow table.

        PostgreSQL itself refuses whatever would change something: the session and the
        transaction are read-only and rolled back, and the statement runs as a cursor
        (`DECLARE … CURSOR FOR`, which takes only a query: SELECT, WITH … SELECT, VALUES,
        TABLE; no COPY, DO, CALL or SET) over the extended protocol (one statement). Nothing is
        checked here. `$1`, `$2`, … mark `parameters`; `timeout` (seconds) is the statement's
        `statement_timeout`. Advisory locks the query took are released after it.

        Raises:
            ConfigurationError: the warehouse is not read-only; a statement PostgreSQL refused
                or could not run (its message says why); the timeout ran out.
            WarehouseUnavailable: the connection was lost, and a new one too.
        """
        if not self.read_only:
            raise ConfigurationError(
                "read() runs any SQL, so only on a warehouse opened read-only (read_only=True)"
            )
        with self._lock:
            try:
                return self._read(self._read_table, sql, tuple(parameters), timeout)
            finally:
                self._release_advisory_locks()

    def dead_letters(
        self,
        limit: int | None = None,
        *,
        event_type: str | None = None,
        after_id: str | None = None,
        id_prefix: str | None = None,
    ) -> list[StoredDeadLetter]:
        """The dead letters, oldest first; none before `prepare` created their table."""
        sql, parameters = dead_letters_query(
            limit, event_type=event_type, after_id=after_id, id_prefix=id_prefix
        )
        with self._lock:
            try:
                result = self._read(self._query, sql.replace("?", "%s"), parameters or None)
            except psycopg.errors.UndefinedTable:
                return []
            except psycopg.errors.UndefinedColumn as error:
                raise ConfigurationError(
                    f"the dead letters in schema {self.schema!r} were kept by an earlier factflow "
                    f"({error}); open it for writing once (factflow run, bootstrap or dlq "
                    "replay) to add what they lack"
                ) from None
        return [StoredDeadLetter.from_row(r) for r in result.rows]

    def begin_rebuild(self, fact: str) -> str:
        self._refuse_if_read_only("begin_rebuild")
        table = self._require_schema().fact(fact).stored
        shadow = rebuild_table(table.name)
        statement = create_table(msgspec.structs.replace(table, name=shadow), TYPES)
        with self._lock:
            self._run("begin a rebuild of", self._execute, f"DROP TABLE IF EXISTS {quote(shadow)}")
            self._run("begin a rebuild of", self._execute, statement)
        return shadow

    def finish_rebuild(self, fact: str) -> int:
        self._refuse_if_read_only("finish_rebuild")
        table = self._require_schema().fact(fact).stored
        with self._lock:
            return self._run("finish a rebuild of", self._swap_rebuilt, table)

    def migrate(self, statements: Sequence[str]) -> None:
        """Create the schema and factflow's own tables and functions if missing, then run
        `statements`, in one transaction (PostgreSQL's DDL is transactional).

        Raises:
            ConfigurationError: naming the statement PostgreSQL refused; nothing was changed.
            WarehouseUnavailable: the connection was lost; nothing was changed.
        """
        self._refuse_if_read_only("migrate")
        with self._lock:
            self._members.forget()
            self._run("migrate", self._migrate, list(statements))

    def drop_schema(self) -> None:
        """Drop the schema and everything in it (for tests and throwaway environments)."""
        self._refuse_if_read_only("drop_schema")
        with self._lock:
            self._members.forget()
            self._run("drop the schema of", self._drop_schema)
        self._model = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- transactions ----------------------------------------------------------------------

    def _run(
        self,
        action: str,
        work: Callable[Concatenate[Cursor, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`work(cursor, …)` in one transaction, committed; errors classified for the runtime."""
        try:
            connection = self._connection()
            with connection.cursor() as cursor:
                self._begin(cursor, read_only=False)
                result = work(cursor, *args, **kwargs)
            if action == "write":
                _faults.reached("write-before-commit")
            connection.commit()
            return result
        except BaseException as error:
            self._staged = None  # if this transaction made the staging tables, they are gone
            self._rollback()
            classified = _classify(error, self._url, action)
            if classified is error:
                raise
            raise classified from error

    def _read(
        self, work: Callable[Concatenate[Cursor, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`work(cursor, *args)` in a READ ONLY transaction, tried again once on a fresh connection
        if the one in hand turns out to be lost (reads are safe to repeat)."""
        for attempt in (1, 2):
            try:
                connection = self._connection()
                with connection.cursor() as cursor:
                    self._begin(cursor, read_only=True)
                    result = work(cursor, *args, **kwargs)
                connection.rollback()  # nothing to keep
                return result
            except psycopg.errors.ReadOnlySqlTransaction as error:
                self._rollback()
                raise ConfigurationError(
                    f"only read-only statements can be queried; PostgreSQL refused: {error}"
                ) from None
            except BaseException as error:
                lost = self._rollback()
                if lost and attempt == 1 and isinstance(error, psycopg.OperationalError):
                    continue
                classified = _classify(error, self._url, "read")
                if classified is error:
                    raise
                raise classified from error
        raise AssertionError("unreachable")  # pragma: no cover

    def _begin(self, cursor: Cursor, *, read_only: bool) -> None:
        # Set per transaction, not only per session: a query may change session settings
        # (`SELECT set_config('search_path', …)`), and writes must not follow it elsewhere.
        cursor.execute(
            ("SET TRANSACTION READ ONLY; " if read_only else "")
            + f"SET LOCAL search_path TO {quote(self.schema)}; SET LOCAL TIME ZONE 'UTC'"
        )

    def _connection(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise ConfigurationError("this PostgreSQL warehouse was closed")
        if self._conn is None or self._conn.closed:
            self._conn = None
            self._staged = None  # temporary tables die with their session
            connection = psycopg.connect(self._conninfo, autocommit=False)
            try:
                # Naive instants in batches mean UTC (as in DuckDB); notices are noise here.
                connection.execute(
                    "SET TIME ZONE 'UTC'; SET client_min_messages = warning; "
                    f"SET search_path TO {quote(self.schema)}"
                    + ("; SET default_transaction_read_only = on" if self.read_only else "")
                )
                connection.commit()
            except BaseException:
                connection.close()
                raise
            self._conn = connection
        return self._conn

    def _rollback(self) -> bool:
        """Roll back whatever was begun; drop a lost connection. True if it was lost."""
        connection = self._conn
        if connection is None:
            return True
        try:
            connection.rollback()
        except psycopg.Error:
            connection.close()
        if connection.closed:
            self._conn = None
            return True
        return False

    # -- the work of each method -----------------------------------------------------------

    def _prepare(self, cursor: Cursor, name: str, statements: list[str]) -> None:
        # Concurrent CREATE … IF NOT EXISTS can still collide in the catalog; one preparer at a
        # time per schema.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("prepare", self.schema),))
        # Create only what is missing, so a schema made by an administrator needs no CREATE right
        # on the database.
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,))
        if cursor.fetchone() is None:
            cursor.execute(f"CREATE SCHEMA {name}; SET LOCAL search_path TO {name}")
        cursor.execute("SELECT to_regprocedure(%s)", (f"{name}.last_non_null(anyelement)",))
        row = cursor.fetchone()
        if row is None or row[0] is None:
            for statement in _LAST_NON_NULL:
                cursor.execute(statement)
        for statement in statements:
            cursor.execute(statement)
        # Altered only when a column is missing: an ALTER waits for every reader of the table.
        cursor.execute(DEAD_LETTER_COLUMNS_QUERY)
        present = {row[0] for row in cursor.fetchall()}
        for statement in added_dead_letter_columns(TYPES, present):
            cursor.execute(statement)

    def _migrate(self, cursor: Cursor, statements: list[str]) -> None:
        self._prepare(cursor, quote(self.schema), internal_tables(TYPES, "bytea"))
        for statement in statements:
            try:
                cursor.execute(statement)
            except psycopg.OperationalError:
                raise
            except psycopg.DatabaseError as error:
                raise ConfigurationError(
                    f"PostgreSQL refused `{statement}`: {error}; nothing was changed"
                ) from None

    def _drop_schema(self, cursor: Cursor) -> None:
        cursor.execute(f"DROP SCHEMA IF EXISTS {quote(self.schema)} CASCADE")

    def _describe(self, cursor: Cursor, schema: Schema) -> None:
        """The views and comments of `factflow.warehouse.views`, each on its own: one PostgreSQL
        refuses is logged and tried again by the next `prepare`."""
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("prepare", self.schema),))
        # Replacing a view waits for its readers: not for long, it is done again next time.
        cursor.execute("SET LOCAL lock_timeout = '5s'")
        for view in model_views(schema):
            error = self._attempt(cursor, view.create)
            if error is not None and error.sqlstate == _VIEW_COLUMNS_CHANGED:
                error = self._attempt(cursor, view.drop, view.create)
            if error is not None:
                log.warning("PostgreSQL refused to make the view %s: %s", view.name, error)
        cursor.execute(comments_query("postgresql"))
        present = {(relation, column): text for relation, column, text in cursor.fetchall()}
        for statement in comment_statements(schema, present):
            error = self._attempt(cursor, statement)
            if error is not None:
                log.warning("PostgreSQL refused `%s`: %s", statement, error)

    def _attempt(self, cursor: Cursor, *statements: str) -> psycopg.Error | None:
        """Run `statements` in a savepoint: all of them, or none and the error."""
        cursor.execute("SAVEPOINT factflow_attempt")
        try:
            for statement in statements:
                cursor.execute(statement)
        except psycopg.Error as error:
            if cursor.connection.closed:
                raise
            cursor.execute("ROLLBACK TO SAVEPOINT factflow_attempt")
            return error
        cursor.execute("RELEASE SAVEPOINT factflow_attempt")
        return None

    def _read_table(
        self, cursor: Cursor, sql: str, parameters: tuple[Any, ...], timeout: float | None
    ) -> pa.Table:
        if timeout is not None:
            milliseconds = str(max(1, round(timeout * 1000)))
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", (milliseconds,))
        with psycopg.RawServerCursor(cursor.connection, _READER) as reader:
            for name in TEXT_TYPES:
                reader.adapters.register_loader(name, psycopg.types.string.TextLoader)
            try:
                reader.execute(sql, parameters or None)
                rows = reader.fetchall()
            except psycopg.errors.QueryCanceled:
                raise ConfigurationError(
                    f"the query ran longer than {timeout:g} s and was stopped"
                    if timeout is not None
                    else "the query was cancelled"
                ) from None
            except psycopg.OperationalError:
                raise  # the connection: `_read` tries again or says it is unavailable
            except psycopg.DatabaseError as error:
                raise ConfigurationError(_refusal(error, sql)) from None
            return to_arrow(reader.description or [], rows)

    def _release_advisory_locks(self) -> None:
        """Session advisory locks a query took outlive its transaction; a reader must not keep
        them (writers take some: `prepare` waits for one)."""
        connection = self._conn
        if connection is None or connection.closed:
            return
        try:
            connection.execute("SELECT pg_advisory_unlock_all()")
            connection.rollback()
        except psycopg.Error:
            self._rollback()

    def _query(self, cursor: Cursor, sql: str, parameters: Any) -> QueryResult:
        cursor.execute(sql, parameters)
        if cursor.description is None:
            return QueryResult((), [])
        return QueryResult(tuple(d.name for d in cursor.description), cursor.fetchall())

    def _write(self, cursor: Cursor, schema: Schema, changes: ChangeSet) -> None:
        self._stage_tables(cursor, schema)
        check = changes.check_stored_ids is not None
        # Dimensions, then members only referred to: facts take their member keys from both.
        for dim in schema.dimensions:
            rows = changes.dimension_changes.get(dim.name)
            if rows:
                self._record_changes(cursor, dim, rows, check=check)
        for dim in schema.dimensions:
            keys = changes.references.get(dim.name)
            # Only the keys this process has not seen committed: members are never deleted.
            if keys and (new := self._members.unknown(dim.name, keys)):
                self._ensure_members(cursor, dim, new)
        for fact in schema.facts:
            rows = changes.facts.get(fact.name)
            if rows:
                into = changes.rebuild_into.get(fact.name)
                self._insert_first(
                    cursor, fact.table, rows, into=into, check=check and into is None, fact=fact
                )
        if changes.dead_letters:
            self._insert_dead_letters(cursor, changes.dead_letters)
        if changes.replayed:
            self._settle_replayed(cursor, changes.replayed, changes.dead_letters)
        if changes.seen:
            self._count_events(cursor, changes.seen)

    # -- set-based writes ------------------------------------------------------------------

    def _stage_tables(self, cursor: Cursor, schema: Schema) -> None:
        """Create the session's staging tables once per connection and model.

        They are temporary tables that empty themselves at every commit: created once, unlike
        tables made per batch, they leave no churn in the catalog.
        """
        if self._staged is schema:
            return
        tables = [fact.table for fact in schema.facts] + [d.changes for d in schema.dimensions]
        stages = {table.name: f"factflow_stage_{i}" for i, table in enumerate(tables)}
        for table in tables:
            columns = ", ".join(f"{quote(c.name)} {_STAGING[c.type]}" for c in table.columns)
            cursor.execute(
                f"DROP TABLE IF EXISTS pg_temp.{stages[table.name]}; "
                f"CREATE TEMPORARY TABLE {stages[table.name]} ({columns}) ON COMMIT DELETE ROWS"
            )
        cursor.execute(
            f"DROP TABLE IF EXISTS pg_temp.{_DEAD_LETTER_STAGE}; "
            f"CREATE TEMPORARY TABLE {_DEAD_LETTER_STAGE} (id text, event_type text, "
            "event_id text, reason text, raw bytea) ON COMMIT DELETE ROWS"
        )
        # Made in this batch's transaction, so a rollback takes them away: `_rollback` forgets
        # them, and the next batch makes them again.
        self._staged, self._stages = schema, stages

    def _copy(
        self, cursor: Cursor, stage: str, columns: Sequence[str], rows: Sequence[Row]
    ) -> None:
        names = ", ".join(map(quote, columns))
        if isinstance(rows, ArrowRows):
            # Rows made column-wise go as CSV that Arrow writes, in C++: a tenth of the cost
            # of sending them row by row (a NULL is unquoted and empty, an empty text "").
            text = io.BytesIO()
            pa_csv.write_csv(rows.table, text, pa_csv.WriteOptions(include_header=False))
            with cursor.copy(f"COPY pg_temp.{stage} ({names}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(text.getbuffer())
            return
        with cursor.copy(f"COPY pg_temp.{stage} ({names}) FROM STDIN") as copy:
            try:
                for row in rows:
                    copy.write_row(row)
            except psycopg.ProgrammingError as error:
                if error.sqlstate is not None:
                    raise
                # psycopg has no way to send this Python value (say, a list for a text column).
                raise TerminalError(
                    f"the warehouse refused a value of this batch: {error}"
                ) from None

    def _insert_first(
        self,
        cursor: Cursor,
        table: Table,
        rows: Sequence[Row],
        *,
        into: str | None = None,
        check: bool = False,
        fact: FactSpec | None = None,
    ) -> None:
        """Insert the rows whose key is not stored yet (the earliest event of a key wins), into
        `table` or the table named `into` (of the same columns); with `check`, refuse rows
        stored under their key and envelope id with other values (`_refuse_reused_ids`). The
        rows of a `fact` go in with their member keys."""
        stage = self._stages[table.name]
        self._copy(cursor, stage, table.column_names, rows)
        self._check_scales(cursor, table, stage)
        keys = ", ".join(f"batch_rows.{quote(k)}" for k in table.key)
        values = ", ".join(
            f"batch_rows.{quote(c.name)} AT TIME ZONE 'UTC'"
            if c.type is ColumnType.TIMESTAMP
            else f"batch_rows.{quote(c.name)}"
            for c in table.columns
        )
        members, joins = (
            ("", "") if fact is None else member_keys_of(fact, self._require_schema(), "batch_rows")
        )
        columns = (table if fact is None else fact.stored).column_names
        insert = (
            f"INSERT INTO {quote(into or table.name)} ({', '.join(map(quote, columns))}) "
            f"SELECT DISTINCT ON ({keys}) {values}{members} "
            f"FROM pg_temp.{stage} AS batch_rows{joins} "
            f"ORDER BY {keys}, batch_rows.occurred_at, batch_rows.event_id ON CONFLICT DO NOTHING"
        )
        if not check:
            cursor.execute(insert)
            return
        # Rows inserted and keys of the batch, in the same round trip: fewer rows than keys
        # means a key already stored (or just stored by a concurrent writer, waited for).
        cursor.execute(
            f"WITH inserted AS ({insert} RETURNING 1) SELECT (SELECT count(*) FROM inserted), "
            f"(SELECT count(*) FROM (SELECT DISTINCT {keys} FROM pg_temp.{stage} AS batch_rows) "
            "AS batch_keys)"
        )
        counts = cursor.fetchone()
        if counts is not None and counts[0] < counts[1]:
            self._refuse_reused_ids(cursor, table, stage)

    def _refuse_reused_ids(self, cursor: Cursor, table: Table, stage: str) -> None:
        """Raise `StoredRowsDiffer` if a row of `stage` shares its key and envelope id with a row
        of `table` of other values (the rows the batch just inserted match themselves)."""
        same, differ = reused_id_conditions(
            table,
            "batch",
            # The staged timestamps are zone-less UTC; the stored ones are timestamptz.
            lambda c: (
                f"(batch.{quote(c.name)} AT TIME ZONE 'UTC')"
                if c.type is ColumnType.TIMESTAMP
                else f"batch.{quote(c.name)}"
            ),
        )
        cursor.execute(
            f"SELECT 1 FROM pg_temp.{stage} AS batch JOIN {quote(table.name)} AS stored "
            f"ON {same} WHERE {differ} LIMIT 1"
        )
        if cursor.fetchone() is not None:
            raise StoredRowsDiffer(table.name)

    def _check_scales(self, cursor: Cursor, table: Table, stage: str) -> None:
        """Refuse numbers with more decimal places than their column keeps.

        PostgreSQL would round them silently (DuckDB refuses them); a rounded amount is a wrong
        amount, so the batch is refused and the runtime isolates the message carrying it.
        """
        scaled = [(c.name, _SCALES[c.type]) for c in table.columns if c.type in _SCALES]
        if not scaled:
            return
        checks = ", ".join(f"(%s, {quote(name)}, {scale})" for name, scale in scaled)
        cursor.execute(
            f"SELECT v.name, v.value::text, v.scale FROM pg_temp.{stage} "
            f"CROSS JOIN LATERAL (VALUES {checks}) AS v(name, value, scale) "
            "WHERE v.value <> round(v.value, v.scale) "
            "OR v.value IN ('NaN', 'Infinity', '-Infinity') LIMIT 1",
            [name for name, _ in scaled],
        )
        refused = cursor.fetchone()
        if refused is not None:
            name, value, scale = refused
            raise TerminalError(
                f"the warehouse refused a value of this batch: `{table.name}.{name}` must be a "
                f"number with at most {scale} decimal places, got {value}"
            )

    def _record_changes(
        self, cursor: Cursor, dim: DimensionSpec, rows: Sequence[Row], *, check: bool = False
    ) -> None:
        self._insert_first(cursor, dim.changes, rows, check=check)
        # Derive under a lock held until commit: a concurrent writer of this dimension then
        # derives after this batch committed, from every change including this batch's.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(self.schema, dim.name),))
        key = quote(dim.key)
        touched = (
            f"WITH {_TOUCHED} AS (SELECT DISTINCT {key} AS key "
            f"FROM pg_temp.{self._stages[dim.changes.name]}) "
        )
        columns = ", ".join(map(quote, dim.current.column_names))
        updates = ", ".join(
            f"{quote(c)} = excluded.{quote(c)}" for c in (*dim.attributes, "inferred", "updated_at")
        )
        cursor.execute(
            f"{touched}INSERT INTO {quote(dim.current.name)} ({columns}) "
            f"{current_rows(dim, _TOUCHED, _last_value)} "
            f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
        )
        if dim.history is not None:
            history = quote(dim.history.name)
            cursor.execute(
                f"{touched}DELETE FROM {history} WHERE {key} IN (SELECT key FROM {_TOUCHED})"
            )
            cursor.execute(
                f"{touched}INSERT INTO {history} "
                f"({', '.join(map(quote, dim.history.column_names))}) "
                f"{history_rows(dim, _TOUCHED, _last_value)}"
            )

    def _ensure_members(self, cursor: Cursor, dim: DimensionSpec, keys: Set[str]) -> None:
        cursor.execute(
            f"INSERT INTO {quote(dim.current.name)} ({quote(dim.key)}, inferred) "
            "SELECT key, true FROM unnest(%s::text[]) AS key ON CONFLICT DO NOTHING",
            (sorted(keys),),  # in key order, so concurrent writers lock rows alike
        )

    def _execute(self, cursor: Cursor, statement: str) -> None:
        cursor.execute(statement)

    def _swap_rebuilt(self, cursor: Cursor, table: Table) -> int:
        live, shadow = quote(table.name), quote(rebuild_table(table.name))
        keys = ", ".join(map(quote, table.key))
        columns = ", ".join(map(quote, table.column_names))
        # Writers wait until the swap committed (readers do not): a row written between the
        # copy of what the rebuild lacks and the delete would be lost otherwise.
        cursor.execute(f"LOCK TABLE {live} IN EXCLUSIVE MODE")
        cursor.execute(
            f"INSERT INTO {shadow} ({columns}) SELECT {columns} FROM {live} "
            f"ON CONFLICT ({keys}) DO NOTHING"
        )
        cursor.execute(f"DELETE FROM {live}")
        cursor.execute(f"INSERT INTO {live} ({columns}) SELECT {columns} FROM {shadow}")
        cursor.execute(f"DROP TABLE {shadow}")
        cursor.execute(f"SELECT count(*) FROM {live}")
        row = cursor.fetchone()
        return int(row[0]) if row else 0

    def _insert_dead_letters(self, cursor: Cursor, letters: Sequence[DeadLetter]) -> None:
        self._copy(
            cursor,
            _DEAD_LETTER_STAGE,
            _DEAD_LETTER_COLUMNS,
            [(d.id, d.event_type, d.event_id, d.reason, d.raw) for d in letters],
        )
        columns = ", ".join(_DEAD_LETTER_COLUMNS)
        cursor.execute(
            f"INSERT INTO {DEAD_LETTERS} ({columns}, received_at) "
            f"SELECT DISTINCT ON (id) {columns}, now() AT TIME ZONE 'UTC' "
            f"FROM pg_temp.{_DEAD_LETTER_STAGE} ORDER BY id ON CONFLICT DO NOTHING"
        )

    def _settle_replayed(
        self, cursor: Cursor, replayed: set[str], letters: Sequence[DeadLetter]
    ) -> None:
        """Remove the replayed dead letters that now succeeded; give the others (already stored,
        or just inserted) their new reason, one more replay and its time."""
        again: dict[str, DeadLetter] = {}
        for letter in letters:
            if letter.id in replayed:
                again.setdefault(letter.id, letter)
        # In id order, so concurrent replays lock rows alike.
        gone = sorted(replayed - again.keys())
        if gone:
            cursor.execute(f"DELETE FROM {DEAD_LETTERS} WHERE id = ANY(%s::text[])", (gone,))
        kept = [again[id_] for id_ in sorted(again)]
        if kept:
            cursor.execute(
                f"UPDATE {DEAD_LETTERS} AS stored SET reason = again.reason, "
                "event_type = coalesce(again.event_type, stored.event_type), "
                "event_id = coalesce(again.event_id, stored.event_id), "
                "replays = stored.replays + 1, replayed_at = now() AT TIME ZONE 'UTC' "
                "FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) "
                "AS again(id, event_type, event_id, reason) WHERE stored.id = again.id",
                (
                    [d.id for d in kept],
                    [d.event_type for d in kept],
                    [d.event_id for d in kept],
                    [d.reason for d in kept],
                ),
            )

    def _count_events(self, cursor: Cursor, seen: dict[str, tuple[int, datetime]]) -> None:
        types = sorted(seen)
        cursor.execute(
            f"INSERT INTO {EVENT_STATS} AS t (event_type, events, last_occurred_at) "
            "SELECT event_type, events, last_occurred_at AT TIME ZONE 'UTC' "
            "FROM unnest(%s::text[], %s::bigint[], %s::timestamptz[]) "
            "AS s(event_type, events, last_occurred_at) "
            "ON CONFLICT (event_type) DO UPDATE SET events = t.events + excluded.events, "
            "last_occurred_at = greatest(t.last_occurred_at, excluded.last_occurred_at)",
            (types, [seen[t][0] for t in types], [seen[t][1] for t in types]),
        )

    def _require_schema(self) -> Schema:
        if self._model is None:
            raise ConfigurationError("call prepare(schema) before writing to the warehouse")
        return self._model

    def _refuse_if_read_only(self, action: str) -> None:
        if self.read_only:
            raise ConfigurationError(
                f"cannot {action}: the PostgreSQL warehouse {redact(self._url)} was opened "
                "read-only"
            )


def _analyze(cursor: Cursor, tables: Sequence[str]) -> None:
    cursor.execute(f"ANALYZE {', '.join(map(quote, tables))}")


def _refusal(error: psycopg.DatabaseError, sql: str) -> str:
    """What PostgreSQL said about a statement `read` declared as a cursor, in the user's terms."""
    said = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, psycopg.errors.ReadOnlySqlTransaction):
        return f"PostgreSQL refused the statement: {said} (queries only; nothing was changed)"
    if isinstance(error, psycopg.errors.FeatureNotSupported) and "data-modifying" in said:
        return (
            "PostgreSQL refused the statement: a WITH that changes data cannot run here "
            "(queries only; nothing was changed)"
        )
    if isinstance(error, psycopg.errors.SyntaxError):
        if "multiple commands" in said:
            return "PostgreSQL refused the statements: give exactly one (nothing was changed)"
        position = error.diag.statement_position
        start = len(sql) - len(sql.lstrip())
        declared = len(f'DECLARE "{_READER}" CURSOR FOR ')
        if position is not None and int(position) - 1 - declared == start:
            return (
                f"PostgreSQL refused the statement: {said}; only a query can run here (SELECT, "
                "WITH … SELECT, VALUES or TABLE), and nothing was changed"
            )
    return f"PostgreSQL could not run the query: {said}"


def _lock_key(*names: str) -> int:
    """A 64-bit advisory lock id for `names`, the same in every process."""
    digest = hashlib.blake2b("\x00".join(names).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _classify(error: BaseException, url: str, action: str) -> BaseException:
    """Tell the runtime whether retrying `action` ("write", "read", …) can help."""
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        # Lost or refused connections, shutdowns, deadlocks, serialization failures, timeouts,
        # exhausted resources: all pass, and the runtime retries the batch.
        return WarehouseUnavailable(
            f"the PostgreSQL warehouse {redact(url)} cannot {action} now: "
            f"{redact_text(str(error), url)}"
        )
    if action == "write" and isinstance(
        error, psycopg.DataError | psycopg.IntegrityError | OverflowError | TypeError
    ):
        return TerminalError(f"the warehouse refused a value of this batch: {error}")
    return error
