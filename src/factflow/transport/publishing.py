"""Publishing raw envelopes as a source service would: routed by their `type`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import msgspec

from factflow.transport.base import Outgoing

__all__ = ["Unroutable", "outgoing", "outgoing_unchecked"]


class _Head(msgspec.Struct, frozen=True):
    id: str
    type: str


_head = msgspec.json.Decoder(_Head)


class Unroutable(msgspec.Struct, frozen=True):
    """A message that cannot be published because its `type` or `id` cannot be read."""

    number: int
    reason: str


def outgoing(messages: Iterable[bytes], refused: list[Unroutable]) -> Iterator[Outgoing]:
    """The messages as `Outgoing`; those without a readable `type` and `id` go to `refused`
    (numbered from 1), since no transport could route them to a consumer."""
    for number, body in enumerate(messages, 1):
        try:
            head = _head.decode(body)
        except msgspec.DecodeError as error:
            refused.append(Unroutable(number, str(error)))
            continue
        if "." not in head.type:
            refused.append(Unroutable(number, f"type {head.type!r} is not <domain>.<event_name>"))
            continue
        yield Outgoing(type=head.type, id=head.id, body=body)


def outgoing_unchecked(messages: Iterable[bytes]) -> Iterator[Outgoing]:
    """The messages as `Outgoing` for a queue named directly (no routing by type): those whose
    `type` and `id` cannot be read go with empty ones, for the consumer to set aside."""
    for body in messages:
        try:
            head = _head.decode(body)
        except msgspec.DecodeError:
            yield Outgoing(type="", id="", body=body)
        else:
            yield Outgoing(type=head.type, id=head.id, body=body)
