"""Scenario 10: the disk under the DuckDB file fills up (a tmpfs of 1 MB mounted for the test)
while the consumer writes, from the embedded log on another disk.

The consumer must say why it cannot write and wait (not crash, not dead-letter, not
acknowledge); what the warehouse holds is then exactly what was acknowledged — no partial
batch; once there is room again it goes on by itself, and the end result holds every invariant.
"""

from __future__ import annotations

import contextlib
import json
import signal
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.transport.log import LogTransport
from factflow.transport.publishing import Unroutable, outgoing
from factflow.warehouse.duckdb import DuckDBWarehouse
from reliability.conftest import ReliabilityTable
from reliability.infra import CONSUMED, start_consumer, stopped
from reliability.ledger import Ledger, deliverable

pytestmark = [pytest.mark.reliability]

SCENARIO = "10 disk full under the DuckDB file (tmpfs of 1 MB)"


@pytest.fixture
def small_disk(tmp_path: Path, reliability_table: ReliabilityTable) -> Iterator[Path]:
    """A directory on a tmpfs of 1 MB, unmounted afterwards."""
    mount = tmp_path / "small"
    mount.mkdir()
    tried = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if tried.returncode != 0:
        reason = f"cannot mount a tmpfs here: {tried.stderr.strip() or tried.returncode}"
        reliability_table.add_blocked(SCENARIO, reason)
        pytest.skip(reason)
    try:
        yield mount
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(["umount", "-l", str(mount)], check=True, capture_output=True)


def acknowledged(log: Path, group: str = "kpi") -> list[bytes]:
    """The bodies the group acknowledged: every record of the log before its committed offsets
    (the log's framing: u32 length, u32 crc32, u16 type length, type, body; little-endian)."""
    offsets = json.loads((log / "groups" / group / "offsets.json").read_text())["offsets"]
    bodies = []
    for domain, end in offsets.items():
        data = (log / f"{domain}.log").read_bytes()[:end]
        position = 0
        while position < len(data):
            length, _ = struct.unpack_from("<II", data, position)
            (type_length,) = struct.unpack_from("<H", data, position + 8)
            bodies.append(data[position + 10 + type_length : position + 8 + length])
            position += 8 + length
    return bodies


def wait_for(text: str, log: Path, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert process.poll() is None, "the consumer exited:\n" + log.read_text()[-4000:]
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{log.read_text()[-4000:]}"
        time.sleep(0.2)


def test_a_full_disk_stops_writing_cleanly_and_recovers(
    small_disk: Path, tmp_path: Path, reliability_table: ReliabilityTable
) -> None:
    messages = list(simulate(SimulationOptions(events=12_000, seed=90, bad_lines=0.01)))
    events = tmp_path / "log"
    with LogTransport(events) as transport:
        transport.publish(outgoing(messages, list[Unroutable]()))
    transport_url, warehouse = f"log:///{events}", small_disk / "kpi.duckdb"
    warehouse_url = f"duckdb:///{warehouse}"
    log = tmp_path / "service.log"

    # The disk fills: the consumer says so, and waits.
    service = start_consumer(transport_url, warehouse_url, log, batch_size=500)
    wait_for("No space left on device", log, service, timeout=120)
    assert "warehouse unavailable" in log.read_text()
    service.send_signal(signal.SIGTERM)
    assert stopped(service) == 0, log.read_text()[-4000:]
    assert "Traceback" not in log.read_text()

    # No partial batch, no acknowledgement of it: the warehouse holds exactly what was
    # acknowledged (`unexpected` would show a row of the batch that failed).
    done = Ledger()
    done.record_all(deliverable(acknowledged(events)))
    with DuckDBWarehouse(warehouse) as store:
        partial = done.check(store)
    assert partial.ok, f"the warehouse is not what was acknowledged:\n{partial}"
    assert 0 < partial.published < len(set(messages))

    # Room again, with the consumer waiting on the full disk: it goes on by itself.
    log = tmp_path / "service-again.log"
    service = start_consumer(transport_url, warehouse_url, log, "--until-idle", "--max-wait", "3")
    wait_for("warehouse unavailable", log, service, timeout=120)
    subprocess.run(["mount", "-o", "remount,size=256m", str(small_disk)], check=True)
    assert stopped(service, timeout=300) == 0, log.read_text()[-4000:]

    ledger = Ledger()
    ledger.record_all(deliverable(messages))
    with LogTransport(events) as transport, DuckDBWarehouse(warehouse) as store:
        lag = transport.lag("kpi")  # in bytes, of every domain: those the app reads count
        verdict = ledger.check(store, queue_depths={f"log {d}": lag[d] for d in CONSUMED})
    reliability_table.add(SCENARIO, verdict)
    verdict.assert_ok()
