"""One domain of a subscription: its durable consumer, open pull and delivered messages."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription as CoreSubscription

__all__ = ["Consumer", "Pull"]


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
