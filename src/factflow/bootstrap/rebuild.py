"""Rebuild one fact table from existing data, for a pipeline that changed, while the service
keeps writing: the table is refilled beside the fact and swapped in in one transaction, so
KPIs never read it empty or half full (see `Warehouse.begin_rebuild`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import msgspec

from factflow.bootstrap.replay import Batch, refresh_statistics, replay
from factflow.model.declare import Fact
from factflow.model.schema import FactSpec
from factflow.pipeline.app import App
from factflow.pipeline.builder import Pipeline
from factflow.pipeline.changes import ChangeSet
from factflow.runtime.processor import BatchProcessor
from factflow.runtime.writer import BatchOutcome
from factflow.warehouse.base import Warehouse

__all__ = ["RebuildOutcome", "rebuild_fact"]

P = TypeVar("P")


class RebuildOutcome(msgspec.Struct, frozen=True):
    """What a rebuild read (`replayed`) and how many rows the fact table holds after the swap."""

    fact: str
    replayed: BatchOutcome
    rows: int


class _OneFact(BatchProcessor):
    """Runs only the pipelines that write `fact`, and keeps only their rows of it (redirected
    to the rebuilt table) and the dimension keys they refer to: the rest of the model was
    written when those events first arrived."""

    def __init__(self, app: App, fact: FactSpec, into: str) -> None:
        super().__init__(app)
        self.fact, self.into = fact, into
        self.routes = {
            event_type: kept
            for event_type, pipelines in self.routes.items()
            if (kept := [p for p in pipelines if _writes(p, fact)])
        }

    def process(self, messages: Sequence[bytes]) -> ChangeSet:
        changes = super().process(messages)
        rows = changes.facts.get(self.fact.name)
        changes.facts = {self.fact.name: rows} if rows else {}
        changes.rebuild_into = {self.fact.name: self.into}
        changes.dimension_changes.clear()
        changes.seen.clear()  # counted when the events first arrived
        return changes


def _writes(pipeline: Pipeline[Any], fact: FactSpec) -> bool:
    return any(
        issubclass(cls, Fact) and cls.__factflow_fact__.table == fact.name
        for cls in pipeline.writes
    )


def rebuild_fact(
    app: App,
    fact: str,
    batches: Iterable[Batch[P]],
    warehouse: Warehouse,
    *,
    on_batch: Callable[[BatchOutcome, P], None] | None = None,
) -> RebuildOutcome:
    """Refill fact `fact` (table or class name) from `batches` and swap it in.

    Rows of the old table whose key the batches lack stay (events the source does not have,
    or that the service wrote meanwhile). Raises `KeyError` for a fact the app does not have.
    If interrupted, the table is unchanged; running it again starts the refill over.
    """
    spec = app.schema.fact(fact)
    warehouse.prepare(app.schema)
    into = warehouse.begin_rebuild(spec.name)
    processor = _OneFact(app, spec, into)
    replayed = replay(
        app,
        batches,
        warehouse,
        on_batch=on_batch,
        processor=processor,
        prepared=True,
        final=False,
    )
    rows = warehouse.finish_rebuild(spec.name)
    refresh_statistics(warehouse, replayed)  # of the table swapped in, not the one it replaced
    return RebuildOutcome(spec.name, replayed, rows)
