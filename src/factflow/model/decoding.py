"""Strict decoding of raw messages into typed envelopes, with errors that name field and value."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from factflow.errors import ConfigurationError, DeclarationError, DecodeError, UnknownEventError
from factflow.model.dead_letter import DeadLetter
from factflow.model.declare import Event
from factflow.model.envelope import Envelope, RawEnvelope
from factflow.model.types import decode_hook
from factflow.model.upcasting import Upcaster

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "EventDecoder"]

DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024
"""The largest message decoded, in bytes (1 MiB); a larger one becomes a dead letter unparsed.
A banking event is a few hundred bytes: this bounds the memory and time one message can take
long before the transports' own limits (64 MiB)."""

_envelope_decoder = msgspec.json.Decoder(RawEnvelope)
_any_decoder = msgspec.json.Decoder()
_PATH = re.compile(r" - at `\$((?:\.\w+|\[\d+\])*)`\Z")
_MISSING = re.compile(r"Object missing required field `(\w+)`")
_WRONG_TYPE = re.compile(r"Expected `([^`]+)`, got `[^`]+`\Z")
_TOO_DEEP = "not a valid JSON envelope: arrays or objects nested too deeply to decode"
#: What msgspec raises besides `msgspec.DecodeError` on bytes that are no JSON it can read.
_UNREADABLE = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


