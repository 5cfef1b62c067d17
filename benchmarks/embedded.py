"""Family `embedded` (issue 4, item 2): factflow into DuckDB against the floor and the others.

For every stream size, side by side: `factflow bootstrap` of the event file; the file published
to the embedded log, then `factflow run --until-idle` (the run alone is timed); and the
baselines of `benchmarks.baselines` on the same file. factflow's figures are wall-clock times of
the whole command, interpreter start included, as a user would see them; the baselines are
timed inside their worker (the interpreter start is left out, which flatters them a little at
small sizes). A case done in under `SHORT_SECONDS` is reported by the median of `REPEATS` runs.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from benchmarks.measure import (
    factflow,
    factflow_python,
    median_of_runs,
    record,
    run_process,
    run_worker,
    say,
)
from benchmarks.settings import Settings
from benchmarks.workspace import Workspace, duckdb_url, log_url, remove

__all__ = ["APP", "bootstrap", "remove_database", "run"]

APP = "factflow.examples.banking"
# Wide enough that the summary line of a command is never wrapped by the terminal library.
CLI_ENV = {"COLUMNS": "250", "NO_COLOR": "1"}
DLT_ENV = {"RUNTIME__DLTHUB_TELEMETRY": "false"}
_BOOTSTRAP = re.compile(
    r"events:\s*(\d+)\s+rows:\s*(\d+)\s+dead letters:\s*(\d+)\s+time:\s*([\d.]+)s", re.S
)


def run(settings: Settings) -> dict[str, Any]:
    """Measure every case at every size of `settings`; the slow baselines up to their caps."""
    ws = settings.workspace
    cases: list[dict[str, Any]] = []
    not_measured: list[dict[str, Any]] = []
    for events in settings.sizes:
        say(f"embedded: {events:,} events")
        path = ws.events_file(events)
        cases.append(median_of_runs(bootstrap, ws, path, events))
        if events <= settings.per_event_max and factflow_python() != sys.executable:
            # The same command from the suite's interpreter, beside pandas and NumPy.
            cases.append(median_of_runs(bootstrap, ws, path, events, python=sys.executable))
        cases.append(median_of_runs(log_run, ws, path, events))
        cases.append(median_of_runs(_read_json, ws, path, events))
        cases.append(median_of_runs(_decode, path, events))
        for case, cap, measure in (
            ("per_event", settings.per_event_max, _per_event),
            ("dlt", settings.dlt_max, _dlt),
        ):
            if events <= cap:
                cases.append(median_of_runs(measure, ws, path, events))
            else:
                not_measured.append(
                    {
                        "case": case,
                        "events": events,
                        "reason": f"above its cap of {cap:,} events (about a minute of work);"
                        " nothing is extrapolated",
                    }
                )
    return {
        "cases": cases,
        "not_measured": not_measured,
        "caps": {"per_event": settings.per_event_max, "dlt": settings.dlt_max},
    }


def bootstrap(
    ws: Workspace,
    path: Path,
    events: int,
    *,
    warehouse: str | None = None,
    python: str | None = None,
) -> dict[str, Any]:
    """`factflow bootstrap` of `path`: into `warehouse` (a URL, kept) if given, else into a new
    DuckDB file that is removed afterwards. With `python`, the command runs from that
    interpreter (the suite's own: case `factflow_bootstrap_beside_pandas`)."""
    scratch: Path | None = None
    if warehouse is None:
        scratch = ws.path(f"bootstrap-{events}.duckdb")
        warehouse = duckdb_url(scratch)
    case = "factflow_bootstrap" if python is None else "factflow_bootstrap_beside_pandas"
    say(f"  factflow bootstrap ({events:,})" + ("" if python is None else f" with {python}"))
    measured = run_process(
        factflow(
            "bootstrap", "--app", APP, "--from", str(path), "--warehouse", warehouse, python=python
        ),
        env=CLI_ENV,
    )
    if scratch is not None:
        remove_database(scratch)
    summary = _BOOTSTRAP.search(measured.stdout)
    if summary is None:
        raise RuntimeError(f"unexpected output of factflow bootstrap: {measured.stdout[-500:]}")
    processed, rows, dead, inner = summary.groups()
    return record(
        case,
        events,
        measured.seconds,
        measured.peak_rss,
        processed=int(processed),
        rows=int(rows),
        dead_letters=int(dead),
        inner_seconds=float(inner),
    )


def log_run(ws: Workspace, path: Path, events: int) -> dict[str, Any]:
    """Publish `path` to a new embedded log, then time `factflow run --until-idle` alone."""
    log, warehouse = ws.path(f"log-{events}"), ws.path(f"run-{events}.duckdb")
    say(f"  factflow publish + run, embedded log ({events:,})")
    published = run_process(
        factflow("publish", str(path), "--transport", log_url(log)), env=CLI_ENV
    )
    measured = run_process(
        factflow(
            "run",
            "--until-idle",
            "--app",
            APP,
            "--transport",
            log_url(log),
            "--warehouse",
            duckdb_url(warehouse),
            "--log-format",
            "json",
        ),
        env=CLI_ENV,
    )
    remove(log)
    remove_database(warehouse)
    stopped = stopped_line(measured.stderr)
    return record(
        "factflow_log_run",
        events,
        measured.seconds,
        measured.peak_rss,
        processed=stopped.get("events"),
        rows=stopped.get("rows"),
        dead_letters=stopped.get("dead_letters"),
        inner_seconds=stopped.get("seconds"),
        publish_seconds=round(published.seconds, 3),
    )


def stopped_line(stderr: str) -> dict[str, Any]:
    """The JSON log line `factflow run` ends with (`{"event": "stopped", ...}`), or {}."""
    for line in reversed(stderr.splitlines()):
        if line.startswith("{") and '"stopped"' in line:
            try:
                entry: dict[str, Any] = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("event") == "stopped":
                return entry
    return {}


def remove_database(path: Path) -> None:
    """A DuckDB file and its write-ahead log."""
    remove(path)
    remove(path.with_name(path.name + ".wal"))


def _read_json(ws: Workspace, path: Path, events: int) -> dict[str, Any]:
    database = ws.path(f"read_json-{events}.duckdb")
    say(f"  (a) duckdb read_json ({events:,})")
    measured, result = run_worker("read_json", {"path": str(path), "database": str(database)})
    remove_database(database)
    return _worker_record("read_json", events, measured.peak_rss, result)


def _decode(path: Path, events: int) -> dict[str, Any]:
    say(f"  (b) decoding alone ({events:,})")
    measured, result = run_worker("decode", {"path": str(path)})
    return _worker_record("decode", events, measured.peak_rss, result)


def _per_event(ws: Workspace, path: Path, events: int) -> dict[str, Any]:
    database = ws.path(f"per_event-{events}.duckdb")
    say(f"  (c) per-event design ({events:,})")
    measured, result = run_worker("per_event", {"path": str(path), "database": str(database)})
    remove_database(database)
    return _worker_record("per_event", events, measured.peak_rss, result)


def _dlt(ws: Workspace, path: Path, events: int) -> dict[str, Any]:
    database, pipelines = ws.path(f"dlt-{events}.duckdb"), ws.path(f"dlt-{events}")
    say(f"  (d) dlt ({events:,})")
    measured, result = run_worker(
        "dlt",
        {"path": str(path), "database": str(database), "pipelines_dir": str(pipelines)},
        env=DLT_ENV,
    )
    remove_database(database)
    remove(pipelines)
    return _worker_record("dlt", events, measured.peak_rss, result)


def _worker_record(case: str, events: int, peak_rss: int, result: dict[str, Any]) -> dict[str, Any]:
    seconds = result.pop("seconds")
    processed = result.pop("events")
    return record(case, events, seconds, peak_rss, processed=processed, **result)
