"""The seam between factflow and wherever events travel.

A transport publishes raw envelopes and hands them to consumer groups. The runtime reads a batch
with `Subscription.fetch`, writes it to the warehouse in one transaction, and only then calls
`Subscription.commit`, which acknowledges the batches written so far (a runtime may fetch the
next batch while writing one, and acknowledge the older one only). A consumer that dies before
`commit` gets the same messages again; the warehouse makes that harmless.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Protocol

import msgspec

__all__ = ["Outgoing", "Subscription", "Transport"]


class Outgoing(msgspec.Struct, frozen=True, gc=False):
    """One envelope to publish: `type` and `id` (for routing and message properties), body."""

    type: str
    id: str
    body: bytes

    @property
    def domain(self) -> str:
        return self.type.partition(".")[0]


class Subscription(Protocol):
    """A consumer group's reading position on a transport."""

    def fetch(self, max_messages: int, max_wait: float) -> Sequence[bytes]:
        """Up to `max_messages` raw envelopes, waiting at most `max_wait` seconds for the first.

        Returns an empty sequence when nothing arrived in time.
        """
        ...

    def commit(self, batches: int | None = None) -> None:
        """Acknowledge the oldest `batches` fetches not acknowledged yet (every one by default):
        this group will not get their messages again. Fetches that returned nothing count not.
        """
        ...

    def close(self) -> None:
        """Stop reading; messages fetched but not committed will be delivered again."""
        ...


class Transport(Protocol):
    """Where events travel: the embedded log, a broker, a file."""

    def publish(self, messages: Iterable[Outgoing]) -> int:
        """Publish durably; returns how many were published once this returns."""
        ...

    def subscribe(self, group: str, event_types: Collection[str]) -> Subscription:
        """Start (or resume) reading as consumer group `group`, receiving only `event_types`.

        An entry `<domain>.*` stands for every type of that domain (a topic-exchange pattern).
        """
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
