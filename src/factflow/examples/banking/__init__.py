"""The example app of banking.md: the bank of the talk, its events, model, pipelines and KPIs.

Run it with `factflow demo`, or point any command at it with `--app factflow.examples.banking`.
`factflow simulate --to postgresql://…` writes the services' own tables, which its bootstrap
sources (`sources.py`) read back: `factflow bootstrap --from postgresql://…`.
"""

from __future__ import annotations

from factflow.pipeline.app import App

from .kpis import KPIS
from .pipelines import CONSUMERS
from .sources import SOURCES

__all__ = ["app"]

app = App("banking", consumers=CONSUMERS, kpis=KPIS, sources=SOURCES)
