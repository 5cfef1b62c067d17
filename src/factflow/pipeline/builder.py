"""The fluent pipeline builder, in the spirit of the talk's
`NewPipe().Map(...).Then(EnsureDimensions).Then(EnsureUser).Then(InsertFirst)`."""

from __future__ import annotations

from typing import Generic, TypeVar

from factflow.errors import DeclarationError
from factflow.model.declare import Dimension, Event, Fact
from factflow.model.envelope import Envelope
from factflow.pipeline.projection import Projection
from factflow.pipeline.steps import MapFunction, Step, StoreStep, map_events
from factflow.pipeline.work import Work

__all__ = ["Pipeline"]

P = TypeVar("P", bound=Event)


class Pipeline(Generic[P]):
    """Steps from one event type to warehouse changes. Immutable: every call returns a new one.

    ```python
    transactions = (
        Pipeline(TransactionSettled)
        .map(to_card_transaction)
        .then(ensure_dimensions)
        .then(insert_first(CardTransaction))
    )
    ```
    """

    __slots__ = ("event", "name", "steps")

    def __init__(
        self, event: type[P], *, name: str | None = None, steps: tuple[Step, ...] = ()
    ) -> None:
        if not hasattr(event, "__factflow_event__"):
            raise DeclarationError(f"Pipeline({event!r}): the event class needs @event(...)")
        self.event = event
        self.name = name or event.__factflow_event__.type
        self.steps = steps

    def map(self, function: MapFunction[P]) -> Pipeline[P]:
        """Map each event to no row, one row or several rows (facts and/or dimension changes).

        A `project(...)` map is checked against the event class here, and runs column-wise in
        a bootstrap (`factflow.pipeline.projection`).
        """
        if isinstance(function, Projection):
            function = function.bound(self.event)
        return self.then(map_events(function))

    def then(self, step: Step) -> Pipeline[P]:
        """Append any step: a plain function taking the `Work` of a batch."""
        return Pipeline(self.event, name=self.name, steps=(*self.steps, step))

    def named(self, name: str) -> Pipeline[P]:
        return Pipeline(self.event, name=name, steps=self.steps)

    @property
    def writes(self) -> tuple[type[Fact] | type[Dimension], ...]:
        """The fact and dimension classes this pipeline stores."""
        return tuple(step.row_class for step in self.steps if isinstance(step, StoreStep))

    def run(self, work: Work[P]) -> None:
        """Run every step on the batch; raise if a mapped row would not be stored."""
        for step in self.steps:
            step(work)
        lost = {type(row) for _, row in work.mapped} - work.stored
        if lost:
            names = ", ".join(sorted(cls.__name__ for cls in lost))
            raise DeclarationError(
                f"pipeline {self.name!r} maps events to {names} but has no step storing them; "
                "add .then(insert_first(Fact)) or .then(update_dimension(Dimension))"
            )

    def process(self, events: list[Envelope[P]]) -> Work[P]:
        """Run the pipeline on `events` and return the work, for tests and notebooks."""
        work = Work(events, pipeline=self.name)
        self.run(work)
        return work

    def __repr__(self) -> str:
        steps = " → ".join(getattr(step, "__name__", repr(step)) for step in self.steps)
        return f"<Pipeline {self.name}: {steps}>"
