"""The built-in pipeline steps. A step is any callable taking a `Work`; these cover the talk's
`Map`, `EnsureDimensions`, `EnsureUser` and `InsertFirst`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from operator import attrgetter
from typing import Any, TypeAlias, TypeVar

from factflow.errors import RejectedEvent
from factflow.model.declare import Dimension, Event, Fact
from factflow.model.envelope import Envelope
from factflow.pipeline.changes import RowBlock
from factflow.pipeline.work import Work

__all__ = [
    "MapFunction",
    "MapStep",
    "Step",
    "StoreStep",
    "ensure",
    "ensure_dimensions",
    "insert_first",
    "map_events",
    "update_dimension",
]

P = TypeVar("P", bound=Event)

#: A pipeline step: reads and changes the work in place.
Step: TypeAlias = Callable[[Work[Any]], None]

#: What `Pipeline.map` takes: one event to no row, one row, or several rows.
MapFunction: TypeAlias = Callable[
    [Envelope[P]], Fact | Dimension | Iterable[Fact | Dimension] | None
]


class MapStep:
    """The step of `Pipeline.map`: maps every event with `function`; an event it raises on
    becomes a dead letter. Keeps `function`, so that a `Projection` can also run column-wise."""

    __slots__ = ("__name__", "function", "function_name")

    def __init__(self, function: MapFunction[Any]) -> None:
        self.function = function
        self.function_name: str = getattr(function, "__name__", repr(function))
        self.__name__ = f"map({self.function_name})"

    def __call__(self, work: Work[Any]) -> None:
        function, name = self.function, self.function_name
        mapped = work.mapped
        failed: list[tuple[Envelope[Any], str]] = []
        for envelope in work.events:
            try:
                out = function(envelope)
            except RejectedEvent as error:
                failed.append((envelope, str(error)))
                continue
            except Exception as error:  # a bug or bad data in one event must not stop the rest
                failed.append((envelope, f"{name} raised {type(error).__name__}: {error}"))
                continue
            if out is None:
                continue
            if isinstance(out, Fact | Dimension):
                mapped.append((envelope, out))
            else:
                mapped.extend((envelope, row) for row in out)
        for envelope, reason in failed:
            work.reject(envelope, reason)


def map_events(function: MapFunction[Any]) -> MapStep:
    """A step that maps every event with `function`; an event it raises on becomes a dead letter."""
    return MapStep(function)


def ensure_dimensions(work: Work[Any]) -> None:
    """Make every dimension key that a mapped row refers to exist (as an inferred member if new)."""
    references = work.changes.references
    # Rows of one class share their references: collect the keys column by column, in C.
    by_class: dict[type[Any], list[Fact | Dimension]] = {}
    for _, row in work.mapped:
        by_class.setdefault(type(row), []).append(row)
    for rows in by_class.values():
        for field, target in _references(rows[0]).items():
            keys = references.setdefault(target.__factflow_dimension__.table, set())
            keys.update(map(attrgetter(field), rows))
            keys.discard(None)


def ensure(dimension: type[Dimension]) -> Step:
    """`ensure_dimensions` for the references to one dimension only (the talk's EnsureUser)."""
    target_table = dimension.__factflow_dimension__.table

    def ensure_step(work: Work[Any]) -> None:
        keys = work.changes.references.setdefault(target_table, set())
        for _, row in work.mapped:
            for field, target in _references(row).items():
                if target is dimension and (key := getattr(row, field)) is not None:
                    keys.add(key)

    ensure_step.__name__ = f"ensure({dimension.__name__})"
    return ensure_step


def _references(row: Fact | Dimension) -> Mapping[str, type[Dimension]]:
    meta = row.__factflow_fact__ if isinstance(row, Fact) else row.__factflow_dimension__
    return meta.references


class StoreStep:
    """A step that stages the mapped rows of one class for writing; knows the table it writes."""

    __slots__ = ("__name__", "fields", "row_class", "table", "writes_dimension")

    def __init__(self, row_class: type[Fact] | type[Dimension]) -> None:
        self.row_class = row_class
        self.writes_dimension = issubclass(row_class, Dimension)
        meta: Any = getattr(row_class, "__factflow_fact__", None) or getattr(
            row_class, "__factflow_dimension__", None
        )
        if meta is None:
            raise TypeError(f"{row_class!r} is not declared with @fact or @dimension")
        self.table: str = meta.table
        self.fields: tuple[str, ...] = row_class.__struct_fields__
        verb = "update_dimension" if self.writes_dimension else "insert_first"
        self.__name__ = f"{verb}({row_class.__name__})"

    def __call__(self, work: Work[Any]) -> None:
        row_class = self.row_class
        target = work.changes.dimension_changes if self.writes_dimension else work.changes.facts
        rows = target.setdefault(self.table, RowBlock(self.fields))
        if not isinstance(rows, RowBlock):
            raise TypeError(f"{self.table}: another step staged rows that are not a RowBlock")
        append = rows.append
        for envelope, row in work.mapped:
            if type(row) is row_class:
                append(row, envelope)
        work.stored.add(row_class)


def insert_first(fact: type[Fact]) -> StoreStep:
    """Insert the mapped facts of this class; a fact whose key is already stored changes nothing."""
    return StoreStep(fact)


def update_dimension(dimension: type[Dimension]) -> StoreStep:
    """Record the mapped changes of this dimension, kept by event time (any arrival order)."""
    return StoreStep(dimension)
