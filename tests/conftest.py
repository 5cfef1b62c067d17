"""Shared fixtures: warehouses of every backend, and the rules for the real servers.

Integration tests are marked with the server they need. An unreachable server skips them with
the reason, unless FACTFLOW_REQUIRE_SERVICES=1 (as in CI), where it fails them.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from factflow.warehouse.base import Warehouse
from factflow.warehouse.duckdb import DuckDBWarehouse

SERVICE_URLS = {
    "postgres": ("FACTFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    "rabbitmq": ("FACTFLOW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    "nats": ("FACTFLOW_TEST_NATS_URL", "nats://127.0.0.1:4222"),
}


def service_url(name: str) -> str:
    """The URL of a test server, or skip (fail in CI) when it cannot be reached."""
    variable, default = SERVICE_URLS[name]
    url = os.environ.get(variable, default)
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 2):
            pass
    except OSError as error:
        reason = f"{name} is not reachable at {parts.hostname}:{parts.port} ({error})"
        if os.environ.get("FACTFLOW_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}; FACTFLOW_REQUIRE_SERVICES=1 requires it")
        pytest.skip(reason)
    return url


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest) -> Iterator[Warehouse]:
    """A fresh, empty warehouse of each backend; the same contract tests run on all of them.

    PostgreSQL gets a schema of its own per test, dropped afterwards.
    """
    if request.param == "duckdb":
        store: Warehouse = DuckDBWarehouse(None)
        yield store
        store.close()
        return
    from factflow.warehouse.postgres import PostgresWarehouse

    schema = f"test_{uuid.uuid4().hex[:12]}"
    store = PostgresWarehouse(service_url("postgres"), schema=schema)
    try:
        yield store
    finally:
        store.drop_schema()
        store.close()
