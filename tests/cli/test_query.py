"""`factflow query`: read-only SQL over the warehouse, as a table, CSV, JSON or Parquet."""

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from factflow.cli import main
from filled_warehouse import filled_warehouse

SPEND = (
    "SELECT currency, billing_currency, sum(billing_amount) AS billing_amount "
    "FROM fact_card_transaction GROUP BY 1, 2 ORDER BY 1, 2"
)


def factflow(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with filled_warehouse(request.param, tmp_path) as filled:
        yield filled


def count(url: str, table: str) -> int:
    result = factflow(
        "query", f"SELECT count(*) AS n FROM {table}", "--warehouse", url, "--format", "json"
    )
    assert result.exit_code == 0, result.output
    return int(json.loads(result.output)["rows"][0]["n"])


def test_json_answers_as_factflow_kpi_does(url: str) -> None:
    result = factflow("query", SPEND, "--warehouse", url, "--format", "json")
    assert result.exit_code == 0, result.output
    kpi = factflow("kpi", "spend_by_currency", "--warehouse", url, "--format", "json")
    assert json.loads(result.output)["rows"] == json.loads(kpi.output)["rows"]
    assert json.loads(result.output)["columns"] == [
        "currency",
        "billing_currency",
        "billing_amount",
    ]


def test_a_table_on_the_terminal_with_exact_decimals_and_a_row_count(url: str) -> None:
    result = factflow(
        "query",
        "SELECT CAST(1234.5 AS DECIMAL(18, 4)) AS amount, NULL AS nothing",
        "--warehouse",
        url,
    )
    assert result.exit_code == 0, result.output
    assert "1234.50" in result.output
    assert "NULL" in result.output
    assert "1 row" in result.output


def test_csv_and_parquet_to_files_keep_decimals(url: str, tmp_path: Path) -> None:
    csv_file, parquet_file = tmp_path / "spend.csv", tmp_path / "spend.parquet"
    for output, file in (("csv", csv_file), ("parquet", parquet_file)):
        result = factflow(
            "query", SPEND, "--warehouse", url, "--format", output, "--out", str(file)
        )
        assert result.exit_code == 0, result.output
    lines = csv_file.read_text().splitlines()
    assert lines[0] == "currency,billing_currency,billing_amount"
    table = pq.read_table(parquet_file)
    assert pa.types.is_decimal(table.schema.field("billing_amount").type)
    from_csv = [Decimal(line.rsplit(",", 1)[1]) for line in lines[1:]]
    assert from_csv == table.column("billing_amount").to_pylist()


def test_parquet_goes_to_standard_output_when_it_is_not_a_terminal(url: str) -> None:
    result = CliRunner().invoke(
        main, ["query", "SELECT 1 AS one", "--warehouse", url, "--format", "parquet"]
    )
    assert result.exit_code == 0
    assert result.stdout_bytes.startswith(b"PAR1")


def test_sql_from_standard_input(url: str) -> None:
    result = factflow(
        "query", "-", "--warehouse", url, "--format", "csv", stdin="SELECT 2 AS two\n"
    )
    assert result.exit_code == 0, result.output
    assert result.output == "two\n2\n"


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM fact_card_transaction",
        "DROP TABLE fact_card_transaction",
        "INSERT INTO dim_user (user_id, inferred) VALUES ('x', true)",
        "WITH gone AS (DELETE FROM fact_card_transaction RETURNING *) SELECT * FROM gone",
        "SELECT 1; DELETE FROM fact_card_transaction",
    ],
)
def test_a_statement_that_writes_is_refused_clearly_and_changes_nothing(
    url: str, statement: str
) -> None:
    before = count(url, "fact_card_transaction")
    result = factflow("query", statement, "--warehouse", url)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert "refused" in result.output
    assert "Traceback" not in result.output
    assert count(url, "fact_card_transaction") == before > 0


def test_a_query_that_fails_says_why(url: str) -> None:
    result = factflow("query", "SELECT * FROM no_such_table", "--warehouse", url)
    assert result.exit_code == 1
    assert "no_such_table" in result.output
    assert "Traceback" not in result.output


def test_without_sql_it_lists_what_can_be_queried() -> None:
    result = factflow("query")
    assert result.exit_code == 0, result.output
    for name in ("v_card_transaction", "fact_card_transaction", "dim_user__history"):
        assert name in result.output


def test_a_missing_duckdb_file_is_an_error_not_a_new_file(tmp_path: Path) -> None:
    result = factflow("query", "SELECT 1", "--warehouse", f"duckdb:///{tmp_path}/none.duckdb")
    assert result.exit_code == 1
    assert "no warehouse at" in result.output
    assert not (tmp_path / "none.duckdb").exists()
