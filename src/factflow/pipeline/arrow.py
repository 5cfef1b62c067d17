"""Rows of a table as Arrow: the column types of the model, and the conversion every columnar
writer shares (DuckDB writes Arrow tables; the columnar processor builds them directly)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import Any, overload

import pyarrow as pa

from factflow.model.schema import ColumnType, Table
from factflow.model.types import MONEY_PRECISION, MONEY_SCALE
from factflow.pipeline.changes import Row, RowBlock

__all__ = ["ARROW", "UTC_MICROS", "ArrowRows", "arrow_table", "utc_timestamps"]

UTC_MICROS = pa.timestamp("us", tz="UTC")
_NAIVE_MICROS = pa.timestamp("us")  # how TIMESTAMP columns keep UTC instants

#: The Arrow type of each column type. Timestamps are UTC instants; in the tables below they
#: are kept without a zone (`utc_timestamps`), as the warehouses' TIMESTAMP columns keep them.
ARROW: dict[ColumnType, pa.DataType] = {
    ColumnType.TEXT: pa.string(),
    ColumnType.INTEGER: pa.int64(),
    ColumnType.FLOAT: pa.float64(),
    ColumnType.BOOLEAN: pa.bool_(),
    ColumnType.MONEY: pa.decimal128(MONEY_PRECISION, MONEY_SCALE),
    ColumnType.DECIMAL: pa.decimal128(38, 10),
    ColumnType.TIMESTAMP: UTC_MICROS,
    ColumnType.DATE: pa.date32(),
}


class ArrowRows(Sequence[Row]):
    """Rows of one table held as an Arrow table in the table's column order (what the columnar
    processor stages): a writer of Arrow takes `table` as it is, a writer of rows iterates
    tuples of Python values, as it would a `RowBlock`."""

    __slots__ = ("table",)

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def __len__(self) -> int:
        return int(self.table.num_rows)

    @overload
    def __getitem__(self, index: int) -> Row: ...

    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...

    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        if isinstance(index, slice):
            return list(ArrowRows(_slice(self.table, index)))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return next(iter(ArrowRows(self.table.slice(index, 1))))

    def __iter__(self) -> Iterator[Row]:
        columns = [_python_values(column) for column in self.table.columns]
        return zip(*columns, strict=True)


def arrow_table(table: Table, rows: Sequence[Row]) -> pa.Table:
    """Rows (in column order) to an Arrow table typed like the warehouse table."""
    if isinstance(rows, ArrowRows):
        return rows.table
    arrays = []
    for index, column in enumerate(table.columns):
        # One column at a time: several times faster than transposing with zip(*rows).
        values = _column(rows, index)
        if column.type is ColumnType.TIMESTAMP:
            arrays.append(utc_timestamps(values))
        else:
            arrays.append(pa.array(values, ARROW[column.type]))
    return pa.Table.from_arrays(arrays, names=list(table.column_names))


def utc_timestamps(values: list[Any] | pa.Array) -> pa.Array:
    """Instants as UTC without a zone. Reinterpreting the UTC array costs nothing; a cast to the
    zone-less type would convert every value (it was a third of the cost of a batch's Arrow)."""
    array = values if isinstance(values, pa.Array) else pa.array(values, UTC_MICROS)
    return array.view(_NAIVE_MICROS)


def _column(rows: Sequence[Row], index: int) -> list[Any]:
    if isinstance(rows, RowBlock):
        return rows.column(index)
    return list(map(itemgetter(index), rows))


def _python_values(column: pa.ChunkedArray) -> list[Any]:
    """The values of a column as Python objects; zone-less timestamps as aware UTC datetimes,
    as the envelopes of a `RowBlock` give them."""
    if column.type == _NAIVE_MICROS:
        return [value for chunk in column.chunks for value in chunk.view(UTC_MICROS).to_pylist()]
    values: list[Any] = column.to_pylist()
    return values


def _slice(table: pa.Table, index: slice) -> pa.Table:
    start, stop, step = index.indices(table.num_rows)
    if step == 1:
        return table.slice(start, max(0, stop - start))
    return table.take(list(range(start, stop, step)))
