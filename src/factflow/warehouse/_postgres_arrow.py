"""PostgreSQL rows as an Arrow table: each column typed from the query's description, exactly.

`numeric(p, s)` becomes `decimal128(p, s)`; a numeric without a declared precision (what `sum`
returns) becomes `decimal128(38, s)` with the largest scale among its values (`decimal256` when
38 digits are too few, and its exact text when even those are, or for NaN and infinities), as
DuckDB answers a sum of `DECIMAL(18, 4)` with `DECIMAL(38, 4)`. No value passes through a float.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import psycopg
import pyarrow as pa
from psycopg.postgres import types as builtin_types

__all__ = ["TEXT_TYPES", "to_arrow"]

#: Types loaded as their text, whose Python values Arrow has no type for.
TEXT_TYPES = ("json", "jsonb")

_BY_NAME: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "oid": pa.int64(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "text": pa.string(),
    "varchar": pa.string(),
    "bpchar": pa.string(),
    "name": pa.string(),
    "char": pa.string(),
    "json": pa.string(),
    "jsonb": pa.string(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),  # factflow keeps UTC instants without a zone
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "interval": pa.duration("us"),
    "bytea": pa.binary(),
}
_STRINGS = ("uuid", "inet", "cidr", "macaddr", "money", "xml")


def to_arrow(description: Sequence[psycopg.Column], rows: Sequence[Sequence[Any]]) -> pa.Table:
    """The `rows` of a query as an Arrow table of the columns in `description`."""
    arrays = [_array(column, [row[i] for row in rows]) for i, column in enumerate(description)]
    return pa.Table.from_arrays(arrays, names=[column.name for column in description])


def _array(column: psycopg.Column, values: list[Any]) -> pa.Array:
    info = builtin_types.get(column.type_code)
    name = info.name if info is not None else ""
    if name == "numeric":
        return _decimals(column, values)
    if name in _STRINGS:
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    kind = _BY_NAME.get(name)
    if kind is not None:
        return pa.array(values, kind)
    try:  # arrays, ranges, types of extensions: as Arrow sees their Python values, or as text
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _decimals(column: psycopg.Column, values: list[Decimal | None]) -> pa.Array:
    present = [v for v in values if v is not None]
    if any(not v.is_finite() for v in present):
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    if column.precision is not None and column.scale is not None:
        precision, scale = column.precision, column.scale
    else:
        scale = max((max(0, -_exponent(v)) for v in present), default=0)
        whole = max((max(1, len(v.as_tuple().digits) + _exponent(v)) for v in present), default=1)
        precision = max(38, whole + scale)
    if precision <= 38:
        return pa.array(values, pa.decimal128(precision, scale))
    if precision <= 76:
        return pa.array(values, pa.decimal256(precision, scale))
    return pa.array([None if v is None else f"{v:f}" for v in values], pa.string())


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite values only
    return exponent
