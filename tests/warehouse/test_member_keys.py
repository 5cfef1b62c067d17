"""Durable member keys on every backend: each dimension member gets a number when its row is
made and keeps it through every change; facts carry their members' numbers, and a warehouse
made before them gets them by migrating."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from factflow import Dimension, Fact, dimension, fact
from factflow.model.schema import compile_schema
from factflow.pipeline.changes import ChangeSet
from factflow.warehouse.base import Warehouse
from factflow.warehouse.migrations import ChangeKind, diff, migrate

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


@dimension(key="shop_id", scd=2, table="dim_shop")
class Shop(Dimension):
    shop_id: str
    city: str | None = None


@fact(key="order_id", references={"shop_id": Shop}, table="fact_order")
class Order(Fact):
    order_id: str
    shop_id: str | None


SCHEMA = compile_schema([Order], [Shop])


def write(
    warehouse: Warehouse,
    *,
    orders: Sequence[tuple[Any, ...]] = (),
    shops: Sequence[tuple[Any, ...]] = (),
) -> None:
    """One batch, the orders' shops among its references, as a pipeline's batch has them."""
    changes = ChangeSet()
    if orders:
        changes.facts["fact_order"] = list(orders)
        changes.references["dim_shop"] = {o[1] for o in orders if o[1] is not None}
    if shops:
        changes.dimension_changes["dim_shop"] = list(shops)
    warehouse.write(changes)


def member_keys(warehouse: Warehouse) -> dict[str, int]:
    return dict(warehouse.query("SELECT shop_id, member_key FROM dim_shop").rows)


def order_keys(warehouse: Warehouse) -> dict[str, tuple[str | None, int | None]]:
    rows = warehouse.query("SELECT order_id, shop_id, shop_id__member_key FROM fact_order").rows
    return {order: (shop, key) for order, shop, key in rows}


def test_a_member_keeps_its_number_from_inferred_through_every_change(
    warehouse: Warehouse,
) -> None:
    warehouse.prepare(SCHEMA)
    write(warehouse, orders=[("o-1", "s-1", "e-1", WHEN)])  # s-1 known only from the order
    first = member_keys(warehouse)["s-1"]
    write(warehouse, shops=[("s-1", "Aarhus", "e-2", WHEN), ("s-2", "Odense", "e-3", WHEN)])
    write(warehouse, shops=[("s-1", "Vejle", "e-4", WHEN + timedelta(days=1))])
    write(warehouse, shops=[("s-1", "Aalborg", "e-5", WHEN - timedelta(days=1))])  # late

    keys = member_keys(warehouse)
    assert keys["s-1"] == first
    assert keys["s-2"] != first
    assert warehouse.query("SELECT city FROM dim_shop WHERE shop_id = 's-1'").rows == [("Vejle",)]


def test_a_fact_carries_the_number_of_the_member_it_refers_to(warehouse: Warehouse) -> None:
    warehouse.prepare(SCHEMA)
    write(warehouse, shops=[("s-1", "Aarhus", "e-1", WHEN)])
    # s-2's own change arrives in the same batch as its first order; s-3 only through orders.
    changes = ChangeSet()
    changes.facts["fact_order"] = [
        ("o-1", "s-1", "e-2", WHEN),
        ("o-2", "s-2", "e-3", WHEN),
        ("o-3", "s-3", "e-4", WHEN),
        ("o-4", None, "e-5", WHEN),
    ]
    changes.references["dim_shop"] = {"s-1", "s-2", "s-3"}
    changes.dimension_changes["dim_shop"] = [("s-2", "Odense", "e-6", WHEN)]
    warehouse.write(changes)

    keys = member_keys(warehouse)
    assert order_keys(warehouse) == {
        "o-1": ("s-1", keys["s-1"]),
        "o-2": ("s-2", keys["s-2"]),
        "o-3": ("s-3", keys["s-3"]),
        "o-4": (None, None),
    }
    assert len(set(keys.values())) == 3


def test_a_warehouse_made_before_member_keys_gets_them_by_migrating(
    warehouse: Warehouse,
) -> None:
    warehouse.prepare(SCHEMA)
    write(warehouse, shops=[("s-1", "Aarhus", "e-1", WHEN), ("s-2", "Odense", "e-2", WHEN)])
    write(warehouse, orders=[("o-1", "s-1", "e-3", WHEN), ("o-2", "s-2", "e-4", WHEN)])
    # As an earlier factflow left it: no member keys anywhere.
    warehouse.migrate(
        [
            "DROP VIEW v_order",  # reads the member key
            "ALTER TABLE fact_order DROP COLUMN shop_id__member_key",
            "ALTER TABLE dim_shop DROP COLUMN member_key",
        ]
    )
    found = diff(warehouse, SCHEMA)
    assert [(c.kind, c.table, c.column) for c in found.changes] == [
        (ChangeKind.ADD_COLUMN, "dim_shop", "member_key"),
        (ChangeKind.ADD_COLUMN, "fact_order", "shop_id__member_key"),
    ]

    migrate(warehouse, SCHEMA)

    keys = member_keys(warehouse)
    assert sorted(keys) == ["s-1", "s-2"] and None not in keys.values()
    assert order_keys(warehouse) == {"o-1": ("s-1", keys["s-1"]), "o-2": ("s-2", keys["s-2"])}
    # New members are numbered on from there.
    write(warehouse, orders=[("o-3", "s-3", "e-5", WHEN)])
    assert member_keys(warehouse)["s-3"] not in (keys["s-1"], keys["s-2"])
    assert diff(warehouse, SCHEMA).changes == ()
