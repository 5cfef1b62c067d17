"""`factflow.insight` in a notebook: KPIs and SQL as Arrow, Polars and pandas, decimals exact."""

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from factflow.errors import ConfigurationError, DeclarationError
from factflow.examples.banking import app
from factflow.insight import Insight, connect, to_pandas, to_polars
from factflow.insight.kpi import answer
from filled_warehouse import filled_warehouse


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def bank(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Insight]:
    with (
        filled_warehouse(request.param, tmp_path) as url,
        connect(url, app="factflow.examples.banking") as insight,
    ):
        yield insight


def test_every_kpi_is_the_answer_of_factflow_kpi_as_an_arrow_table(bank: Insight) -> None:
    assert set(bank.kpis) == set(app.kpis)
    for name in app.kpis:
        table = bank.kpi(name)
        assert isinstance(table, pa.Table)
        assert table.to_pylist() == answer(app, name, bank.warehouse)


def test_kpi_amounts_are_arrow_decimals_and_stay_decimals_in_polars_and_pandas(
    bank: Insight,
) -> None:
    table = bank.kpi("spend_by_segment")
    assert pa.types.is_decimal(table.schema.field("billing_amount").type)
    frame = to_polars(table)
    assert isinstance(frame.schema["billing_amount"], pl.Decimal)
    assert frame["billing_amount"].sum() == sum(table.column("billing_amount").to_pylist())
    pandas = to_pandas(table)
    assert pandas["billing_amount"].dtype == object
    assert all(isinstance(v, Decimal) for v in pandas["billing_amount"])


def test_a_query_with_parameters_through_the_flat_view(bank: Insight) -> None:
    table = bank.query(
        "SELECT user_segment_at_event AS segment, count(*) AS n, count(*) AS n "
        "FROM v_card_transaction WHERE billing_currency = $1 GROUP BY 1 ORDER BY 1",
        ["DKK"],
    )
    assert table.column_names == ["segment", "n", "n_2"]
    assert sum(table.column("n").to_pylist()) > 0


def test_pandas_keeps_integers_with_nulls_as_integers() -> None:
    table = pa.table({"n": pa.array([1, None], pa.int64()), "flag": pa.array([True, None])})
    frame = to_pandas(table)
    assert str(frame["n"].dtype) == "Int64"
    assert frame["n"].tolist() == [1, pd.NA]
    assert str(frame["flag"].dtype) == "boolean"


def test_kpis_need_an_app_and_a_known_name(tmp_path: Path) -> None:
    with filled_warehouse("duckdb", tmp_path) as url:
        with connect(url) as anonymous:
            assert anonymous.query("SELECT 1 AS one").to_pylist() == [{"one": 1}]
            with pytest.raises(ConfigurationError, match="app="):
                anonymous.kpi("spend_by_segment")
        with connect(url, app=app) as bank, pytest.raises(DeclarationError, match="known:"):
            bank.kpi("nope")


def test_a_kpi_with_no_data_answers_its_zero_row(tmp_path: Path) -> None:
    from factflow.warehouse.duckdb import DuckDBWarehouse

    path = tmp_path / "empty.duckdb"
    with DuckDBWarehouse(path) as writer:
        writer.prepare(app.schema)
    with connect(f"duckdb:///{path}", app=app) as bank:
        assert bank.kpi("travel_card_foreign_visa_users").to_pylist() == [{"users": 0}]
        assert bank.kpi("spend_by_currency").num_rows == 0


def test_connect_refuses_what_it_cannot_open(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no warehouse at"):
        connect(f"duckdb:///{tmp_path}/missing.duckdb")
    with pytest.raises(ConfigurationError, match="unsupported warehouse"):
        connect("mysql://localhost/x")
