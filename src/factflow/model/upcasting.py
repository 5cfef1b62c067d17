"""Event versions: a function that turns a payload of an old version into the next one.

When a source service starts publishing `v2` of an event, the app declares the `v2` payload,
keeps the `v1` class, and an upcaster between them. Events still arriving as `v1` (from a
service not yet upgraded, from a bootstrap of old files, from dead letters replayed later) are
decoded as `v1` and upcast, so the pipelines only ever see the version they are written for.

```python
@event("user.user_created", version=1)
class UserCreatedV1(Event):
    user_id: str
    country: str

@event("user.user_created", version=2)
class UserCreated(Event):
    user_id: str
    country: str
    segment: str

@upcaster
def user_created_v2(old: UserCreatedV1) -> UserCreated:
    return UserCreated(user_id=old.user_id, country=old.country, segment="standard")

app = App("kpi", consumers=[...], upcasters=[user_created_v2])
```
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from factflow.errors import DeclarationError
from factflow.model.declare import Event

__all__ = ["Upcaster", "upcaster"]

Old = TypeVar("Old", bound=Event)
New = TypeVar("New", bound=Event)


class Upcaster(Generic[Old, New]):
    """`function` from payloads of event class `source` to those of `target`, a later version of
    the same event type. Made by `@upcaster` from the function's annotations."""

    __slots__ = ("__name__", "function", "source", "target")

    def __init__(self, function: Callable[[Old], New], source: type[Old], target: type[New]):
        for cls in (source, target):
            if not hasattr(cls, "__factflow_event__"):
                raise DeclarationError(
                    f"upcaster {function.__name__}: {cls.__name__} is not declared with @event"
                )
        old, new = source.__factflow_event__, target.__factflow_event__
        if old.type != new.type or new.version <= old.version:
            raise DeclarationError(
                f"upcaster {function.__name__}: turns {old.type} v{old.version} into {new.type} "
                f"v{new.version}; an upcaster goes from a version of an event type to a later "
                "version of the same type"
            )
        self.function, self.source, self.target = function, source, target
        self.__name__ = function.__name__

    def __call__(self, old: Old) -> New:
        return self.function(old)

    def __repr__(self) -> str:
        old, new = self.source.__factflow_event__, self.target.__factflow_event__
        return f"<upcaster {self.__name__}: {old.type} v{old.version} → v{new.version}>"


def upcaster(function: Callable[[Old], New]) -> Upcaster[Old, New]:
    """Declare an upcaster: a function of one parameter annotated with the old payload class,
    returning (annotated) the new one."""
    try:
        hints = typing.get_type_hints(function)
    except NameError as error:
        raise DeclarationError(
            f"upcaster {function.__name__}: cannot resolve its annotations ({error})"
        ) from None
    parameters = list(inspect.signature(function).parameters)
    source: Any = hints.get(parameters[0]) if len(parameters) == 1 else None
    target: Any = hints.get("return")
    if not (_is_event(source) and _is_event(target)):
        raise DeclarationError(
            f"upcaster {function.__name__}: annotate its one parameter with the old event class "
            "and its return with the new one, e.g. def v2(old: UserCreatedV1) -> UserCreated"
        )
    return Upcaster(function, source, target)


def _is_event(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, Event)
