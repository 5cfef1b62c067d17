"""`factflow simulate` and `factflow bootstrap` with Parquet files and source URLs (no server)."""

from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner, Result

from factflow.cli import main


def factflow(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_simulate_writes_a_parquet_file_that_bootstraps_like_its_jsonl(tmp_path: Path) -> None:
    outputs = []
    for name in ("events.parquet", "events.jsonl"):
        result = factflow(
            "simulate", "--events", "500", "--seed", "4", "--duplicates", "0.1",
            "--out", str(tmp_path / name),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert f"wrote 500 events to {tmp_path / name}" in result.output
        warehouse = f"duckdb:///{tmp_path}/{name}.duckdb"
        result = factflow("bootstrap", "--from", str(tmp_path / name), "--warehouse", warehouse)
        assert result.exit_code == 0, result.output
        outputs.append(result.output.split("time:")[0])
    assert pq.ParquetFile(tmp_path / "events.parquet").metadata.num_rows == 500
    assert outputs[0] == outputs[1]
    assert "events: 500  rows: 500  dead letters: 0" in outputs[0]


def test_simulate_needs_somewhere_to_write() -> None:
    result = factflow("simulate", "--events", "10")
    assert result.exit_code == 2
    assert "give --out FILE, --to URL, or both" in result.output


def test_simulate_refuses_bad_lines_in_a_parquet_file(tmp_path: Path) -> None:
    out = tmp_path / "events.parquet"
    result = factflow("simulate", "--events", "10", "--bad-lines", "0.1", "--out", str(out))
    assert result.exit_code == 2
    assert "cannot hold invalid messages" in result.output
    assert not out.exists()


def test_simulate_to_something_else_than_postgresql_says_what_to_give(tmp_path: Path) -> None:
    result = factflow("simulate", "--events", "10", "--to", "mysql://me:secret@db/bank")
    assert result.exit_code == 1
    assert "give a postgresql://user@host/database URL" in result.output
    assert "secret" not in result.output


def test_bootstrap_from_a_missing_file_says_what_it_takes(tmp_path: Path) -> None:
    result = factflow("bootstrap", "--from", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 2
    assert "no event file" in result.output
    assert "or the URL the app's bootstrap sources read" in result.output


def test_bootstrap_sources_are_chosen_only_with_a_url(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"{}\n")
    result = factflow("bootstrap", "--from", str(events), "--source", "users")
    assert result.exit_code == 2
    assert "--source selects bootstrap sources, which read from a URL" in result.output


def test_bootstrap_names_an_unknown_source_and_the_known_ones(tmp_path: Path) -> None:
    result = factflow(
        "bootstrap", "--from", "postgresql://nobody@127.0.0.1:1/bank", "--source", "loans",
        "--warehouse", f"duckdb:///{tmp_path}/kpi.duckdb",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "no bootstrap source 'loans'; known: users, accounts, cards, goals, transactions" in (
        result.output
    )
