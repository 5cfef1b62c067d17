"""`factflow run` as a process: metrics, health, JSON logs, and a clean stop on SIGTERM."""

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.transport.log import LogTransport
from factflow.transport.publishing import outgoing


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_for(url: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            get(url)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


def test_the_service_serves_metrics_and_health_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    log = tmp_path / "log"
    with LogTransport(log) as transport:
        transport.publish(outgoing(simulate(SimulationOptions(events=3000, seed=8)), []))
    port = free_port()
    service = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "factflow",
            "run",
            "--transport",
            f"log:///{log}",
            "--warehouse",
            f"duckdb:///{tmp_path}/kpi.duckdb",
            "--metrics-port",
            str(port),
            "--max-wait",
            "0.05",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, metrics = get(f"http://127.0.0.1:{port}/metrics")
            if 'factflow_events_total{event_type="card.transaction_settled"}' in metrics:
                break
            time.sleep(0.2)
        assert status == 200
        for name in (
            "factflow_events_per_second",
            "factflow_batch_seconds_bucket",
            "factflow_dead_letters_total",
            "factflow_backlog",
            "factflow_event_lag_seconds",
        ):
            assert name in metrics, name
        status, health = get(f"http://127.0.0.1:{port}/healthz")
        assert (status, json.loads(health)["status"]) == (200, "ok")
        assert get(f"http://127.0.0.1:{port}/nope")[0] == 404
    finally:
        service.send_signal(signal.SIGTERM)
        _, errors = service.communicate(timeout=30)
    assert service.returncode == 0, errors.decode()
    lines = [json.loads(line) for line in errors.decode().splitlines() if line.strip()]
    assert {"consuming", "stopped"} <= {line["event"] for line in lines}
    assert all({"level", "timestamp", "logger"} <= set(line) for line in lines)
    assert "received SIGTERM: finishing the batch in hand" in {line["event"] for line in lines}
    with LogTransport(log) as transport:
        assert transport.depth("kpi") == 0
