"""Scenario 8 of issue 8, fuzzing: a short coverage-guided run of atheris over the envelope
decoder (fuzz_envelope.py). atheris is in the `test` dependency group where it has wheels
(Linux x86_64, CPython); elsewhere the scenario is skipped."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from reliability.conftest import ReliabilityTable

pytestmark = pytest.mark.reliability

SCRIPT = Path(__file__).with_name("fuzz_envelope.py")
RUNS = 100_000
#: libFuzzer stops after this many seconds even if `RUNS` are not done (a slow machine).
SECONDS = 20


def test_atheris_finds_no_crash_in_the_envelope_decoder(
    reliability_table: ReliabilityTable, tmp_path: Path
) -> None:
    pytest.importorskip("atheris", reason="atheris is not installed: pip install atheris")
    seeds = tmp_path / "corpus"
    seeds.mkdir()
    result = subprocess.run(
        [sys.executable, str(SCRIPT), f"-runs={RUNS}", f"-max_total_time={SECONDS}",
         "-max_len=2048", "-seed=8", f"-artifact_prefix={tmp_path}/", str(seeds)],
        capture_output=True,
        text=True,
        timeout=SECONDS + 60,
        check=False,
    )  # fmt: skip
    done = re.search(r"^Done (\d+) runs", result.stderr, re.MULTILINE)
    runs = int(done.group(1)) if done else 0
    # Coverage-guided: mutations of the seeds reached code the seeds did not, and were kept.
    discovered = len(re.findall(r"^#\d+\s+NEW ", result.stderr, re.MULTILINE))
    passed = result.returncode == 0 and runs > 0 and discovered > 0
    tail = result.stderr.strip().splitlines()[-3:]
    reliability_table.add_result(
        f"8 atheris fuzzing of the envelope decoder, {runs} inputs",
        passed=passed,
        published=runs,
        detail="" if passed else " / ".join(tail),
    )
    crashes = sorted(str(path) for path in tmp_path.glob("crash-*"))  # the inputs that crashed
    assert result.returncode == 0, f"{crashes}\n{result.stderr[-3000:]}"
    assert runs > 0 and discovered > 0, result.stderr[-3000:]
