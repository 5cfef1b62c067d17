"""Checked by mypy --strict (see pyproject): declaring bootstrap sources type-checks for users."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from factflow import (
    App,
    BootstrapSource,
    Event,
    Money,
    SourceEvent,
    bootstrap_source,
    event,
)


@event("shop.order_placed")
class OrderPlaced(Event):
    order_id: str
    total: Money


@bootstrap_source(service="order-service")
def orders(location: str) -> Iterator[SourceEvent]:
    for order_id, total, created_at in [("o-1", "9.50", datetime(2026, 1, 1, tzinfo=UTC))]:
        yield SourceEvent(
            OrderPlaced(order_id=order_id, total=Money(total)), key=order_id, occurred_at=created_at
        )


def refunds(location: str) -> list[SourceEvent]:
    return []


declared: BootstrapSource = orders
app = App("shop", consumers=[], sources=[orders, BootstrapSource(refunds, service="payments")])
first: SourceEvent = next(iter(orders.read("postgresql://reader@db/orders")))
envelope_id: str = first.envelope_id()
