"""The sidekick for an app's bootstrap sources: what they yield, through the app's pipelines.

Each `SourceEvent` a source yields is encoded into the raw envelope the service would have
published (id derived from type and natural key, `source` the service's name) and replayed
through the same batch loop as an event file. A batch never mixes two sources, so its position
names one source and how many of its events are done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import msgspec

from factflow.bootstrap.replay import DEFAULT_BATCH_SIZE, Batch, replay
from factflow.errors import ConfigurationError
from factflow.pipeline.app import App
from factflow.pipeline.sources import BootstrapSource
from factflow.runtime.writer import BatchOutcome
from factflow.warehouse.base import Warehouse

__all__ = ["SourcePosition", "bootstrap_sources", "select_sources", "source_batches"]


class SourcePosition(msgspec.Struct, frozen=True):
    """How far a bootstrap got: `events` of the source named `source`, through this batch."""

    source: str
    events: int


def select_sources(app: App, names: Sequence[str] = ()) -> list[BootstrapSource]:
    """The app's sources named in `names` (in that order), or all of them for no names.

    Raises `ConfigurationError` if the app declares no sources or lacks one of the names.
    """
    if not app.sources:
        raise ConfigurationError(
            f"app {app.name!r} declares no bootstrap sources, so it can only be bootstrapped "
            "from an event file (.jsonl, .jsonl.gz, .parquet); declare sources with "
            "App(..., sources=[...]) to read a service's own data"
        )
    unknown = [name for name in names if name not in app.sources]
    if unknown:
        raise ConfigurationError(
            f"app {app.name!r} has no bootstrap source {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(app.sources)}"
        )
    return [app.sources[name] for name in dict.fromkeys(names)] or list(app.sources.values())


def source_batches(
    sources: Sequence[BootstrapSource], location: str, batch_size: int
) -> Iterator[Batch[SourcePosition]]:
    """What each source reads from `location`, as raw envelopes in batches of `batch_size`."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be 1 or more, got {batch_size}")
    for source in sources:
        events = 0
        batch: list[bytes] = []
        service = source.service
        try:
            for event in source.read(location):
                batch.append(event.encode(service))
                if len(batch) == batch_size:
                    events += batch_size
                    yield batch, SourcePosition(source.name, events)
                    batch = []
        except NotImplementedError as error:
            # A source left as scaffolded: its own message says what to write.
            told = str(error) or f"bootstrap source {source.name!r} is not written yet"
            raise ConfigurationError(
                f"{told} (to run only the others, name them with --source)"
            ) from None
        except Exception as error:
            # Whatever the source raised, say which source it was: several run in a row.
            error.add_note(f"while reading bootstrap source {source.name!r}")
            raise
        if batch:
            yield batch, SourcePosition(source.name, events + len(batch))


def bootstrap_sources(
    app: App,
    location: str,
    warehouse: Warehouse,
    *,
    names: Sequence[str] = (),
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[BatchOutcome, SourcePosition], None] | None = None,
) -> BatchOutcome:
    """Replay what the app's bootstrap sources (or those in `names`) read from `location`.

    Safe to run again, and beside the live stream: every envelope id is derived from the event's
    type and natural key, and facts are first-wins by their natural keys. `on_batch` receives
    each batch's outcome and position once the batch is committed.
    """
    chosen = select_sources(app, names)
    return replay(app, source_batches(chosen, location, batch_size), warehouse, on_batch=on_batch)
