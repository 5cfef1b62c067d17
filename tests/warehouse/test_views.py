"""What BI tools see: comments from the declarations and a flat view per fact, on both backends."""

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import msgspec
import pytest

from conftest import service_url
from factflow.examples.banking import app
from factflow.model.declare import Dimension, Fact, dimension, fact
from factflow.model.schema import ColumnType, compile_schema
from factflow.model.types import Money
from factflow.testing import Harness, envelope
from factflow.warehouse import migrations
from factflow.warehouse.base import Warehouse
from factflow.warehouse.duckdb import DuckDBWarehouse
from factflow.warehouse.views import comments_query, model_views

SPEND = {
    "card_id": "c-1",
    "user_id": "u-1",
    "amount": "10.00",
    "currency": "EUR",
    "billing_amount": "75.00",
    "billing_currency": "DKK",
    "merchant": "m",
    "merchant_category": "travel",
    "merchant_country": "DE",
}


def spend(tx: str, when: str) -> bytes:
    return envelope("card.transaction_settled", SPEND | {"transaction_id": tx}, occurred_at=when)


def comments(store: Warehouse) -> dict[tuple[str, str | None], str]:
    rows = store.query(comments_query(store.dialect.name)).rows
    return {(relation, column): text for relation, column, text in rows}


def rows(store: Warehouse, sql: str) -> list[dict[str, Any]]:
    return store.query(sql).as_dicts()


def test_the_flat_view_joins_current_attributes_and_those_at_the_time_of_each_fact(
    warehouse: Warehouse,
) -> None:
    harness = Harness(app, warehouse)
    harness.deliver(
        [
            spend("t-0", "2026-01-01T00:00:00Z"),  # before the user had a segment
            spend("t-1", "2026-01-05T00:00:00Z"),
            spend("t-2", "2026-02-05T00:00:00Z"),
            envelope(
                "user.user_created",
                {"user_id": "u-1", "country": "DK", "segment": "standard"},
                occurred_at="2026-01-02T00:00:00Z",
            ),
            envelope(
                "user.user_updated",
                {"user_id": "u-1", "segment": "plus"},
                occurred_at="2026-02-01T00:00:00Z",
            ),
            envelope(
                "card.card_issued",
                {"card_id": "c-1", "user_id": "u-1", "account_id": "a-1", "product": "travel_card"},
            ),
        ]
    )
    warehouse.prepare(app.schema)  # again: nothing changes
    found = rows(
        warehouse,
        "SELECT transaction_id, billing_amount, user_segment, user_segment_at_event, "
        "user_country_at_event, card_product FROM v_card_transaction ORDER BY transaction_id",
    )
    assert [tuple(row.values())[2:] for row in found] == [
        ("plus", None, None, "travel_card"),
        ("plus", "standard", "DK", "travel_card"),
        ("plus", "plus", "DK", "travel_card"),
    ]
    assert {str(row["billing_amount"]) for row in found} == {"75.0000"}


def test_every_table_column_and_view_has_a_comment(warehouse: Warehouse) -> None:
    warehouse.prepare(app.schema)
    warehouse.prepare(app.schema)
    found = comments(warehouse)
    assert found[("fact_card_transaction", None)].startswith("A settled card transaction")
    assert found[("fact_card_transaction", "card_id")] == "Refers to dim_card.card_id."
    assert "NULL for the latest" in found[("dim_user__history", "valid_to")]
    assert "SCD type 2" in found[("dim_user__history", None)]
    assert found[("dim_user", "inferred")].startswith("True while the key is known only")
    view = found[("v_card_transaction", None)]
    assert "user_*_at_event" in view
    assert found[("v_card_transaction", "user_segment_at_event")] == (
        "segment of the dim_user in user_id, as it was when the fact occurred."
    )


@dimension(key="shop_id", scd=2)
class Shop(Dimension):
    """Shops that sell things."""

    shop_id: str
    region: Annotated[str | None, msgspec.Meta(description="Sales region, as sales names it")] = (
        None
    )


@fact(key="order_id", references={"shop_id": Shop})
class Order(Fact):
    """One order; its total in the shop's currency."""

    order_id: str
    shop_id: str
    total: Annotated[Money, msgspec.Meta(description="What the customer paid.")]


def test_annotated_fields_are_columns_of_their_type() -> None:
    schema = compile_schema([Order], [Shop])
    columns = {c.name: c for c in schema.fact("fact_order").table.columns}
    assert (columns["total"].type, columns["total"].nullable) == (ColumnType.MONEY, False)
    region = next(c for c in schema.dimension("dim_shop").current.columns if c.name == "region")
    assert (region.type, region.nullable) == (ColumnType.TEXT, True)
    assert schema.dimension("dim_shop").description == "Shops that sell things."


