"""Maps that copy fields: a row of a fact or dimension from the same-named fields of an event.

Most maps are projections: `CardTransaction(transaction_id=d.transaction_id, ...)`. Declared as
one, the map says what it does, the pipeline checks it against the event when it is built, and
a bootstrap runs it column by column over a whole batch (`factflow.runtime.columnar`) instead of
once per event:

```python
Pipeline(TransactionSettled).map(project(CardTransaction)).then(insert_first(CardTransaction))
Pipeline(GoalDeleted).map(project(Goal, constants={"deleted": True}))
Pipeline(AccountOpened).map(project(Account, rename={"owner_id": "user_id"}))
```
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from msgspec import UNSET

from factflow.errors import DeclarationError
from factflow.model.declare import Dimension, Event, Fact, meta_of
from factflow.model.envelope import Envelope

__all__ = ["Projection", "project"]


class Projection:
    """A map from an event to one row of `row_class`, field by field (see `project`).

    `sources` gives, for each row field taken from the event, the event field it is taken
    from; `constants` the value of every other row field.
    """

    __slots__ = ("__name__", "constants", "row_class", "sources")

    def __init__(
        self,
        row_class: type[Fact] | type[Dimension],
        *,
        rename: Mapping[str, str] | None = None,
        constants: Mapping[str, Any] | None = None,
    ) -> None:
        if meta_of(row_class) is None:
            raise DeclarationError(f"project({row_class!r}): not declared with @fact or @dimension")
        rename, constants = dict(rename or {}), dict(constants or {})
        fields = row_class.__struct_fields__
        unknown = sorted((rename.keys() | constants.keys()) - set(fields))
        if unknown:
            raise DeclarationError(
                f"project({row_class.__name__}): {unknown} are not fields of {row_class.__name__} "
                f"(its fields: {', '.join(fields)})"
            )
        both = sorted(rename.keys() & constants.keys())
        if both:
            raise DeclarationError(
                f"project({row_class.__name__}): {both} are both renamed and constant; keep one"
            )
        self.row_class = row_class
        self.constants = constants
        self.sources = {f: rename.get(f, f) for f in fields if f not in constants}
        self.__name__ = f"project({row_class.__name__})"

    def bound(self, event: type[Event]) -> Projection:
        """This projection for events of `event`: a row field with a default that the event
        lacks keeps its default. `Pipeline.map` binds it, so that a mistake fails when the
        pipeline is built, not on the first event.

        Raises:
            DeclarationError: naming the row fields the event cannot fill, and how to fill them.
        """
        defaults = _defaults(self.row_class)
        present = event.__struct_fields__
        missing = [
            f"{field} (from `{source}`)" if source != field else field
            for field, source in self.sources.items()
            if source not in present and field not in defaults
        ]
        if missing:
            raise DeclarationError(
                f"{self.__name__} of {event.__name__}: the event has no field for "
                f"{', '.join(missing)}; rename={{field: event_field}} or "
                "constants={field: value} provide them"
            )
        kept = {f: s for f, s in self.sources.items() if s in present}
        constants = self.constants | {f: defaults[f] for f in self.sources if f not in kept}
        bound = Projection(self.row_class, constants=constants)
        bound.sources = kept
        return bound

    def __call__(self, envelope: Envelope[Any]) -> Fact | Dimension:
        data = envelope.data
        values = dict(self.constants)
        for field, source in self.sources.items():
            value = getattr(data, source)
            values[field] = None if value is UNSET else value
        return self.row_class(**values)

    def __repr__(self) -> str:
        return f"<{self.__name__}>"


def project(
    row_class: type[Fact] | type[Dimension],
    *,
    rename: Mapping[str, str] | None = None,
    constants: Mapping[str, Any] | None = None,
) -> Projection:
    """A map making one `row_class` row of each event: every field from the event's field of
    the same name, or of the name `rename` gives it (row field → event field), or the value
    `constants` gives it. An optional event field left out (`UNSET`) gives None, which for a
    dimension means "unchanged"."""
    return Projection(row_class, rename=rename, constants=constants)


def _defaults(cls: type[msgspec.Struct]) -> dict[str, Any]:
    """The row fields with a default, and the default (a factory called)."""
    found = {}
    for field in msgspec.structs.fields(cls):
        if field.default is not msgspec.NODEFAULT:
            found[field.name] = field.default
        elif field.default_factory is not msgspec.NODEFAULT:
            found[field.name] = field.default_factory()
    return found
