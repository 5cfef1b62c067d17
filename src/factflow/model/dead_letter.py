"""A message that could not be processed, kept with its raw bytes and the reason."""

from __future__ import annotations

import hashlib

import msgspec

__all__ = ["DeadLetter"]


class DeadLetter(msgspec.Struct, frozen=True, gc=False):
    """A rejected message. Its `id` is a digest of the raw bytes, so storing it twice is a no-op."""

    id: str
    raw: bytes
    reason: str
    event_type: str | None = None
    event_id: str | None = None

    @classmethod
    def of(
        cls, raw: bytes, reason: str, event_type: str | None = None, event_id: str | None = None
    ) -> DeadLetter:
        return cls(
            id=hashlib.blake2b(raw, digest_size=16).hexdigest(),
            raw=raw,
            reason=reason,
            event_type=event_type,
            event_id=event_id,
        )
