"""`factflow bootstrap --resume`: killed midway, it goes on from its checkpoint, and the result
is the same as one uninterrupted run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from factflow.cli import main
from factflow.examples.banking import app
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.testing import Harness
from factflow.transport.files import write_lines
from factflow.warehouse.duckdb import DuckDBWarehouse


def factflow(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "factflow", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def kpis(path: Path) -> dict[str, object]:
    with DuckDBWarehouse(path) as store:
        harness = Harness(app, store)
        return {name: harness.kpi(name) for name in app.kpis}


def test_a_killed_bootstrap_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_lines(events, simulate(SimulationOptions(events=60_000, seed=5, bad_lines=0.001)))
    command = [
        sys.executable, "-m", "factflow", "bootstrap", "--from", str(events),
        "--warehouse", "duckdb:///killed.duckdb", "--batch-size", "500",
    ]  # fmt: skip
    bootstrap = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.DEVNULL)
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

    resumed = factflow(
        tmp_path, "bootstrap", "--from", str(events), "--warehouse", "duckdb:///killed.duckdb",
        "--batch-size", "500", "--resume",
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after" in resumed.stderr
    done = int(resumed.stdout.split("events: ")[1].split()[0])
    assert done < 60_000  # it did not start over
    assert not list(checkpoints.glob("*.json"))  # finished: nothing left to resume

    whole = factflow(tmp_path, "bootstrap", "--from", str(events), "--warehouse",
                     "duckdb:///whole.duckdb")  # fmt: skip
    assert whole.returncode == 0, whole.stderr
    assert kpis(tmp_path / "killed.duckdb") == kpis(tmp_path / "whole.duckdb")


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
