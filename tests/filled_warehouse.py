"""A banking warehouse of each backend, filled and closed by its writer, for read-only tests."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from conftest import service_url
from factflow.examples.banking import app
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.testing import Harness
from factflow.warehouse.base import Warehouse
from factflow.warehouse.duckdb import DuckDBWarehouse

EVENTS = 800


@contextmanager
def filled_warehouse(backend: str, folder: Path) -> Iterator[str]:
    """The URL of a warehouse holding `EVENTS` simulated events; PostgreSQL's is a schema of
    its own, dropped afterwards."""
    messages = list(simulate(SimulationOptions(events=EVENTS, seed=7)))
    if backend == "duckdb":
        path = folder / "kpi.duckdb"
        with DuckDBWarehouse(path) as store:
            Harness(app, store).deliver(messages)
        yield f"duckdb:///{path}"
        return
    from factflow.warehouse.postgres import PostgresWarehouse

    base = service_url("postgres")
    url = f"{base}{'&' if '?' in base else '?'}schema=test_{uuid.uuid4().hex[:12]}"
    writer = PostgresWarehouse(url)
    try:
        Harness(app, writer).deliver(messages)
        yield url
    finally:
        writer.drop_schema()
        writer.close()


def dump(store: Warehouse) -> dict[str, Any]:
    """Every relation of the warehouse's schema (tables and views) with its rows, comparable."""
    relations = store.read(
        "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_catalog = current_database() "
        "ORDER BY table_name"
    ).to_pylist()
    found: dict[str, Any] = {"relations": relations}
    for relation in relations:
        rows = store.read(f'SELECT * FROM "{relation["table_name"]}"').to_pylist()
        found[relation["table_name"]] = sorted(rows, key=repr)
    return found
