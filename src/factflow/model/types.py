"""Value types of the event contract that the standard library lacks."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

__all__ = ["MONEY_PRECISION", "MONEY_SCALE", "Money", "decode_hook", "encode_hook"]

#: Money is stored as DECIMAL(MONEY_PRECISION, MONEY_SCALE): exact, and summed as 64-bit integers.
MONEY_PRECISION = 18
MONEY_SCALE = 4

_MONEY_TEXT = re.compile(
    rf"-?[0-9]{{1,{MONEY_PRECISION - MONEY_SCALE}}}(?:\.[0-9]{{1,{MONEY_SCALE}}})?\Z"
)


class Money(Decimal):
    """An exact amount that arrives as a JSON *string* such as ``"-130.00"``.

    Plain `Decimal` fields would also accept JSON numbers, which are floats on the wire; the
    event contract forbids them for amounts, so amounts are declared as `Money`.
    """

    __slots__ = ()


def decode_hook(kind: type[Any], value: Any) -> Any:
    """Decode the value types msgspec does not know; used by every payload decoder."""
    if kind is Money:
        if type(value) is str and _MONEY_TEXT.match(value):
            return Money(value)
        raise ValueError(
            f"must be a decimal string with at most {MONEY_SCALE} decimal places and "
            f"{MONEY_PRECISION - MONEY_SCALE} digits before the point, got "
            f"{_show(value)}"
        )
    raise NotImplementedError(f"factflow cannot decode values of type {kind!r}")


def encode_hook(value: Any) -> Any:
    """Encode the value types msgspec does not know: `Money` as its decimal string."""
    if isinstance(value, Decimal):
        return str(value)
    raise NotImplementedError(f"factflow cannot encode values of type {type(value)!r}")


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)
