"""The whole embedded path, checked against an independent computation of every KPI.

`banking_oracle` computes the KPIs from the raw messages in plain Python, straight from the
contract; the simulator's stream carries duplicates, re-publications under new envelope ids,
out-of-order arrival and bad lines.
"""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from banking_oracle import expected_kpis, parse_valid
from factflow.cli import main
from factflow.examples.banking import app
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.runtime.consumer import ConsumerOptions, run_consumer
from factflow.testing import Harness, in_any_order
from factflow.transport.log import LogTransport
from factflow.transport.publishing import outgoing
from factflow.warehouse.duckdb import DuckDBWarehouse
from model_dump import dump_model

MESSY = SimulationOptions(
    events=6000,
    seed=11,
    duplicates=0.05,
    republications=0.03,
    shuffle_window=400,
    bad_lines=0.01,
)


@pytest.fixture(scope="module")
def messages() -> list[bytes]:
    return list(simulate(MESSY))


@pytest.fixture(scope="module")
def expected(messages: list[bytes]) -> dict[str, list[dict[str, object]]]:
    return expected_kpis(messages)


def test_the_stream_exercises_every_kpi(expected: dict[str, list[dict[str, object]]]) -> None:
    assert expected["travel_card_foreign_visa_users"][0]["users"] > 0
    segments = {row["segment"] for row in expected["spend_by_segment"]}
    assert {"standard", "plus"} <= segments
    assert len(expected["active_users_by_month"]) > 1


def test_bootstrap_of_a_messy_file_gives_the_independently_computed_kpis(
    messages: list[bytes], expected: dict[str, list[dict[str, object]]], tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(messages) + b"\n")
    warehouse = f"duckdb:///{tmp_path}/kpi.duckdb"
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "bootstrap",
            "--app",
            "factflow.examples.banking",
            "--from",
            str(events),
            "--warehouse",
            warehouse,
            "--batch-size",
            "700",
        ],
    )
    assert result.exit_code == 0, result.output
    for name in app.kpis:
        result = runner.invoke(
            main,
            [
                "kpi",
                name,
                "--app",
                "factflow.examples.banking",
                "--warehouse",
                warehouse,
                "--format",
                "json",
            ],
        )
        assert json.loads(result.output) == {"kpi": name, "rows": expected[name]}, name


def test_every_bad_line_is_kept_as_a_dead_letter(messages: list[bytes]) -> None:
    harness = Harness(app)
    harness.deliver(messages)
    expected_bad = {m for m in messages if parse_valid(m) is None}
    assert expected_bad, "the stream should carry bad lines"
    assert {d.raw for d in harness.dead_letters()} == expected_bad


def test_consuming_from_the_embedded_log_gives_the_same_kpis(
    messages: list[bytes], expected: dict[str, list[dict[str, object]]], tmp_path: Path
) -> None:
    transport = LogTransport(tmp_path / "log")
    transport.publish(outgoing(messages, refused := []))
    with DuckDBWarehouse(tmp_path / "kpi.duckdb") as warehouse:
        run_consumer(
            app,
            transport,
            warehouse,
            ConsumerOptions(batch_size=500, max_wait=0.01, stop_when_idle=True),
        )
        harness = Harness(app, warehouse)
        for name in app.kpis:
            assert harness.kpi(name) == expected[name], name
    transport.close()
    assert all(r.reason for r in refused)


def test_any_arrival_order_and_batching_gives_the_same_warehouse(messages: list[bytes]) -> None:
    sample = messages[:1500]
    reference = dump_model(sample, batch_size=1500)
    for seed, batch_size in ((5, 50), (6, 300)):
        # Shuffled, every message twice: redeliveries in the same batch and in later ones.
        assert dump_model(in_any_order(sample, seed=seed), batch_size=batch_size) == reference
