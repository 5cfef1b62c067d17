"""Family `kpi` (issue 4, item 5): the latency of each banking KPI over large warehouses.

The warehouses are filled the way a user would fill them, only faster than waiting for live
traffic: `factflow bootstrap` of a simulated file long enough to hold the wanted number of
settled transactions (about 82 % of the simulated stream are transactions), into DuckDB and,
when the server answers, into a throwaway schema of PostgreSQL. Each KPI is then answered in one
worker process the way `factflow kpi NAME --format json` answers it
(`factflow.insight.kpi.answer`, then the JSON rendering), process start and the opening of the
warehouse left out; the median of `REPEATS` answers is reported.
"""

from __future__ import annotations

import math
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.embedded import APP, bootstrap, remove_database
from benchmarks.measure import run_worker, say
from benchmarks.production import POSTGRES_URL, drop_schemas, postgres_unavailable, with_schema
from benchmarks.settings import Settings
from benchmarks.workspace import Workspace, duckdb_url

__all__ = ["EVENTS_PER_TRANSACTION", "LIMIT_SECONDS", "REPEATS", "run", "time_kpis"]

REPEATS = 5
LIMIT_SECONDS = 1.0  # the target, over 10M transactions on DuckDB
EVENTS_PER_TRANSACTION = 1.25  # simulated envelopes per settled transaction, with a margin


def run(settings: Settings) -> dict[str, Any]:
    """Build a warehouse per backend and wanted transaction count, then time every KPI on it."""
    ws = settings.workspace
    warehouses = []
    postgres_reason = postgres_unavailable()
    for wanted in settings.kpi_transactions:
        events = math.ceil(wanted * EVENTS_PER_TRANSACTION)
        path = ws.events_file(events)
        say(f"kpi: warehouses with >= {wanted:,} transactions ({events:,} events)")
        database = ws.path(f"kpi-{wanted}.duckdb")
        try:
            warehouses.append(_measure("duckdb", duckdb_url(database), path, events, wanted, ws))
        finally:
            remove_database(database)
        if postgres_reason is None:
            schema = f"bench_kpi_{uuid.uuid4().hex[:10]}"
            try:
                url = with_schema(POSTGRES_URL, schema)
                warehouses.append(_measure("postgresql", url, path, events, wanted, ws))
            finally:
                drop_schemas([schema])
    return {
        "repeats": REPEATS,
        "limit_seconds": LIMIT_SECONDS,
        "warehouses": warehouses,
        "not_measured": []
        if postgres_reason is None
        else [{"backend": "postgresql", "reason": postgres_reason}],
    }


def _measure(
    backend: str, url: str, path: Path, events: int, wanted: int, ws: Workspace
) -> dict[str, Any]:
    built = bootstrap(ws, path, events, warehouse=url)
    say(f"  timing the KPIs on {backend} (median of {REPEATS})")
    _, result = run_worker("kpi_latency", {"url": url, "repeats": REPEATS})
    return {
        "backend": backend,
        "wanted_transactions": wanted,
        "events": events,
        "build": {"how": "factflow bootstrap", **built},
        **result,
    }


def time_kpis(url: str, repeats: int) -> dict[str, Any]:
    """In a worker: answer every KPI of the app `repeats` times; the timings and a summary."""
    from factflow.cli.locations import load_app, open_warehouse
    from factflow.cli.output import kpi_json
    from factflow.insight.kpi import answer

    app = load_app(APP)
    store = open_warehouse(url, read_only=True)
    try:
        transactions = store.query("SELECT count(*) FROM fact_card_transaction").rows[0][0]
        kpis = []
        for name in app.kpis:
            seconds = []
            rows: list[dict[str, Any]] = []
            for _ in range(repeats):
                started = time.perf_counter()
                rows = answer(app, name, store)
                kpi_json(name, rows)
                seconds.append(time.perf_counter() - started)
            kpis.append(
                {
                    "kpi": name,
                    "median_seconds": round(statistics.median(seconds), 6),
                    "seconds": [round(s, 6) for s in seconds],
                    "rows": len(rows),
                }
            )
    finally:
        store.close()
    return {"transactions": transactions, "kpis": kpis}
