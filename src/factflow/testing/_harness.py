"""`Harness`: an app on a throwaway warehouse, to deliver events to and look at the model."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any, TypeVar

from factflow._closing import ClosesOnExit
from factflow.insight.kpi import answer, to_json_rows
from factflow.model.declare import MEMBER_KEY, MEMBER_KEY_SUFFIX, Dimension, Fact
from factflow.pipeline.app import App
from factflow.runtime.processor import BatchProcessor
from factflow.runtime.writer import BatchOutcome, BatchWriter
from factflow.warehouse.base import StoredDeadLetter, Warehouse
from factflow.warehouse.ddl import quote
from factflow.warehouse.duckdb import DuckDBWarehouse

from ._compare import Expected, as_utc, row_differences
from ._delivery import plan_delivery

__all__ = ["Harness", "any_order"]

F = TypeVar("F", bound=Fact)
D = TypeVar("D", bound=Dimension)

#: At most this many dead letters are listed in a failure message.
_SHOWN_DEAD_LETTERS = 10


class Harness(ClosesOnExit):
    """An app on an in-memory DuckDB warehouse (or the `warehouse` given): deliver, then look.

    The messages go through decoding, the pipelines and the warehouse exactly as in a consumer,
    one warehouse transaction per batch. `with Harness(app) as harness:` closes it afterwards.

    ```python
    harness = Harness(app)
    harness.deliver([borrowed("l-1"), borrowed("l-2")], shuffled=True, duplicated=True)
    harness.assert_facts(Loan, [{"loan_id": "l-1"}, {"loan_id": "l-2"}])
    assert harness.facts(Loan)[0].loan_id == "l-1"
    ```
    """

    def __init__(self, app: App, warehouse: Warehouse | None = None) -> None:
        self.app = app
        self.warehouse = warehouse or DuckDBWarehouse(None)
        self.warehouse.prepare(app.schema)
        self._writer = BatchWriter(BatchProcessor(app, warehouse=self.warehouse), self.warehouse)
        self._deliveries: list[str] = []

    def deliver(
        self,
        messages: Iterable[bytes],
        *,
        batch_size: int | None = None,
        shuffled: bool = False,
        duplicated: bool = False,
        seed: int = 0,
    ) -> BatchOutcome:
        """Deliver raw envelopes as a consumer would; returns the counts of what was written.

        Args:
            messages: envelopes as bytes, e.g. from `envelope(...)`.
            batch_size: messages per batch (one warehouse transaction each); default 1000, or
                batches of random sizes when `shuffled` or `duplicated`, so that duplicates
                arrive both within a batch and in a later one.
            shuffled: deliver in an order drawn from `seed` instead of the given one.
            duplicated: deliver every message twice (a redelivery of the same bytes).
            seed: the random order and batch sizes; the same seed gives the same delivery.
        """
        plan = plan_delivery(
            list(messages),
            batch_size=batch_size,
            shuffled=shuffled,
            duplicated=duplicated,
            seed=seed,
        )
        total = BatchOutcome()
        for batch in plan.batches:
            total.add(self._writer.write(batch))
        self._deliveries.append(plan.description)
        return total

    def rows(
        self, table: str | type[Fact] | type[Dimension], *, order_by: str | None = None
    ) -> list[dict[str, Any]]:
        """Every row of `table` (a name, or a fact or dimension class: its table of current
        rows) as dicts, ordered by `order_by` or by all columns. Values are as the warehouse
        returns them (DuckDB: timestamps in UTC without a time zone). The member keys, numbers
        each warehouse gives as it goes, are left out."""
        name = table if isinstance(table, str) else self._table_of(table)
        columns = self._columns(name)
        if order_by is None:
            order_by = ", ".join(str(position) for position in range(1, len(columns) + 1))
        return self.warehouse.query(
            f"SELECT {', '.join(map(quote, columns))} FROM {quote(name)} ORDER BY {order_by}"
        ).as_dicts()

    def facts(self, fact: type[F]) -> list[F]:
        """The rows of a fact as instances of its class, ordered by all columns; timestamps
        are aware UTC datetimes. `event_id` and `occurred_at` are in `rows(fact)`."""
        return [
            fact(**{name: as_utc(row[name]) for name in fact.__struct_fields__})
            for row in self.rows(fact)
        ]

    def dimension(self, dimension: type[D]) -> list[D]:
        """The current rows of a dimension as instances of its class, ordered by key (inferred
        members have `None` attributes; `inferred` and `updated_at` are in `rows(dimension)`)."""
        key = dimension.__factflow_dimension__.key
        return [
            dimension(**{name: as_utc(row[name]) for name in dimension.__struct_fields__})
            for row in self.rows(dimension, order_by=quote(key))
        ]

    def kpi(
        self,
        name: str,
        *,
        by: Sequence[str] = (),
        where: Mapping[str, Sequence[str]] | None = None,
        since: date | None = None,
        until: date | None = None,
    ) -> list[dict[str, Any]]:
        """The KPI's rows as `factflow kpi NAME --format json` prints them (decimals as text);
        a metric asked `by`, `where`, `since` and `until` as `factflow kpi` asks it."""
        return to_json_rows(
            answer(self.app, name, self.warehouse, by=by, where=where, since=since, until=until)
        )

    def dead_letters(self) -> list[StoredDeadLetter]:
        """The messages set aside, with their reasons, oldest first."""
        return self.warehouse.dead_letters()

    def assert_facts(self, fact: type[Fact], expected: Iterable[Expected]) -> None:
        """Assert that the fact's table holds exactly the `expected` rows, in any order.

        An expected row is a dict of the columns to compare (`{"loan_id": "l-1"}`; also
        `event_id` and `occurred_at`) or an instance of the fact (all its fields). Decimals
        may be given as text (`"10.00"`), timestamps as RFC 3339 text or aware datetimes.
        The failure message lists the rows missing and those not expected, with the closest
        match, the dead letters and how the messages were delivered.
        """
        __tracebackhide__ = True  # a failure shows the test's line, not the harness's
        self._assert_rows(self._table_of(fact), expected)

    def assert_dimension(
        self, dimension: type[Dimension], expected: Iterable[Expected], *, history: bool = False
    ) -> None:
        """Assert that the dimension's current rows (or, with `history`, the rows of its SCD
        type 2 history, with `valid_from` and `valid_to`) are exactly `expected`, in any
        order; compared as in `assert_facts` (columns also `inferred` and `updated_at`)."""
        __tracebackhide__ = True
        table = self._table_of(dimension)
        if history:
            if dimension.__factflow_dimension__.scd != 2:
                raise AssertionError(
                    f"{dimension.__name__} keeps no history: declare it with @dimension(..., scd=2)"
                )
            table += "__history"
        self._assert_rows(table, expected)

    def assert_kpi(self, name: str, expected: Iterable[Mapping[str, Any]]) -> None:
        """Assert that KPI `name` answers exactly the `expected` rows, in any order, compared
        as in `assert_facts` with the rows of `kpi(name)` (numbers may be given as `Decimal`,
        `int` or text: `{"loans": 2}`, `{"fees": "1.50"}`)."""
        __tracebackhide__ = True
        wanted = list(expected)
        found = self.kpi(name)
        columns = list(found[0]) if found else list({k: None for row in wanted for k in row})
        self._fail_on(row_differences(f"KPI {name}", found, wanted, columns))

    def assert_no_dead_letters(self) -> None:
        """Assert that every message delivered so far was processed (none set aside)."""
        __tracebackhide__ = True
        letters = self.dead_letters()
        if letters:
            raise AssertionError("\n".join(self._context(f"{len(letters)} dead letter(s)")))

    def close(self) -> None:
        self.warehouse.close()

    def _table_of(self, cls: type[Fact] | type[Dimension]) -> str:
        meta = getattr(cls, "__factflow_fact__", None) or getattr(
            cls, "__factflow_dimension__", None
        )
        if meta is None:
            raise TypeError(f"{cls!r} is not a class declared with @fact or @dimension")
        table: str = meta.table
        tables = [t.name for t in self.app.schema.tables()]
        if table not in tables:
            raise AssertionError(
                f"app {self.app.name!r} writes no table {table} ({cls.__name__}): is a pipeline "
                f"storing it bound to a consumer of the app? Its tables: {', '.join(tables)}"
            )
        return table

    def _columns(self, table: str) -> tuple[str, ...]:
        """The columns of `table` but the member keys."""
        stored = self.warehouse.query(f"SELECT * FROM {quote(table)} WHERE false").columns
        return tuple(c for c in stored if c != MEMBER_KEY and not c.endswith(MEMBER_KEY_SUFFIX))

    def _assert_rows(self, table: str, expected: Iterable[Expected]) -> None:
        __tracebackhide__ = True
        found = self.rows(table)
        self._fail_on(row_differences(table, found, list(expected), self._columns(table)))

    def _fail_on(self, differences: list[str]) -> None:
        __tracebackhide__ = True
        if differences:
            raise AssertionError("\n".join(self._context(*differences)))

    def _context(self, *lines: str) -> list[str]:
        """`lines`, then the dead letters and the deliveries so far: what explains most
        surprises (a payload that does not decode is a dead letter, not a row)."""
        out = list(lines)
        letters = self.dead_letters()
        if letters:
            out.append(f"  dead letters ({len(letters)}):")
            out += [f"    {_describe(letter)}" for letter in letters[:_SHOWN_DEAD_LETTERS]]
        for description in self._deliveries:
            out.append(f"  delivered: {description}")
        return out


def _describe(letter: StoredDeadLetter) -> str:
    """The envelope's id (or the letter's) and the reason, which names the type, or else the
    type then the reason."""
    reason = letter.reason
    if letter.event_type and not reason.startswith(letter.event_type):
        reason = f"{letter.event_type}: {reason}"
    return f"{letter.event_id or letter.id}: {reason}"


def any_order(
    app: App, messages: Sequence[bytes], *, runs: int = 5, duplicated: bool = True
) -> Iterator[Harness]:
    """Fresh harnesses of `app`, each after one delivery of `messages`: first in the order
    given, then shuffled with seeds 1, 2, … (with every message twice, if `duplicated`) in
    batches of random sizes. Each harness is closed when the next one is made.

    ```python
    for harness in any_order(app, [added("b-1"), borrowed("l-1", "b-1"), returned("l-1")]):
        harness.assert_facts(Loan, [{"loan_id": "l-1", "book_id": "b-1"}])
    ```

    A failure message says which delivery it was (order seed and batch sizes), to reproduce
    it with `Harness(app).deliver(messages, shuffled=True, duplicated=True, seed=SEED)`.
    """
    if runs < 1:
        raise ValueError(f"runs must be 1 or more, got {runs}")
    for run in range(runs):
        harness = Harness(app)
        try:
            if run == 0:
                harness.deliver(messages)
            else:
                harness.deliver(messages, shuffled=True, duplicated=duplicated, seed=run)
            yield harness
        finally:
            harness.close()
