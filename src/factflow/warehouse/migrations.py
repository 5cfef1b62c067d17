"""Schema evolution: compare the model with a live warehouse, and migrate the warehouse safely.

```python
found = diff(warehouse, app.schema)       # what differs, each change with its statements
print(render(found.changes))
done = migrate(warehouse, app.schema)     # applies the additive changes, refuses the others
print(render(done.refused, done.lost))    # … saying what each would lose
migrate(warehouse, app.schema, allow_destructive=True)
```

The live tables are read from `information_schema` (both backends have it): the base tables of
the warehouse's schema (`main` in a DuckDB file), factflow's own `factflow_*` tables and the
shadows of unfinished rebuilds aside. Each difference is a `Change`:

* **additive**, nothing stored is lost or refused: a new table, a new nullable column, a wider
  type (an integer or money to a decimal, a date to a timestamp), a column allowed to be NULL;
* **destructive**, applied only when asked (`allow_destructive`): a dropped table or column (a
  rename is a drop and an add: the values do not move), any other change of type, which casts
  (narrowing loses digits, and a value that does not fit stops the migration), and a column that
  must now have a value (NOT NULL, or a new NOT NULL column: rows stored before have none).
  `losses` counts what each would lose.

A migration runs all the statements it applies in one transaction and records a row in
`factflow_schema_version`: the version (1, 2, …), when (UTC), the digest of the model and the
statements. Primary keys are not compared: a changed key is not migrated.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime

import msgspec

from factflow.model.schema import MEMBER_KEY, ColumnType, Schema, Table
from factflow.warehouse.base import Warehouse, rebuild_table
from factflow.warehouse.ddl import Dialect, member_key_sequence, next_member_key, quote
from factflow.warehouse.views import VIEWS_QUERY, views_to_drop

__all__ = [
    "SCHEMA_VERSIONS",
    "Change",
    "ChangeKind",
    "LiveColumn",
    "LiveTable",
    "Migration",
    "SchemaDiff",
    "compare",
    "diff",
    "losses",
    "migrate",
    "model_digest",
    "read_tables",
    "render",
]

SCHEMA_VERSIONS = "factflow_schema_version"

#: Type changes that keep every value exactly: (what the warehouse has, what the model wants).
WIDENINGS = frozenset(
    {
        (ColumnType.INTEGER, ColumnType.DECIMAL),
        (ColumnType.MONEY, ColumnType.DECIMAL),
        (ColumnType.DATE, ColumnType.TIMESTAMP),
    }
)


class ChangeKind(enum.Enum):
    ADD_TABLE = "add table"
    ADD_COLUMN = "add column"
    WIDEN_TYPE = "widen type"
    ALLOW_NULL = "allow NULL"
    DROP_TABLE = "drop table"
    DROP_COLUMN = "drop column"
    CHANGE_TYPE = "change type"
    REQUIRE_VALUE = "require a value"
    ADD_REQUIRED_COLUMN = "add a required column"


_DESTRUCTIVE = frozenset(
    {
        ChangeKind.DROP_TABLE,
        ChangeKind.DROP_COLUMN,
        ChangeKind.CHANGE_TYPE,
        ChangeKind.REQUIRE_VALUE,
        ChangeKind.ADD_REQUIRED_COLUMN,
    }
)


class Change(msgspec.Struct, frozen=True):
    """One difference between the model and a warehouse, and the statements that remove it.

    `was` is what the warehouse has (a type, maybe with NOT NULL), `becomes` what the model
    declares. `stops_writes` is true when the model's rows cannot be written as they are until
    it is applied (`factflow run` refuses to start); tables and nullable columns the model no
    longer has do not stop writes, they are kept until a destructive migration drops them.
    """

    kind: ChangeKind
    table: str
    column: str | None = None
    was: str = ""
    becomes: str = ""
    statements: tuple[str, ...] = ()
    stops_writes: bool = True

    @property
    def destructive(self) -> bool:
        return self.kind in _DESTRUCTIVE

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        match self.kind:
            case ChangeKind.ADD_TABLE:
                return f"+ table {where}"
            case ChangeKind.ADD_COLUMN:
                return f"+ column {where} {self.becomes}"
            case ChangeKind.ADD_REQUIRED_COLUMN:
                return f"! column {where} {self.becomes} (new: rows stored before have none)"
            case ChangeKind.WIDEN_TYPE:
                return f"~ column {where}: {self.was} → {self.becomes} (wider)"
            case ChangeKind.ALLOW_NULL:
                return f"~ column {where}: NOT NULL → may be NULL"
            case ChangeKind.DROP_TABLE:
                return f"- table {where}"
            case ChangeKind.DROP_COLUMN:
                return f"- column {where} {self.was}"
            case ChangeKind.CHANGE_TYPE:
                return f"! column {where}: {self.was} → {self.becomes} (not a widening)"
            case ChangeKind.REQUIRE_VALUE:
                return f"! column {where}: may be NULL → NOT NULL"


class SchemaDiff(msgspec.Struct, frozen=True):
    """What a migration would change, and the version the warehouse's last one recorded."""

    changes: tuple[Change, ...]
    version: int | None  # None: never migrated

    @property
    def destructive(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.destructive)

    @property
    def stops_writes(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.stops_writes)

    @property
    def statements(self) -> tuple[str, ...]:
        return tuple(s for c in self.changes for s in c.statements)


