"""Scenario 8 of issue 8, fuzzing: a short coverage-guided run of atheris over the envelope
decoder (fuzz_envelope.py), when atheris is installed (`pip install atheris`; it is not a
dependency of the project: its wheels exist for Linux and macOS on CPython only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reliability.conftest import ReliabilityTable

pytestmark = pytest.mark.reliability

SCRIPT = Path(__file__).with_name("fuzz_envelope.py")
RUNS = 30_000


def test_atheris_finds_no_crash_in_the_envelope_decoder(
    reliability_table: ReliabilityTable, tmp_path: Path
) -> None:
    pytest.importorskip("atheris", reason="atheris is not installed: pip install atheris")
    seeds = tmp_path / "corpus"
    seeds.mkdir()
    result = subprocess.run(
        [sys.executable, str(SCRIPT), f"-runs={RUNS}", "-max_len=2048", "-seed=8", str(seeds)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    passed = result.returncode == 0
    tail = result.stderr.strip().splitlines()[-3:]
    reliability_table.add_result(
        f"8 atheris fuzzing of the envelope decoder, {RUNS} inputs",
        passed=passed,
        published=RUNS,
        detail="" if passed else " / ".join(tail),
    )
    assert passed, result.stderr[-3000:]
