"""Arrow answers as Polars or pandas DataFrames, decimals kept exact.

Polars reads decimal128 as its `Decimal` type; pandas gets `decimal.Decimal` objects (object
dtype), and integers and booleans with NULLs as its nullable types (`Int64`, `boolean`)
rather than floats. Polars and pandas are optional: ``pip install 'factflow[polars]'`` or
``pip install 'factflow[pandas]'``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

import pyarrow as pa

from factflow.errors import ConfigurationError

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = ["to_pandas", "to_polars"]


def to_polars(table: pa.Table) -> pl.DataFrame:
    """`table` as a Polars DataFrame; decimal columns become `pl.Decimal`, never floats.

    Raises:
        ConfigurationError: Polars is not installed (the message says how to install it).
    """
    polars = _require("polars")
    frame: pl.DataFrame = polars.from_arrow(table)  # a table gives a DataFrame
    return frame


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """`table` as a pandas DataFrame; decimals as `decimal.Decimal` objects, never floats.

    Raises:
        ConfigurationError: pandas is not installed (the message says how to install it).
    """
    pandas = _require("pandas")
    nullable = {
        pa.int8(): pandas.Int8Dtype(),
        pa.int16(): pandas.Int16Dtype(),
        pa.int32(): pandas.Int32Dtype(),
        pa.int64(): pandas.Int64Dtype(),
        pa.bool_(): pandas.BooleanDtype(),
    }
    frame: pd.DataFrame = table.to_pandas(types_mapper=nullable.get)
    return frame


def _require(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ConfigurationError(
            f"this needs {name}, an optional dependency: pip install 'factflow[{name}]'"
        ) from None