class Migration(msgspec.Struct, frozen=True):
    """A migration done: the changes it applied under the version it recorded (the version
    before when it applied nothing), and the destructive changes it refused, with what each
    would lose (from `losses`)."""

    version: int | None
    applied: tuple[Change, ...]
    refused: tuple[Change, ...] = ()
    lost: dict[Change, str] = msgspec.field(default_factory=dict)


class LiveColumn(msgspec.Struct, frozen=True):
    name: str
    type: str  # as the warehouse spells it, e.g. BIGINT, DECIMAL(18,4), numeric(18, 4)
    nullable: bool


class LiveTable(msgspec.Struct, frozen=True):
    name: str
    columns: tuple[LiveColumn, ...]


_COLUMNS_QUERY = (
    "SELECT c.table_name, c.column_name, c.data_type, c.numeric_precision, c.numeric_scale, "
    "c.is_nullable FROM information_schema.columns AS c JOIN information_schema.tables AS t "
    "ON t.table_catalog = c.table_catalog AND t.table_schema = c.table_schema "
    "AND t.table_name = c.table_name "
    "WHERE c.table_schema = current_schema() AND c.table_catalog = current_database() "
    "AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position"
)


def read_tables(warehouse: Warehouse) -> dict[str, LiveTable]:
    """Every base table of the warehouse's schema, factflow's own included, with its columns."""
    columns: dict[str, list[LiveColumn]] = {}
    for table, column, data_type, precision, scale, nullable in warehouse.query(
        _COLUMNS_QUERY
    ).rows:
        spelling = str(data_type)
        if spelling.lower() == "numeric" and precision is not None:
            spelling = f"numeric({precision}, {scale or 0})"  # PostgreSQL keeps them apart
        columns.setdefault(table, []).append(LiveColumn(column, spelling, nullable == "YES"))
    return {name: LiveTable(name, tuple(found)) for name, found in columns.items()}


def diff(warehouse: Warehouse, schema: Schema) -> SchemaDiff:
    """What it takes to bring `warehouse` to `schema`; no changes when they match."""
    live = read_tables(warehouse)
    version = None
    if SCHEMA_VERSIONS in live:
        [(version,)] = warehouse.query(f"SELECT max(version) FROM {SCHEMA_VERSIONS}").rows
    return SchemaDiff(compare(schema, live, warehouse.dialect), version)


def compare(schema: Schema, live: Mapping[str, LiveTable], dialect: Dialect) -> tuple[Change, ...]:
    """The changes bringing the `live` tables to those of `schema` as `dialect` spells them:
    per model table in model order (new tables, then column by column), then dropped tables."""
    creates = dialect.create_tables(schema)
    numbered = _numbered_members(schema, dialect)
    changes: list[Change] = []
    # The dimensions' tables first: a fact's member keys are filled from their current rows.
    facts = {fact.name for fact in schema.facts}
    for table in sorted(schema.tables(), key=lambda table: table.name in facts):
        stored = live.get(table.name)
        if stored is None:
            sequence = numbered.get((table.name, MEMBER_KEY), ())[:1]
            changes.append(
                Change(
                    ChangeKind.ADD_TABLE,
                    table.name,
                    statements=(*sequence, creates[table.name]),
                    stops_writes=False,  # prepare creates it
                )
            )
        else:
            changes += _column_changes(table, stored, dialect, numbered)
    for name in sorted(live):
        if name not in creates and not _internal(name):
            drop = f"DROP TABLE {quote(name)}"
            changes.append(
                Change(ChangeKind.DROP_TABLE, name, statements=(drop,), stops_writes=False)
            )
    return tuple(changes)


