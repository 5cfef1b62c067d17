"""Strict decoding of raw messages into typed envelopes, with errors that name field and value."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from factflow.errors import DeclarationError, DecodeError, UnknownEventError
from factflow.model.dead_letter import DeadLetter
from factflow.model.declare import Event
from factflow.model.envelope import Envelope, RawEnvelope
from factflow.model.types import decode_hook

__all__ = ["EventDecoder"]

_envelope_decoder = msgspec.json.Decoder(RawEnvelope)
_any_decoder = msgspec.json.Decoder()
_PATH = re.compile(r" - at `\$((?:\.\w+|\[\d+\])*)`\Z")
_MISSING = re.compile(r"Object missing required field `(\w+)`")
_WRONG_TYPE = re.compile(r"Expected `([^`]+)`, got `[^`]+`\Z")


class EventDecoder:
    """Decodes messages for a fixed set of event classes.

    >>> decoder = EventDecoder([TransactionSettled])
    >>> envelopes, dead_letters = decoder.decode_batch(messages)
    """

    def __init__(self, events: Iterable[type[Event]]) -> None:
        self._payload_decoders: dict[tuple[str, int], msgspec.json.Decoder[Any]] = {}
        for cls in events:
            meta = getattr(cls, "__factflow_event__", None)
            if meta is None:
                raise DeclarationError(f"{cls!r} is not declared with @event(...)")
            self._payload_decoders[(meta.type, meta.version)] = msgspec.json.Decoder(
                cls, dec_hook=decode_hook
            )
        self.known = frozenset(self._payload_decoders)

    def decode(self, raw: bytes) -> Envelope[Any]:
        """Decode one message; raises `DecodeError` or `UnknownEventError` saying what is wrong."""
        try:
            head = _envelope_decoder.decode(raw)
        except msgspec.DecodeError as error:
            raise DecodeError(_envelope_problem(error, raw)) from None
        decoder = self._payload_decoders.get((head.type, head.version))
        if decoder is None:
            raise UnknownEventError(self._unknown(head.type, head.version))
        try:
            data = decoder.decode(head.data)
        except msgspec.DecodeError as error:
            raise DecodeError(_payload_problem(error, head.type, head.data)) from None
        return Envelope(
            id=head.id,
            type=head.type,
            source=head.source,
            occurred_at=head.occurred_at,
            version=head.version,
            data=data,
        )

    def decode_batch(
        self, messages: Sequence[bytes]
    ) -> tuple[list[Envelope[Any]], list[bytes], list[DeadLetter]]:
        """Decode many messages: the envelopes with their raw bytes, and the dead letters."""
        envelopes: list[Envelope[Any]] = []
        raws: list[bytes] = []
        dead: list[DeadLetter] = []
        decode = self.decode
        for raw in messages:
            try:
                envelopes.append(decode(raw))
            except (DecodeError, UnknownEventError) as error:
                dead.append(DeadLetter.of(bytes(raw), str(error), *_identify(raw)))
            else:
                raws.append(raw)
        return envelopes, raws, dead

    def _unknown(self, type_: str, version: int) -> str:
        versions = sorted(v for t, v in self.known if t == type_)
        if versions:
            return (
                f"{type_}: version {version} is not handled (handled versions: "
                f"{', '.join(map(str, versions))}); declare an @event for it"
            )
        return f"unknown event type {type_!r}: no pipeline of this app handles it"


def _envelope_problem(error: msgspec.DecodeError, raw: bytes) -> str:
    message = str(error)
    if isinstance(error, msgspec.ValidationError):
        return "envelope: " + _with_value(message, raw, "")
    return f"not a valid JSON envelope: {message}"


def _payload_problem(error: msgspec.DecodeError, type_: str, data: bytes) -> str:
    return f"{type_}: " + _with_value(str(error), data, "data")


def _with_value(message: str, document: bytes, prefix: str) -> str:
    """Rewrite msgspec's "… - at `$.a.b`" as "`data.a.b` …, got VALUE"."""
    match = _PATH.search(message)
    path = match.group(1) if match else ""
    what = message[: match.start()] if match else message
    missing = _MISSING.match(what)
    if missing:
        return f"`{_join(prefix, path + '.' + missing.group(1))}` is required but missing"
    where = _join(prefix, path)
    value = _lookup(document, path)
    wrong_type = _WRONG_TYPE.match(what)
    if wrong_type:
        return f"`{where}` must be {wrong_type.group(1)}, got {value}"
    if ", got " in what:  # our own decode hooks already show the value
        return f"`{where}` {what}"
    return f"`{where}` {what[0].lower()}{what[1:]}, got {value}"


def _join(prefix: str, path: str) -> str:
    return (prefix + path).lstrip(".") or "$"


def _lookup(document: bytes, path: str) -> str:
    try:
        node: Any = _any_decoder.decode(document)
        for step in re.findall(r"\.(\w+)|\[(\d+)\]", path):
            node = node[step[0]] if step[0] else node[int(step[1])]
    except (msgspec.DecodeError, KeyError, IndexError, TypeError):
        return "an unreadable value"
    return msgspec.json.encode(node).decode()


def _identify(raw: bytes) -> tuple[str | None, str | None]:
    """Best-effort `type` and `id` of a rejected message, for finding it again."""
    try:
        document = _any_decoder.decode(raw)
    except msgspec.DecodeError:
        return None, None
    if not isinstance(document, dict):
        return None, None
    type_, id_ = document.get("type"), document.get("id")
    return (type_ if isinstance(type_, str) else None, id_ if isinstance(id_, str) else None)
