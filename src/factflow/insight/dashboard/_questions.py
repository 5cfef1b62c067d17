"""What `/api/kpi/NAME` is asked, read from its query parameters, and the answer it gives.

```
/api/kpi/spend_by_currency?by=month&by=segment&where=segment:plus&from=2026-01-01&to=2026-03-31
```

* ``by`` — a group-by of the KPI; repeat it (or separate names by commas) for several. Without
  it, the KPI's own grouping.
* ``where`` — ``NAME:VALUE`` (or ``NAME=VALUE``, as ``factflow kpi --where`` takes it): keep
  rows whose group-by NAME is VALUE; repeat it for more values of one name (any of them) or for
  other names (all of them).
* ``from``, ``to`` — days ``YYYY-MM-DD`` (UTC), both included, of the KPI's time.
* ``format`` — ``json`` (the default) or ``csv``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyarrow as pa

from factflow.errors import ConfigurationError
from factflow.insight.definitions import TIME_GROUP_BYS
from factflow.insight.formats import unique_names
from factflow.insight.kpi import answer_table, to_json_rows
from factflow.pipeline.app import App
from factflow.warehouse.base import Warehouse

__all__ = ["Question", "answer_json", "ask", "kpi_summary", "parse_question"]

_PARAMETERS = ("by", "where", "from", "to", "format", "token")
#: Group-by names that are a time: an answer with one of them is drawn over time.
_TIMES = TIME_GROUP_BYS


@dataclass(frozen=True)
class Question:
    """How a KPI is asked: its grouping, filters and days (none: as the KPI itself says)."""

    by: tuple[str, ...] = ()
    where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    since: date | None = None
    until: date | None = None
    format: str = "json"

    def as_json(self) -> dict[str, Any]:
        return {
            "by": list(self.by),
            "where": {name: list(values) for name, values in self.where.items()},
            "from": self.since.isoformat() if self.since else None,
            "to": self.until.isoformat() if self.until else None,
        }


def parse_question(parameters: Sequence[tuple[str, str]]) -> Question:
    """The question of the query parameters (name, value) of `/api/kpi/NAME`.

    Raises:
        ConfigurationError: an unknown parameter, a `where` without `:`, a day that is not
            YYYY-MM-DD, `from` after `to`, a format other than json or csv.
    """
    by: list[str] = []
    where: dict[str, list[str]] = {}
    days: dict[str, date] = {}
    output = "json"
    for name, value in parameters:
        if name == "by":
            by += [part.strip() for part in value.split(",") if part.strip()]
        elif name == "where":
            # NAME:VALUE, or NAME=VALUE as `factflow kpi --where` has it: names hold neither.
            cut = min((i for i in (value.find(":"), value.find("=")) if i >= 0), default=-1)
            column, wanted = value[:cut], value[cut + 1 :]
            if cut < 0 or not column.strip():
                raise ConfigurationError(
                    f"where={value!r}: write where=NAME:VALUE, for example where=segment:plus"
                )
            where.setdefault(column.strip(), []).append(wanted)
        elif name in ("from", "to"):
            try:
                days[name] = date.fromisoformat(value)
            except ValueError:
                raise ConfigurationError(
                    f"{name}={value!r}: give a day as YYYY-MM-DD, for example {name}=2026-03-31"
                ) from None
        elif name == "format":
            if value not in ("json", "csv"):
                raise ConfigurationError(f"format={value!r}: give format=json or format=csv")
            output = value
        elif name not in _PARAMETERS:
            raise ConfigurationError(
                f"unknown parameter {name!r}; known: by, where, from, to, format"
            )
    since, until = days.get("from"), days.get("to")
    if since and until and since > until:
        raise ConfigurationError(f"from={since} is after to={until}: nothing could match")
    frozen_where = {column: tuple(values) for column, values in where.items()}
    return Question(tuple(dict.fromkeys(by)), frozen_where, since, until, output)


def ask(
    app: App, name: str, store: Warehouse, question: Question, *, timeout: float | None
) -> pa.Table:
    """The answer of KPI `name` to `question`, its columns named once each.

    Raises:
        ConfigurationError: a group-by or filter the KPI does not take (the message lists those
            it does); a query the warehouse refused or stopped after `timeout` seconds.
    """
    table = answer_table(
        app,
        name,
        store,
        by=question.by,
        where=question.where,
        since=question.since,
        until=question.until,
        timeout=timeout,
    )
    return unique_names(table)


def kpi_summary(app: App, name: str) -> dict[str, Any]:
    """What the page needs to know of KPI `name` before asking it."""
    kpi = app.kpis[name]
    return {
        "name": kpi.name,
        "description": kpi.description,
        "owner": kpi.owner,
        "measures": list(kpi.measures),
        # Only a KPI declared as a metric can be grouped and filtered; a SQL KPI has none.
        "group_bys": list(kpi.group_bys),
        "default_by": list(kpi.default_by),
        "time_by": kpi.time_by,
    }


def answer_json(app: App, name: str, table: pa.Table, question: Question) -> dict[str, Any]:
    """The body of `/api/kpi/NAME`: rows as `factflow kpi NAME --format json` prints them
    (decimals as exact strings), with what the page needs to draw them."""
    kpi = app.kpis[name]
    measures = [column for column in table.column_names if column in kpi.measures]
    times = [c for c in table.column_names if c not in measures and c in _TIMES]
    return {
        "kpi": name,
        "description": kpi.description,
        "columns": table.column_names,
        "measures": measures,
        "rows": to_json_rows(table.to_pylist()),
        "time_column": times[0] if times else None,
        "question": question.as_json(),
    }
