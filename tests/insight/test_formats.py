"""Answers as text, CSV, JSON and Parquet: decimals exact in every one."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from factflow.errors import ConfigurationError
from factflow.insight.formats import csv_text, json_text, text_rows, unique_names, write_parquet

ANSWER = pa.table(
    {
        "segment": ["plus", None],
        "amount": pa.array([Decimal("1234.5000"), Decimal("0.0001")], pa.decimal128(18, 4)),
        "users": pa.array([3, None], pa.int64()),
        "at": pa.array([datetime(2026, 3, 1, 12, 30), None], pa.timestamp("us")),
        "day": pa.array([date(2026, 3, 1), None]),
        "ok": [True, False],
    }
)


def test_text_is_exact_and_null_is_none() -> None:
    assert text_rows(ANSWER) == [
        ["plus", "1234.50", "3", "2026-03-01 12:30:00", "2026-03-01", "true"],
        [None, "0.0001", None, None, None, "false"],
    ]


def test_csv_has_a_header_exact_decimals_and_empty_nulls() -> None:
    assert csv_text(ANSWER).splitlines() == [
        "segment,amount,users,at,day,ok",
        "plus,1234.50,3,2026-03-01 12:30:00,2026-03-01,true",
        ",0.0001,,,,false",
    ]


def test_json_has_decimals_as_strings_and_counts_as_numbers() -> None:
    document = json.loads(json_text(ANSWER))
    assert document["columns"] == ANSWER.column_names
    assert document["rows"][0] == {
        "segment": "plus",
        "amount": "1234.50",
        "users": 3,
        "at": "2026-03-01T12:30:00",
        "day": "2026-03-01",
        "ok": True,
    }
    assert document["rows"][1]["amount"] == "0.0001"


def test_parquet_keeps_decimal_columns(tmp_path: Path) -> None:
    write_parquet(ANSWER, tmp_path / "answer.parquet")
    back = pq.read_table(tmp_path / "answer.parquet")
    assert back.schema.field("amount").type == pa.decimal128(18, 4)
    assert back.column("amount").to_pylist() == [Decimal("1234.5000"), Decimal("0.0001")]


def test_parquet_refuses_a_column_it_cannot_hold_with_advice(tmp_path: Path) -> None:
    odd = pa.table({"span": pa.array([(1, 2, 3)], pa.month_day_nano_interval())})
    with pytest.raises(ConfigurationError, match="cast that column"):
        write_parquet(odd, tmp_path / "odd.parquet")


def test_repeated_column_names_are_numbered() -> None:
    table = pa.table([[1], [2], [3]], names=["n", "n", "n"])
    assert unique_names(table).column_names == ["n", "n_2", "n_3"]
    assert json.loads(json_text(table))["rows"] == [{"n": 1, "n_2": 2, "n_3": 3}]


def test_instants_with_a_zone_keep_it() -> None:
    table = pa.table(
        {"at": pa.array([datetime(2026, 1, 1, tzinfo=UTC)], pa.timestamp("us", "UTC"))}
    )
    assert text_rows(table) == [["2026-01-01 00:00:00+00:00"]]
