"""Publishing to JetStream: many messages in flight, their acknowledgements counted at one inbox."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING

from factflow._urls import redact
from factflow.errors import ConfigurationError, TransportUnavailable
from factflow.transport.base import Outgoing
from factflow.transport.nats._config import domain_of

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from factflow.transport.nats._transport import NatsTransport

__all__ = ["CHUNK", "PUBLISH_WAITS", "publish_chunk"]

CHUNK = 10_000  # messages handed to the event loop at once by `publish`
PUBLISH_WAITS = 600.0  # seconds a chunk may take, acknowledged bit by bit (each step is timed)
_IN_FLIGHT = 4_000  # publishes awaiting their JetStream acknowledgement at once


async def publish_chunk(transport: NatsTransport, messages: list[Outgoing]) -> int:
    """Publish `messages` with `transport`'s connection; returns how many, once JetStream
    stored them all (see `NatsTransport.publish`)."""
    nc, js = await transport._connection()
    limit = nc.max_payload
    subjects: dict[str, str] = {}
    for message in messages:
        if message.type not in subjects:
            await transport._ensure_stream(js, domain_of(message.type))
            subjects[message.type] = transport.subject(message.type)
        if len(message.body) > limit:
            raise ValueError(
                f"event {message.id!r} ({message.type}): body of {len(message.body)} bytes"
                f" exceeds the NATS server's max_payload of {limit} bytes"
            )
    # Not `js.publish_async`: a future and a timeout task per message make it ten times
    # slower. The acknowledgements come to one inbox and are only counted.
    batch = _Publishing(nc.new_inbox())
    subscription = await nc.subscribe(f"{batch.inbox}.*", cb=batch.acknowledged)
    try:
        for number, message in enumerate(messages):
            if len(batch.waiting) >= _IN_FLIGHT:
                await _progress(transport, batch, _IN_FLIGHT // 2)
            batch.waiting[str(number)] = message
            await nc.publish(
                subjects[message.type],
                message.body,
                reply=f"{batch.inbox}.{number}",
                headers={"Nats-Msg-Id": message.id, "Content-Type": "application/json"},
            )
        await _progress(transport, batch, 0)
    finally:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
    return len(messages)


async def _progress(transport: NatsTransport, batch: _Publishing, waiting: int) -> None:
    """Wait until at most `waiting` publishes of `batch` await their acknowledgement."""
    batch.low = waiting
    while len(batch.waiting) > waiting and not batch.failures:
        batch.changed.clear()
        try:
            await asyncio.wait_for(batch.changed.wait(), transport._timeout)
        except TimeoutError:
            raise TransportUnavailable(
                f"NATS at {redact(transport._server)}: JetStream acknowledged no publish for"
                f" {transport._timeout} s; {len(batch.waiting)} are unacknowledged"
            ) from None
    if batch.failures:
        problem = "; ".join(batch.failures[:3])
        if batch.unavailable:
            transport._streams.clear()  # perhaps deleted: the next call creates them again
            raise TransportUnavailable(f"NATS at {redact(transport._server)}: {problem}")
        raise ConfigurationError(
            f"NATS at {redact(transport._server)}: JetStream refused {problem}"
        )


class _Publishing:
    """The publishes of one call that JetStream has not acknowledged yet."""

    def __init__(self, inbox: str) -> None:
        self.inbox = inbox  # acknowledgements come to <inbox>.<number>
        self.waiting: dict[str, Outgoing] = {}
        self.low = 0  # `changed` is set once no more than this many are waiting
        self.changed = asyncio.Event()
        self.failures: list[str] = []
        self.unavailable = False

    async def acknowledged(self, msg: Msg) -> None:
        message = self.waiting.pop(msg.subject[len(self.inbox) + 1 :], None)
        if message is None:
            return
        data = msg.data
        if msg.headers and msg.headers.get("Status") == "503":
            problem, self.unavailable = "no stream answered (is JetStream enabled?)", True
        elif b'"error"' in data:
            error = json.loads(data)["error"]
            problem = f"{error.get('description')} (error {error.get('err_code')})"
            self.unavailable |= error.get("code", 503) >= 500
        else:
            if len(self.waiting) <= self.low:
                self.changed.set()
            return
        self.failures.append(f"event {message.id!r} ({message.type}): {problem}")
        self.changed.set()