def _numbered_members(schema: Schema, dialect: Dialect) -> dict[tuple[str, str], tuple[str, ...]]:
    """(table, column) → the statements adding a member key column to a warehouse made before
    it: a dimension's numbers its members (its sequence, then the column with the next number
    as default: every stored row gets one), a fact's takes them from the current rows."""
    integer = dialect.types[ColumnType.INTEGER]
    added: dict[tuple[str, str], tuple[str, ...]] = {}
    for dim in schema.dimensions:
        added[dim.current.name, MEMBER_KEY] = (
            member_key_sequence(dim),
            f"ALTER TABLE {quote(dim.current.name)} ADD COLUMN {quote(MEMBER_KEY)} {integer} "
            f"DEFAULT {next_member_key(dim)}",
        )
    for fact in schema.facts:
        table = quote(fact.table.name)
        for field, column in fact.member_keys.items():
            dim = schema.dimension(fact.references[field])
            added[fact.table.name, column] = (
                f"ALTER TABLE {table} ADD COLUMN {quote(column)} {integer}",
                f"UPDATE {table} SET {quote(column)} = member.{quote(MEMBER_KEY)} "
                f"FROM {quote(dim.current.name)} AS member "
                f"WHERE member.{quote(dim.key)} = {table}.{quote(field)}",
            )
    return added


def _column_changes(
    table: Table,
    live: LiveTable,
    dialect: Dialect,
    numbered: Mapping[tuple[str, str], tuple[str, ...]],
) -> Iterator[Change]:
    known = {_normal(spelling): column_type for column_type, spelling in dialect.types.items()}
    stored = {column.name: column for column in live.columns}
    alter = f"ALTER TABLE {quote(table.name)}"
    for column in table.columns:
        name, spelling = quote(column.name), dialect.types[column.type]
        now = stored.get(column.name)
        if now is None:
            add = f"{alter} ADD COLUMN {name} {spelling}"
            statements = numbered.get((table.name, column.name), (add,))
            if column.nullable:
                yield Change(
                    ChangeKind.ADD_COLUMN, table.name, column.name, "", spelling, statements
                )
            else:
                yield Change(
                    ChangeKind.ADD_REQUIRED_COLUMN,
                    table.name,
                    column.name,
                    "",
                    f"{spelling} NOT NULL",
                    (add, f"{alter} ALTER COLUMN {name} SET NOT NULL"),
                )
            continue
        if _normal(now.type) != _normal(spelling):
            if (known.get(_normal(now.type)), column.type) in WIDENINGS:
                kind, using = ChangeKind.WIDEN_TYPE, ""
            else:
                kind, using = ChangeKind.CHANGE_TYPE, f" USING CAST({name} AS {spelling})"
            statement = f"{alter} ALTER COLUMN {name} SET DATA TYPE {spelling}{using}"
            yield Change(kind, table.name, column.name, now.type, spelling, (statement,))
        if now.nullable and not column.nullable:
            statement = f"{alter} ALTER COLUMN {name} SET NOT NULL"
            yield Change(ChangeKind.REQUIRE_VALUE, table.name, column.name, statements=(statement,))
        elif column.nullable and not now.nullable:
            statement = f"{alter} ALTER COLUMN {name} DROP NOT NULL"
            yield Change(ChangeKind.ALLOW_NULL, table.name, column.name, statements=(statement,))
    for now in live.columns:
        if now.name not in table.column_names:
            yield Change(
                ChangeKind.DROP_COLUMN,
                table.name,
                now.name,
                now.type + ("" if now.nullable else " NOT NULL"),
                statements=(f"{alter} DROP COLUMN {quote(now.name)}",),
                # A column the model no longer writes is harmless while it may be NULL.
                stops_writes=not now.nullable,
            )


def _normal(spelling: str) -> str:
    """A type name compared loosely: case, spaces and PostgreSQL's long names aside."""
    text = re.sub(r"\s*([(),])\s*", r"\1", " ".join(spelling.lower().split()))
    text = text.replace("numeric", "decimal")
    return {"timestamp without time zone": "timestamp"}.get(text, text)


def _internal(table: str) -> bool:
    return table.startswith("factflow_") or table.endswith(rebuild_table(""))