def test_docstrings_and_field_descriptions_become_comments(warehouse: Warehouse) -> None:
    schema = compile_schema([Order], [Shop])
    warehouse.prepare(schema)
    found = comments(warehouse)
    assert found[("fact_order", None)].startswith("One order; its total in the shop's currency.")
    assert found[("fact_order", "total")] == "What the customer paid."
    assert found[("dim_shop", "region")] == "Sales region, as sales names it"
    assert found[("v_order", "shop_region_at_event")] == (
        "Sales region, as sales names it. (region of the dim_shop in shop_id, as it was when the "
        "fact occurred.)"
    )


def test_a_view_of_other_columns_is_replaced(warehouse: Warehouse) -> None:
    warehouse.prepare(app.schema)
    warehouse.migrate(
        ["DROP VIEW v_card_transaction", "CREATE VIEW v_card_transaction AS SELECT 1 AS x"]
    )
    warehouse.prepare(app.schema)
    columns = warehouse.query("SELECT * FROM v_card_transaction LIMIT 0").columns
    [view] = [v for v in model_views(app.schema) if v.name == "v_card_transaction"]
    assert columns == tuple(view.columns)
    assert comments(warehouse)[("v_card_transaction", "card_product")]


@dimension(key="shop_id", scd=2, table="dim_shop")
class ShopWithoutRegion(Dimension):
    shop_id: str


@fact(key="order_id", references={"shop_id": ShopWithoutRegion}, table="fact_order")
class OrderWithoutTotal(Fact):
    order_id: str
    shop_id: str


def test_a_migration_drops_columns_the_views_read_and_makes_the_views_again(
    warehouse: Warehouse,
) -> None:
    warehouse.prepare(compile_schema([Order], [Shop]))
    smaller = compile_schema([OrderWithoutTotal], [ShopWithoutRegion])
    done = migrations.migrate(warehouse, smaller, allow_destructive=True)
    assert {(c.table, c.column) for c in done.applied} >= {("fact_order", "total")}
    assert warehouse.query("SELECT * FROM v_order LIMIT 0").columns == (
        "order_id",
        "shop_id",
        "event_id",
        "occurred_at",
    )


# -- PostgreSQL: several writers, and views it cannot replace ---------------------------------


@pytest.fixture
def postgres_schema() -> Iterator[Callable[[], Any]]:
    from factflow.warehouse.postgres import PostgresWarehouse

    url, name = service_url("postgres"), f"test_{uuid.uuid4().hex[:12]}"
    opened: list[PostgresWarehouse] = []

    def open_one() -> PostgresWarehouse:
        opened.append(PostgresWarehouse(url, schema=name))
        return opened[-1]

    yield open_one
    opened[0].drop_schema()
    for store in opened:
        store.close()


@pytest.mark.postgres
def test_several_writers_prepare_the_views_at_once(postgres_schema: Callable[[], Any]) -> None:
    stores = [postgres_schema() for _ in range(4)]
    errors: list[BaseException] = []

    def prepare(store: Warehouse) -> None:
        try:
            store.prepare(app.schema)
        except BaseException as error:  # collected for the assertion below
            errors.append(error)

    threads = [threading.Thread(target=prepare, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert stores[0].query("SELECT count(*) FROM v_card_transaction").rows == [(0,)]


@pytest.mark.postgres
def test_a_view_postgresql_cannot_replace_is_logged_and_writing_goes_on(
    postgres_schema: Callable[[], Any], caplog: pytest.LogCaptureFixture
) -> None:
    store = postgres_schema()
    store.prepare(app.schema)
    store.migrate(
        [
            "DROP VIEW v_card_transaction",
            "CREATE VIEW v_card_transaction AS SELECT 1 AS x",
            "CREATE VIEW users_report AS SELECT x FROM v_card_transaction",  # someone else's
        ]
    )
    with caplog.at_level(logging.WARNING, logger="factflow.warehouse"):
        store.prepare(app.schema)
    assert "v_card_transaction" in caplog.text
    Harness(app, store).deliver([spend("t-1", "2026-01-05T00:00:00Z")])
    assert store.query("SELECT count(*) FROM fact_card_transaction").rows == [(1,)]


def test_a_view_duckdb_cannot_make_is_logged_and_the_rest_of_the_model_is_made(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with DuckDBWarehouse(None) as store:
        # Someone else's table under the name of a view: DuckDB refuses to replace it with it.
        store.migrate(["CREATE TABLE v_card_transaction (x INTEGER)"])
        with caplog.at_level(logging.WARNING, logger="factflow.warehouse"):
            store.prepare(app.schema)
        assert "v_card_transaction" in caplog.text
        assert comments(store)[("fact_card_transaction", None)]
        assert rows(store, "SELECT count(*) AS n FROM v_account_balance_change") == [{"n": 0}]
        Harness(app, store).deliver([spend("t-1", "2026-01-05T00:00:00Z")])
        assert store.query("SELECT count(*) FROM fact_card_transaction").rows == [(1,)]
