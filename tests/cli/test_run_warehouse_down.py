"""`factflow run` started while its warehouse is down waits for it with backoff, and stops
cleanly on SIGTERM/SIGINT while it waits; the one-shot commands fail at once instead."""

import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from conftest import service_url
from factflow.cli import main
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.transport.files import write_lines
from factflow.transport.log import LogTransport
from factflow.transport.publishing import outgoing
from factflow.warehouse.postgres import PostgresWarehouse
from tcp_proxy import TcpProxy

MESSAGES = list(simulate(SimulationOptions(events=400, seed=18)))


def closed_port() -> int:
    """A port nobody listens on: a PostgreSQL that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_service(tmp_path: Path, warehouse: str, *extra: str) -> subprocess.Popen[bytes]:
    log = tmp_path / "log"
    with LogTransport(log) as transport:
        transport.publish(outgoing(MESSAGES, []))
    with (tmp_path / "service.log").open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "factflow", "run", "--transport", f"log:///{log}",
             "--warehouse", warehouse, "--log-format", "json", *extra],
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )  # fmt: skip


def wait_for_retries(service: subprocess.Popen[bytes], log: Path, retries: int = 2) -> None:
    """Wait until the service said `retries` times that the warehouse is unavailable."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert service.poll() is None, "it must wait, not exit:\n" + log.read_text()
        if log.read_text().count("warehouse unavailable, retrying in") >= retries:
            return
        time.sleep(0.05)
    raise AssertionError("no retries logged:\n" + log.read_text())


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """The URL of a schema of this test's own on the shared PostgreSQL, dropped afterwards."""
    url = f"{service_url('postgres')}?schema=test_{uuid.uuid4().hex[:12]}"
    yield url
    with PostgresWarehouse(url) as store:
        store.drop_schema()


@pytest.mark.postgres
def test_a_service_started_while_the_warehouse_is_down_waits_and_then_consumes(
    tmp_path: Path, pg_schema: str
) -> None:
    target = urlsplit(pg_schema)
    proxy = TcpProxy((target.hostname or "127.0.0.1", target.port or 5432))
    proxy.cut()  # down from the start
    through_proxy = target._replace(netloc=f"{target.username}@127.0.0.1:{proxy.port}").geturl()
    service = start_service(tmp_path, through_proxy, "--until-idle", "--max-wait", "1")
    log = tmp_path / "service.log"
    try:
        wait_for_retries(service, log)
        proxy.restore()
        assert service.wait(timeout=60) == 0, log.read_text()
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
        proxy.close()
    with PostgresWarehouse(pg_schema) as store:
        [(facts,)] = store.query("SELECT count(*) FROM fact_card_transaction").rows
    assert facts > 0, log.read_text()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_waiting_for_the_warehouse_stops_the_service_cleanly(
    tmp_path: Path, stop: signal.Signals
) -> None:
    warehouse = f"postgresql://postgres@127.0.0.1:{closed_port()}/test"
    service = start_service(tmp_path, warehouse)
    log = tmp_path / "service.log"
    try:
        wait_for_retries(service, log)
        service.send_signal(stop)
        assert service.wait(timeout=10) == 0, log.read_text()
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
    assert '"stopped"' in log.read_text()


@pytest.mark.parametrize(
    "command",
    [
        ["kpi", "spend_by_currency"],
        ["dlq", "replay"],
        ["bootstrap", "--from", "{events}"],
        ["schema", "migrate"],
    ],
    ids=["kpi", "dlq replay", "bootstrap", "schema migrate"],
)
def test_the_one_shot_commands_fail_at_once_when_the_warehouse_is_down(
    tmp_path: Path, command: list[str]
) -> None:
    events = tmp_path / "events.jsonl"
    write_lines(events, MESSAGES[:10])
    warehouse = f"postgresql://postgres@127.0.0.1:{closed_port()}/test"
    args = [a.format(events=events) for a in command]
    started = time.monotonic()
    result = CliRunner().invoke(main, [*args, "--warehouse", warehouse])
    assert result.exit_code == 1, result.output
    assert "WarehouseUnavailable" in result.output and "Connection refused" in result.output
    assert time.monotonic() - started < 10
