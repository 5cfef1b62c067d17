"""factflow: turn the business events your services publish into a trustworthy star schema.

Declare events, facts and dimensions as typed classes, connect them with pipelines, bind the
pipelines to consumers, and run them on the embedded log or a broker into DuckDB or PostgreSQL.
See `factflow.examples.banking` for a complete app.
"""

from __future__ import annotations

from factflow.errors import (
    ConfigurationError,
    DeclarationError,
    DecodeError,
    FactflowError,
    RejectedEvent,
    TerminalError,
    TransientError,
    UnknownEventError,
)
from factflow.insight.definitions import Count, CountDistinct, Kpi, Max, Metric, Min, Sum
from factflow.model.dead_letter import DeadLetter
from factflow.model.declare import Dimension, Event, Fact, dimension, event, fact
from factflow.model.envelope import Envelope
from factflow.model.types import Money
from factflow.model.upcasting import Upcaster, upcaster
from factflow.pipeline.app import App, Consumer
from factflow.pipeline.builder import Pipeline
from factflow.pipeline.projection import Projection, project
from factflow.pipeline.sources import BootstrapSource, SourceEvent, bootstrap_source
from factflow.pipeline.steps import (
    MapFunction,
    Step,
    ensure,
    ensure_dimensions,
    insert_first,
    update_dimension,
)
from factflow.pipeline.work import Work

__all__ = [
    "App",
    "BootstrapSource",
    "ConfigurationError",
    "Consumer",
    "Count",
    "CountDistinct",
    "DeadLetter",
    "DeclarationError",
    "DecodeError",
    "Dimension",
    "Envelope",
    "Event",
    "Fact",
    "FactflowError",
    "Kpi",
    "MapFunction",
    "Max",
    "Metric",
    "Min",
    "Money",
    "Pipeline",
    "Projection",
    "RejectedEvent",
    "SourceEvent",
    "Step",
    "Sum",
    "TerminalError",
    "TransientError",
    "UnknownEventError",
    "Upcaster",
    "Work",
    "bootstrap_source",
    "dimension",
    "ensure",
    "ensure_dimensions",
    "event",
    "fact",
    "insert_first",
    "project",
    "upcaster",
    "update_dimension",
]