def losses(warehouse: Warehouse, changes: Sequence[Change]) -> dict[Change, str]:
    """What each destructive change of `changes` would lose (or which rows would stop it),
    counted in the warehouse."""
    found: dict[Change, str] = {}
    for change in changes:
        table = quote(change.table)
        column = quote(change.column) if change.column else ""
        match change.kind:
            case ChangeKind.DROP_TABLE:
                rows = _count(warehouse, f"SELECT count(*) FROM {table}")
                found[change] = f"{rows:,} rows would be lost"
            case ChangeKind.DROP_COLUMN:
                values = _count(warehouse, f"SELECT count({column}) FROM {table}")
                found[change] = f"{values:,} values would be lost"
            case ChangeKind.CHANGE_TYPE:
                values = _count(warehouse, f"SELECT count({column}) FROM {table}")
                found[change] = (
                    f"{values:,} values would be cast, losing what {change.becomes} cannot keep "
                    "(a value it cannot hold stops the migration)"
                )
            case ChangeKind.REQUIRE_VALUE:
                nulls = _count(warehouse, f"SELECT count(*) - count({column}) FROM {table}")
                found[change] = f"{nulls:,} rows hold NULL" + (
                    ": the migration fails until none does" if nulls else ""
                )
            case ChangeKind.ADD_REQUIRED_COLUMN:
                rows = _count(warehouse, f"SELECT count(*) FROM {table}")
                found[change] = f"{rows:,} rows would have no value" + (
                    ": the migration fails unless the table is empty; declare it optional "
                    "(`| None`) instead"
                    if rows
                    else ""
                )
            case _:
                pass
    return found


def _count(warehouse: Warehouse, sql: str) -> int:
    [(count,)] = warehouse.query(sql).rows
    return int(count)


def render(changes: Sequence[Change], lost: Mapping[Change, str] | None = None) -> str:
    """One line per change, indented, with what it would lose (from `losses`) when known."""
    lines = []
    for change in changes:
        loss = (lost or {}).get(change)
        lines.append(f"  {change}" + (f": {loss}" if loss else ""))
    return "\n".join(lines)


def model_digest(schema: Schema) -> str:
    """A fingerprint of the model's tables, recorded with each migration."""
    return hashlib.sha256(msgspec.json.encode(schema.tables())).hexdigest()


def migrate(
    warehouse: Warehouse,
    schema: Schema,
    *,
    allow_destructive: bool = False,
    now: datetime | None = None,
) -> Migration:
    """Apply the changes bringing `warehouse` to `schema` in one transaction, and record them as
    the next schema version; the destructive ones only with `allow_destructive`.

    The destructive changes it refuses are left as they are and returned with what each would
    lose. Nothing is recorded when nothing is applied.

    Raises:
        ConfigurationError: a statement the warehouse refused; nothing was changed.
    """
    found = diff(warehouse, schema)
    refused = () if allow_destructive else found.destructive
    applied = tuple(change for change in found.changes if change not in refused)
    lost = losses(warehouse, refused)
    if not applied:
        return Migration(found.version, (), refused, lost)
    version = (found.version or 0) + 1
    changes = [statement for change in applied for statement in change.statements]
    statements = ";\n".join(changes)
    applied_at = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    types = warehouse.dialect.types
    record = [
        f"CREATE TABLE IF NOT EXISTS {SCHEMA_VERSIONS} ("
        f"version {types[ColumnType.INTEGER]} PRIMARY KEY, "
        f"applied_at {types[ColumnType.TIMESTAMP]} NOT NULL, "
        f"model_digest {types[ColumnType.TEXT]} NOT NULL, "
        f"statements {types[ColumnType.TEXT]} NOT NULL)",
        f"INSERT INTO {SCHEMA_VERSIONS} (version, applied_at, model_digest, statements) "
        f"VALUES ({version}, TIMESTAMP {_literal(applied_at.isoformat(sep=' '))}, "
        f"{_literal(model_digest(schema))}, {_literal(statements)})",
    ]
    # The views over the facts (factflow.warehouse.views) would stop PostgreSQL from dropping or
    # retyping the columns they read: dropped in the migration, made again by `prepare`.
    present = [name for (name,) in warehouse.query(VIEWS_QUERY).rows]
    dropped = [change.table for change in applied if change.kind is ChangeKind.DROP_TABLE]
    warehouse.migrate([*views_to_drop(schema, present, dropped), *changes, *record])
    warehouse.prepare(schema)
    return Migration(version, applied, refused, lost)


def _literal(text: str) -> str:
    """A standard SQL string literal (both backends read backslashes as themselves)."""
    return "'" + text.replace("'", "''") + "'"
