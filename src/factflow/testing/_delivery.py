"""Envelopes for tests, and deliveries in shuffled order, with duplicates, in uneven batches."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from factflow.model.envelope import encode_envelope

__all__ = ["Delivery", "envelope", "in_any_order", "plan_delivery"]

#: The default `batch_size` of a delivery in the given order: as the service's default does.
DEFAULT_BATCH_SIZE = 1000

_ids = itertools.count(1)


def envelope(
    type: str,
    data: dict[str, Any],
    *,
    id: str | None = None,
    occurred_at: datetime | str = datetime(2026, 1, 1, tzinfo=UTC),
    source: str = "test",
    version: int = 1,
) -> bytes:
    """The bytes of one envelope; ids are numbered `test-1`, `test-2`, … unless given.

    Give `occurred_at` (a datetime with a time zone, or RFC 3339 text) whenever order in
    business time matters, as for several changes of one dimension member: changes at the same
    instant are ordered by envelope id, which is text (`test-10` sorts before `test-9`).
    """
    when = datetime.fromisoformat(occurred_at) if isinstance(occurred_at, str) else occurred_at
    return encode_envelope(
        id=id or f"test-{next(_ids)}",
        type=type,
        source=source,
        occurred_at=when,
        version=version,
        data=data,
    )


def in_any_order(
    messages: Sequence[bytes], *, seed: int = 0, duplicated: bool = True
) -> list[bytes]:
    """A shuffled copy of `messages`, with every message twice when `duplicated`.

    The same `seed` gives the same order. A duplicate is the same bytes (a redelivery); to test
    a re-publication under a new envelope id, build a second `envelope(...)` with the same data:

        harness.deliver(in_any_order([opened, renamed, closed], seed=3))
    """
    copies = [*messages, *messages] if duplicated else list(messages)
    random.Random(seed).shuffle(copies)
    return copies


class Delivery:
    """How a harness delivers messages: their order and the batches, with a description."""

    __slots__ = ("batches", "description")

    def __init__(self, batches: list[list[bytes]], description: str) -> None:
        self.batches = batches
        self.description = description


def plan_delivery(
    messages: Sequence[bytes],
    *,
    batch_size: int | None,
    shuffled: bool,
    duplicated: bool,
    seed: int,
) -> Delivery:
    """The batches to deliver `messages` in (see `Harness.deliver`)."""
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be 1 or more, got {batch_size}")
    rng = random.Random(seed)
    order = list(messages)
    if duplicated:
        order += order
    if shuffled:
        rng.shuffle(order)
    if batch_size is None and (shuffled or duplicated):
        # Uneven batches of at most half the messages: duplicates then meet both within one
        # batch and across batches (one warehouse transaction each).
        largest = max(1, -(-len(order) // 2))
        sizes = []
        left = len(order)
        while left:
            sizes.append(min(left, rng.randint(1, largest)))
            left -= sizes[-1]
    else:
        size = batch_size or DEFAULT_BATCH_SIZE
        sizes = [min(size, len(order) - start) for start in range(0, len(order), size)]
    batches, start = [], 0
    for size in sizes:
        batches.append(order[start : start + size])
        start += size
    how = [f"{len(order)} messages"]
    if shuffled:
        how.append(f"shuffled with seed {seed}")
    if duplicated:
        how.append("each twice")
    shown = ", ".join(map(str, sizes[:12])) + (", …" if len(sizes) > 12 else "")
    how.append(f"in {len(sizes)} batch{'es' if len(sizes) != 1 else ''} ({shown})")
    return Delivery(batches, " ".join(how))