class EventDecoder:
    """Decodes messages for a fixed set of event classes.

    >>> decoder = EventDecoder([TransactionSettled])
    >>> envelopes, raws, dead_letters = decoder.decode_batch(messages)

    Args:
        events: the event classes (type and version) it decodes; others are unknown.
        upcasters: how older versions become handled ones.
        max_message_size: the largest message in bytes; a larger one is refused *before*
            parsing (`DecodeError`), so that no message costs more memory than about that.
    """

    def __init__(
        self,
        events: Iterable[type[Event]],
        upcasters: Iterable[Upcaster[Any, Any]] = (),
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        if max_message_size < 1:
            raise ConfigurationError(f"max_message_size must be 1 or more, got {max_message_size}")
        self.max_message_size = max_message_size
        self._payload_decoders: dict[tuple[str, int], msgspec.json.Decoder[Any]] = {}
        handled = set()
        for cls in events:
            meta = getattr(cls, "__factflow_event__", None)
            if meta is None:
                raise DeclarationError(f"{cls!r} is not declared with @event(...)")
            self._payload_decoders[(meta.type, meta.version)] = msgspec.json.Decoder(
                cls, dec_hook=decode_hook
            )
            handled.add(cls)
        #: (type, old version) → the upcasters that take its payloads to a handled version.
        self._upcasts = _chains(list(upcasters), handled)
        for source in {chain[0].source for chain in self._upcasts.values()}:
            meta = source.__factflow_event__
            self._payload_decoders.setdefault(
                (meta.type, meta.version), msgspec.json.Decoder(source, dec_hook=decode_hook)
            )
        self.known = frozenset(self._payload_decoders)

    def decode(self, raw: bytes) -> Envelope[Any]:
        """Decode one message; raises `DecodeError` or `UnknownEventError` saying what is wrong
        (and nothing else, whatever the bytes)."""
        if len(raw) > self.max_message_size:
            raise DecodeError(self._too_large(len(raw)))
        try:
            head = _envelope_decoder.decode(raw)
        except msgspec.DecodeError as error:
            raise DecodeError(_not_utf8_in(raw, error) or _envelope_problem(error, raw)) from None
        except UnicodeDecodeError as error:  # msgspec checks UTF-8 only inside strings
            raise DecodeError(_not_utf8(error)) from None
        except RecursionError:  # msgspec decodes nested arrays and objects recursively
            raise DecodeError(_TOO_DEEP) from None
        decoder = self._payload_decoders.get((head.type, head.version))
        if decoder is None:
            raise UnknownEventError(self._unknown(head.type, head.version))
        try:
            data = decoder.decode(head.data)
        except msgspec.DecodeError as error:
            not_utf8 = _not_utf8_in(head.data, error)
            raise DecodeError(
                f"{head.type}: {not_utf8}"
                if not_utf8
                else _payload_problem(error, head.type, head.data)
            ) from None
        except UnicodeDecodeError as error:
            raise DecodeError(f"{head.type}: {_not_utf8(error)}") from None
        except RecursionError:
            raise DecodeError(f"{head.type}: {_TOO_DEEP}") from None
        version = head.version
        if self._upcasts:
            chain = self._upcasts.get((head.type, version))
            if chain is not None:
                data, version = _upcast(chain, data, head.type, version)
        return Envelope(
            id=head.id,
            type=head.type,
            source=head.source,
            occurred_at=head.occurred_at,
            version=version,
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
                # Never parse an oversized message, not even to find its type and id.
                found = _identify(raw) if len(raw) <= self.max_message_size else (None, None)
                dead.append(DeadLetter.of(bytes(raw), str(error), *found))
            else:
                raws.append(raw)
        return envelopes, raws, dead

    def _too_large(self, size: int) -> str:
        return (
            f"message of {size} bytes is larger than the maximum message size of "
            f"{self.max_message_size} bytes, so it was not parsed; if it is a real event, raise "
            "the limit (factflow run --max-message-size, FACTFLOW_MAX_MESSAGE_SIZE) and replay "
            "it (factflow dlq replay)"
        )

    def _unknown(self, type_: str, version: int) -> str:
        versions = sorted(v for t, v in self.known if t == type_)
        if versions:
            return (
                f"{type_}: version {version} is not handled (handled versions: "
                f"{', '.join(map(str, versions))}); declare an @event for it"
            )
        return f"unknown event type {type_!r}: no pipeline of this app handles it"


def _chains(
    upcasters: list[Upcaster[Any, Any]], handled: set[type[Event]]
) -> dict[tuple[str, int], tuple[Upcaster[Any, Any], ...]]:
    """For every version an upcaster starts from, the upcasters leading to a handled version."""
    by_source: dict[type[Event], Upcaster[Any, Any]] = {}
    for step in upcasters:
        if step.source in by_source:
            raise DeclarationError(
                f"two upcasters start from {step.source.__name__}: {by_source[step.source]!r} "
                f"and {step!r}; keep one"
            )
        by_source[step.source] = step
    chains: dict[tuple[str, int], tuple[Upcaster[Any, Any], ...]] = {}
    for source in by_source:
        if source in handled:
            continue  # a handled version is decoded as it is, not upcast
        chain: list[Upcaster[Any, Any]] = []
        current: type[Event] = source
        while current not in handled:
            found = by_source.get(current)
            if found is None:
                meta = source.__factflow_event__
                raise DeclarationError(
                    f"{meta.type} v{meta.version} is upcast to {current.__name__}, which no "
                    "pipeline handles and no upcaster takes further; add the missing upcaster"
                )
            chain.append(found)
            current = found.target
        meta = source.__factflow_event__
        chains[(meta.type, meta.version)] = tuple(chain)
    return chains


def _upcast(
    chain: tuple[Upcaster[Any, Any], ...], data: Any, type_: str, version: int
) -> tuple[Any, int]:
    for step in chain:
        try:
            data = step(data)
        except Exception as error:  # a bad old payload must not stop the stream
            raise DecodeError(
                f"{type_}: upcasting v{version} with {step.__name__} failed: "
                f"{type(error).__name__}: {error}"
            ) from None
        version = step.target.__factflow_event__.version
    return data, version


def _not_utf8(error: UnicodeDecodeError) -> str:
    byte = error.object[error.start : error.start + 1].hex() if error.object else "?"
    return (
        f"not valid UTF-8: a string holds the byte 0x{byte} ({error.reason}); the event "
        "contract wants UTF-8 JSON"
    )


def _not_utf8_in(document: bytes, error: msgspec.DecodeError) -> str | None:
    """The `_not_utf8` reason for `document` if msgspec refused it for invalid UTF-8: since
    msgspec 0.23 that is a `DecodeError` naming no byte (before, a `UnicodeDecodeError`)."""
    if "UTF-8" not in str(error):
        return None
    try:
        bytes(document).decode()
    except UnicodeDecodeError as invalid:
        return _not_utf8(invalid)
    return None


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
    except (*_UNREADABLE, KeyError, IndexError, TypeError):
        return "an unreadable value"
    return msgspec.json.encode(node).decode()


def _identify(raw: bytes) -> tuple[str | None, str | None]:
    """Best-effort `type` and `id` of a rejected message, for finding it again."""
    try:
        document = _any_decoder.decode(raw)
    except _UNREADABLE:
        return None, None
    if not isinstance(document, dict):
        return None, None
    type_, id_ = document.get("type"), document.get("id")
    return (type_ if isinstance(type_, str) else None, id_ if isinstance(id_, str) else None)
