"""Insight: KPIs and read-only SQL over the warehouse, for the command line and notebooks.

`connect` opens a warehouse read-only and answers KPIs and queries as Arrow tables;
`to_polars` and `to_pandas` turn them into DataFrames with exact decimals.
"""

from __future__ import annotations

from factflow.insight.frames import to_pandas, to_polars
from factflow.insight.session import Insight, connect

__all__ = ["Insight", "connect", "to_pandas", "to_polars"]
