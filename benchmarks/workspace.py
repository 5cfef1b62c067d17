"""Where a run keeps its inputs and throwaway warehouses, and the simulated event files."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from benchmarks.measure import factflow, run_process

__all__ = ["SEED", "Workspace", "duckdb_url", "log_url", "remove"]

SEED = 1  # every size is simulated with this seed: the same bytes in every run


class Workspace:
    """A scratch directory: simulated event files (made once per size, then reused) and the
    warehouses and logs the cases write.

    A directory made here is removed by `close`; one given by the user is kept (with its
    event files, for the next run), and only the scratch files are removed.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self._owned = directory is None
        self.root = (
            Path(tempfile.mkdtemp(prefix="factflow-bench-")) if directory is None else directory
        )
        self.root.mkdir(parents=True, exist_ok=True)
        self.scratch = self.root / "scratch"
        self.scratch.mkdir(exist_ok=True)
        #: The event files made: events → their size in bytes and the seconds `simulate` took.
        self.inputs: dict[int, dict[str, float]] = {}

    def events_file(self, events: int) -> Path:
        """The banking stream of `events` envelopes (`factflow simulate --seed 1`), as .jsonl."""
        path = self.root / f"events-{events}.jsonl"
        if not path.exists():
            measured = run_process(
                factflow(
                    "simulate", "--events", str(events), "--out", str(path), "--seed", str(SEED)
                )
            )
            self.inputs[events] = {
                "bytes": path.stat().st_size,
                "simulate_seconds": round(measured.seconds, 3),
            }
        return path

    def path(self, name: str) -> Path:
        """A fresh scratch path (whatever was there is removed first)."""
        path = self.scratch / name
        remove(path)
        return path

    def close(self) -> None:
        """Remove the scratch files, and the whole directory if this run made it."""
        remove(self.root if self._owned else self.scratch)


def remove(path: Path) -> None:
    """Remove a file or a directory tree, if there is one."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def duckdb_url(path: Path) -> str:
    """`duckdb:////absolute/path` for a path."""
    return f"duckdb:///{path.resolve()}"


def log_url(path: Path) -> str:
    """`log:////absolute/path` for a directory."""
    return f"log:///{path.resolve()}"
