"""Hand-written banking events for tests that need one or two of them."""

from typing import Any

from factflow.testing import envelope

#: The data of a settled transaction: 10 EUR charged, 74.60 DKK billed.
SETTLED: dict[str, Any] = {
    "transaction_id": "t-1",
    "card_id": "c-1",
    "user_id": "u-1",
    "amount": "10.00",
    "currency": "EUR",
    "billing_amount": "74.60",
    "billing_currency": "DKK",
    "merchant": "Hotel",
    "merchant_category": "travel",
    "merchant_country": "DE",
}


def settled(transaction_id: str, **changes: Any) -> bytes:
    """An envelope of a settled transaction, with `changes` to its data."""
    return envelope(
        "card.transaction_settled", SETTLED | {"transaction_id": transaction_id} | changes
    )
