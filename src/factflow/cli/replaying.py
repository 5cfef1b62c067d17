"""What `factflow bootstrap` and `factflow rebuild` share: reading an event file or the app's
bootstrap sources in batches (after what a checkpoint says is done), and showing progress."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from factflow._urls import redact
from factflow.bootstrap.checkpoints import Checkpoint
from factflow.bootstrap.files import FilePosition, file_batches
from factflow.bootstrap.replay import Batch
from factflow.bootstrap.sources import SourcePosition, select_sources, source_batches
from factflow.cli.output import progress
from factflow.pipeline.app import App
from factflow.runtime.writer import BatchOutcome

__all__ = ["Replaying", "check_source", "source_option", "sources_option"]

F = TypeVar("F", bound=Callable[..., Any])

#: Called after each batch is done: its outcome and position.
Advance = Callable[[BatchOutcome, Any], None]


def source_option(function: F) -> F:
    return click.option(
        "--from",
        "source",
        required=True,
        metavar="FILE|URL",
        help=(
            "An event file (.jsonl, .jsonl.gz or .parquet), or the location the app's "
            "bootstrap sources read, e.g. postgresql://reader@db/service."
        ),
    )(function)


def sources_option(function: F) -> F:
    return click.option(
        "--source",
        "names",
        multiple=True,
        metavar="NAME",
        help="With a URL: run only this bootstrap source of the app (repeatable; default: all).",
    )(function)


def check_source(source: str, names: tuple[str, ...]) -> None:
    """Refuse a `--from` that is neither an existing file nor a URL, before any work."""
    if "://" not in source and not Path(source).is_file():
        raise click.BadParameter(
            f"no event file {source!r}; give a .jsonl, .jsonl.gz or .parquet file, or the "
            "URL the app's bootstrap sources read",
            param_hint="--from",
        )
    if names and "://" not in source:
        raise click.UsageError("--source selects bootstrap sources, which read from a URL")


class Replaying:
    """An event file or the app's bootstrap sources, read in batches."""

    def __init__(self, app: App, source: str, names: tuple[str, ...], batch_size: int) -> None:
        self.app = app
        self.location = source
        self.from_url = "://" in source
        self.names = names
        self.batch_size = batch_size
        # Chosen now, so that an unknown name or an app without sources fails before any work.
        self.sources = select_sources(app, names) if self.from_url else []

    def describe(self) -> str:
        """What is read, for checkpoints: the file, or the location and the sources' names."""
        if self.from_url:
            return f"{redact(self.location)} sources {','.join(s.name for s in self.sources)}"
        return str(Path(self.location).resolve())

    def batches(self, done: Checkpoint) -> Iterator[Batch[Any]]:
        """The batches not done yet by the checkpoint `done`."""
        if not self.from_url:
            return file_batches(Path(self.location), self.batch_size, skip=done.events)
        remaining = [s for s in self.sources if s.name not in done.finished_sources]
        return source_batches(remaining, self.location, self.batch_size)

    @contextmanager
    def progress_bar(self, done: Checkpoint) -> Iterator[Advance]:
        """A progress bar with rate, time left and counts of events, rows and dead letters;
        yields what to call after each batch (it also moves the checkpoint `done` on)."""
        running = BatchOutcome(messages=done.events)
        started, first = time.perf_counter(), done.events
        total = None if self.from_url else Path(self.location).stat().st_size
        with progress(unit="bytes" if total else "events") as bar:
            task = bar.add_task("bootstrap", total=total, rate="")

            def advance(outcome: BatchOutcome, position: Any) -> None:
                running.add(outcome)
                rate = (running.messages - first) / max(time.perf_counter() - started, 1e-9)
                counts = (
                    f"{rate:,.0f} events/s · events {running.messages:,} · rows "
                    f"{running.rows:,} · dead letters {running.dead_letters:,}"
                )
                if isinstance(position, FilePosition):
                    done.file_done(position.events)
                    bar.update(task, completed=position.bytes, rate=counts)
                elif isinstance(position, SourcePosition):
                    done.source_done(position.source, position.events)
                    bar.update(
                        task,
                        description=f"bootstrap {position.source}",
                        completed=running.messages,
                        rate=counts,
                    )

            yield advance
