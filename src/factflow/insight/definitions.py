"""KPI definitions: a named, documented question over the model, either as SQL or as a metric.

A `Kpi` is answered by its own read-only SQL. A `Metric` says what to measure over which fact
(or dimension) and by what it may be grouped and filtered; factflow writes the SQL, so analysts
can ask `factflow kpi spend_by_currency --by month --where segment=plus` without knowing the
table layout:

```python
Metric(
    "spend_by_currency",
    description="Sum of billing_amount per transaction currency and billing currency.",
    of=CardTransaction,
    measure=Sum("billing_amount"),
    by=["currency", "billing_currency"],                  # the default grouping
    group_bys=["month", "currency", "billing_currency", "segment", "product"],
)
```

What a metric can be grouped and filtered by (its `group_bys`):

- `month`, `day`, `year`: of the fact's `occurred_at` (UTC);
- a column of the fact (or of the dimension a metric counts);
- an attribute of a dimension the fact refers to (`segment` of the user, `product` of the
  card), or `dimension.attribute` (`user.segment`) where two dimensions share a name. A type 2
  dimension's attribute is taken as it was when the fact occurred; a member without the value
  groups under `unknown`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from factflow.errors import DeclarationError
from factflow.model.declare import Dimension, Fact

__all__ = ["Count", "CountDistinct", "Kpi", "Max", "Measure", "Metric", "Min", "Sum"]

#: The group-bys that cut a fact's `occurred_at` into periods; the first is the time axis charts
#: use.
TIME_GROUP_BYS = ("month", "day", "year")


class Kpi:
    """A named, documented question over the model, answered by one read-only SQL query.

    `measures` names the columns that hold numbers; rows are sorted by the other columns.
    `empty_row` is returned when the query yields nothing (for counts: `{"users": 0}`).
    `owner` is who answers for the definition (a team or a person). A SQL KPI takes no
    group-bys or filters: its query says everything (`group_bys` is empty).
    """

    __slots__ = ("description", "empty_row", "measures", "name", "owner", "sql")

    #: A SQL KPI is grouped as its query groups; the command line's --by/--where do not apply.
    group_bys: tuple[str, ...] = ()
    default_by: tuple[str, ...] = ()
    time_by: str | None = None

    def __init__(
        self,
        name: str,
        *,
        description: str,
        sql: str,
        measures: Sequence[str],
        empty_row: dict[str, Any] | None = None,
        owner: str | None = None,
    ) -> None:
        self.name = name
        self.description = description
        #: Who answers for the KPI's definition (a team or a person), shown by `factflow kpi`.
        self.owner = owner
        self.sql = sql
        self.measures = tuple(measures)
        self.empty_row = empty_row


class Measure:
    """One number a metric computes per group, named `name` in its answer."""

    __slots__ = ("column", "name")

    function = ""

    def __init__(self, column: str | None, name: str) -> None:
        self.column = column
        self.name = name

    def expression(self, column: str | None) -> str:
        """The aggregate over `column` (the quoted, qualified column)."""
        return f"{self.function}({column})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.column!r}, name={self.name!r})"


class Count(Measure):
    """The number of rows (facts, or dimension members) in each group."""

    __slots__ = ()

    def __init__(self, *, name: str = "count") -> None:
        super().__init__(None, name)

    def expression(self, column: str | None) -> str:
        return "count(*)"


class CountDistinct(Measure):
    """The number of distinct values of `column` in each group (`users` of a transaction fact)."""

    __slots__ = ()

    def __init__(self, column: str, *, name: str | None = None) -> None:
        super().__init__(column, name or column)

    def expression(self, column: str | None) -> str:
        return f"count(DISTINCT {column})"


class Sum(Measure):
    """The exact sum of `column` in each group (decimals stay decimals)."""

    __slots__ = ()
    function = "sum"

    def __init__(self, column: str, *, name: str | None = None) -> None:
        super().__init__(column, name or column)


class Min(Measure):
    """The least value of `column` in each group."""

    __slots__ = ()
    function = "min"

    def __init__(self, column: str, *, name: str | None = None) -> None:
        super().__init__(column, name or f"min_{column}")


class Max(Measure):
    """The greatest value of `column` in each group."""

    __slots__ = ()
    function = "max"

    def __init__(self, column: str, *, name: str | None = None) -> None:
        super().__init__(column, name or f"max_{column}")


class Metric:
    """A KPI factflow answers from a spec: `measure` over the rows of `of`, grouped by `by`.

    Args:
        of: the fact (or dimension: its members) the metric measures.
        measure: one measure, or several (each one column of the answer).
        by: the default grouping (names from `group_bys`); the command line's `--by` replaces it.
        group_bys: every name the metric may be grouped or filtered by (see the module's doc).
        filters: SQL conditions over the columns of `of` that every answer applies
            (`"NOT coalesce(deleted, false)"`): part of the definition, not of the question.
        owner: who answers for the definition (a team or a person).
    """

    __slots__ = (
        "default_by",
        "description",
        "filters",
        "group_bys",
        "measure_list",
        "name",
        "of",
        "owner",
    )

    empty_row: dict[str, Any] | None = None

    def __init__(
        self,
        name: str,
        *,
        description: str,
        of: type[Fact] | type[Dimension],
        measure: Measure | Sequence[Measure],
        by: Sequence[str] = (),
        group_bys: Sequence[str] = (),
        filters: Sequence[str] = (),
        owner: str | None = None,
    ) -> None:
        self.name = name
        self.description = description
        self.owner = owner
        if not (isinstance(of, type) and issubclass(of, Fact | Dimension)):
            raise DeclarationError(f"metric {name!r}: `of` takes a Fact or Dimension class")
        self.of = of
        self.measure_list = (measure,) if isinstance(measure, Measure) else tuple(measure)
        if not self.measure_list:
            raise DeclarationError(f"metric {name!r} needs at least one measure")
        self.group_bys = tuple(dict.fromkeys([*group_bys, *by]))
        self.default_by = tuple(by)
        self.filters = tuple(filters)

    @property
    def measures(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.measure_list)

    @property
    def time_by(self) -> str | None:
        """The group-by that puts the metric on a time axis (`month`), if it has one."""
        return next((name for name in TIME_GROUP_BYS if name in self.group_bys), None)


#: What an app's `kpis` holds.
KpiDefinition = Kpi | Metric
