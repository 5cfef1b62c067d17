"""The seam between factflow and wherever events travel.

A transport publishes raw envelopes and hands them to consumer groups. The runtime reads a batch
with `Subscription.fetch`, writes it to the warehouse in one transaction, and only then calls
`Subscription.commit`, which acknowledges the batches written so far (a runtime may fetch the
next batch while writing one, and acknowledge the older one only). A consumer that dies before
`commit` gets the same messages again; the warehouse makes that harmless.

A message returned unacknowledged `SUSPECT_RETURNS` times or more is suspect: it may be one that
crashes its consumer (a poison message no `Exception` handler can catch). Returned once is what
any restart or deploy does to the messages a process held, and costs nothing; returned twice is
a crash loop. A transport that counts returns (RabbitMQ, NATS) hands a suspect message out
alone, in a `Fetched` marked `suspect`, so that it is written and acknowledged by itself: a
message that kills its consumer then spends only its own deliveries toward the broker's
delivery limit, and the messages that were fetched with it spend `SUSPECT_RETURNS` at most.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Protocol

import msgspec

__all__ = ["SUSPECT_RETURNS", "Fetched", "Outgoing", "Subscription", "Transport"]

#: Returns without acknowledgement after which a message is handed out alone (see above).
SUSPECT_RETURNS = 2


class Outgoing(msgspec.Struct, frozen=True, gc=False):
    """One envelope to publish: `type` and `id` (for routing and message properties), body."""

    type: str
    id: str
    body: bytes

    @property
    def domain(self) -> str:
        return self.type.partition(".")[0]


class Fetched(list[bytes]):
    """The bodies one `Subscription.fetch` returned, in order.

    `suspect` is true for a single message returned unacknowledged `SUSPECT_RETURNS` times or
    more (by processes of the group that died or disconnected holding it): a transport hands
    such a message out alone, never amid others, so the runtime commits it by itself.
    """

    __slots__ = ("suspect",)

    def __init__(self, bodies: Iterable[bytes] = (), *, suspect: bool = False) -> None:
        super().__init__(bodies)
        self.suspect = suspect

    def __repr__(self) -> str:
        return f"Fetched({list.__repr__(self)}, suspect={self.suspect})"


class Subscription(Protocol):
    """A consumer group's reading position on a transport."""

    def fetch(self, max_messages: int, max_wait: float) -> Sequence[bytes]:
        """Up to `max_messages` raw envelopes, waiting at most `max_wait` seconds for the first.

        Returns an empty sequence when nothing arrived in time. A transport that counts
        returns gives a `Fetched`: either messages that are not suspect, or one suspect
        message, alone and marked `suspect`.
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
