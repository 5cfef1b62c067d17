"""SQL text shared by the SQL backends: table definitions and the derivation of dimension views."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from factflow.model.schema import ColumnType, DimensionSpec, Schema, Table
from factflow.warehouse.base import DEAD_LETTERS, EVENT_STATS

__all__ = [
    "Dialect",
    "TypeNames",
    "create_table",
    "current_rows",
    "history_rows",
    "internal_tables",
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
        """Table name → its `CREATE TABLE IF NOT EXISTS`, for every table of the model."""
        keyed = {dim.current.name for dim in schema.dimensions}
        return {
            table.name: create_table(
                table, self.types, primary_key=self.keys_everywhere or table.name in keyed
            )
            for table in schema.tables()
        }


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_table(table: Table, types: TypeNames, *, primary_key: bool = True) -> str:
    columns = [
        f"{quote(c.name)} {types[c.type]}{'' if c.nullable else ' NOT NULL'}" for c in table.columns
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


def current_rows(dim: DimensionSpec, touched: str, last_value: LastValue) -> str:
    """A query of the current row of every key in `touched` (a relation with column `key`).

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
        f"FROM {quote(dim.changes.name)} WHERE {key} IN (SELECT key FROM {touched})"
        ") AS versions WHERE rn = 1"
    )


def history_rows(dim: DimensionSpec, touched: str, last_value: LastValue) -> str:
    """The SCD type 2 versions of every key in `touched`: one per key and change time, each valid
    from its change until the next one (`valid_to` NULL for the latest)."""
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
        f"FROM {quote(dim.changes.name)} WHERE {key} IN (SELECT key FROM {touched})"
        ") AS versions WHERE rn = 1"
    )


def _fields(dim: DimensionSpec) -> str:
    """The dimension's declared fields in declaration order."""
    names = [c.name for c in dim.changes.columns if c.name not in ("event_id", "occurred_at")]
    return ", ".join(map(quote, names))
