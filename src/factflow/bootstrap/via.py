"""Bootstrapping through the broker: "same pipeline, same events, different queue".

Instead of writing into the warehouse itself, the bootstrap publishes its envelopes to the
consumer group's own bootstrap queue; the running service consumes them beside live traffic
(live events keep most of every batch), through exactly the code that handles live events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar, runtime_checkable

from factflow.bootstrap.replay import Batch
from factflow.transport.base import Outgoing
from factflow.transport.publishing import outgoing_unchecked

__all__ = ["BootstrapQueue", "publish_batches"]

P = TypeVar("P")


@runtime_checkable
class BootstrapQueue(Protocol):
    """A transport with a bootstrap queue per consumer group (RabbitMQ)."""

    def publish_bootstrap(self, group: str, messages: Iterable[Outgoing]) -> int: ...


def publish_batches(
    batches: Iterable[Batch[P]],
    queue: BootstrapQueue,
    group: str,
    *,
    on_batch: Callable[[int, P], None] | None = None,
) -> int:
    """Publish every batch to `group`'s bootstrap queue; returns how many envelopes.

    `on_batch(published, position)` is called once the broker confirmed a batch. Unreadable
    envelopes go too: the service keeps them as dead letters, so nothing is lost on the way.
    """
    total = 0
    for messages, position in batches:
        published = queue.publish_bootstrap(group, outgoing_unchecked(messages))
        total += published
        if on_batch is not None:
            on_batch(published, position)
    return total
