"""The warehouse from a notebook or a script: KPIs and SQL as Arrow tables, read-only.

```python
from factflow.insight import connect, to_pandas, to_polars

with connect("duckdb:///factflow.duckdb", app="factflow.examples.banking") as bank:
    bank.kpis                                  # name → description
    spend = bank.kpi("spend_by_segment")       # a pyarrow.Table; decimals are decimal128
    bank.kpi("spend_by_currency", by=["month"], where={"segment": ["plus"]})
    to_polars(spend)                           # pl.Decimal columns
    to_pandas(bank.query("SELECT * FROM v_card_transaction WHERE currency = $1", ["EUR"]))
```

The warehouse is opened read-only: the database itself refuses any statement that would change
it (see `Warehouse.read`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from factflow._closing import ClosesOnExit
from factflow.errors import ConfigurationError
from factflow.insight.formats import unique_names
from factflow.insight.kpi import answer_table
from factflow.warehouse.base import Warehouse

if TYPE_CHECKING:  # the app module imports the KPI definitions of this package
    from factflow.pipeline.app import App

__all__ = ["Insight", "connect"]


class Insight(ClosesOnExit):
    """KPIs and SQL over a warehouse opened read-only, answered as Arrow tables.

    Args:
        warehouse: a warehouse opened with `read_only=True`.
        app: the app whose KPIs `kpi` answers; without one, only `query` works.
        timeout: seconds after which a query is stopped (none by default).
    """

    __slots__ = ("app", "timeout", "warehouse")

    def __init__(
        self, warehouse: Warehouse, app: App | None = None, *, timeout: float | None = None
    ) -> None:
        self.warehouse = warehouse
        self.app = app
        self.timeout = timeout

    @property
    def kpis(self) -> dict[str, str]:
        """The app's KPIs: name → description."""
        return {kpi.name: kpi.description for kpi in self._app().kpis.values()}

    def kpi(
        self,
        name: str,
        *,
        by: Sequence[str] = (),
        where: Mapping[str, Sequence[str]] | None = None,
        since: date | None = None,
        until: date | None = None,
    ) -> pa.Table:
        """The answer of KPI `name`, rows sorted as `factflow kpi` sorts them; a metric KPI
        grouped `by` other names, filtered `where` a name takes one of the given values, and
        limited to facts `since`/`until` (inclusive days, UTC), as on the command line.

        Raises:
            DeclarationError: the app has no KPI of that name (the message lists them).
            ConfigurationError: a group-by or filter the KPI does not take (the message lists
                those it does).
        """
        return answer_table(
            self._app(),
            name,
            self.warehouse,
            by=by,
            where=where,
            since=since,
            until=until,
            timeout=self.timeout,
        )

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> pa.Table:
        """The result of one query; `$1`, `$2`, … in `sql` mark the `parameters`. A column name
        given twice is numbered the second time (`count`, `count_2`).

        Raises:
            ConfigurationError: a statement the database refused or could not run, saying why.
        """
        return unique_names(self.warehouse.read(sql, parameters, timeout=self.timeout))

    def close(self) -> None:
        self.warehouse.close()

    def _app(self) -> App:
        if self.app is None:
            raise ConfigurationError(
                "no app to answer KPIs from: connect(..., app='your.module') or Insight(..., app)"
            )
        return self.app


def connect(
    warehouse: str, *, app: str | App | None = None, timeout: float | None = None
) -> Insight:
    """Open the warehouse at URL `warehouse` read-only (``duckdb:///path.duckdb``,
    ``postgresql://user@host/db?schema=kpi``), with the KPIs of `app` (an `App`, or the
    ``module`` / ``module:attribute`` that `--app` takes).

    Raises:
        ConfigurationError: an unknown URL, a DuckDB file that does not exist (or that a
            writer holds), an app that cannot be imported.
    """
    # The same URLs and app references as on the command line, read by the same functions.
    from factflow.cli.locations import load_app, open_warehouse

    the_app = load_app(app) if isinstance(app, str) else app
    return Insight(open_warehouse(warehouse, read_only=True), the_app, timeout=timeout)
