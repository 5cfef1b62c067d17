"""Schema evolution on every backend: a warehouse of model v1 is brought to model v2 safely."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from factflow import ConfigurationError, Dimension, Fact, dimension, fact
from factflow.model.schema import Column, ColumnType, FactSpec, Schema, Table, compile_schema
from factflow.pipeline.changes import ChangeSet
from factflow.warehouse.base import Warehouse
from factflow.warehouse.duckdb import DIALECT
from factflow.warehouse.migrations import (
    SCHEMA_VERSIONS,
    ChangeKind,
    LiveColumn,
    LiveTable,
    SchemaDiff,
    compare,
    diff,
    migrate,
    model_digest,
    read_tables,
    render,
)

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


# -- model v1 -----------------------------------------------------------------------------------


@dimension(key="shop_id", scd=2, table="dim_shop")
class Shop(Dimension):
    shop_id: str
    city: str | None = None


@fact(key="order_id", references={"shop_id": Shop}, table="fact_order")
class Order(Fact):
    order_id: str
    shop_id: str
    quantity: int


V1 = compile_schema([Order], [Shop])


# -- model v2: a new fact, a new nullable column (in the middle), a wider type -----------------


@dimension(key="shop_id", scd=2, table="dim_shop")
class ShopV2(Dimension):
    shop_id: str
    region: str | None = None  # new
    city: str | None = None


@fact(key="order_id", references={"shop_id": ShopV2}, table="fact_order")
class OrderV2(Fact):
    order_id: str
    shop_id: str
    quantity: Decimal  # was int
    note: str | None = None  # new


@fact(key="refund_id", table="fact_refund")
class Refund(Fact):
    refund_id: str
    order_id: str


V2 = compile_schema([OrderV2, Refund], [ShopV2])


# -- destructive variants of v1 ---------------------------------------------------------------


@fact(key="order_id", references={"shop_id": Shop}, table="fact_order")
class OrderWithoutQuantity(Fact):
    order_id: str
    shop_id: str


@fact(key="order_id", references={"shop_id": Shop}, table="fact_order")
class OrderWithChannel(Fact):
    order_id: str
    shop_id: str
    quantity: int
    channel: str  # required, but the stored orders have none


def write(warehouse: Warehouse, schema: Schema, **tables: list[tuple[Any, ...]]) -> None:
    warehouse.prepare(schema)
    changes = ChangeSet()
    for name, rows in tables.items():
        if name.startswith("fact_"):
            changes.facts[name] = rows
        else:
            changes.dimension_changes[name] = rows
    warehouse.write(changes)


def rows(warehouse: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    return warehouse.query(sql).rows


def tables(warehouse: Warehouse) -> set[str]:
    return set(read_tables(warehouse))


@pytest.fixture
def v1_with_orders(warehouse: Warehouse) -> Warehouse:
    """A warehouse of model v1 holding two orders of one shop."""
    write(
        warehouse,
        V1,
        fact_order=[("o-1", "s-1", 3, "e-1", WHEN), ("o-2", "s-1", 5, "e-2", WHEN)],
        dim_shop=[("s-1", "Aarhus", "e-3", WHEN)],
    )
    return warehouse


def test_a_warehouse_prepared_from_the_model_matches_it(warehouse: Warehouse) -> None:
    warehouse.prepare(V1)
    assert diff(warehouse, V1).changes == ()
    assert diff(warehouse, V1).version is None  # never migrated


def test_the_diff_lists_a_new_fact_new_nullable_columns_and_a_wider_type(
    v1_with_orders: Warehouse,
) -> None:
    found = diff(v1_with_orders, V2)
    assert {(c.kind, c.table, c.column) for c in found.changes} == {
        (ChangeKind.ADD_TABLE, "fact_refund", None),
        (ChangeKind.ADD_COLUMN, "fact_order", "note"),
        (ChangeKind.WIDEN_TYPE, "fact_order", "quantity"),
        (ChangeKind.ADD_COLUMN, "dim_shop__changes", "region"),
        (ChangeKind.ADD_COLUMN, "dim_shop", "region"),
        (ChangeKind.ADD_COLUMN, "dim_shop__history", "region"),
    }
    assert found.destructive == ()


def test_migrate_applies_additive_changes_keeps_the_data_and_records_the_version(
    v1_with_orders: Warehouse,
) -> None:
    done = migrate(v1_with_orders, V2, now=WHEN)

    assert done.version == 1
    assert diff(v1_with_orders, V2) == SchemaDiff((), version=1)
    assert rows(v1_with_orders, "SELECT order_id, quantity, note FROM fact_order ORDER BY 1") == [
        ("o-1", Decimal(3), None),
        ("o-2", Decimal(5), None),
    ]
    [(version, applied_at, digest, statements)] = rows(
        v1_with_orders,
        f"SELECT version, applied_at, model_digest, statements FROM {SCHEMA_VERSIONS}",
    )
    assert (version, applied_at, digest) == (1, WHEN.replace(tzinfo=None), model_digest(V2))
    assert 'ADD COLUMN "note"' in statements
    assert 'CREATE TABLE IF NOT EXISTS "fact_refund"' in statements


def test_the_migrated_warehouse_takes_rows_of_the_new_model_whatever_its_column_order(
    v1_with_orders: Warehouse,
) -> None:
    """Added columns come last in the live tables, but in the middle of the model's rows."""
    migrate(v1_with_orders, V2)
    write(
        v1_with_orders,
        V2,
        fact_order=[("o-3", "s-1", Decimal("1.5"), "gift", "e-4", WHEN)],
        fact_refund=[("r-1", "o-1", "e-5", WHEN)],
        dim_shop=[("s-1", "Jutland", None, "e-6", WHEN.replace(day=2))],
    )
    assert rows(v1_with_orders, "SELECT quantity, note FROM fact_order WHERE order_id = 'o-3'") == [
        (Decimal("1.5"), "gift")
    ]
    assert rows(v1_with_orders, "SELECT shop_id, region, city FROM dim_shop") == [
        ("s-1", "Jutland", "Aarhus")
    ]
    assert rows(
        v1_with_orders, "SELECT region, city FROM dim_shop__history ORDER BY valid_from"
    ) == [(None, "Aarhus"), ("Jutland", "Aarhus")]


