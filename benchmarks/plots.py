"""The report's PNG plots (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no window, no display server

import matplotlib.pyplot as plt

__all__ = ["plot_memory", "plot_throughput"]


def plot_throughput(cases: list[dict[str, Any]], path: Path, labels: dict[str, str]) -> Path:
    """events/s against stream size, one line per case, both axes logarithmic."""
    figure, axes = plt.subplots(figsize=(8, 5))
    for case, label in labels.items():
        points = sorted((c["events"], c["events_per_s"]) for c in cases if c["case"] == case)
        if points:
            axes.plot(*zip(*points, strict=True), marker="o", label=label)
    axes.set(
        xscale="log",
        yscale="log",
        xlabel="events in the stream",
        ylabel="events per second",
        title="Throughput against stream size (embedded, DuckDB)",
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small")
    return _save(figure, path)


def plot_memory(cases: list[dict[str, Any]], path: Path, labels: dict[str, str]) -> Path:
    """Peak RSS (MiB) against stream size, one line per case."""
    figure, axes = plt.subplots(figsize=(8, 5))
    for case, label in labels.items():
        points = sorted((c["events"], c["peak_rss"] / 2**20) for c in cases if c["case"] == case)
        if points:
            axes.plot(*zip(*points, strict=True), marker="o", label=label)
    axes.set(
        xscale="log",
        xlabel="events in the stream",
        ylabel="peak RSS (MiB)",
        title="Peak memory against stream size",
    )
    axes.set_ylim(bottom=0)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small")
    return _save(figure, path)


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
