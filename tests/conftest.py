"""Shared fixtures: warehouses of every backend, and the rules for the real servers.

Integration tests are marked with the server they need. An unreachable server skips them with
the reason, unless FACTFLOW_REQUIRE_SERVICES=1 (as in CI), where it fails them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

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


T = TypeVar("T")


def rabbitmqctl(*args: str) -> str:
    """Run the broker's own admin tool (a vhost per test keeps tests apart)."""
    return subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="session")
def vhost_deletions() -> Iterator[list[subprocess.Popen[bytes]]]:
    """vhost deletions running in the background, awaited at the end of the session."""
    running: list[subprocess.Popen[bytes]] = []
    yield running
    failed = [process.args for process in running if process.wait(timeout=120)]
    assert not failed, f"could not delete test vhosts: {failed}"


@pytest.fixture
def amqp_url(vhost_deletions: list[subprocess.Popen[bytes]]) -> Iterator[str]:
    """The URL of a fresh vhost of the test broker, deleted afterwards."""
    base = urlsplit(service_url("rabbitmq"))
    if shutil.which("rabbitmqctl") is None:
        reason = "rabbitmqctl is needed to create a vhost per test"
        if os.environ.get("FACTFLOW_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    vhost = f"test_{uuid.uuid4().hex[:12]}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, base.username or "guest", ".*", ".*", ".*")
        yield base._replace(path="/" + quote(vhost, safe="")).geturl()
    finally:
        # Deleting takes the broker's tool half a second; the next tests need not wait for it.
        vhost_deletions.append(
            subprocess.Popen(
                ["rabbitmqctl", "-q", "delete_vhost", vhost],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )


def nats_admin(url: str, action: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run `action(js)` with a plain nats-py client: another program, not factflow."""
    import nats

    async def run() -> T:
        client = await nats.connect(url)
        try:
            return await action(client.jetstream())
        finally:
            await client.close()

    return asyncio.run(run())


@pytest.fixture
def nats_prefix() -> Iterator[str]:
    """A subject prefix of this test's own; its streams are deleted afterwards."""
    server = service_url("nats")
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix

    async def delete(js: Any) -> None:
        for stream in await js.streams_info():
            if stream.config.name.startswith(f"{prefix}_"):
                await js.delete_stream(stream.config.name)

    nats_admin(server, delete)
