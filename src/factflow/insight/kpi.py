"""Answer an app's KPIs from a warehouse, with exact decimals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyarrow as pa

from factflow.pipeline.app import App, Kpi
from factflow.warehouse.base import Warehouse

__all__ = ["answer", "answer_table", "format_decimal", "to_json_rows"]

_CENT = Decimal("0.01")


def answer(app: App, name: str, warehouse: Warehouse) -> list[dict[str, Any]]:
    """The rows of KPI `name`, sorted by their non-measure columns; decimals stay `Decimal`."""
    kpi = app.kpi(name)
    rows = warehouse.query(kpi.sql).as_dicts()
    if not rows and kpi.empty_row is not None:
        rows = [dict(kpi.empty_row)]
    return sorted(rows, key=lambda row: _sort_key(kpi, row))


def answer_table(
    app: App, name: str, warehouse: Warehouse, *, timeout: float | None = None
) -> pa.Table:
    """KPI `name` as an Arrow table (decimals as decimal128), its rows as `answer` orders them,
    from a warehouse opened read-only (`Warehouse.read`)."""
    kpi = app.kpi(name)
    table = warehouse.read(kpi.sql, timeout=timeout)
    if table.num_rows == 0 and kpi.empty_row is not None:
        return pa.Table.from_pylist([dict(kpi.empty_row)], schema=table.schema)
    rows = table.to_pylist()
    order = sorted(range(len(rows)), key=lambda i: _sort_key(kpi, rows[i]))
    return table.take(pa.array(order, pa.int64()))


def format_decimal(value: Decimal) -> str:
    """Exact text of an amount: trailing zeros dropped, but at least two decimal places."""
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        normal = value.quantize(_CENT)
    return f"{normal:f}"


def to_json_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as banking.md prints them: decimal values as strings, counts as numbers."""
    return [
        {name: format_decimal(v) if isinstance(v, Decimal) else v for name, v in row.items()}
        for row in rows
    ]


def _sort_key(kpi: Kpi, row: dict[str, Any]) -> tuple[tuple[bool, str], ...]:
    return tuple(
        (value is None, str(value)) for name, value in row.items() if name not in kpi.measures
    )
