"""The classes and decorators users declare their events, facts and dimensions with.

```python
@event("card.transaction_settled", version=1)
class TransactionSettled(Event):
    transaction_id: str
    amount: Money

@dimension(key="user_id", scd=2)
class User(Dimension):
    user_id: str
    segment: str | None = None

@fact(key="transaction_id", references={"user_id": User})
class CardTransaction(Fact):
    transaction_id: str
    user_id: str
    amount: Money
```

Events, facts and dimensions are `msgspec.Struct` classes: typed, immutable and cheap to create.
The decorators only attach metadata; `factflow.model.schema` compiles it into table descriptions.
The docstrings of facts and dimensions, and field descriptions declared as
`Annotated[str, msgspec.Meta(description="...")]`, become the comments of their tables and
columns in the warehouse, for BI tools (`factflow.warehouse.views`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, TypeVar

import msgspec

from factflow.errors import DeclarationError

__all__ = [
    "MEMBER_KEY",
    "MEMBER_KEY_SUFFIX",
    "RESERVED_COLUMNS",
    "Dimension",
    "DimensionMeta",
    "Event",
    "EventMeta",
    "Fact",
    "FactMeta",
    "dimension",
    "event",
    "fact",
]

#: A dimension's durable member key, and the ending of the column by which a fact carries it
#: for each reference (`user_id__member_key`): see `factflow.model.schema`.
MEMBER_KEY = "member_key"
MEMBER_KEY_SUFFIX = f"__{MEMBER_KEY}"

#: Columns factflow fills itself: from the envelope on every fact and dimension change, and the
#: member keys (with every name ending in `MEMBER_KEY_SUFFIX`).
RESERVED_COLUMNS = frozenset(
    {"event_id", "occurred_at", "inferred", "updated_at", "valid_from", "valid_to", MEMBER_KEY}
)


class Event(msgspec.Struct, kw_only=True, gc=False):
    """Base of event payloads (the envelope's `data`). Declare with `@event`."""

    __factflow_event__: ClassVar[EventMeta]


class Fact(msgspec.Struct, kw_only=True, gc=False):
    """Base of facts: immutable rows about something that happened. Declare with `@fact`."""

    __factflow_fact__: ClassVar[FactMeta]


class Dimension(msgspec.Struct, kw_only=True, gc=False):
    """Base of dimensions: things facts refer to. Declare with `@dimension`.

    An instance is a *change*: attributes left at `None` are not changed by it.
    """

    __factflow_dimension__: ClassVar[DimensionMeta]


class EventMeta(msgspec.Struct, frozen=True):
    type: str
    version: int
    domain: str


class FactMeta(msgspec.Struct, frozen=True):
    key: tuple[str, ...]
    references: Mapping[str, type[Dimension]]
    table: str


class DimensionMeta(msgspec.Struct, frozen=True):
    key: str
    scd: Literal[1, 2]
    references: Mapping[str, type[Dimension]]
    table: str


E = TypeVar("E", bound=type[Event])
F = TypeVar("F", bound=type[Fact])
D = TypeVar("D", bound=type[Dimension])


def event(type: str, *, version: int = 1) -> Callable[[E], E]:
    """Declare an event payload class for the envelope `type` and schema `version`."""
    domain, dot, name = type.partition(".")
    if not (dot and domain and name) or type != type.lower() or " " in type:
        raise DeclarationError(
            f"event type {type!r} must be `<domain>.<event_name>` in lower snake case, "
            'for example "card.transaction_settled"'
        )
    if version < 1:
        raise DeclarationError(f"event {type!r}: version must be 1 or more, got {version}")

    def declare(cls: E) -> E:
        _require_base(cls, Event, "@event")
        cls.__factflow_event__ = EventMeta(type=type, version=version, domain=domain)
        return cls

    return declare


def fact(
    *,
    key: str | tuple[str, ...] = "event_id",
    references: Mapping[str, type[Dimension]] | None = None,
    table: str | None = None,
) -> Callable[[F], F]:
    """Declare a fact class.

    Args:
        key: the natural key; inserting a second row with the same key changes nothing.
            Default: the id of the envelope the fact came from.
        references: field name → the dimension whose key that field holds.
        table: table name; default `fact_<snake_case_class_name>`.
    """
    keys = (key,) if isinstance(key, str) else tuple(key)

    def declare(cls: F) -> F:
        _require_base(cls, Fact, "@fact")
        fields = _fields(cls)
        for name in keys:
            if name not in fields and name != "event_id":
                raise DeclarationError(f"fact {cls.__name__}: key field {name!r} is not a field")
        refs = _check_references(cls, fields, references or {})
        cls.__factflow_fact__ = FactMeta(
            key=keys, references=refs, table=table or f"fact_{_snake(cls.__name__)}"
        )
        return cls

    return declare


def dimension(
    *,
    key: str,
    scd: Literal[1, 2] = 1,
    references: Mapping[str, type[Dimension]] | None = None,
    table: str | None = None,
) -> Callable[[D], D]:
    """Declare a dimension class.

    Args:
        key: the field holding the natural key (a string).
        scd: 1 keeps the latest value of each attribute; 2 also keeps every version by event
            time, queryable as of any point in time (table `<table>__history`).
        references: field name → another dimension whose key that field holds.
        table: table name; default `dim_<snake_case_class_name>`.
    """
    if scd not in (1, 2):
        raise DeclarationError(f"dimension scd must be 1 or 2, got {scd!r}")

    def declare(cls: D) -> D:
        _require_base(cls, Dimension, "@dimension")
        fields = _fields(cls)
        if key not in fields:
            raise DeclarationError(f"dimension {cls.__name__}: key field {key!r} is not a field")
        refs = _check_references(cls, fields, references or {})
        cls.__factflow_dimension__ = DimensionMeta(
            key=key, scd=scd, references=refs, table=table or f"dim_{_snake(cls.__name__)}"
        )
        return cls

    return declare


def _require_base(cls: type[Any], base: type[msgspec.Struct], decorator: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise DeclarationError(
            f"{decorator} decorates subclasses of factflow.{base.__name__}, got {cls!r}"
        )
    clash = RESERVED_COLUMNS.intersection(cls.__struct_fields__) | {
        name for name in cls.__struct_fields__ if name.endswith(MEMBER_KEY_SUFFIX)
    }
    if clash:
        raise DeclarationError(
            f"{cls.__name__}: field name(s) {sorted(clash)} are reserved for the columns factflow "
            "fills itself; rename the field(s)"
        )


def _fields(cls: type[msgspec.Struct]) -> tuple[str, ...]:
    return cls.__struct_fields__


def _check_references(
    cls: type, fields: tuple[str, ...], references: Mapping[str, type[Dimension]]
) -> Mapping[str, type[Dimension]]:
    for name, target in references.items():
        if name not in fields:
            raise DeclarationError(f"{cls.__name__}: referencing field {name!r} is not a field")
        if not hasattr(target, "__factflow_dimension__"):
            raise DeclarationError(
                f"{cls.__name__}.{name} references {target!r}, which is not a declared "
                "@dimension (declare the dimension before the classes that refer to it)"
            )
    return dict(references)


def _snake(name: str) -> str:
    out: list[str] = []
    for i, char in enumerate(name):
        if (
            char.isupper()
            and i
            and (not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower()))
        ):
            out.append("_")
        out.append(char.lower())
    return "".join(out)


def meta_of(cls: type[Any]) -> FactMeta | DimensionMeta | None:
    """The fact or dimension metadata of a row class, or None for other classes."""
    return getattr(cls, "__factflow_fact__", None) or getattr(cls, "__factflow_dimension__", None)
