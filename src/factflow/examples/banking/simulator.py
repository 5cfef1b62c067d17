"""A realistic, reproducible stream of the bank's events (shared/domain/banking.md), any size.

`simulate` yields raw envelopes, one JSON object per item, the way the bank's services would
publish them: users sign up, open accounts, get cards, pay in shops at home and abroad, change
segment or move country, set savings goals and delete some of them. The stream is generated
lazily in bounded memory, so ten million events need no more than the bank's compact state.

On top of the business events it can add what real delivery does to a stream: the same envelope
delivered again, a business event re-published under a new envelope id (a replay), arrival out
of order, and invalid messages. Each of these draws from its own random generator, so for the
same `seed` and the same number of business events the business events are identical whatever
the delivery options; that is what lets a test compare a messy stream against a clean one.

`record` sees every business event once, in `occurred_at` order, before delivery touches the
stream: `factflow simulate --to` keeps the services' own state from it (`services.py`).

Example:
    >>> options = SimulationOptions(events=1_000, seed=7, duplicates=0.05, shuffle_window=50)
    >>> lines = list(simulate(options))
    >>> len(lines)
    1000
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

import msgspec

from ._bank import Bank, Recorder
from ._delivery import redeliver, republish, shuffle
from ._world import EXCHANGE_RATES

__all__ = ["EXCHANGE_RATES", "Recorder", "SimulationOptions", "simulate"]


class SimulationOptions(msgspec.Struct, frozen=True):
    """What to simulate.

    Attributes:
        events: the exact number of envelopes `simulate` yields, extras included. Of these,
            ``events - round(events * duplicates) - round(events * republications)
            - round(events * bad_lines)`` are business events; that must leave at least one.
        seed: the same options give exactly the same bytes.
        duplicates: the fraction of `events` that are another delivery of an envelope already
            yielded (same id, same bytes).
        republications: the fraction of `events` that re-publish an earlier business event
            under a new envelope id (same type, source, occurred_at, version and data).
        shuffle_window: 0 yields the business events in `occurred_at` order (re-publications
            are still late, by nature); k > 0 shuffles arrival through a buffer of k envelopes:
            an envelope arrives at most k - 1 places early, and late by a geometric tail.
        bad_lines: the fraction of `events` that are invalid messages: not JSON, a required
            field missing, a wrong type, an unknown `type`, a timestamp without offset. They
            carry ids of their own, never those of a valid envelope or business thing.
        start: when the first business event occurs; must carry a time zone.

    Raises:
        ValueError: a count or fraction out of range, no room left for business events, or a
            naive `start`.
    """

    events: int
    seed: int = 0
    duplicates: float = 0.0
    republications: float = 0.0
    shuffle_window: int = 0
    bad_lines: float = 0.0
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)

    def __post_init__(self) -> None:
        if self.events < 0:
            raise ValueError(f"events must be >= 0, got {self.events}")
        if self.shuffle_window < 0:
            raise ValueError(f"shuffle_window must be >= 0, got {self.shuffle_window}")
        for name in ("duplicates", "republications", "bad_lines"):
            fraction = getattr(self, name)
            if not 0.0 <= fraction <= 1.0:
                raise ValueError(f"{name} must be a fraction between 0 and 1, got {fraction}")
        if self.start.utcoffset() is None:
            raise ValueError(f"start must carry a time zone, got {self.start.isoformat()}")
        if self.events and self._business_events() < 1:
            raise ValueError(
                "duplicates + republications + bad_lines leave no business events in "
                f"{self.events} envelopes; lower the fractions or raise events"
            )

    def _business_events(self) -> int:
        extras = sum(round(self.events * f) for f in self._extra_fractions())
        return self.events - extras

    def _extra_fractions(self) -> tuple[float, float, float]:
        return (self.duplicates, self.republications, self.bad_lines)


def simulate(options: SimulationOptions, *, record: Recorder | None = None) -> Iterator[bytes]:
    """Yield `options.events` envelopes as JSON bytes (no trailing newline), lazily.

    Valid envelopes follow banking.md: `version` 1, `occurred_at` in UTC with milliseconds
    (``2026-01-01T00:00:03.412Z``), amounts as strings with two decimals. In `occurred_at`
    order every business event is causally sensible: a user exists before their accounts, an
    account before its cards, a card before its transactions, a goal before its deletion.

    `record(type, occurred_at, data)`, if given, is called with each business event as the
    stream reaches it, before any re-delivery, re-publication, reordering or bad line.
    """
    if options.events == 0:
        return
    n_duplicates, n_republications, n_bad = (
        round(options.events * f) for f in options._extra_fractions()
    )
    business = options._business_events()
    bank = Bank(random.Random(options.seed), business, options.start)
    stream: Iterator[bytes] = bank.run(record)
    delivery = random.Random(f"factflow-delivery-{options.seed}")
    if n_republications:
        stream = republish(stream, business, n_republications, delivery)
    if options.shuffle_window > 1:
        stream = shuffle(stream, options.shuffle_window, delivery)
    if n_duplicates or n_bad:
        upstream = business + n_republications
        stream = redeliver(stream, upstream, n_duplicates, n_bad, delivery)
    yield from stream
