"""The envelope every event travels in (banking.md, "Envelope"), and how to write one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import msgspec

from factflow.model.declare import Event
from factflow.model.types import encode_hook

__all__ = ["Envelope", "RawEnvelope", "encode_envelope"]

P = TypeVar("P", bound=Event)

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class Envelope(msgspec.Struct, Generic[P], frozen=True, gc=False):
    """A decoded event: the envelope fields and the typed payload in `data`."""

    id: str
    type: str
    source: str
    occurred_at: datetime
    version: int
    data: P


class RawEnvelope(msgspec.Struct, frozen=True, gc=False):
    """The envelope with its payload still undecoded, so it can be routed by `type` first."""

    id: NonEmpty
    type: NonEmpty
    source: str
    occurred_at: AwareDatetime
    version: Annotated[int, msgspec.Meta(ge=1)]
    data: msgspec.Raw


_encoder = msgspec.json.Encoder(decimal_format="string", enc_hook=encode_hook)


def encode_envelope(
    *, id: str, type: str, source: str, occurred_at: datetime, version: int, data: Any
) -> bytes:
    """The JSON bytes of an envelope, in the contract's format (amounts as strings, RFC 3339)."""
    return _encoder.encode(
        {
            "id": id,
            "type": type,
            "source": source,
            "occurred_at": occurred_at,
            "version": version,
            "data": data,
        }
    )
