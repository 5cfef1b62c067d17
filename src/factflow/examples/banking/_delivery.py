"""What delivery does to a stream: redeliveries, re-publications under new ids, arrival out of
order, and invalid messages, each drawn from the delivery's own random generator."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from typing import Any, Final

import msgspec

from ._world import envelope_id

__all__ = ["redeliver", "republish", "shuffle"]

_encoder: Final = msgspec.json.Encoder()


class Sample:
    """Envelopes seen so far to send again: recent ones (a redelivery) and any earlier one
    (a replay), kept in bounded memory as a ring of the latest and a uniform reservoir."""

    def __init__(self, rng: random.Random, size: int = 1024) -> None:
        self.rng = rng
        self.size = size
        self.recent: deque[bytes] = deque(maxlen=size)
        self.reservoir: list[bytes] = []
        self.seen = 0

    def add(self, envelope: bytes) -> None:
        self.recent.append(envelope)
        self.seen += 1
        if len(self.reservoir) < self.size:
            self.reservoir.append(envelope)
        else:
            slot = int(self.rng.random() * self.seen)
            if slot < self.size:
                self.reservoir[slot] = envelope

    def pick(self) -> bytes:
        random_ = self.rng.random
        pool: deque[bytes] | list[bytes] = self.recent if random_() < 0.5 else self.reservoir
        return pool[int(random_() * len(pool))]


def interleave(
    upstream: Iterator[bytes], counts: list[int], rng: random.Random
) -> Iterator[tuple[int, bytes | None]]:
    """Merge `counts[0]` upstream items with `counts[1:]` extras of each kind, uniformly
    placed but never first (an extra needs something before it); yields (kind, item or None)."""
    first = next(upstream)
    counts = [counts[0] - 1, *counts[1:]]
    yield 0, first
    left = sum(counts)
    while left:
        draw = rng.random() * left
        kind = 0
        while draw >= counts[kind]:
            draw -= counts[kind]
            kind += 1
        counts[kind] -= 1
        left -= 1
        yield kind, next(upstream) if kind == 0 else None


def republish(
    stream: Iterator[bytes], business: int, count: int, rng: random.Random
) -> Iterator[bytes]:
    sample = Sample(rng)
    for _, envelope in interleave(stream, [business, count], rng):
        if envelope is None:
            earlier = sample.pick()
            # Business envelopes start with `{"id":"…"`: only the id changes on republication.
            id_end = earlier.index(b'"', 7)
            yield b'{"id":"' + envelope_id(rng).encode() + earlier[id_end:]
        else:
            sample.add(envelope)
            yield envelope


def shuffle(stream: Iterator[bytes], window: int, rng: random.Random) -> Iterator[bytes]:
    buffer: list[bytes] = []
    for envelope in stream:
        if len(buffer) < window:
            buffer.append(envelope)
            continue
        slot = int(rng.random() * window)
        yield buffer[slot]
        buffer[slot] = envelope
    rng.shuffle(buffer)
    yield from buffer


def redeliver(
    stream: Iterator[bytes], upstream: int, duplicates: int, bad: int, rng: random.Random
) -> Iterator[bytes]:
    sample = Sample(rng)
    last = b""
    for kind, envelope in interleave(stream, [upstream, duplicates, bad], rng):
        if envelope is not None:
            sample.add(envelope)
            last = envelope
            yield envelope
        elif kind == 1:
            yield sample.pick()
        else:
            yield bad_line(rng, occurred_at_of(last))


def occurred_at_of(envelope: bytes) -> str:
    start = envelope.index(b'"occurred_at":"') + 15
    return envelope[start : envelope.index(b'"', start)].decode()


UNKNOWN_TYPES: Final = ("card.card_frozen", "loan.loan_opened", "user.user_deleted")


def bad_line(rng: random.Random, occurred_at: str) -> bytes:
    """An invalid message that looks like a transaction, with ids that no valid one carries."""
    bad_id = envelope_id(rng)
    envelope: dict[str, Any] = {
        "id": bad_id,
        "type": "card.transaction_settled",
        "source": "card-service",
        "occurred_at": occurred_at,
        "version": 1,
        "data": {
            "transaction_id": f"t-{bad_id}",
            "card_id": f"c-{bad_id}",
            "user_id": f"u-{bad_id}",
            "amount": "42.00",
            "currency": "EUR",
            "billing_amount": "42.00",
            "billing_currency": "EUR",
            "merchant": "Nowhere Ltd",
            "merchant_category": "shopping",
            "merchant_country": "DE",
        },
    }
    data = envelope["data"]
    flaw = int(rng.random() * 9)
    if flaw == 0:  # cut off mid-write
        encoded = _encoder.encode(envelope)
        return encoded[: 1 + int(rng.random() * (len(encoded) - 2))]
    if flaw == 1:
        return b"\x00\xff not json at all"
    if flaw == 2:
        del envelope[("id", "type", "occurred_at", "data")[int(rng.random() * 4)]]
    elif flaw == 3:
        del data[("transaction_id", "amount", "billing_currency")[int(rng.random() * 3)]]
    elif flaw == 4:  # a float on the wire, which the contract forbids for amounts
        data["amount"] = 42.0
    elif flaw == 5:
        data["billing_amount"] = "abc"
    elif flaw == 6:
        envelope["version"] = "1"
    elif flaw == 7:
        envelope["type"] = UNKNOWN_TYPES[int(rng.random() * len(UNKNOWN_TYPES))]
    else:
        envelope["occurred_at"] = occurred_at.removesuffix("Z")
    return _encoder.encode(envelope)
