"""Checked by mypy --strict (see pyproject): the notebook API type-checks for users."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import polars as pl

from factflow.insight import Insight, connect, to_pandas, to_polars


def spend_by_segment(url: str) -> tuple[pl.DataFrame, pd.DataFrame, Decimal]:
    with connect(url, app="factflow.examples.banking", timeout=30) as bank:
        assert isinstance(bank, Insight)
        descriptions: dict[str, str] = bank.kpis
        assert descriptions
        frame = to_polars(bank.kpi("spend_by_segment"))
        rows = to_pandas(
            bank.query("SELECT amount FROM v_card_transaction WHERE user_id = $1", ["u-1"])
        )
        total: Decimal = sum(rows["amount"], Decimal(0))
        return frame, rows, total
