"""The machine a run measured on, and the versions of what it measured."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["PACKAGES", "describe", "factflow_install", "load", "revision", "versions"]

PACKAGES = (
    "factflow",
    "duckdb",
    "pyarrow",
    "msgspec",
    "dlt",
    "psycopg",
    "pika",
    "py-spy",
    "pyinstrument",
)


def describe() -> dict[str, Any]:
    """CPU count and model, memory, OS, Python, and how busy the machine was (load average)."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_bytes": _memory_bytes(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
    }


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages (the machine is shared: other work skews figures)."""
    return [round(x, 2) for x in os.getloadavg()]


def versions() -> dict[str, str | None]:
    """Installed versions of factflow and the libraries it is measured with or against."""
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def factflow_install(python: str) -> dict[str, Any]:
    """What the interpreter running factflow's commands has installed: whether it is the one
    running the suite, and the versions of every package beside factflow (pandas and NumPy
    among them or not: Arrow imports them into every command when they are there)."""
    listing = subprocess.run(
        [python, "-c", _LIST_PACKAGES], capture_output=True, text=True, check=True
    ).stdout
    found = json.loads(listing)
    packages: dict[str, str] = found["packages"]
    return {
        "python": python,
        # By prefix: a venv's interpreter is a link to the same binary as any other venv's.
        "separate": found["prefix"] != sys.prefix,
        "pandas": packages.get("pandas"),
        "numpy": packages.get("numpy"),
        "packages": dict(sorted(packages.items())),
    }


_LIST_PACKAGES = (
    "import json, sys, importlib.metadata as m; print(json.dumps({'prefix': sys.prefix,"
    " 'packages': {d.metadata['Name'].lower(): d.version for d in m.distributions()}}))"
)


def revision(repository: Path) -> dict[str, Any]:
    """The commit measured, and whether `src/` differed from it (uncommitted changes)."""

    def git(*arguments: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *arguments], cwd=repository, capture_output=True, text=True, check=True
            )
        except (OSError, subprocess.CalledProcessError):
            return None
        return done.stdout.strip()

    status = git("status", "--porcelain", "--", "src")
    dirty = None if status is None else bool(status)
    return {"commit": git("rev-parse", "HEAD"), "dirty": dirty}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None
