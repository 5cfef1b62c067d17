"""Run one measured case in a fresh process: its wall time, its peak RSS, what it printed.

The peak RSS comes from `os.wait4`, which reports the resource usage of exactly that child
(and of any descendants it waited for), so no case inherits another's high-water mark.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "REPO",
    "CaseFailed",
    "Measured",
    "factflow",
    "factflow_python",
    "median_of_runs",
    "record",
    "run_process",
    "run_worker",
    "say",
]

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TIMEOUT = 3600.0  # seconds; a case that takes longer is broken, not slow

#: A case whose first run takes less than this many seconds is run `REPEATS` times and reported
#: by its median run: a second of work is at the mercy of whatever else the shared machine does
#: in that second, while a longer run averages such moments out by itself.
SHORT_SECONDS = 5.0
REPEATS = 3


class CaseFailed(RuntimeError):
    """A measured process exited with an error (the message ends with its stderr)."""


@dataclass(frozen=True)
class Measured:
    """What one process did: seconds from start to exit, peak resident memory, its output."""

    seconds: float
    peak_rss: int  # bytes
    stdout: str
    stderr: str
    returncode: int


def factflow_python() -> str:
    """The interpreter that runs factflow's commands: `FACTFLOW_BENCH_PYTHON` (`make bench`
    names one of an install holding only factflow and what it needs, as a deployment has it),
    else the one running this suite."""
    return os.environ.get("FACTFLOW_BENCH_PYTHON") or sys.executable


def factflow(*arguments: str, python: str | None = None) -> list[str]:
    """The command line of `factflow ARGUMENTS`, run by `python` (default: `factflow_python`)."""
    return [python or factflow_python(), "-m", "factflow", *arguments]


def run_process(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    check: bool = True,
) -> Measured:
    """Run `command` to completion in a new process and measure it.

    Raises `CaseFailed` when it exits non-zero (unless `check` is false) or runs past `timeout`.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        timer = threading.Timer(timeout, _kill_group, (process.pid,))
        timer.start()
        try:
            # wait4 (not Popen.wait) because it returns the child's own resource usage.
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait
        out.seek(0)
        err.seek(0)
        measured = Measured(
            seconds=seconds,
            peak_rss=usage.ru_maxrss * 1024,  # Linux reports kibibytes
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            returncode=process.returncode,
        )
    if check and measured.returncode != 0:
        raise CaseFailed(
            f"{' '.join(command)} exited with {measured.returncode}:\n{measured.stderr[-3000:]}"
        )
    return measured


def run_worker(
    case: str,
    params: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[Measured, dict[str, Any]]:
    """Run the in-process case `case` of `benchmarks.worker` in a fresh interpreter.

    Returns the measurement of the whole process and the JSON object the case printed last.
    """
    command = [sys.executable, "-m", "benchmarks.worker", case, json.dumps(dict(params))]
    measured = run_process(command, env=env, timeout=timeout)
    lines = measured.stdout.strip().splitlines()
    if not lines:
        raise CaseFailed(f"worker {case} printed no result:\n{measured.stderr[-3000:]}")
    return measured, json.loads(lines[-1])


def _kill_group(pid: int) -> None:
    # The case runs in a session of its own, so this ends it and whatever it started, only.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def record(
    case: str, events: int, seconds: float, peak_rss: int | None, **extra: Any
) -> dict[str, Any]:
    """One measured figure as results.json keeps it."""
    return {
        "case": case,
        "events": events,
        "seconds": round(seconds, 6),
        "events_per_s": round(events / seconds, 1) if seconds > 0 else None,
        "peak_rss": peak_rss,
        **extra,
    }


def median_of_runs(
    measure: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any
) -> dict[str, Any]:
    """The record (see `record`) of `measure(*args, **kwargs)`; if its first run was short
    (`SHORT_SECONDS`), the run of median time out of `REPEATS`, with every run's seconds in
    `runs_seconds`."""
    first = measure(*args, **kwargs)
    if first["seconds"] >= SHORT_SECONDS:
        return first
    runs = [first, *(measure(*args, **kwargs) for _ in range(REPEATS - 1))]
    median = sorted(runs, key=lambda run: float(run["seconds"]))[len(runs) // 2]
    return {**median, "runs_seconds": [run["seconds"] for run in runs]}


def say(message: str) -> None:
    """Progress on stderr, so a long run shows where it is."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
