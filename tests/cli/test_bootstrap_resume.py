"""`factflow bootstrap --resume`: killed midway, it goes on from its checkpoint, and the result
is the same as one uninterrupted run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from banking_oracle import expected_kpis
from conftest import service_url
from factflow.cli import main
from factflow.cli.locations import open_warehouse
from factflow.examples.banking import app
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.testing import Harness
from factflow.transport.files import write_lines
from factflow.warehouse.postgres import PostgresWarehouse


def factflow(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "factflow", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "duckdb":
        yield f"duckdb:///{tmp_path / 'kpi.duckdb'}"
        return
    url = f"{service_url('postgres')}?schema=test_{uuid.uuid4().hex[:12]}"
    yield url
    with PostgresWarehouse(url) as store:
        store.drop_schema()


def test_a_killed_bootstrap_resumes_from_its_checkpoint(tmp_path: Path, warehouse_url: str) -> None:
    events = tmp_path / "events.jsonl"
    messages = list(simulate(SimulationOptions(events=60_000, seed=5, bad_lines=0.001)))
    write_lines(events, messages)
    arguments = ["bootstrap", "--from", str(events), "--warehouse", warehouse_url,
                 "--batch-size", "500"]  # fmt: skip
    bootstrap = subprocess.Popen(
        [sys.executable, "-m", "factflow", *arguments], cwd=tmp_path, stderr=subprocess.DEVNULL
    )
    checkpoints = tmp_path / ".factflow" / "checkpoints"
    deadline = time.monotonic() + 60
    saved: dict[str, object] = {}
    while time.monotonic() < deadline and bootstrap.poll() is None:
        files = list(checkpoints.glob("*.json")) if checkpoints.exists() else []
        if files:
            saved = json.loads(files[0].read_bytes() or b"{}")
            if isinstance(saved.get("events"), int) and saved["events"] >= 5000:
                break
        time.sleep(0.01)
    bootstrap.send_signal(signal.SIGKILL)
    bootstrap.wait()
    assert 5000 <= int(saved["events"]) < 60_000  # type: ignore[call-overload]

    resumed = factflow(tmp_path, *arguments, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after" in resumed.stderr
    done = int(resumed.stdout.split("events: ")[1].split()[0])
    assert done < 60_000  # it did not start over
    assert not list(checkpoints.glob("*.json"))  # finished: nothing left to resume

    expected = expected_kpis(messages)
    store = open_warehouse(warehouse_url)
    try:
        harness = Harness(app, store)
        for name in app.kpis:
            assert harness.kpi(name) == expected[name], name
    finally:
        store.close()


def test_resume_without_a_checkpoint_starts_from_the_beginning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = tmp_path / "events.jsonl"
    write_lines(events, simulate(SimulationOptions(events=300, seed=6)))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main,
        ["bootstrap", "--from", str(events), "--warehouse", "duckdb:///w.duckdb", "--resume"],
    )
    assert result.exit_code == 0, result.output
    assert "no checkpoint" in result.output
    assert "events: 300" in result.output
