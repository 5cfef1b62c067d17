"""An answer (an Arrow table) as text, CSV, JSON or Parquet, every decimal exact.

Decimals print as `factflow kpi` prints them (`format_decimal`: `1234.50`, `0.0001`); JSON
carries them as strings and counts as numbers; Parquet keeps them as decimal columns.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import pyarrow as pa

from factflow.errors import ConfigurationError
from factflow.insight.kpi import format_decimal, to_json_rows

__all__ = ["FORMATS", "csv_text", "json_text", "text_rows", "unique_names", "write_parquet"]

FORMATS = ("table", "csv", "json", "parquet")


def unique_names(table: pa.Table) -> pa.Table:
    """`table` with repeated column names numbered (`count`, `count_2`): rows as objects, JSON
    and DataFrames need each name once."""
    names: list[str] = []
    for name in table.column_names:
        unique, number = name, 1
        while unique in names:
            number += 1
            unique = f"{name}_{number}"
        names.append(unique)
    return table if names == table.column_names else table.rename_columns(names)


def text_rows(table: pa.Table) -> list[list[str | None]]:
    """Every value as exact text (None for NULL), row by row."""
    columns = [[_text(value) for value in column.to_pylist()] for column in table.columns]
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


def csv_text(table: pa.Table) -> str:
    """A header line, then one line per row; NULL is an empty field."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.column_names)
    writer.writerows([["" if v is None else v for v in row] for row in text_rows(table)])
    return out.getvalue()


def json_text(table: pa.Table) -> str:
    """`{"columns": [...], "rows": [{column: value}, ...]}`: decimals as strings (as `factflow
    kpi --format json` has them), counts as numbers."""
    table = unique_names(table)
    rows = to_json_rows(table.to_pylist())
    return msgspec.json.encode({"columns": table.column_names, "rows": rows}).decode()


def write_parquet(table: pa.Table, destination: Path | BinaryIO) -> None:
    """Write `table` as Parquet: decimals stay decimal columns of their precision and scale.

    Raises:
        ConfigurationError: a column Parquet cannot hold (cast it in the query).
    """
    # Imported here: every command imports this module, few write Parquet (12 ms of start-up).
    import pyarrow.parquet as pq

    try:
        pq.write_table(unique_names(table), destination)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid) as error:
        raise ConfigurationError(
            f"cannot write the answer as Parquet: {error}; cast that column in the query"
        ) from None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | time):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, dict | Sequence) and not isinstance(value, str):
        return msgspec.json.encode(value, enc_hook=str).decode()
    return str(value)
