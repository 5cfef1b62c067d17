"""Compile declared classes into a frozen description of tables that backends read.

Backends never look at the user's classes; they read `Schema`: tables, columns, keys and types.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import msgspec
import msgspec.inspect as mi

from factflow.errors import DeclarationError
from factflow.model.declare import MEMBER_KEY, MEMBER_KEY_SUFFIX, Dimension, Fact
from factflow.model.types import Money

__all__ = [
    "MEMBER_KEY",
    "Column",
    "ColumnType",
    "DimensionSpec",
    "FactSpec",
    "Schema",
    "Table",
    "compile_dimension",
    "compile_fact",
    "compile_schema",
]


class ColumnType(enum.Enum):
    TEXT = "text"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    MONEY = "money"
    DECIMAL = "decimal"
    TIMESTAMP = "timestamp"  # UTC
    DATE = "date"


class Column(msgspec.Struct, frozen=True):
    name: str
    type: ColumnType
    nullable: bool = True


class Table(msgspec.Struct, frozen=True):
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


class FactSpec(msgspec.Struct, frozen=True):
    """A fact table: the user's fields, then `event_id` and `occurred_at` from the envelope.

    `table` holds what a batch brings; `stored` is the table as the warehouse keeps it, with
    the member key of each dimension it refers to (`member_keys`), filled as rows are written:
    a number given to each member when its current row is made and kept through every change,
    so that facts join their dimensions on integers.

    `description` is the class's docstring and `descriptions` those its fields declare
    (`Annotated[str, msgspec.Meta(description=...)]`): the warehouse's comments, for BI tools.
    """

    name: str
    table: Table
    fields: tuple[str, ...]
    references: dict[str, str]  # field → dimension name
    class_name: str = ""
    description: str = ""
    descriptions: dict[str, str] = msgspec.field(default_factory=dict)  # field → description

    @property
    def member_keys(self) -> dict[str, str]:
        """Reference field → the column holding its member's `MEMBER_KEY`."""
        return {field: f"{field}{MEMBER_KEY_SUFFIX}" for field in self.references}

    @property
    def stored(self) -> Table:
        keys = tuple(Column(name, ColumnType.INTEGER) for name in self.member_keys.values())
        return msgspec.structs.replace(self.table, columns=(*self.table.columns, *keys))


class DimensionSpec(msgspec.Struct, frozen=True):
    """A dimension's three tables.

    * `changes`: every change as it arrived (key, attributes or NULL for "unchanged", event_id,
      occurred_at): the order-free source of truth.
    * `current`: one row per key, each attribute its latest non-null value by event time;
      `inferred` marks keys only known from references. As stored (`stored_current`) it also
      has the key's `member_key`, numbered by the sequence `member_key_sequence`.
    * `history` (SCD type 2): one row per key and change time, valid in [valid_from, valid_to).

    `description` and `descriptions` are as in `FactSpec`.
    """

    name: str
    key: str
    attributes: tuple[str, ...]
    scd: int
    changes: Table
    current: Table
    history: Table | None
    references: dict[str, str]  # field → dimension name
    class_name: str = ""
    description: str = ""
    descriptions: dict[str, str] = msgspec.field(default_factory=dict)  # field → description

    @property
    def stored_current(self) -> Table:
        key = Column(MEMBER_KEY, ColumnType.INTEGER)
        return msgspec.structs.replace(self.current, columns=(*self.current.columns, key))

    @property
    def member_key_sequence(self) -> str:
        return f"{self.name}__{MEMBER_KEY}s"


class Schema(msgspec.Struct, frozen=True):
    facts: tuple[FactSpec, ...]
    dimensions: tuple[DimensionSpec, ...]

    def fact(self, name: str) -> FactSpec:
        """The fact of table `name` or class name `name`; `KeyError` naming the facts if none."""
        for spec in self.facts:
            if name in (spec.name, spec.class_name):
                return spec
        known = ", ".join(f"{f.name} ({f.class_name})" for f in self.facts) or "none"
        raise KeyError(f"no fact {name!r} in the model; its facts: {known}")

    def dimension(self, name: str) -> DimensionSpec:
        for spec in self.dimensions:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def tables(self) -> list[Table]:
        """Every table as the warehouse stores it."""
        tables = [fact.stored for fact in self.facts]
        for dim in self.dimensions:
            tables += [dim.changes, dim.stored_current] + ([dim.history] if dim.history else [])
        return tables


EVENT_ID = Column("event_id", ColumnType.TEXT, nullable=False)
OCCURRED_AT = Column("occurred_at", ColumnType.TIMESTAMP, nullable=False)


def compile_fact(cls: type[Fact]) -> FactSpec:
    meta = cls.__factflow_fact__
    columns = _columns(cls)
    key_columns = set(meta.key)
    columns = tuple(
        msgspec.structs.replace(c, nullable=False) if c.name in key_columns else c for c in columns
    )
    table = Table(meta.table, (*columns, EVENT_ID, OCCURRED_AT), meta.key)
    return FactSpec(
        name=meta.table,
        table=table,
        fields=cls.__struct_fields__,
        references={f: d.__factflow_dimension__.table for f, d in meta.references.items()},
        class_name=cls.__name__,
        description=_docstring(cls),
        descriptions=_field_descriptions(cls),
    )


