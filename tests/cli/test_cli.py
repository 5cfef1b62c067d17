"""The command line, in process (click's runner) against real files in a temporary folder."""

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from banking_events import SETTLED
from factflow.cli import main
from factflow.testing import envelope


def factflow(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    lines = [
        envelope("card.transaction_settled", SETTLED, id="e-1"),
        envelope("card.transaction_settled", SETTLED, id="e-2"),  # re-published: counts once
        envelope("card.transaction_settled", SETTLED | {"transaction_id": "t-2", "amount": "x"}),
        b"this is not json",
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_kpi_without_a_name_lists_every_kpi_with_its_owner_and_description() -> None:
    result = factflow("kpi")
    assert result.exit_code == 0
    for name in ("travel_card_foreign_visa_users", "active_users_by_month", "spend_by_segment"):
        assert f"{name}  (owner: analytics)" in result.output
    assert "the talk's question" in result.output.lower()


def test_bootstrap_prints_counts_and_kpi_prints_the_json_of_the_contract(
    events_file: Path, tmp_path: Path
) -> None:
    warehouse = f"duckdb:///{tmp_path}/kpi.duckdb"
    result = factflow(
        "bootstrap",
        "--app",
        "factflow.examples.banking",
        "--from",
        str(events_file),
        "--warehouse",
        warehouse,
    )
    assert result.exit_code == 0, result.output
    assert "events: 4" in result.output
    assert "dead letters: 2" in result.output

    result = factflow(
        "kpi",
        "spend_by_currency",
        "--app",
        "factflow.examples.banking",
        "--warehouse",
        warehouse,
        "--format",
        "json",
    )
    assert json.loads(result.output) == {
        "kpi": "spend_by_currency",
        "rows": [{"currency": "EUR", "billing_currency": "DKK", "billing_amount": "74.60"}],
    }
    result = factflow(
        "kpi", "travel_card_foreign_visa_users", "--warehouse", warehouse, "--format", "json"
    )
    assert json.loads(result.output) == {
        "kpi": "travel_card_foreign_visa_users",
        "rows": [{"users": 0}],
    }


def test_a_kpi_answers_as_csv_or_parquet_with_exact_decimals_and_into_a_file(
    events_file: Path, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    warehouse = f"duckdb:///{tmp_path}/kpi.duckdb"
    factflow("bootstrap", "--from", str(events_file), "--warehouse", warehouse)
    answer = ["kpi", "spend_by_currency", "--warehouse", warehouse]

    csv = factflow(*answer, "--format", "csv")
    assert csv.output == "currency,billing_currency,billing_amount\nEUR,DKK,74.60\n"

    parquet = tmp_path / "spend.parquet"
    assert factflow(*answer, "--format", "parquet", "--out", str(parquet)).output == ""
    table = pq.read_table(parquet)
    assert pa.types.is_decimal(table.schema.field("billing_amount").type)
    assert table.to_pylist() == [
        {"currency": "EUR", "billing_currency": "DKK", "billing_amount": Decimal("74.6000")}
    ]

    written = tmp_path / "spend.json"
    factflow(*answer, "--format", "json", "--out", str(written))
    assert json.loads(written.read_text())["rows"][0]["billing_amount"] == "74.60"


def test_dlq_list_shows_every_dead_letter_with_its_reason(
    events_file: Path, tmp_path: Path
) -> None:
    warehouse = f"duckdb:///{tmp_path}/kpi.duckdb"
    factflow("bootstrap", "--from", str(events_file), "--warehouse", warehouse)
    result = factflow("dlq", "list", "--warehouse", warehouse, "--format", "json")
    letters = [json.loads(line) for line in result.output.splitlines()]
    assert len(letters) == 2
    reasons = " | ".join(letter["reason"] for letter in letters)
    assert "not a valid JSON envelope" in reasons
    assert "`data.amount` must be a decimal string" in reasons
    assert {letter["raw"] for letter in letters} >= {"this is not json"}


def test_an_unknown_kpi_is_a_clear_error_listing_the_known_ones(tmp_path: Path) -> None:
    result = factflow("kpi", "nope", "--warehouse", f"duckdb:///{tmp_path}/none.duckdb")
    assert result.exit_code == 1
    assert "no KPI 'nope'; known:" in result.output


def test_asking_a_warehouse_that_does_not_exist_says_how_to_fill_it(tmp_path: Path) -> None:
    result = factflow("kpi", "spend_by_currency", "--warehouse", f"duckdb:///{tmp_path}/x.duckdb")
    assert result.exit_code == 1
    assert "fill it first" in result.output


def test_an_unknown_app_module_is_a_clear_error(tmp_path: Path) -> None:
    result = factflow("kpi", "--app", "no.such.module")
    assert result.exit_code == 1
    assert "cannot import the app module 'no.such.module'" in result.output


def test_an_unsupported_warehouse_url_names_the_supported_ones(events_file: Path) -> None:
    result = factflow("bootstrap", "--from", str(events_file), "--warehouse", "oracle://db")
    assert result.exit_code == 1
    assert "use duckdb:///" in result.output


def test_settings_come_from_the_environment(events_file: Path, tmp_path: Path) -> None:
    warehouse = f"duckdb:///{tmp_path}/env.duckdb"
    runner = CliRunner(env={"FACTFLOW_WAREHOUSE": warehouse})
    result = runner.invoke(main, ["bootstrap", "--from", str(events_file)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "env.duckdb").exists()


def test_the_duckdb_memory_limit_is_an_option_of_the_url(events_file: Path, tmp_path: Path) -> None:
    warehouse = f"duckdb:///{tmp_path}/kpi.duckdb?memory_limit=100MB"
    assert (
        factflow("bootstrap", "--from", str(events_file), "--warehouse", warehouse).exit_code == 0
    )
    result = factflow(
        "bootstrap",
        "--from",
        str(events_file),
        "--warehouse",
        f"duckdb:///{tmp_path}/kpi.duckdb?memory_limit=lots",
    )
    assert result.exit_code == 1
    assert "memory_limit 'lots'" in result.output
    result = factflow(
        "kpi", "spend_by_currency", "--warehouse", f"duckdb:///{tmp_path}/kpi.duckdb?cache=no"
    )
    assert result.exit_code == 1
    assert "unknown option(s) ['cache']; known: memory_limit" in result.output


def test_every_command_loads_and_has_help() -> None:
    from factflow.cli import COMMANDS

    for name in COMMANDS:
        result = factflow(name, "--help")
        assert result.exit_code == 0, result.output
        assert f"Usage: main {name}" in result.output


def test_run_batches_more_events_from_the_embedded_log_than_from_a_broker() -> None:
    """A broker's prefetch window holds two batches; the log has no window to share."""
    from factflow.cli.run import _default_batch_size
    from factflow.runtime.consumer import DEFAULT_BATCH_SIZE, LOG_BATCH_SIZE

    assert _default_batch_size("log:///factflow-log") == LOG_BATCH_SIZE > DEFAULT_BATCH_SIZE
    assert _default_batch_size("amqp://guest:guest@127.0.0.1:5672/") == DEFAULT_BATCH_SIZE
    assert _default_batch_size("nats://127.0.0.1:4222") == DEFAULT_BATCH_SIZE
