"""Parquet event files: one row per envelope, read back as the same raw envelopes, in batches."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from factflow.bootstrap.files import bootstrap_file
from factflow.errors import DecodeError
from factflow.examples.banking import app
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.testing import Harness
from factflow.transport import parquet
from factflow.transport.files import read_events, write_events
from factflow.warehouse.duckdb import DuckDBWarehouse

STREAM = SimulationOptions(events=3000, seed=21, duplicates=0.02, republications=0.02)


def read_all(path: Path, batch_size: int = 1000) -> list[bytes]:
    return [message for batch in read_events(path, batch_size) for message in batch]


def envelope_row(**changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": "e-1",
        "type": "user.user_created",
        "source": "user-service",
        "occurred_at": datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC),
        "version": 1,
        "data": '{"user_id":"u-1","country":"DK","segment":"plus"}',
    }
    return row | changes


def write_rows(path: Path, rows: list[dict[str, object]], schema: pa.Schema | None = None) -> Path:
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def test_a_simulated_stream_round_trips_byte_for_byte(tmp_path: Path) -> None:
    messages = list(simulate(STREAM))
    path = tmp_path / "events.parquet"
    assert write_events(path, messages) == len(messages)
    assert pq.read_schema(path) == parquet.SCHEMA
    assert read_all(path) == messages


def test_batches_have_the_requested_size_across_row_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parquet, "ROW_GROUP", 700)
    path = tmp_path / "events.parquet"
    write_events(path, simulate(SimulationOptions(events=2500, seed=1)))
    assert pq.ParquetFile(path).metadata.num_row_groups == 4
    assert [len(batch) for batch in read_events(path, 1000)] == [1000, 1000, 500]


def test_reading_memory_does_not_grow_with_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parquet, "ROW_GROUP", 500)

    def peak_while_reading(events: int) -> tuple[int, int]:
        path = tmp_path / f"{events}.parquet"
        write_events(path, simulate(SimulationOptions(events=events, seed=2)))
        baseline = pa.total_allocated_bytes()
        peak = 0
        for _ in read_events(path, 500):
            peak = max(peak, pa.total_allocated_bytes() - baseline)
        return peak, pq.read_table(path).nbytes

    small, _ = peak_while_reading(10_000)
    large, whole = peak_while_reading(50_000)
    assert large < 1.5 * small, (small, large)
    assert large < whole / 3, (large, whole)


def test_progress_reaches_the_size_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    write_events(path, simulate(SimulationOptions(events=3000, seed=3)))
    reported: list[int] = []
    for _ in read_events(path, 1000, on_progress=reported.append):
        pass
    assert reported == sorted(reported)
    assert reported[-1] == path.stat().st_size


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        # Parquet keeps seconds as milliseconds; the reader spells milliseconds at least.
        (pa.array([datetime(2026, 3, 1, 12, tzinfo=UTC)], pa.timestamp("s", tz="UTC")),
         "2026-03-01T12:00:00.000Z"),
        (pa.array([datetime(2026, 3, 1, 12, 0, 0, 5, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
         "2026-03-01T12:00:00.000005Z"),
        (pa.array([1_772_366_400_123_000_000], pa.timestamp("ns", tz="Europe/Copenhagen")),
         "2026-03-01T12:00:00.123Z"),
        (pa.array(["2026-03-01T13:00:00+01:00"]), "2026-03-01T13:00:00+01:00"),
    ],
)  # fmt: skip
def test_occurred_at_may_be_any_zoned_timestamp_or_rfc3339_text(
    tmp_path: Path, column: pa.Array, expected: str
) -> None:
    table = pa.Table.from_pylist([envelope_row()]).set_column(3, "occurred_at", column)
    pq.write_table(table, tmp_path / "events.parquet")
    [message] = read_all(tmp_path / "events.parquet")
    assert json.loads(message)["occurred_at"] == expected


def test_extra_columns_are_ignored_and_data_may_be_binary(tmp_path: Path) -> None:
    row = envelope_row(data=b'{"user_id":"u-1","country":"DK","segment":"plus"}', extra=7)
    [message] = read_all(write_rows(tmp_path / "events.parquet", [row]))
    assert json.loads(message) == {
        "id": "e-1",
        "type": "user.user_created",
        "source": "user-service",
        "occurred_at": "2026-03-01T12:00:00.123Z",
        "version": 1,
        "data": {"user_id": "u-1", "country": "DK", "segment": "plus"},
    }


def test_rows_that_break_the_contract_become_dead_letters_with_their_reason(
    tmp_path: Path,
) -> None:
    rows = [
        envelope_row(id="good"),
        envelope_row(id="no-data", data=None),
        envelope_row(id="bad-json", data='{"user_id": "u-2",'),
        envelope_row(id=None),
    ]
    path = write_rows(tmp_path / "events.parquet", rows)
    with DuckDBWarehouse(None) as warehouse:
        total = bootstrap_file(app, path, warehouse, batch_size=2)
        harness = Harness(app, warehouse)
        reasons = sorted(letter.reason for letter in harness.dead_letters())
        assert harness.rows("dim_user", order_by="user_id")[0]["user_id"] == "u-1"
    assert (total.messages, total.dead_letters) == (4, 3)
    assert any("`data`" in reason for reason in reasons), reasons
    assert any("not a valid JSON envelope" in reason for reason in reasons), reasons
    assert any("`id`" in reason for reason in reasons), reasons


def test_a_bootstrap_from_parquet_equals_one_from_jsonl(tmp_path: Path) -> None:
    messages = list(simulate(STREAM))
    write_events(tmp_path / "events.parquet", messages)
    write_events(tmp_path / "events.jsonl", messages)
    answers = []
    for name in ("events.parquet", "events.jsonl"):
        with DuckDBWarehouse(None) as warehouse:
            bootstrap_file(app, tmp_path / name, warehouse, batch_size=700)
            harness = Harness(app, warehouse)
            answers.append({kpi: harness.kpi(kpi) for kpi in app.kpis})
    assert answers[0] == answers[1]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pa.table({"id": ["e-1"]}), "it lacks type, source, occurred_at, version, data"),
        (
            pa.Table.from_pylist([envelope_row(data={"user_id": "u-1"})]),
            "column 'data' must be JSON text as string or binary, got struct",
        ),
        (
            pa.Table.from_pylist([envelope_row(occurred_at=datetime(2026, 3, 1))]),
            "a timestamp without time zone is not an instant",
        ),
        (
            pa.Table.from_pylist([envelope_row(version="1")]),
            "column 'version' must be an integer, got string",
        ),
    ],
)
def test_a_file_whose_columns_do_not_fit_is_refused_before_reading(
    tmp_path: Path, table: pa.Table, message: str
) -> None:
    pq.write_table(table, tmp_path / "events.parquet")
    with pytest.raises(DecodeError, match=message.replace("(", r"\(")):
        read_all(tmp_path / "events.parquet")


def test_a_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    path.write_bytes(b'{"id": "e-1"}\n')
    with pytest.raises(DecodeError, match="not a Parquet file"):
        read_all(path)


def test_writing_refuses_a_message_the_columns_cannot_hold_and_leaves_no_file(
    tmp_path: Path,
) -> None:
    good = next(simulate(SimulationOptions(events=1)))
    no_offset = good.replace(b'Z"', b'"', 1)
    path = tmp_path / "events.parquet"
    with pytest.raises(ValueError, match=r"message 1 cannot be written to Parquet.*\.jsonl"):
        write_events(path, [good, no_offset])
    assert list(tmp_path.iterdir()) == []


def test_offsets_are_kept_as_the_same_instant(tmp_path: Path) -> None:
    copenhagen = timezone(timedelta(hours=1))
    row = envelope_row(occurred_at=datetime(2026, 3, 1, 13, 0, tzinfo=copenhagen).isoformat())
    source = write_rows(tmp_path / "text.parquet", [row])
    [message] = read_all(source)
    path = tmp_path / "events.parquet"
    write_events(path, [message])
    [again] = read_all(path)
    assert json.loads(again)["occurred_at"] == "2026-03-01T12:00:00.000Z"
