"""The KPI service's own model of the bank: dimensions and facts in a star schema."""

from __future__ import annotations

from factflow.model.declare import Dimension, Fact, dimension, fact
from factflow.model.types import Money

__all__ = ["Account", "AccountBalanceChange", "Card", "CardTransaction", "Goal", "User"]


@dimension(key="user_id", scd=2)
class User(Dimension):
    """Users; segment and country are kept by event time, so "segment at the time" is answerable."""

    user_id: str
    country: str | None = None
    segment: str | None = None


@dimension(key="account_id", references={"user_id": User})
class Account(Dimension):
    account_id: str
    user_id: str | None = None
    currency: str | None = None


@dimension(key="card_id", references={"user_id": User, "account_id": Account})
class Card(Dimension):
    card_id: str
    user_id: str | None = None
    account_id: str | None = None
    product: str | None = None


@dimension(key="goal_id", references={"user_id": User})
class Goal(Dimension):
    """Savings goals; `deleted` is set by goal_deleted and cleared by a later goal_created."""

    goal_id: str
    user_id: str | None = None
    name: str | None = None
    category: str | None = None
    target_amount: Money | None = None
    currency: str | None = None
    deleted: bool | None = None


@fact(key="transaction_id", references={"user_id": User, "card_id": Card})
class CardTransaction(Fact):
    """A settled card transaction; one per `transaction_id`, whatever envelopes carry it."""

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


@fact(references={"user_id": User, "account_id": Account})
class AccountBalanceChange(Fact):
    """The talk's AccountBalanceChange: one per envelope."""

    account_id: str
    user_id: str
    balance: Money
    available: Money
    usable: Money
    currency: str
