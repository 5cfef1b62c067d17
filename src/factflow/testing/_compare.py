"""Compare the rows a harness finds with the rows a test expects, and say what differs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

__all__ = ["Expected", "as_utc", "row_differences", "show_row"]

#: An expected row: a mapping of some columns to their values, or a fact or dimension instance
#: (all of its fields).
Expected = Mapping[str, Any] | msgspec.Struct

#: At most this many rows of a kind are listed in a failure message.
_SHOWN = 20


def as_utc(value: Any) -> Any:
    """Timestamps as aware UTC datetimes (warehouses keep UTC, some without a time zone)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, Decimal | int | str):
            return Decimal(value)
        if isinstance(value, float):
            return Decimal(str(value))
    except InvalidOperation:
        return None
    return None


def same(expected: Any, actual: Any) -> bool:
    """Equal, reading decimal text as a decimal and RFC 3339 text as a timestamp or date."""
    if isinstance(expected, Decimal) or isinstance(actual, Decimal):
        left, right = _decimal(expected), _decimal(actual)
        return left is not None and left == right
    if isinstance(actual, datetime) and isinstance(expected, str | datetime):
        try:
            when = datetime.fromisoformat(expected) if isinstance(expected, str) else expected
        except ValueError:
            return False
        return bool(as_utc(when) == as_utc(actual))
    if isinstance(actual, date) and isinstance(expected, str):
        return expected == actual.isoformat()
    return bool(expected == actual)


def show(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return str(as_utc(value).isoformat())
    if isinstance(value, date):
        return value.isoformat()
    return repr(value)


def show_row(row: Mapping[str, Any], columns: Iterable[str] | None = None) -> str:
    names = row.keys() if columns is None else [c for c in columns if c in row]
    return "{" + ", ".join(f"{name}: {show(row[name])}" for name in names) + "}"


def _as_mapping(row: Expected) -> Mapping[str, Any]:
    return msgspec.structs.asdict(row) if isinstance(row, msgspec.Struct) else row


def _matches(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    return all(same(value, actual[name]) for name, value in expected.items())


def row_differences(
    what: str,
    found: Sequence[Mapping[str, Any]],
    expected: Iterable[Expected],
    columns: Sequence[str],
) -> list[str]:
    """Lines saying how `found` differs from `expected` (in any order); empty when it does not.

    An expected row compares only the columns it names: `{"loan_id": "l-1"}` matches a row
    with any other values. Each expected row matches one found row, so duplicates count.
    `columns` are those of `what`; an expected row naming another is an error.
    """
    wanted = [_as_mapping(row) for row in expected]
    unknown = sorted({name for row in wanted for name in row} - set(columns))
    if unknown:
        raise AssertionError(
            f"{what} has no column(s) {', '.join(map(repr, unknown))}; its columns: "
            + ", ".join(columns)
        )
    compared = list(dict.fromkeys(name for row in wanted for name in row)) or list(columns)
    left = list(found)
    missing: list[Mapping[str, Any]] = []
    for row in wanted:
        index = next((i for i, candidate in enumerate(left) if _matches(row, candidate)), None)
        if index is None:
            missing.append(row)
        else:
            del left[index]
    if not missing and not left:
        return []
    lines = [
        f"{what}: {len(found)} row(s) found, {len(wanted)} expected; "
        f"{len(missing)} expected row(s) missing, {len(left)} row(s) not expected"
    ]
    if missing:
        lines.append("  expected but missing:")
        for row in missing[:_SHOWN]:
            lines.append(f"    {show_row(row)}")
            hint = _closest(row, left)
            if hint:
                lines.append(f"      closest found differs in {hint}")
    if left:
        lines.append(f"  found but not expected (columns {', '.join(compared)}):")
        lines += [f"    {show_row(row, compared)}" for row in left[:_SHOWN]]
    if len(missing) > _SHOWN or len(left) > _SHOWN:
        lines.append(f"  (at most {_SHOWN} rows of each kind are listed)")
    return lines


def _closest(row: Mapping[str, Any], candidates: Sequence[Mapping[str, Any]]) -> str:
    """The columns where the found row most like `row` differs from it, with both values."""
    best: tuple[int, Mapping[str, Any]] | None = None
    for candidate in candidates:
        score = sum(same(value, candidate[name]) for name, value in row.items())
        if score and (best is None or score > best[0]):
            best = (score, candidate)
    if best is None:
        return ""
    differing = [name for name, value in row.items() if not same(value, best[1][name])]
    return ", ".join(
        f"{name}: {show(best[1][name])} (expected {show(row[name])})" for name in differing
    )
