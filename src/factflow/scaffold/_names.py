"""The names a scaffold writes, derived from what the user typed, and checked before writing."""

from __future__ import annotations

import keyword
import re
from typing import Final, Literal

import msgspec

from factflow.errors import ConfigurationError
from factflow.model.declare import RESERVED_COLUMNS

__all__ = ["Thing", "camel", "check_identifier", "snake"]

_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*\Z")

#: Modules of a scaffolded app that a domain module must not replace.
RESERVED_MODULES: Final = frozenset({"consumers", "kpis", "tests", "annotations", "factflow"})

#: Longest names accepted: generated lines then stay within 100 characters.
MAX_LENGTH: Final = 30
MAX_DOMAIN_LENGTH: Final = 20


def snake(text: str) -> str:
    """`BookLoan`, `book-loan` and `book_loan` all give `book_loan`."""
    text = text.strip().replace("-", "_")
    text = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", text)
    return text.lower()


def camel(name: str) -> str:
    """`book_loan` gives `BookLoan` (whose default table is `fact_book_loan` again)."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def check_identifier(value: str, what: str, example: str, longest: int = MAX_LENGTH) -> str:
    """`value` in lower snake case, or `ConfigurationError` saying what is expected."""
    name = snake(value)
    if not _SNAKE.match(name) or keyword.iskeyword(name):
        raise ConfigurationError(
            f"{what} {value!r} must be a name in lower snake case (letters, digits and single "
            f"underscores, starting with a letter, not a Python keyword), for example {example!r}"
        )
    if len(name) > longest:
        raise ConfigurationError(
            f"{what} {value!r} is longer than {longest} characters; choose a shorter one"
        )
    return name


class Thing(msgspec.Struct, frozen=True, kw_only=True):
    """A fact or dimension to scaffold, and every name the generated code uses for it."""

    kind: Literal["fact", "dimension"]
    domain: str
    name: str
    event_name: str
    key: str
    scd: Literal[1, 2] = 1

    @classmethod
    def parse(
        cls,
        kind: Literal["fact", "dimension"],
        domain: str,
        name: str,
        *,
        event_name: str | None,
        key: str | None,
        scd: Literal[1, 2] = 1,
    ) -> Thing:
        """Check and normalise what the user typed (`ConfigurationError` if unusable)."""
        domain = check_identifier(domain, "DOMAIN", "library", MAX_DOMAIN_LENGTH)
        if domain in RESERVED_MODULES:
            raise ConfigurationError(
                f"DOMAIN {domain!r} is taken by the app's own modules "
                f"({', '.join(sorted(RESERVED_MODULES))}); name the domain after the service's "
                "events, as in `library.book_borrowed`"
            )
        name = check_identifier(name, f"{kind} NAME", "loan" if kind == "fact" else "book")
        if snake(camel(name)) != name:
            raise ConfigurationError(
                f"{kind} NAME {name!r} would not survive the class name {camel(name)} (its table "
                f"is named after the class): write it {snake(camel(name))!r}"
            )
        default_event = f"{name}_recorded" if kind == "fact" else f"{name}_updated"
        event_name = check_identifier(event_name or default_event, "--event", "book_borrowed")
        key = check_identifier(key or f"{name}_id", "--key", f"{name}_id", MAX_LENGTH + 3)
        if key in RESERVED_COLUMNS:
            raise ConfigurationError(
                f"key {key!r} is a column factflow fills itself "
                f"({', '.join(sorted(RESERVED_COLUMNS))}); give another with --key"
            )
        thing = cls(kind=kind, domain=domain, name=name, event_name=event_name, key=key, scd=scd)
        if thing.event_class == thing.row_class:
            raise ConfigurationError(
                f"the event {thing.event_type} and the {kind} {name} would both be classes named "
                f"{thing.row_class}; give the event a name saying what happened, e.g. "
                f"--event {name}_recorded"
            )
        return thing

    @property
    def event_type(self) -> str:
        return f"{self.domain}.{self.event_name}"

    @property
    def event_class(self) -> str:
        return camel(self.event_name)

    @property
    def row_class(self) -> str:
        return camel(self.name)

    @property
    def map_function(self) -> str:
        return f"to_{self.name}"

    @property
    def pipeline(self) -> str:
        return f"{self.name}_pipeline"

    @property
    def source_function(self) -> str:
        return f"{self.name}_history"

    @property
    def source_name(self) -> str:
        """The bootstrap source's name (`factflow bootstrap --source NAME`), unique in the app."""
        return f"{self.domain}.{self.name}"

    @property
    def table(self) -> str:
        return f"{'fact' if self.kind == 'fact' else 'dim'}_{self.name}"

    @property
    def defines(self) -> tuple[str, ...]:
        """The module-level names the generated section adds to the domain's module."""
        return (
            self.event_class,
            self.row_class,
            self.map_function,
            self.pipeline,
            self.source_function,
        )
