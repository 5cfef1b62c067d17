"""Pipelines from the banking events to the model, and the consumers that run them."""

from __future__ import annotations

from typing import TypeVar

from msgspec import UNSET

from factflow.model.declare import Dimension, Event
from factflow.model.envelope import Envelope
from factflow.pipeline.app import Consumer
from factflow.pipeline.builder import Pipeline
from factflow.pipeline.steps import MapFunction, ensure_dimensions, insert_first, update_dimension

from .events import (
    AccountOpened,
    BalanceUpdated,
    CardIssued,
    GoalCreated,
    GoalDeleted,
    TransactionSettled,
    UserCreated,
    UserUpdated,
)
from .model import Account, AccountBalanceChange, Card, CardTransaction, Goal, User

__all__ = ["CONSUMERS"]


def user_from_created(event: Envelope[UserCreated]) -> User:
    d = event.data
    return User(user_id=d.user_id, country=d.country, segment=d.segment)


def user_from_updated(event: Envelope[UserUpdated]) -> User:
    d = event.data
    return User(
        user_id=d.user_id,
        country=None if d.country is UNSET else d.country,
        segment=None if d.segment is UNSET else d.segment,
    )


def account_from_opened(event: Envelope[AccountOpened]) -> Account:
    d = event.data
    return Account(account_id=d.account_id, user_id=d.user_id, currency=d.currency)


def balance_change(event: Envelope[BalanceUpdated]) -> AccountBalanceChange:
    d = event.data
    return AccountBalanceChange(
        account_id=d.account_id,
        user_id=d.user_id,
        balance=d.balance,
        available=d.available,
        usable=d.usable,
        currency=d.currency,
    )


def card_from_issued(event: Envelope[CardIssued]) -> Card:
    d = event.data
    return Card(card_id=d.card_id, user_id=d.user_id, account_id=d.account_id, product=d.product)


def card_transaction(event: Envelope[TransactionSettled]) -> CardTransaction:
    d = event.data
    return CardTransaction(
        transaction_id=d.transaction_id,
        card_id=d.card_id,
        user_id=d.user_id,
        amount=d.amount,
        currency=d.currency,
        billing_amount=d.billing_amount,
        billing_currency=d.billing_currency,
        merchant=d.merchant,
        merchant_category=d.merchant_category,
        merchant_country=d.merchant_country,
    )


def goal_from_created(event: Envelope[GoalCreated]) -> Goal:
    d = event.data
    return Goal(
        goal_id=d.goal_id,
        user_id=d.user_id,
        name=d.name,
        category=d.category,
        target_amount=d.target_amount,
        currency=d.currency,
        deleted=False,
    )


def goal_from_deleted(event: Envelope[GoalDeleted]) -> Goal:
    return Goal(goal_id=event.data.goal_id, user_id=event.data.user_id, deleted=True)


P = TypeVar("P", bound=Event)


def _dimension_pipeline(
    event: type[P], map_function: MapFunction[P], dim: type[Dimension]
) -> Pipeline[P]:
    """Map, make the dimensions it refers to exist, record the change."""
    return Pipeline(event).map(map_function).then(ensure_dimensions).then(update_dimension(dim))


CONSUMERS = (
    Consumer("user")
    .pipe(UserCreated, Pipeline(UserCreated).map(user_from_created).then(update_dimension(User)))
    .pipe(UserUpdated, Pipeline(UserUpdated).map(user_from_updated).then(update_dimension(User))),
    Consumer("account")
    .pipe(AccountOpened, _dimension_pipeline(AccountOpened, account_from_opened, Account))
    .pipe(
        BalanceUpdated,
        Pipeline(BalanceUpdated)
        .map(balance_change)
        .then(ensure_dimensions)
        .then(insert_first(AccountBalanceChange)),
    ),
    Consumer("card")
    .pipe(CardIssued, _dimension_pipeline(CardIssued, card_from_issued, Card))
    .pipe(
        TransactionSettled,
        Pipeline(TransactionSettled)
        .map(card_transaction)
        .then(ensure_dimensions)
        .then(insert_first(CardTransaction)),
    ),
    Consumer("goal")
    .pipe(GoalCreated, _dimension_pipeline(GoalCreated, goal_from_created, Goal))
    .pipe(GoalDeleted, _dimension_pipeline(GoalDeleted, goal_from_deleted, Goal)),
)
