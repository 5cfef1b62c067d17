"""Test your pipelines in a few lines, on a throwaway embedded warehouse: the real thing.

```python
from factflow.testing import Harness, envelope

def test_a_transaction_counts_once_whatever_envelopes_carry_it():
    harness = Harness(app)
    data = {"transaction_id": "t-1", ...}
    harness.deliver([envelope("card.transaction_settled", data),
                     envelope("card.transaction_settled", data)])  # a re-publication
    assert len(harness.rows("fact_card_transaction")) == 1
```
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from factflow.insight.kpi import answer, to_json_rows
from factflow.model.envelope import encode_envelope
from factflow.pipeline.app import App
from factflow.runtime.processor import BatchProcessor
from factflow.runtime.writer import BatchOutcome, BatchWriter
from factflow.warehouse.base import StoredDeadLetter, Warehouse
from factflow.warehouse.ddl import quote
from factflow.warehouse.duckdb import DuckDBWarehouse

__all__ = ["Harness", "envelope"]

_ids = itertools.count(1)


def envelope(
    type: str,
    data: dict[str, Any],
    *,
    id: str | None = None,
    occurred_at: datetime | str = datetime(2026, 1, 1, tzinfo=UTC),
    source: str = "test",
    version: int = 1,
) -> bytes:
    """The bytes of one envelope; ids are numbered `test-1`, `test-2`, … unless given."""
    when = datetime.fromisoformat(occurred_at) if isinstance(occurred_at, str) else occurred_at
    return encode_envelope(
        id=id or f"test-{next(_ids)}",
        type=type,
        source=source,
        occurred_at=when,
        version=version,
        data=data,
    )


class Harness:
    """An app on an in-memory warehouse (or the `warehouse` given): deliver, then look."""

    def __init__(self, app: App, warehouse: Warehouse | None = None) -> None:
        self.app = app
        self.warehouse = warehouse or DuckDBWarehouse(None)
        self.warehouse.prepare(app.schema)
        self._writer = BatchWriter(BatchProcessor(app), self.warehouse)

    def deliver(self, messages: Iterable[bytes], *, batch_size: int = 1000) -> BatchOutcome:
        """Deliver messages in batches of `batch_size`, as a consumer would."""
        total = BatchOutcome()
        batch: list[bytes] = []
        for message in messages:
            batch.append(message)
            if len(batch) == batch_size:
                total.add(self._writer.write(batch))
                batch = []
        if batch:
            total.add(self._writer.write(batch))
        return total

    def rows(self, table: str, *, order_by: str | None = None) -> list[dict[str, Any]]:
        """Every row of `table` as dicts, ordered by `order_by` or by all columns."""
        if order_by is None:
            columns = self.warehouse.query(f"SELECT * FROM {quote(table)} WHERE false").columns
            order_by = ", ".join(str(position) for position in range(1, len(columns) + 1))
        return self.warehouse.query(f"SELECT * FROM {quote(table)} ORDER BY {order_by}").as_dicts()

    def kpi(self, name: str) -> list[dict[str, Any]]:
        """The KPI's rows as `factflow kpi NAME --format json` prints them."""
        return to_json_rows(answer(self.app, name, self.warehouse))

    def dead_letters(self) -> list[StoredDeadLetter]:
        return self.warehouse.dead_letters()

    def close(self) -> None:
        self.warehouse.close()
