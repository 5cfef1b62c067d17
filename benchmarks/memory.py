"""Family `memory` (issue 4, item 4): peak RSS of `factflow bootstrap` against stream length.

It must be flat: bounded batches and bounded dimension caches, no per-event state that grows.
The figures are each bootstrap process's own peak (`os.wait4`), DuckDB's memory included. When
the `embedded` family ran in the same run its bootstraps are reused rather than run twice.
"""

from __future__ import annotations

from typing import Any

from benchmarks.embedded import bootstrap
from benchmarks.measure import median_of_runs, say
from benchmarks.settings import Settings

__all__ = ["BASE", "run"]

BASE = 100_000  # the stream length the others are compared with (the 10^5)


def run(settings: Settings, embedded: dict[str, Any] | None) -> dict[str, Any]:
    """Peak RSS of the bootstrap (and of the log run, when measured) at every size."""
    measured = {
        (c["case"], c["events"]): c for c in (embedded or {}).get("cases", ()) if c["peak_rss"]
    }
    cases = []
    for events in settings.sizes:
        case = measured.get(("factflow_bootstrap", events))
        if case is None:
            say(f"memory: bootstrap of {events:,} events")
            path = settings.workspace.events_file(events)
            case = median_of_runs(bootstrap, settings.workspace, path, events)
        cases.append(_memory("factflow_bootstrap", case))
        log_run = measured.get(("factflow_log_run", events))
        if log_run is not None:
            cases.append(_memory("factflow_log_run", log_run))
    base = {c["case"]: c["peak_rss"] for c in cases if c["events"] == BASE}
    for case in cases:
        if case["case"] in base:
            case["ratio_to_base"] = round(case["peak_rss"] / base[case["case"]], 3)
    return {"base_events": BASE, "cases": cases}


def _memory(case: str, measured: dict[str, Any]) -> dict[str, Any]:
    return {
        "case": case,
        "events": measured["events"],
        "peak_rss": measured["peak_rss"],
        "seconds": measured["seconds"],
    }
