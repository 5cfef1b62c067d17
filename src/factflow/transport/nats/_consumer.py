"""One domain of a subscription: its durable consumer, open pull and delivered messages."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from factflow.transport.base import SUSPECT_RETURNS

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription as CoreSubscription

__all__ = ["Consumer", "Pull", "suspect"]

# A JetStream message's reply subject: $JS.ACK.<stream>.<consumer>.<delivered>.… (9 tokens), or
# with a domain and an account hash before the stream (11 or more).
_V1_TOKENS = 9
_V1_DELIVERED = 4
_V2_DELIVERED = 6


def suspect(msg: Msg) -> bool:
    """Whether JetStream delivered `msg` `SUSPECT_RETURNS` times before (unacknowledged)."""
    tokens = msg.reply.split(".")
    index = _V1_DELIVERED if len(tokens) == _V1_TOKENS else _V2_DELIVERED
    return len(tokens) > index and int(tokens[index]) > SUSPECT_RETURNS


class Pull:
    """One pull request to a consumer: the server answers with up to `wanted` messages."""

    __slots__ = ("done", "received", "reply", "until", "wanted")

    def __init__(self, reply: str, wanted: int, until: float) -> None:
        self.reply = reply
        self.wanted = wanted
        self.received = 0
        self.until = until  # when to stop waiting for the server to end it
        self.done = False


class Consumer:
    """A subscription's reading of one domain's durable consumer."""

    def __init__(self, domain: str, durable: str, wanted: frozenset[str] | None) -> None:
        self.domain = domain
        self.stream = ""  # known once the stream is there
        self.durable = durable
        self.wanted = wanted  # the subjects to return; None: all
        self.buffer: deque[Msg] = deque()  # delivered, not fetched yet
        # Pulling one message at a time: at the start (what comes first after a crash is what
        # the crashed process held) and after a suspect message, until another one.
        self.cautious = True
        self.pull: Pull | None = None  # at most one open pull at a time
        self.inbox = ""
        self.serial = 0
        self.subscription: CoreSubscription | None = None

    def received(self, msg: Msg) -> str | None:
        """Take `msg` from the server; returns a problem that makes the subscription unusable."""
        pull = self.pull
        if msg.reply:  # a stream message: acknowledged at its reply subject
            self.buffer.append(msg)
            if pull is not None:
                pull.received += 1
                if pull.received >= pull.wanted:
                    self.end_pull()
            return None
        headers = msg.headers or {}
        status = headers.get("Status", "")
        if status == "100":  # a heartbeat
            return None
        if pull is not None and msg.subject == pull.reply:
            self.end_pull()
        from nats.js.api import Header

        description = str(headers.get(Header.DESCRIPTION, ""))
        if status in ("404", "408") or (status == "409" and "deleted" not in description.lower()):
            return None  # no (more) messages, expired, or a passing conflict: the pull is over
        return (
            f"consumer {self.durable!r} of stream {self.stream!r} answered {status} {description}"
        )

    def end_pull(self) -> None:
        if self.pull is not None:
            self.pull.done = True
            self.pull = None
