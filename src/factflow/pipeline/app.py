"""Consumers bind a source, a consumer group and event types to pipelines; an App gathers them,
with its KPIs (see `factflow.insight.definitions`) and the bootstrap sources that replay history
from the services' own data."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from factflow.errors import DeclarationError
from factflow.insight.definitions import Kpi, KpiDefinition, Metric
from factflow.insight.metric_sql import resolve_group_bys
from factflow.model.declare import Dimension, Event, Fact
from factflow.model.schema import Schema, compile_schema
from factflow.model.upcasting import Upcaster
from factflow.pipeline.builder import Pipeline
from factflow.pipeline.sources import BootstrapSource

__all__ = ["App", "Consumer", "Kpi", "Metric"]


class Consumer:
    """The talk's `consumer.New(exchange, ConsumerGroupKpi, consumer.Pipe(event, pipe), ...)`.

    `source` is the domain whose events it reads (the RabbitMQ exchange of that name, the log
    segment of that domain); routing keys come from the event types, as in the talk.
    """

    __slots__ = ("group", "pipes", "source")

    def __init__(
        self,
        source: str,
        *,
        group: str = "kpi",
        pipes: Sequence[tuple[type[Event], Pipeline[Any]]] = (),
    ) -> None:
        self.source = source
        self.group = group
        self.pipes = tuple(pipes)
        for event, pipeline in self.pipes:
            meta = event.__factflow_event__
            if meta.domain != source:
                raise DeclarationError(
                    f"consumer of {source!r} cannot pipe {meta.type!r}: that event is published "
                    f"to the {meta.domain!r} domain; declare a Consumer({meta.domain!r}) for it"
                )
            if pipeline.event is not event:
                raise DeclarationError(
                    f"pipeline {pipeline.name!r} takes {pipeline.event.__name__}, "
                    f"not {event.__name__}"
                )

    def pipe(self, event: type[Event], pipeline: Pipeline[Any]) -> Consumer:
        """A consumer that also runs `pipeline` on every `event`."""
        return Consumer(self.source, group=self.group, pipes=(*self.pipes, (event, pipeline)))

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(event.__factflow_event__.type for event, _ in self.pipes)


class App:
    """Everything a KPI service runs: its consumers (with their pipelines) and its KPIs.

    `sources` are the bootstrap sources `factflow bootstrap --from LOCATION` runs (see
    `factflow.pipeline.sources`); their names must be unique. `upcasters` turn payloads of older
    event versions into the versions the pipelines handle (see `factflow.model.upcasting`).
    """

    __slots__ = ("_schema", "consumers", "kpis", "name", "sources", "upcasters")

    def __init__(
        self,
        name: str,
        *,
        consumers: Iterable[Consumer],
        kpis: Iterable[KpiDefinition] = (),
        sources: Iterable[BootstrapSource] = (),
        upcasters: Iterable[Upcaster[Any, Any]] = (),
    ) -> None:
        self.name = name
        #: How payloads of older event versions become the versions the pipelines handle.
        self.upcasters = tuple(upcasters)
        self.consumers = tuple(consumers)
        self.kpis: dict[str, KpiDefinition] = {}
        for kpi in kpis:
            if kpi.name in self.kpis:
                raise DeclarationError(f"app {name!r} declares two KPIs named {kpi.name!r}")
            self.kpis[kpi.name] = kpi
        self.sources: dict[str, BootstrapSource] = {}
        for source in sources:
            if not isinstance(source, BootstrapSource):
                raise DeclarationError(
                    f"app {name!r}: sources takes BootstrapSource objects (declare the function "
                    f"with @bootstrap_source(...)), got {source!r}"
                )
            if source.name in self.sources:
                raise DeclarationError(
                    f"app {name!r} declares two bootstrap sources named {source.name!r}; "
                    "give one another name (bootstrap_source(name=...))"
                )
            self.sources[source.name] = source
        self._schema: Schema | None = None
        for kpi in self.kpis.values():
            if isinstance(kpi, Metric):
                resolve_group_bys(kpi, self.schema)

    @property
    def events(self) -> tuple[type[Event], ...]:
        return tuple(dict.fromkeys(e for c in self.consumers for e, _ in c.pipes))

    @property
    def event_versions(self) -> tuple[type[Event], ...]:
        """Every payload class the app reads: those its pipelines handle and those it upcasts."""
        return tuple(dict.fromkeys([*self.events, *(u.source for u in self.upcasters)]))

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.group for c in self.consumers))

    def pipelines_by_type(self, group: str | None = None) -> dict[str, list[Pipeline[Any]]]:
        """Event type → the pipelines that run on it (for one consumer group, or all)."""
        routes: dict[str, list[Pipeline[Any]]] = {}
        for consumer in self.consumers:
            if group is None or consumer.group == group:
                for event, pipeline in consumer.pipes:
                    routes.setdefault(event.__factflow_event__.type, []).append(pipeline)
        return routes

    @property
    def schema(self) -> Schema:
        """The tables every pipeline of the app writes, compiled once."""
        if self._schema is None:
            facts: list[type[Fact]] = []
            dimensions: list[type[Dimension]] = []
            for consumer in self.consumers:
                for _, pipeline in consumer.pipes:
                    for cls in pipeline.writes:
                        if issubclass(cls, Fact):
                            facts.append(cls)
                        else:
                            dimensions.append(cls)
            self._schema = compile_schema(facts, dimensions)
        return self._schema

    def kpi(self, name: str) -> KpiDefinition:
        try:
            return self.kpis[name]
        except KeyError:
            known = ", ".join(sorted(self.kpis)) or "none"
            raise DeclarationError(
                f"app {self.name!r} has no KPI {name!r}; known: {known}"
            ) from None

    def source(self, name: str) -> BootstrapSource:
        try:
            return self.sources[name]
        except KeyError:
            known = ", ".join(self.sources) or "none"
            raise DeclarationError(
                f"app {self.name!r} has no bootstrap source {name!r}; known: {known}"
            ) from None
