"""Test your pipelines in a few lines, on a throwaway embedded warehouse: the real thing.

Given these events, in any order and with duplicates, expect these facts, these dimension rows
and these KPI values:

```python
from factflow.testing import Harness, any_order, envelope

from lending import app
from lending.library import Book, Loan


def borrowed(loan_id: str, book_id: str) -> bytes:
    return envelope("library.book_borrowed", {"loan_id": loan_id, "book_id": book_id})


def test_a_loan_counts_once_whatever_the_order_and_the_duplicates() -> None:
    events = [borrowed("l-1", "b-1"), borrowed("l-2", "b-1")]
    for harness in any_order(app, events):
        harness.assert_facts(Loan, [{"loan_id": "l-1"}, {"loan_id": "l-2"}])
        harness.assert_dimension(Book, [{"book_id": "b-1", "inferred": True}])
        harness.assert_kpi("loans_by_genre", [{"genre": None, "loans": 2}])
```

* `envelope(type, data, ...)`: the bytes of one envelope in the contract format.
* `Harness(app)`: the app on an in-memory DuckDB warehouse; `deliver(messages, shuffled=True,
  duplicated=True, seed=3)`; `facts(Fact)` / `dimension(Dimension)` as instances of your
  classes, `rows(table)` as dicts, `kpi(name)`, `dead_letters()`; `assert_facts`,
  `assert_dimension`, `assert_kpi`, `assert_no_dead_letters` with failure messages that show
  what is missing, what is not expected, the dead letters and how the messages were delivered.
* `any_order(app, messages)`: fresh harnesses after deliveries in several orders, with
  duplicates, in uneven batches; `in_any_order(messages, seed=...)`: one shuffled copy.
"""

from __future__ import annotations

from ._compare import Expected
from ._delivery import envelope, in_any_order
from ._harness import Harness, any_order

__all__ = ["Expected", "Harness", "any_order", "envelope", "in_any_order"]
