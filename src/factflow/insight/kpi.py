"""Answer an app's KPIs from a warehouse, with exact decimals."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from factflow.errors import ConfigurationError
from factflow.insight.definitions import KpiDefinition, Metric
from factflow.insight.metric_sql import Question, metric_sql
from factflow.warehouse.base import Warehouse

if TYPE_CHECKING:  # the app module imports the KPI definitions of this package
    from factflow.pipeline.app import App

__all__ = ["answer", "answer_table", "format_decimal", "to_json_rows"]

_CENT = Decimal("0.01")


def answer(
    app: App,
    name: str,
    warehouse: Warehouse,
    *,
    by: Sequence[str] = (),
    where: Mapping[str, Sequence[str]] | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[dict[str, Any]]:
    """The rows of KPI `name`, sorted by their non-measure columns; decimals stay `Decimal`.

    A `Metric` may be asked `by` other group-bys than its own, `where` a group-by takes one of
    the given values, and `since`/`until` (inclusive days, UTC) of its facts' time.

    Raises:
        DeclarationError: the app has no KPI `name` (the message lists those it has).
        ConfigurationError: a group-by or filter the KPI does not take (the message lists those
            it does).
    """
    question = Question(tuple(by), dict(where or {}), since, until)
    kpi, sql, parameters = _statement(app, name, warehouse, question, lambda _: "?")
    rows = warehouse.query(sql, tuple(parameters)).as_dicts()
    if not rows and kpi.empty_row is not None:
        rows = [dict(kpi.empty_row)]
    return sorted(rows, key=lambda row: _sort_key(kpi, row))


def answer_table(
    app: App,
    name: str,
    warehouse: Warehouse,
    *,
    by: Sequence[str] = (),
    where: Mapping[str, Sequence[str]] | None = None,
    since: date | None = None,
    until: date | None = None,
    timeout: float | None = None,
) -> pa.Table:
    """KPI `name` as an Arrow table (decimals as decimal128), its rows as `answer` orders them,
    from a warehouse opened read-only (`Warehouse.read`); asked as `answer` says."""
    question = Question(tuple(by), dict(where or {}), since, until)
    kpi, sql, parameters = _statement(app, name, warehouse, question, lambda n: f"${n}")
    table = warehouse.read(sql, parameters, timeout=timeout)
    if table.num_rows == 0 and kpi.empty_row is not None:
        return pa.Table.from_pylist([dict(kpi.empty_row)], schema=table.schema)
    rows = table.to_pylist()
    order = sorted(range(len(rows)), key=lambda i: _sort_key(kpi, rows[i]))
    return table.take(pa.array(order, pa.int64()))


def _statement(
    app: App,
    name: str,
    warehouse: Warehouse,
    question: Question,
    placeholder: Callable[[int], str],
) -> tuple[KpiDefinition, str, list[Any]]:
    kpi = app.kpi(name)
    if isinstance(kpi, Metric):
        sql, parameters = metric_sql(
            kpi, app.schema, question, dialect=warehouse.dialect.name, placeholder=placeholder
        )
        return kpi, sql, parameters
    if not question.is_plain:
        raise ConfigurationError(
            f"KPI {name!r} is answered by its own SQL: it takes no --by, --where, --from or "
            "--to (a Metric definition can be grouped and filtered)"
        )
    return kpi, kpi.sql, []


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


def _sort_key(kpi: KpiDefinition, row: dict[str, Any]) -> tuple[tuple[bool, str], ...]:
    return tuple(
        (value is None, str(value)) for name, value in row.items() if name not in kpi.measures
    )
