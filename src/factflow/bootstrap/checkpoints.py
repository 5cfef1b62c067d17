"""Where an interrupted bootstrap stopped, so that `--resume` goes on from there.

A checkpoint is saved after every batch the destination has (committed to the warehouse, or
confirmed by the broker), in a small JSON file replaced atomically. It may lag one batch behind
a crash: that batch is then replayed, which changes nothing already written.

What resuming skips depends on the source. An event file is read again from the start and its
first `events` envelopes are skipped (a file does not change). Bootstrap sources that finished
are skipped; the one that was interrupted runs again from its start, since a source need not
yield its events in the same order twice.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from factflow.errors import ConfigurationError

__all__ = ["CHECKPOINT_DIRECTORY", "Checkpoint", "CheckpointFile", "checkpoint_path"]

#: Where checkpoints go by default: beside the embedded default warehouse and log.
CHECKPOINT_DIRECTORY = Path(".factflow") / "checkpoints"


class Checkpoint(msgspec.Struct, kw_only=True):
    """How far one bootstrap (a source into a destination) got.

    Attributes:
        source: what is read (an event file's path, or the sources' location and names).
        destination: where it goes (the warehouse, or the broker and consumer group).
        events: envelopes done in all.
        finished_sources: the bootstrap sources done completely, with their events.
        current_source: the source being read when the checkpoint was saved, if any, and
        current_events: its events done by then.
        updated_at: when the checkpoint was saved.
    """

    source: str
    destination: str
    events: int = 0
    finished_sources: dict[str, int] = msgspec.field(default_factory=dict)
    current_source: str | None = None
    current_events: int = 0
    updated_at: datetime | None = None

    def file_done(self, events: int) -> None:
        """Note a batch of an event file done: the first `events` envelopes are written."""
        self.events = events
        self.updated_at = datetime.now(UTC)

    def source_done(self, source: str, events: int) -> None:
        """Note a batch of bootstrap source `source` done: its first `events` events."""
        if self.current_source not in (None, source):
            self.finished_sources[self.current_source] = self.current_events
        self.current_source, self.current_events = source, events
        self.events = sum(self.finished_sources.values()) + events
        self.updated_at = datetime.now(UTC)


def checkpoint_path(source: str, destination: str) -> Path:
    """The default checkpoint file of bootstrapping `source` into `destination`."""
    digest = hashlib.blake2b(f"{source}\n{destination}".encode(), digest_size=8).hexdigest()
    return CHECKPOINT_DIRECTORY / f"bootstrap-{digest}.json"


class CheckpointFile:
    """A checkpoint kept in one JSON file, replaced whole on every save."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> Checkpoint | None:
        """The saved checkpoint, or None if there is none."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return msgspec.json.decode(data, type=Checkpoint)
        except msgspec.DecodeError as error:
            raise ConfigurationError(
                f"the checkpoint {self.path} is damaged ({error}); delete it to bootstrap from "
                "the start (replaying what was written changes nothing)"
            ) from None

    def save(self, checkpoint: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("wb") as file:
            file.write(msgspec.json.encode(checkpoint))
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(self.path)  # whole or not at all, even if killed midway

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
