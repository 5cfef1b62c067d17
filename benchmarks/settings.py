"""What one run of the suite measures: the stream sizes and the caps of the slow baselines."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.workspace import Workspace

__all__ = ["FAMILIES", "Settings", "parse_sizes"]

FAMILIES = ("embedded", "memory", "kpi", "production", "profile", "stages")


@dataclass(frozen=True)
class Settings:
    """The sizes of a run and how far each case goes.

    Attributes:
        sizes: stream lengths (events) for the embedded and memory families, ascending.
        full: whether this is the full run (adds 10^7 and the 10M-transaction KPI warehouse).
        per_event_max: the largest stream the per-event design is run on (~1 min at ~0.3k/s).
        dlt_max: the largest stream dlt is run on (~1 min at ~5k/s).
        production_max: the largest stream sent through RabbitMQ into PostgreSQL.
        kpi_transactions: the transaction counts of the KPI warehouses.
        profile_events: the stream length of the profiled bootstrap.
        workspace: where inputs and throwaway warehouses go.
    """

    sizes: tuple[int, ...]
    full: bool
    per_event_max: int
    dlt_max: int
    production_max: int
    kpi_transactions: tuple[int, ...]
    profile_events: int
    workspace: Workspace

    def capped(self, cap: int) -> tuple[int, ...]:
        """The sizes of this run up to `cap`."""
        return tuple(n for n in self.sizes if n <= cap)


def parse_sizes(text: str) -> tuple[int, ...]:
    """`"1e4,1e5,100000"` → (10000, 100000), sorted and without repeats."""
    sizes = set()
    for part in text.split(","):
        value = float(part.strip())
        if value < 1 or value != int(value):
            raise ValueError(f"a size must be a whole number of events, got {part.strip()!r}")
        sizes.add(int(value))
    return tuple(sorted(sizes))