def test_a_second_migration_records_the_next_version(v1_with_orders: Warehouse) -> None:
    assert migrate(v1_with_orders, V2).version == 1
    assert migrate(v1_with_orders, V2).version == 1  # nothing to do: nothing recorded
    assert (
        migrate(v1_with_orders, compile_schema([OrderV2], [ShopV2]), allow_destructive=True).version
        == 2
    )
    assert rows(v1_with_orders, f"SELECT version FROM {SCHEMA_VERSIONS} ORDER BY 1") == [
        (1,),
        (2,),
    ]


def test_dropping_a_column_is_refused_naming_what_it_holds_and_applied_when_allowed(
    v1_with_orders: Warehouse,
) -> None:
    slim = compile_schema([OrderWithoutQuantity], [Shop])
    refused = migrate(v1_with_orders, slim)
    assert (refused.version, refused.applied) == (None, ())
    assert render(refused.refused, refused.lost).lower() == (
        "  - column fact_order.quantity bigint not null: 2 values would be lost"
    )
    assert rows(v1_with_orders, "SELECT sum(quantity) FROM fact_order") == [(8,)]

    assert migrate(v1_with_orders, slim, allow_destructive=True).version == 1
    assert rows(
        v1_with_orders, "SELECT order_id, shop_id, event_id, occurred_at FROM fact_order ORDER BY 1"
    ) == [
        ("o-1", "s-1", "e-1", WHEN.replace(tzinfo=None)),
        ("o-2", "s-1", "e-2", WHEN.replace(tzinfo=None)),
    ]


def test_additive_changes_are_applied_beside_refused_destructive_ones(
    v1_with_orders: Warehouse,
) -> None:
    """A column the model no longer has may stay; the new fact needs no --allow-destructive."""
    migrated = migrate(v1_with_orders, compile_schema([OrderWithoutQuantity, Refund], [Shop]))
    assert [str(change) for change in migrated.applied] == ["+ table fact_refund"]
    assert [str(change).lower() for change in migrated.refused] == [
        "- column fact_order.quantity bigint not null"
    ]
    assert migrated.version == 1
    assert "fact_refund" in tables(v1_with_orders)


def test_dropping_a_table_and_narrowing_a_type_are_refused_with_what_they_would_lose(
    v1_with_orders: Warehouse,
) -> None:
    migrate(v1_with_orders, V2)
    back = migrate(v1_with_orders, V1)  # fact_refund goes, quantity narrows to an integer
    lost = {(change.kind, change.table, change.column): text for change, text in back.lost.items()}
    assert lost[ChangeKind.DROP_TABLE, "fact_refund", None] == "0 rows would be lost"
    assert lost[ChangeKind.CHANGE_TYPE, "fact_order", "quantity"].startswith(
        "2 values would be cast, losing what"
    )
    assert "fact_refund" in tables(v1_with_orders)


def test_a_migration_is_one_transaction_all_or_nothing(v1_with_orders: Warehouse) -> None:
    """A required column cannot be added to stored rows: the tables made before it are undone."""
    with_channel = compile_schema([OrderWithChannel, Refund], [Shop])
    with pytest.raises(ConfigurationError, match=r"channel.*nothing was changed"):
        migrate(v1_with_orders, with_channel, allow_destructive=True)
    assert "fact_refund" not in tables(v1_with_orders)
    assert SCHEMA_VERSIONS not in tables(v1_with_orders)
    assert {c.column for c in diff(v1_with_orders, with_channel).changes} == {"channel", None}


