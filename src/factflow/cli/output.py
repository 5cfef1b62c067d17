"""What the commands print: KPI tables and JSON, progress bars, counts."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from factflow.insight.kpi import to_json_rows

__all__ = ["kpi_json", "kpi_table", "progress", "stderr", "stdout"]

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False)


def kpi_json(name: str, rows: list[dict[str, Any]]) -> str:
    return msgspec.json.encode({"kpi": name, "rows": to_json_rows(rows)}).decode()


def kpi_table(name: str, description: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"[bold]{name}[/bold]\n[dim]{description}[/dim]", title_justify="left")
    printable = to_json_rows(rows)
    for column in printable[0] if printable else ():
        table.add_column(column, justify="right" if _numeric(printable, column) else "left")
    for row in printable:
        table.add_row(*(str(value) for value in row.values()))
    if not printable:
        table.add_column("(no rows)")
    return table


def _numeric(rows: list[dict[str, Any]], column: str) -> bool:
    value = rows[0][column]
    return isinstance(value, int) or (isinstance(value, str) and value[-3:-2] == ".")


@contextmanager
def progress(*, unit: str = "events") -> Iterator[Progress]:
    """A progress bar on stderr with rate and time left; silent when stderr is not a terminal."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TextColumn(f"{unit} · {{task.fields[rate]}}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        disable=not sys.stderr.isatty(),
        transient=False,
    )
    with bar:
        yield bar