def compile_dimension(cls: type[Dimension]) -> DimensionSpec:
    meta = cls.__factflow_dimension__
    columns = _columns(cls)
    key = next(c for c in columns if c.name == meta.key)
    if key.type is not ColumnType.TEXT:
        raise DeclarationError(f"dimension {cls.__name__}: key {meta.key!r} must be a str field")
    # Columns keep the declaration order, so a change row is the struct's fields as a tuple.
    fields = tuple(msgspec.structs.replace(c, nullable=c.name != meta.key) for c in columns)
    key = next(c for c in fields if c.name == meta.key)
    attributes = tuple(c for c in fields if c.name != meta.key)
    changes = Table(
        f"{meta.table}__changes", (*fields, EVENT_ID, OCCURRED_AT), (key.name, "event_id")
    )
    current = Table(
        meta.table,
        (
            *fields,
            Column("inferred", ColumnType.BOOLEAN, nullable=False),
            Column("updated_at", ColumnType.TIMESTAMP),
        ),
        (key.name,),
    )
    history = None
    if meta.scd == 2:
        history = Table(
            f"{meta.table}__history",
            (
                *fields,
                Column("valid_from", ColumnType.TIMESTAMP, nullable=False),
                Column("valid_to", ColumnType.TIMESTAMP),
            ),
            (key.name, "valid_from"),
        )
    return DimensionSpec(
        name=meta.table,
        key=key.name,
        attributes=tuple(c.name for c in attributes),
        scd=meta.scd,
        changes=changes,
        current=current,
        history=history,
        references={f: d.__factflow_dimension__.table for f, d in meta.references.items()},
        class_name=cls.__name__,
        description=_docstring(cls),
        descriptions=_field_descriptions(cls),
    )


def compile_schema(facts: Iterable[type[Fact]], dimensions: Iterable[type[Dimension]]) -> Schema:
    """The tables of a model, including every dimension the model refers to.

    Refuses two classes writing the same table.
    """
    fact_classes = list(dict.fromkeys(facts))
    dim_classes = list(dict.fromkeys(dimensions))
    pending: list[Mapping[str, type[Dimension]]] = [
        *(cls.__factflow_fact__.references for cls in fact_classes),
        *(cls.__factflow_dimension__.references for cls in dim_classes),
    ]
    while pending:
        for target in pending.pop().values():
            if target not in dim_classes:
                dim_classes.append(target)
                pending.append(target.__factflow_dimension__.references)
    schema = Schema(
        tuple(compile_fact(cls) for cls in fact_classes),
        tuple(compile_dimension(cls) for cls in dim_classes),
    )
    names = [table.name for table in schema.tables()]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DeclarationError(f"several declarations write the table(s) {duplicates}")
    return schema


_SIMPLE: dict[type[mi.Type], ColumnType] = {
    mi.StrType: ColumnType.TEXT,
    mi.IntType: ColumnType.INTEGER,
    mi.FloatType: ColumnType.FLOAT,
    mi.BoolType: ColumnType.BOOLEAN,
    mi.DecimalType: ColumnType.DECIMAL,
    mi.DateTimeType: ColumnType.TIMESTAMP,
    mi.DateType: ColumnType.DATE,
}
_PYTHON_NAMES = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    Decimal: "Decimal",
    Money: "Money",
    datetime: "datetime",
    date: "date",
}


def _columns(cls: type[msgspec.Struct]) -> tuple[Column, ...]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return tuple(_column(cls, field) for field in info.fields)


def _docstring(cls: type) -> str:
    """The class's own docstring, cleaned (not one inherited from a base class)."""
    doc = cls.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if isinstance(doc, str) else ""


def _field_descriptions(cls: type[msgspec.Struct]) -> dict[str, str]:
    """Field → the description declared with `Annotated[..., msgspec.Meta(description=...)]`."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    found: dict[str, str] = {}
    for field in info.fields:
        kinds = field.type.types if isinstance(field.type, mi.UnionType) else (field.type,)
        for kind in (field.type, *kinds):
            if isinstance(kind, mi.Metadata) and kind.extra_json_schema:
                description = kind.extra_json_schema.get("description")
                if isinstance(description, str) and field.name not in found:
                    found[field.name] = inspect.cleandoc(description)
    return found


def _column(cls: type, field: mi.Field) -> Column:
    kind: Any = field.type
    if isinstance(kind, mi.Metadata):  # Annotated[T, msgspec.Meta(...)]: the column is a T
        kind = kind.type
    nullable = False
    if isinstance(kind, mi.UnionType):
        rest = [t.type if isinstance(t, mi.Metadata) else t for t in kind.types]
        rest = [t for t in rest if not isinstance(t, mi.NoneType)]
        nullable = len(rest) < len(kind.types)
        if len(rest) == 1:
            kind = rest[0]
    if isinstance(kind, mi.LiteralType) and all(isinstance(v, str) for v in kind.values):
        return Column(field.name, ColumnType.TEXT, nullable)
    if isinstance(kind, mi.CustomType) and kind.cls is Money:
        return Column(field.name, ColumnType.MONEY, nullable)
    column_type = _SIMPLE.get(type(kind))
    if column_type is None:
        raise DeclarationError(
            f"{cls.__name__}.{field.name}: a column must be one of "
            f"{', '.join(sorted(set(_PYTHON_NAMES.values())))} (optionally `| None`), got {kind}"
        )
    return Column(field.name, column_type, nullable)
