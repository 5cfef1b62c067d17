"""A consumer killed with SIGKILL at random moments, then restarted, loses and doubles nothing."""

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from banking_oracle import expected_kpis, parse_valid
from factflow.examples.banking import app
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.testing import Harness
from factflow.transport.log import LogTransport
from factflow.transport.publishing import Unroutable, outgoing
from factflow.warehouse.duckdb import DuckDBWarehouse

STREAM = SimulationOptions(
    events=30_000,
    seed=21,
    duplicates=0.03,
    republications=0.02,
    shuffle_window=300,
    bad_lines=0.005,
)


def consumer(
    log: Path, warehouse: Path, *, errors: int = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "factflow",
            "run",
            "--app",
            "factflow.examples.banking",
            "--transport",
            f"log:///{log}",
            "--warehouse",
            f"duckdb:///{warehouse}",
            "--until-idle",
            "--batch-size",
            "250",
            "--max-wait",
            "0.01",
        ],
        stdout=subprocess.DEVNULL,
        stderr=errors,
    )


def test_a_consumer_killed_mid_stream_resumes_without_loss_or_double_effect(tmp_path: Path) -> None:
    messages = list(simulate(STREAM))
    log, warehouse = tmp_path / "log", tmp_path / "kpi.duckdb"
    refused: list[Unroutable] = []
    with LogTransport(log) as transport:
        transport.publish(outgoing(messages, refused))
    rng = random.Random(4)

    killed_while_working = 0
    for _ in range(5):
        process = consumer(log, warehouse)
        time.sleep(rng.uniform(0.9, 2.0))
        if process.poll() is None:
            killed_while_working += 1
            process.send_signal(signal.SIGKILL)
        process.wait()
    finished = consumer(log, warehouse, errors=subprocess.PIPE)
    _, errors = finished.communicate(timeout=300)
    assert finished.returncode == 0, errors.decode()
    assert killed_while_working >= 2, "the kills should land while the consumer is working"

    routable = [m for i, m in enumerate(messages, 1) if i not in {r.number for r in refused}]
    valid = [m for m in routable if (parsed := parse_valid(m)) is not None]
    with DuckDBWarehouse(warehouse) as store:
        harness = Harness(app, store)
        expected = expected_kpis(messages)
        for name in app.kpis:
            assert harness.kpi(name) == expected[name], name
        balance_ids = {
            parsed.id
            for m in valid
            if (parsed := parse_valid(m)) and parsed.type == "account.balance_updated"
        }
        assert store.query("SELECT count(*) FROM fact_account_balance_change").rows == [
            (len(balance_ids),)
        ]
        # The app consumes the user, account, card and goal domains; a message published to a
        # domain no consumer reads (say `loan`) is not the app's to keep, as on a broker.
        consumed = {b'"type":"' + d.encode() + b"." for d in ("user", "account", "card", "goal")}
        bad = {
            m
            for m in routable
            if parse_valid(m) is None and any(marker in m for marker in consumed)
        }
        assert {d.raw for d in store.dead_letters()} == bad
