"""Bootstrap sources: functions that read a service's own data and yield the events it publishes.

When a team adds a KPI pipeline, history is in the source services' databases, not in any
queue. A bootstrap source turns that data back into the events the service would have published,
so that the same pipelines fill the model ("same pipeline, same events, different queue"):

```python
@bootstrap_source(service="order-service")
def orders(location: str) -> Iterator[SourceEvent]:
    with psycopg.connect(location) as db, db.cursor(name="bootstrap") as rows:
        rows.execute("SELECT order_id, customer_id, total, created_at FROM orders")
        for order_id, customer_id, total, created_at in rows:
            yield SourceEvent(
                OrderPlaced(order_id=order_id, customer_id=customer_id, total=Money(total)),
                key=order_id,            # the same business event, the same key
                occurred_at=created_at,  # business time kept by the service, never "now"
            )

app = App("shop", consumers=CONSUMERS, kpis=KPIS, sources=[orders])
```

`factflow bootstrap --app … --from LOCATION` calls every source with LOCATION (a URL such as
`postgresql://reader@db/cards`) and replays what they yield through the app's pipelines. The
envelope of each event gets an id derived from its type and `key` (`SourceEvent.envelope_id`),
so running a bootstrap again changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeAlias

import msgspec

from factflow.errors import DeclarationError
from factflow.model.declare import Event, EventMeta
from factflow.model.envelope import encode_envelope

__all__ = [
    "BOOTSTRAP_NAMESPACE",
    "BootstrapSource",
    "SourceEvent",
    "SourceFunction",
    "bootstrap_source",
]

#: The UUID namespace of bootstrap envelope ids: uuid5(namespace, "<type> <key>").
BOOTSTRAP_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://factflow.dev/bootstrap")


class SourceEvent(msgspec.Struct, frozen=True, gc=False):
    """One event recovered from a service's data.

    Attributes:
        data: the payload, an instance of a declared `@event` class (it gives type and version).
        key: the natural key of this business event, stable across runs: the id of the thing
            for a creation (`transaction_id`), the id and time for a change of it
            (`"u-1@2026-03-01T12:00:00+00:00"`). Equal keys of one type are one event.
        occurred_at: when it happened, as the service recorded it (`created_at`, `updated_at`);
            it must carry a time zone. The model orders dimension changes by it, so a bootstrap
            that overlaps the live stream gives the same model.

    Raises:
        ValueError: `key` is empty or `occurred_at` has no time zone.
    """

    data: Event
    key: str
    occurred_at: datetime

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError(f"{type(self.data).__name__}: a SourceEvent needs a non-empty key")
        if self.occurred_at.utcoffset() is None:
            raise ValueError(
                f"{type(self.data).__name__} {self.key!r}: occurred_at "
                f"{self.occurred_at.isoformat()} has no time zone; give it one "
                "(datetime(..., tzinfo=UTC), or read a `timestamptz` column)"
            )

    @property
    def type(self) -> str:
        return _meta(self.data).type

    def envelope_id(self) -> str:
        """The id of this event's envelope: the same for the same type and key, on every run."""
        return str(uuid.uuid5(BOOTSTRAP_NAMESPACE, f"{self.type} {self.key}"))

    def encode(self, source: str) -> bytes:
        """The raw envelope, exactly as the service would publish it (`source` its name)."""
        meta = _meta(self.data)
        return encode_envelope(
            id=self.envelope_id(),
            type=meta.type,
            source=source,
            occurred_at=self.occurred_at,
            version=meta.version,
            data=self.data,
        )


#: What a bootstrap source is: the location given to `factflow bootstrap --from` → its events.
SourceFunction: TypeAlias = Callable[[str], Iterable[SourceEvent]]


class BootstrapSource:
    """A named function that yields the events a service published, from its own data.

    Args:
        read: called with the location (`--from`, usually a database URL); yields
            `SourceEvent`s lazily, so that history of any size passes in bounded memory.
        name: how commands refer to it (`--source NAME`); default: the function's name.
        service: the envelopes' `source` field, the service whose data it reads; default `name`.
    """

    __slots__ = ("name", "read", "service")

    def __init__(
        self, read: SourceFunction, *, name: str | None = None, service: str | None = None
    ) -> None:
        self.read = read
        given = name or str(getattr(read, "__name__", ""))
        if not given or given == "<lambda>":
            raise DeclarationError(
                f"bootstrap source {read!r} needs a name: pass name=... to BootstrapSource"
            )
        self.name = given
        self.service: str = service or given

    def __repr__(self) -> str:
        return f"BootstrapSource({self.name!r}, service={self.service!r})"


def bootstrap_source(
    *, name: str | None = None, service: str | None = None
) -> Callable[[SourceFunction], BootstrapSource]:
    """Declare a function as a bootstrap source (see `BootstrapSource` for the arguments)."""

    def declare(read: SourceFunction) -> BootstrapSource:
        return BootstrapSource(read, name=name, service=service)

    return declare


def _meta(data: Event) -> EventMeta:
    meta: EventMeta | None = getattr(type(data), "__factflow_event__", None)
    if meta is None:
        raise DeclarationError(
            f"a SourceEvent carries {type(data).__name__}, which is not declared with "
            "@event(...); yield instances of the app's event classes"
        )
    return meta
