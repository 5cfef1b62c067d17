"""SQL text shared by the SQL backends: table definitions and the derivation of dimension views."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import msgspec

from factflow.model.schema import (
    MEMBER_KEY,
    Column,
    ColumnType,
    DimensionSpec,
    FactSpec,
    Schema,
    Table,
)
from factflow.warehouse.base import DEAD_LETTERS, EVENT_STATS

__all__ = [
    "SEED_FIRST",
    "SEED_KEY",
    "SEED_LATE",
    "SEED_STORED",
    "Dialect",
    "LastValue",
    "Latest",
    "TypeNames",
    "close_versions",
    "create_table",
    "current_rows",
    "history_rows",
    "internal_tables",
    "member_join",
    "member_key_sequence",
    "member_keys_of",
    "merged_current_rows",
    "merged_history_rows",
    "next_member_key",
    "rederived_keys",
    "seed_rows",
]

#: How a backend spells each column type.
TypeNames = dict[ColumnType, str]


class Dialect(msgspec.Struct, frozen=True):
    """How one SQL backend spells the model's tables: what `prepare` creates, `factflow schema
    show` prints and the migrations compare a live warehouse with.

    `keys_everywhere=False` leaves the primary key off every table but the dimensions' current
    rows (whose upserts need it): facts and changes are append-only and first-wins inserts
    anti-join against the key, and histories are re-derived per key. DuckDB keeps key indexes in
    memory, where they would grow with the table, and checks uniqueness eagerly, which the
    delete-and-re-derive of a history within one transaction would trip.
    """

    name: str
    types: TypeNames
    keys_everywhere: bool = True

    def create_tables(self, schema: Schema) -> dict[str, str]:
        """Table name → its `CREATE TABLE IF NOT EXISTS`, for every table of the model (the
        sequences of `create_sequences` first)."""
        numbered = {dim.current.name: dim for dim in schema.dimensions}
        return {
            table.name: create_table(
                table,
                self.types,
                primary_key=self.keys_everywhere or table.name in numbered,
                defaults=(
                    {MEMBER_KEY: next_member_key(numbered[table.name])}
                    if table.name in numbered
                    else {}
                ),
            )
            for table in schema.tables()
        }

    def create_sequences(self, schema: Schema) -> list[str]:
        """The sequences numbering each dimension's members."""
        return [member_key_sequence(dim) for dim in schema.dimensions]


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def member_key_sequence(dim: DimensionSpec) -> str:
    return f"CREATE SEQUENCE IF NOT EXISTS {quote(dim.member_key_sequence)}"


def next_member_key(dim: DimensionSpec) -> str:
    """The default of a dimension's `member_key`: the next number of its sequence."""
    return f"nextval('{quote(dim.member_key_sequence)}')"


def member_keys_of(fact: FactSpec, schema: Schema, rows: str) -> tuple[str, str]:
    """The member key columns of `fact` (its `stored` columns past `table`'s) as a select list
    over the fact rows `rows` (an alias), and the joins to the dimensions' current rows that
    give them: a reference without a value, or to a member not stored, gets NULL."""
    values, joins = [], []
    for i, (field, column) in enumerate(fact.member_keys.items()):
        dim = schema.dimension(fact.references[field])
        alias = f"factflow_member_{i}"
        values.append(f"{alias}.{quote(MEMBER_KEY)} AS {quote(column)}")
        joins.append(
            f" LEFT JOIN {quote(dim.current.name)} AS {alias} "
            f"ON {alias}.{quote(dim.key)} = {rows}.{quote(field)}"
        )
    return "".join(f", {value}" for value in values), "".join(joins)


def member_join(
    dim: DimensionSpec, alias: str, rows: str, member_key: str, *, as_of_event: bool
) -> str:
    """The LEFT JOIN (as `alias`) of `dim` to the fact rows `rows` (an alias) on their member
    key column `member_key`: to the member's current row, or `as_of_event` to the version of a
    type 2 dimension valid when the fact occurred. Versions carry no member key: their current
    row gives it (a join of the dimension's rows alone, before the facts')."""
    on = f"{alias}.{quote(MEMBER_KEY)} = {rows}.{quote(member_key)}"
    current = quote(dim.current.name)
    if not as_of_event or dim.history is None:
        return f"LEFT JOIN {current} AS {alias} ON {on}"
    key = quote(dim.key)
    versions = (
        f"(SELECT version.*, member.{quote(MEMBER_KEY)} FROM {quote(dim.history.name)} AS version "
        f"JOIN {current} AS member ON member.{key} = version.{key})"
    )
    occurred = f"{rows}.occurred_at"
    return (
        f"LEFT JOIN {versions} AS {alias} ON {on} AND {alias}.valid_from <= {occurred} "
        f"AND ({alias}.valid_to IS NULL OR {occurred} < {alias}.valid_to)"
    )


def create_table(
    table: Table,
    types: TypeNames,
    *,
    primary_key: bool = True,
    defaults: Mapping[str, str] | None = None,
) -> str:
    """`CREATE TABLE IF NOT EXISTS`; `defaults` maps a column to its DEFAULT expression."""
    defaults = defaults or {}
    columns = [
        f"{quote(c.name)} {types[c.type]}{'' if c.nullable else ' NOT NULL'}"
        + (f" DEFAULT {defaults[c.name]}" if c.name in defaults else "")
        for c in table.columns
    ]
    if primary_key:
        columns.append(f"PRIMARY KEY ({', '.join(map(quote, table.key))})")
    return f"CREATE TABLE IF NOT EXISTS {quote(table.name)} (\n  " + ",\n  ".join(columns) + "\n)"


def internal_tables(types: TypeNames, blob: str) -> list[str]:
    text, timestamp = types[ColumnType.TEXT], types[ColumnType.TIMESTAMP]
    integer = types[ColumnType.INTEGER]
    return [
        f"CREATE TABLE IF NOT EXISTS {DEAD_LETTERS} (id {text} PRIMARY KEY, event_type {text}, "
        f"event_id {text}, reason {text} NOT NULL, raw {blob} NOT NULL, "
        f"received_at {timestamp} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {EVENT_STATS} (event_type {text} PRIMARY KEY, "
        f"events {integer} NOT NULL, last_occurred_at {timestamp})",
    ]


LastValue = Callable[[str, str], str]
#: How a backend spells the aggregate "the column's non-null value of the latest change row by
#: (occurred_at, event_id)": `latest(column)`.
Latest = Callable[[str], str]


def reused_id_conditions(
    table: Table, batch: str, batch_value: Callable[[Column], str] | None = None
) -> tuple[str, str]:
    """For a row of `batch` (an alias) and a row of `table` (as `stored`): the condition that
    they share the key and envelope id, and the condition that their other values differ (an
    envelope id reused with other contents). `batch_value` gives a batch column's SQL (by
    default `<batch>.<column>`), for a backend that must convert it to compare."""
    value = batch_value or (lambda column: f"{batch}.{quote(column.name)}")
    keys = dict.fromkeys((*table.key, "event_id"))
    same = " AND ".join(f"stored.{quote(k)} = {batch}.{quote(k)}" for k in keys)
    differ = " OR ".join(
        f"stored.{quote(c.name)} IS DISTINCT FROM {value(c)}"
        for c in table.columns
        if c.name not in keys
    )
    return same, differ


def current_rows(
    dim: DimensionSpec, touched: str | None, last_value: LastValue, *, changes: str | None = None
) -> str:
    """A query of the current row of every key in `touched` (a relation with column `key`; None
    for every key), derived from the change rows `changes` (a relation; by default all stored).

    Each attribute is its latest non-null value ordered by (occurred_at, event_id);
    `last_value(column, window)` spells "last non-null value over window" for the backend.
    """
    key = quote(dim.key)
    window = (
        f"PARTITION BY {key} ORDER BY occurred_at, event_id "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"
    )
    attributes = "".join(f", {last_value(quote(a), window)} AS {quote(a)}" for a in dim.attributes)
    return (
        f"SELECT {_fields(dim)}, false AS inferred, updated_at FROM ("
        f"SELECT {key}{attributes}, max(occurred_at) OVER (PARTITION BY {key}) AS updated_at, "
        f"row_number() OVER (PARTITION BY {key} ORDER BY occurred_at DESC, event_id DESC) AS rn "
        f"FROM {_changes(dim, touched, changes)}"
        ") AS versions WHERE rn = 1"
    )


def history_rows(
    dim: DimensionSpec, touched: str | None, last_value: LastValue, *, changes: str | None = None
) -> str:
    """The SCD type 2 versions of every key in `touched` (None for every key) derived from the
    change rows `changes` (by default all stored): one per key and change time, each valid from
    its change until the next one (`valid_to` NULL for the latest)."""
    key = quote(dim.key)
    window = (
        f"PARTITION BY {key} ORDER BY occurred_at, event_id "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    )
    attributes = "".join(f", {last_value(quote(a), window)} AS {quote(a)}" for a in dim.attributes)
    return (
        f"SELECT {_fields(dim)}, occurred_at AS valid_from, "
        f"lead(occurred_at) OVER (PARTITION BY {key} ORDER BY occurred_at) AS valid_to FROM ("
        f"SELECT {key}{attributes}, occurred_at, row_number() OVER "
        f"(PARTITION BY {key}, occurred_at ORDER BY event_id DESC) AS rn "
        f"FROM {_changes(dim, touched, changes)}"
        ") AS versions WHERE rn = 1"
    )


# The columns of `seed_rows` besides the dimension's attributes (named `factflow_*` so that they
# cannot meet an attribute's name).
SEED_KEY = "factflow_key"
SEED_FIRST = "factflow_first_at"
SEED_STORED = "factflow_stored_at"
SEED_LATE = "factflow_late"


def seed_rows(dim: DimensionSpec, changes: str) -> str:
    """Per key of the new change rows `changes`: what its current row is derived from so far.

    The derivations are folds over a key's changes in (occurred_at, event_id) order, so when
    every new change of a key comes after all its stored ones, its current row and its versions
    follow from the stored current row (the state after the stored changes) and the new changes
    alone: `merged_current_rows` and `merged_history_rows`. A key is **late** when one of its new
    changes is not after its latest stored change (`updated_at`; a tie at that instant is late
    too, since `updated_at` does not say which event came last); only late keys need the
    derivation over all their stored changes.

    Columns: `factflow_key`; `factflow_first_at`, its earliest new change; `factflow_stored_at`,
    its latest stored change (NULL when it has none: a new or an inferred key, whose current row
    holds nothing derived from changes); `factflow_late`; and each attribute as its current row
    holds it (NULL for a new or inferred key).
    """
    key = quote(dim.key)
    seeds = "".join(
        f", CASE WHEN stored.inferred THEN NULL ELSE stored.{quote(a)} END AS {quote(a)}"
        for a in dim.attributes
    )
    return (
        f"SELECT new.{key} AS {SEED_KEY}, new.{SEED_FIRST}, "
        f"CASE WHEN stored.inferred THEN NULL ELSE stored.updated_at END AS {SEED_STORED}, "
        f"coalesce(NOT stored.inferred AND NOT coalesce(new.{SEED_FIRST} > stored.updated_at, "
        f"false), false) AS {SEED_LATE}{seeds} "
        f"FROM (SELECT {key}, min(occurred_at) AS {SEED_FIRST} FROM {changes} GROUP BY {key}) "
        f"AS new LEFT JOIN {quote(dim.current.name)} AS stored ON stored.{key} = new.{key}"
    )


def merged_current_rows(dim: DimensionSpec, changes: str, seeds: str, latest: Latest) -> str:
    """The current rows of the keys of `seeds` (a `seed_rows` relation) that are not late: each
    attribute the latest non-null value of the new change rows `changes`, else the stored one.
    The same rows as `current_rows` over all the stored changes of these keys."""
    key = quote(dim.key)
    attributes = "".join(f", {latest(quote(a))} AS {quote(a)}" for a in dim.attributes)
    return (
        f"SELECT {_merged_fields(dim)}, false AS inferred, new.updated_at FROM ("
        f"SELECT {key}{attributes}, max(occurred_at) AS updated_at FROM {changes} GROUP BY {key}"
        f") AS new JOIN {seeds} AS seed ON seed.{SEED_KEY} = new.{key} WHERE NOT seed.{SEED_LATE}"
    )


def close_versions(dim: DimensionSpec, history: str, seeds: str) -> str:
    """Take out the open version of each key of `seeds` that is not late, returning it (the
    columns of the `history` table): `merged_history_rows` puts it back, closed.

    Deleted and inserted again rather than updated in place: an UPDATE … RETURNING of these
    rows took DuckDB several times as long."""
    key = quote(dim.key)
    return (
        f"DELETE FROM {quote(history)} AS version USING {seeds} AS seed "
        f"WHERE version.{key} = seed.{SEED_KEY} AND NOT seed.{SEED_LATE} "
        f"AND version.valid_to IS NULL AND version.valid_from = seed.{SEED_STORED} "
        "RETURNING version.*"
    )


def merged_history_rows(
    dim: DimensionSpec, changes: str, seeds: str, closed: str, last_value: LastValue
) -> str:
    """The versions of the keys of `seeds` that are not late and either had no stored change or
    had their open version taken out by `close_versions` (`closed`): those open versions, now
    valid until the key's earliest new change, and the versions of the new change rows
    `changes`. With the versions left stored, the same rows as `history_rows` over all the
    stored changes of these keys."""
    key = quote(dim.key)
    ended = ", ".join(f"closed.{quote(name)}" for name in _field_names(dim))
    # One window for all: the last change at an instant is the one whose next change (in the
    # same order) is later, and that next change's time is where its version ends.
    order = f"PARTITION BY {key} ORDER BY occurred_at, event_id"
    window = f"{order} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    attributes = "".join(f", {last_value(quote(a), window)} AS {quote(a)}" for a in dim.attributes)
    return (
        f"SELECT {ended}, closed.valid_from, seed.{SEED_FIRST} AS valid_to FROM {closed} "
        f"AS closed JOIN {seeds} AS seed ON seed.{SEED_KEY} = closed.{key} "
        f"UNION ALL SELECT {_merged_fields(dim)}, new.occurred_at, new.next_at FROM ("
        f"SELECT {key}{attributes}, occurred_at, lead(occurred_at) OVER ({order}) AS next_at "
        f"FROM {changes}) AS new JOIN {seeds} AS seed ON seed.{SEED_KEY} = new.{key} "
        f"WHERE (new.next_at IS NULL OR new.next_at > new.occurred_at) AND NOT seed.{SEED_LATE} "
        f"AND (seed.{SEED_STORED} IS NULL OR seed.{SEED_KEY} IN (SELECT {key} FROM {closed}))"
    )


def rederived_keys(dim: DimensionSpec, seeds: str, closed: str | None) -> str:
    """A relation (column `key`) of the keys of `seeds` whose rows need the derivation over all
    their stored changes: the late ones, and with `closed` (see `merged_history_rows`) those with
    stored changes whose open version was not found (a history that began after them, as when a
    dimension became SCD type 2)."""
    unclosed = (
        ""
        if closed is None
        else f" OR ({SEED_STORED} IS NOT NULL "
        f"AND {SEED_KEY} NOT IN (SELECT {quote(dim.key)} FROM {closed}))"
    )
    return f"(SELECT {SEED_KEY} AS key FROM {seeds} WHERE {SEED_LATE}{unclosed}) AS rederived"


def _changes(dim: DimensionSpec, touched: str | None, changes: str | None) -> str:
    source = quote(dim.changes.name) if changes is None else changes
    if touched is None:
        return source
    return f"{source} WHERE {quote(dim.key)} IN (SELECT key FROM {touched})"


def _merged_fields(dim: DimensionSpec) -> str:
    """The declared fields of `new` rows, each attribute falling back to the `seed` row's."""
    return ", ".join(
        f"new.{quote(name)}"
        if name == dim.key
        else f"coalesce(new.{quote(name)}, seed.{quote(name)}) AS {quote(name)}"
        for name in _field_names(dim)
    )


def _fields(dim: DimensionSpec) -> str:
    """The dimension's declared fields in declaration order."""
    return ", ".join(map(quote, _field_names(dim)))


def _field_names(dim: DimensionSpec) -> list[str]:
    return [c.name for c in dim.changes.columns if c.name not in ("event_id", "occurred_at")]
