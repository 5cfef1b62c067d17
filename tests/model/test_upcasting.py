"""Event versions: old payloads are upcast to the version the pipelines handle — live, from
files, and when dead letters of a version nobody handled yet are replayed."""

from __future__ import annotations

import pytest

from factflow import (
    App,
    Consumer,
    DeclarationError,
    Dimension,
    Envelope,
    Event,
    Pipeline,
    dimension,
    event,
    upcaster,
    update_dimension,
)
from factflow.runtime.replay import replay_dead_letters
from factflow.testing import Harness, envelope


@event("shop.customer_joined", version=1)
class CustomerJoinedV1(Event):
    customer_id: str
    country: str


@event("shop.customer_joined", version=2)
class CustomerJoinedV2(Event):
    customer_id: str
    country: str
    tier: str


@event("shop.customer_joined", version=3)
class CustomerJoined(Event):
    customer_id: str
    country: str
    tier: str
    newsletter: bool


@dimension(key="customer_id")
class Customer(Dimension):
    customer_id: str
    country: str | None = None
    tier: str | None = None
    newsletter: bool | None = None


@upcaster
def joined_v2(old: CustomerJoinedV1) -> CustomerJoinedV2:
    if old.country == "XX":
        raise ValueError("no such country")
    return CustomerJoinedV2(customer_id=old.customer_id, country=old.country, tier="basic")


@upcaster
def joined_v3(old: CustomerJoinedV2) -> CustomerJoined:
    return CustomerJoined(
        customer_id=old.customer_id, country=old.country, tier=old.tier, newsletter=False
    )


def to_customer(joined: Envelope[CustomerJoined]) -> Customer:
    d = joined.data
    return Customer(
        customer_id=d.customer_id, country=d.country, tier=d.tier, newsletter=d.newsletter
    )


pipeline = Pipeline(CustomerJoined).map(to_customer).then(update_dimension(Customer))
consumers = [Consumer("shop").pipe(CustomerJoined, pipeline)]
shop = App("shop", consumers=consumers, upcasters=[joined_v2, joined_v3])


def joined(customer: str, version: int, **data: object) -> bytes:
    return envelope("shop.customer_joined", {"customer_id": customer, **data}, version=version)


def customers(harness: Harness) -> dict[str, tuple[object, ...]]:
    return {
        row["customer_id"]: (row["country"], row["tier"], row["newsletter"])
        for row in harness.rows("dim_customer")
    }


def test_every_old_version_reaches_the_pipeline_as_the_version_it_handles() -> None:
    harness = Harness(shop)
    harness.deliver(
        [
            joined("c-1", 1, country="DK"),
            joined("c-2", 2, country="SE", tier="gold"),
            joined("c-3", 3, country="NO", tier="gold", newsletter=True),
        ]
    )
    assert customers(harness) == {
        "c-1": ("DK", "basic", False),
        "c-2": ("SE", "gold", False),
        "c-3": ("NO", "gold", True),
    }


def test_an_upcaster_that_fails_sets_only_that_event_aside_with_the_reason() -> None:
    harness = Harness(shop)
    harness.deliver([joined("c-1", 1, country="XX"), joined("c-2", 1, country="DK")])
    assert set(customers(harness)) == {"c-2"}
    [letter] = harness.dead_letters()
    assert "upcasting v1 with joined_v2 failed: ValueError: no such country" in letter.reason


def test_dead_letters_of_an_old_version_come_back_once_an_upcaster_is_declared() -> None:
    before = App("shop", consumers=consumers)  # handles v3 only
    harness = Harness(before)
    harness.deliver([joined("c-1", 1, country="DK")])
    [letter] = harness.dead_letters()
    assert "version 1 is not handled" in letter.reason

    outcome = replay_dead_letters(shop, harness.warehouse)

    assert outcome.stored == 1
    assert harness.dead_letters() == []
    assert customers(harness) == {"c-1": ("DK", "basic", False)}


def test_an_upcaster_must_go_to_a_later_version_of_the_same_type() -> None:
    def backwards(old: CustomerJoinedV2) -> CustomerJoinedV1:
        raise NotImplementedError

    with pytest.raises(DeclarationError, match="later version of the same type"):
        upcaster(backwards)


def test_an_upcaster_needs_its_classes_in_its_annotations() -> None:
    def untyped(old):  # type: ignore[no-untyped-def]
        return old

    with pytest.raises(DeclarationError, match="annotate its one parameter"):
        upcaster(untyped)


def test_a_version_upcast_to_nothing_handled_is_refused_when_the_app_starts() -> None:
    stranded = App("shop", consumers=consumers, upcasters=[joined_v2])  # v2 → v3 is missing
    with pytest.raises(DeclarationError, match="add the missing upcaster"):
        Harness(stranded)
