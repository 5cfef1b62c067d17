"""The banking services' events, exactly as banking.md publishes them."""

from __future__ import annotations

from typing import Literal

from msgspec import UNSET, UnsetType

from factflow.model.declare import Event, event
from factflow.model.types import Money

__all__ = [
    "AccountOpened",
    "BalanceUpdated",
    "CardIssued",
    "GoalCreated",
    "GoalDeleted",
    "TransactionSettled",
    "UserCreated",
    "UserUpdated",
]

Segment = Literal["standard", "plus"]
Product = Literal["visa_standard", "travel_card"]
GoalCategory = Literal["travel", "home", "car", "education", "other"]


@event("user.user_created")
class UserCreated(Event):
    user_id: str
    country: str
    segment: Segment


@event("user.user_updated")
class UserUpdated(Event):
    """Fields left out are unchanged (`UNSET`); when present they must be strings."""

    user_id: str
    country: str | UnsetType = UNSET
    segment: Segment | UnsetType = UNSET


@event("account.account_opened")
class AccountOpened(Event):
    account_id: str
    user_id: str
    currency: str


@event("account.balance_updated")
class BalanceUpdated(Event):
    account_id: str
    user_id: str
    balance: Money
    available: Money
    usable: Money
    currency: str


@event("card.card_issued")
class CardIssued(Event):
    card_id: str
    user_id: str
    account_id: str
    product: Product


@event("card.transaction_settled")
class TransactionSettled(Event):
    transaction_id: str
    card_id: str
    user_id: str
    amount: Money
    currency: str
    billing_amount: Money
    billing_currency: str
    merchant: str
    merchant_category: str
    merchant_country: str


@event("goal.goal_created")
class GoalCreated(Event):
    goal_id: str
    user_id: str
    name: str
    category: GoalCategory
    target_amount: Money
    currency: str


@event("goal.goal_deleted")
class GoalDeleted(Event):
    goal_id: str
    user_id: str
