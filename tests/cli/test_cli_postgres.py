"""`bootstrap`, `kpi`, `dlq` and `status` work against PostgreSQL as they are; no password shows."""

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from banking_oracle import expected_kpis, parse_valid
from conftest import service_url
from factflow.examples.banking import app
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.warehouse.postgres import PostgresWarehouse

pytestmark = pytest.mark.postgres

SECRET = "s3cret-not-for-logs"


@pytest.fixture
def warehouse_url() -> Iterator[str]:
    """PostgreSQL with a password in the URL (the test server trusts, so any password works)."""
    base = urlsplit(service_url("postgres"))
    netloc = f"{base.username or 'postgres'}:{SECRET}@{base.hostname}:{base.port or 5432}"
    url = base._replace(netloc=netloc, query=f"schema=test_{uuid.uuid4().hex[:12]}").geturl()
    yield url
    with PostgresWarehouse(url) as store:
        store.drop_schema()


def factflow(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "factflow", *args], capture_output=True, text=True, check=False
    )
    assert SECRET not in result.stdout + result.stderr
    return result


def test_the_commands_work_against_postgresql(warehouse_url: str, tmp_path: Path) -> None:
    messages = list(
        simulate(SimulationOptions(events=3000, seed=12, duplicates=0.05, bad_lines=0.01))
    )
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(messages) + b"\n")

    result = factflow(
        "bootstrap",
        "--app",
        "factflow.examples.banking",
        "--from",
        str(events),
        "--warehouse",
        warehouse_url,
    )
    assert result.returncode == 0, result.stderr
    assert "events: 3000" in result.stdout

    expected = expected_kpis(messages)
    for name in app.kpis:
        result = factflow(
            "kpi",
            name,
            "--app",
            "factflow.examples.banking",
            "--warehouse",
            warehouse_url,
            "--format",
            "json",
        )
        assert json.loads(result.stdout) == {"kpi": name, "rows": expected[name]}

    result = factflow("dlq", "list", "--warehouse", warehouse_url, "--format", "json")
    letters = [json.loads(line) for line in result.stdout.splitlines()]
    bad = {m for m in messages if parse_valid(m) is None}  # identical bad lines are kept once
    assert {
        letter["raw"].encode() if "raw" in letter else base64.b64decode(letter["raw_base64"])
        for letter in letters
    } == bad
    assert all(letter["reason"] for letter in letters)

    result = factflow(
        "status",
        "--warehouse",
        warehouse_url,
        "--transport",
        f"log:///{tmp_path}/log",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    settled = next(p for p in report["pipelines"] if p["event_type"] == "card.transaction_settled")
    assert settled["events"] > 0
    assert settled["last_event_at"].startswith("2026-")
    assert sum(p["dead_letters"] for p in report["pipelines"]) > 0
    assert report["backlog"] == 0


def test_a_wrong_password_is_reported_without_the_password(tmp_path: Path) -> None:
    result = factflow(
        "kpi", "spend_by_currency", "--warehouse", f"postgresql://nobody:{SECRET}@127.0.0.1:1/none"
    )
    assert result.returncode == 1
    assert "***" in result.stderr or "cannot" in result.stderr.lower()