def test_migrate_creates_every_table_of_a_brand_new_warehouse(warehouse: Warehouse) -> None:
    assert migrate(warehouse, V1).version == 1
    assert {"fact_order", "dim_shop", "dim_shop__changes", "dim_shop__history"} <= tables(warehouse)
    write(warehouse, V1, fact_order=[("o-1", "s-1", 3, "e-1", WHEN)])
    assert rows(warehouse, "SELECT order_id FROM fact_order") == [("o-1",)]


# -- what stops writes (factflow run refuses to start), compared without a warehouse -----------


def live(schema: Schema) -> dict[str, LiveTable]:
    """The tables a DuckDB warehouse prepared from `schema` reports."""
    return {
        table.name: LiveTable(
            table.name,
            tuple(LiveColumn(c.name, DIALECT.types[c.type], c.nullable) for c in table.columns),
        )
        for table in schema.tables()
    }


def test_missing_tables_and_what_the_model_no_longer_has_do_not_stop_writes() -> None:
    stored = live(V2)
    stored["fact_order"] = LiveTable(
        "fact_order",
        (*stored["fact_order"].columns, LiveColumn("legacy", "VARCHAR", nullable=True)),
    )
    stored["fact_old"] = LiveTable("fact_old", (LiveColumn("x", "BIGINT", nullable=True),))
    del stored["fact_refund"]
    changes = compare(V2, stored, DIALECT)
    assert {(c.kind, c.table): c.stops_writes for c in changes} == {
        (ChangeKind.ADD_TABLE, "fact_refund"): False,  # prepare creates it
        (ChangeKind.DROP_COLUMN, "fact_order"): False,
        (ChangeKind.DROP_TABLE, "fact_old"): False,
    }


def test_a_column_the_model_writes_differently_stops_writes() -> None:
    changes = compare(V2, live(V1), DIALECT)
    assert all(c.stops_writes for c in changes if c.kind is not ChangeKind.ADD_TABLE)
    [widened] = [c for c in changes if c.kind is ChangeKind.WIDEN_TYPE]
    assert str(widened) == "~ column fact_order.quantity: BIGINT → DECIMAL(38, 10) (wider)"


def test_factflows_own_tables_and_unfinished_rebuilds_are_not_the_models() -> None:
    stored = live(V1) | {
        name: LiveTable(name, (LiveColumn("x", "BIGINT", nullable=True),))
        for name in ("factflow_dead_letters", SCHEMA_VERSIONS, "fact_order__rebuild")
    }
    assert compare(V1, stored, DIALECT) == ()


def one_column(column_type: ColumnType) -> Schema:
    table = Table("fact_probe", (Column("value", column_type),), ("value",))
    return Schema((FactSpec("fact_probe", table, ("value",), {}),), ())


@pytest.mark.parametrize(
    ("was", "becomes", "kind"),
    [
        ("BIGINT", ColumnType.DECIMAL, ChangeKind.WIDEN_TYPE),
        ("DECIMAL(18,4)", ColumnType.DECIMAL, ChangeKind.WIDEN_TYPE),  # money to a decimal
        ("DATE", ColumnType.TIMESTAMP, ChangeKind.WIDEN_TYPE),
        ("DECIMAL(38,10)", ColumnType.INTEGER, ChangeKind.CHANGE_TYPE),
        ("VARCHAR", ColumnType.INTEGER, ChangeKind.CHANGE_TYPE),
        ("BIGINT", ColumnType.FLOAT, ChangeKind.CHANGE_TYPE),  # past 2**53 a double is not exact
    ],
)
def test_only_exact_conversions_are_widenings(
    was: str, becomes: ColumnType, kind: ChangeKind
) -> None:
    stored = {"fact_probe": LiveTable("fact_probe", (LiveColumn("value", was, nullable=True),))}
    [change] = compare(one_column(becomes), stored, DIALECT)
    assert change.kind is kind
    assert change.destructive is (kind is ChangeKind.CHANGE_TYPE)


def test_a_rebuild_of_a_migrated_fact_keeps_every_column_in_its_place(
    v1_with_orders: Warehouse,
) -> None:
    migrate(v1_with_orders, V2)
    v1_with_orders.prepare(V2)
    shadow = v1_with_orders.begin_rebuild("fact_order")
    changes = ChangeSet()
    changes.facts["fact_order"] = [("o-1", "s-1", Decimal("3.5"), "rebuilt", "e-1", WHEN)]
    changes.rebuild_into["fact_order"] = shadow
    v1_with_orders.write(changes)
    assert v1_with_orders.finish_rebuild("fact_order") == 2
    assert rows(v1_with_orders, "SELECT order_id, quantity, note FROM fact_order ORDER BY 1") == [
        ("o-1", Decimal("3.5"), "rebuilt"),
        ("o-2", Decimal(5), None),
    ]
