"""What BI tools (Metabase, Superset, …) see: comments from the declarations, and flat views.

`prepare` gives every table and column of the model a comment — the class docstrings and the
field descriptions (`Annotated[str, msgspec.Meta(description=...)]`), or a sentence saying what
factflow keeps there — and makes one view per fact, `v_<fact>` (`fact_card_transaction` →
`v_card_transaction`): the fact's columns, then for each dimension it refers to that
dimension's current attributes, prefixed by the referring field without `_id`
(`user_segment`), and for a dimension that keeps its history (SCD type 2) also its attributes
as they were when the fact occurred (`user_segment_at_event`). One row per fact row.

Both steps are best-effort: a view or comment the warehouse refuses (a privilege missing, a
reader holding the view) is logged and left for the next `prepare`, never a reason to stop
writing. Views are replaced with `CREATE OR REPLACE VIEW` (made anew when their columns
changed); comments are set only where they differ.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

import msgspec

from factflow.model.schema import MEMBER_KEY, DimensionSpec, FactSpec, Schema, Table
from factflow.warehouse.ddl import member_join, quote

__all__ = [
    "VIEWS_QUERY",
    "Comment",
    "View",
    "comment_statements",
    "comments_query",
    "model_comments",
    "model_views",
    "view_name",
    "views_to_drop",
]

#: The names of the views in the warehouse's schema (both backends have `information_schema`).
VIEWS_QUERY = (
    "SELECT table_name FROM information_schema.tables "
    "WHERE table_schema = current_schema() AND table_type = 'VIEW'"
)

#: (relation, column or None for the relation itself) → its comment.
Comment = tuple[str, str | None]

_ENVELOPE = {
    "event_id": "Id of the envelope the row came from (the first one, when several carried it).",
    "occurred_at": "When the event happened: business time, UTC.",
}
_CURRENT = {
    "inferred": "True while the key is known only from facts referring to it: its own event "
    "has not arrived yet.",
    "updated_at": "Business time (UTC) of the latest change applied to this row.",
    MEMBER_KEY: "A number for this member, given when its row was made and kept through every "
    "change: facts carry it (<field>__member_key) to join on.",
}
_HISTORY = {
    "valid_from": "This version holds from this time (UTC, inclusive)…",
    "valid_to": "…until this time (UTC, exclusive); NULL for the latest version.",
}


class View(msgspec.Struct, frozen=True):
    """One view over the model: its name, query, comment and column comments."""

    name: str
    select: str
    comment: str
    columns: dict[str, str]  # column → comment, in the view's column order

    @property
    def create(self) -> str:
        return f"CREATE OR REPLACE VIEW {quote(self.name)} AS\n{self.select}"

    @property
    def drop(self) -> str:
        return f"DROP VIEW IF EXISTS {quote(self.name)}"


def view_name(fact_table: str) -> str:
    """The flat view of a fact table: `fact_card_transaction` → `v_card_transaction`."""
    return "v_" + fact_table.removeprefix("fact_")


def model_views(schema: Schema) -> tuple[View, ...]:
    """The flat view of every fact of `schema`."""
    return tuple(_fact_view(schema, fact) for fact in schema.facts)


def _fact_view(schema: Schema, fact: FactSpec) -> View:
    columns = _fact_comments(schema, fact)
    selected = [f"  f.{quote(name)}" for name in columns]
    joins: list[str] = []
    about: list[str] = []
    for index, (field, dimension) in enumerate(fact.references.items(), start=1):
        dim = schema.dimension(dimension)
        prefix = field.removesuffix("_id") if field.endswith("_id") else field
        current, then = f"d{index}", f"h{index}"
        member_key = fact.member_keys[field]
        joins.append(member_join(dim, current, "f", member_key, as_of_event=False))
        about.append(f"{prefix}_* (the {dim.name} in {field}, now)")
        versions = [("", current, "its current value")]
        if dim.history is not None:
            joins.append(member_join(dim, then, "f", member_key, as_of_event=True))
            about.append(f"{prefix}_*_at_event (as it was when the fact occurred)")
            versions.append(("_at_event", then, "as it was when the fact occurred"))
        for suffix, alias, when in versions:
            for attribute in dim.attributes:
                name = f"{prefix}_{attribute}{suffix}"
                if name in columns:  # a field of the fact already has that name
                    continue
                what = dim.descriptions.get(attribute)
                columns[name] = (
                    f"{_sentence(what)} ({attribute} of the {dim.name} in {field}, {when}.)"
                    if what
                    else f"{attribute} of the {dim.name} in {field}, {when}."
                )
                selected.append(f"  {alias}.{quote(attribute)} AS {quote(name)}")
    select = (
        "SELECT\n"
        + ",\n".join(selected)
        + f"\nFROM {quote(fact.table.name)} AS f"
        + "".join(f"\n{join}" for join in joins)
    )
    summary = fact.description or f"Facts {fact.class_name or fact.name}."
    flat = (
        f"One row per row of {fact.table.name}, with "
        + (", ".join(about) if about else "no dimensions")
        + "."
    )
    return View(view_name(fact.name), select, f"{summary}\n\n{flat}", columns)


def model_comments(schema: Schema) -> dict[Comment, str]:
    """The comment of every table and column of the model, and of every view and its columns."""
    found: dict[Comment, str] = {}
    for fact in schema.facts:
        _add(
            found,
            fact.stored,
            _fact_table_comment(fact),
            _fact_comments(schema, fact) | _member_key_comments(fact),
        )
    for dim in schema.dimensions:
        fields = _dimension_fields(schema, dim)
        thing = dim.description or f"Dimension {dim.class_name or dim.name}."
        _add(
            found,
            dim.stored_current,
            f"{thing}\n\nOne row per {dim.key}, each attribute its latest value by event time.",
            fields | _CURRENT,
        )
        _add(
            found,
            dim.changes,
            f"Every change to {dim.name} as it arrived (NULL: unchanged), the source its current "
            "rows" + (" and history are" if dim.history else " are") + " derived from.",
            fields | _ENVELOPE,
        )
        if dim.history is not None:
            _add(
                found,
                dim.history,
                f"The versions of {dim.name} by event time (SCD type 2): each row holds from "
                "valid_from to valid_to; join facts where valid_from <= occurred_at < valid_to.",
                fields | _HISTORY,
            )
    for view in model_views(schema):
        found[(view.name, None)] = view.comment
        found.update({(view.name, column): text for column, text in view.columns.items() if text})
    return found


def comment_statements(schema: Schema, present: Mapping[Comment, str]) -> list[str]:
    """`COMMENT ON …` for every comment of `model_comments` that differs from the `present`
    ones (rows of `comments_query`). Comments the model has none for are left alone."""
    views = {view.name for view in model_views(schema)}
    statements = []
    for (relation, column), text in model_comments(schema).items():
        if present.get((relation, column)) == text:
            continue
        on = (
            f"COLUMN {quote(relation)}.{quote(column)}"
            if column is not None
            else f"{'VIEW' if relation in views else 'TABLE'} {quote(relation)}"
        )
        statements.append(f"COMMENT ON {on} IS {_literal(text)}")
    return statements


def views_to_drop(
    schema: Schema, present: Collection[str], dropped_tables: Iterable[str] = ()
) -> list[str]:
    """`DROP VIEW` for the views of `present` (from `VIEWS_QUERY`) that factflow made over the
    facts of `schema` or over the `dropped_tables`: a migration drops them first (PostgreSQL
    cannot drop or retype a column a view reads), and the next `prepare` makes them again."""
    names = {view_name(fact.name) for fact in schema.facts} | set(map(view_name, dropped_tables))
    return [f"DROP VIEW {quote(name)}" for name in sorted(names.intersection(present))]


def comments_query(dialect: str) -> str:
    """The comments present in the warehouse's schema, as rows (relation, column, comment)."""
    if dialect == "postgresql":
        return (
            "SELECT c.relname, a.attname, d.description FROM pg_description AS d "
            "JOIN pg_class AS c ON d.classoid = 'pg_class'::regclass AND d.objoid = c.oid "
            "LEFT JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum = d.objsubid "
            "AND d.objsubid > 0 "
            "WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
        )
    where = "schema_name = current_schema() AND database_name = current_database()"
    return (
        f"SELECT table_name, NULL, comment FROM duckdb_tables() WHERE {where} "
        f"AND comment IS NOT NULL UNION ALL "
        f"SELECT view_name, NULL, comment FROM duckdb_views() WHERE {where} "
        f"AND comment IS NOT NULL UNION ALL "
        f"SELECT table_name, column_name, comment FROM duckdb_columns() WHERE {where} "
        "AND comment IS NOT NULL"
    )


def _fact_table_comment(fact: FactSpec) -> str:
    thing = fact.description or f"Facts {fact.class_name or fact.name}."
    key = ", ".join(fact.table.key)
    return f"{thing}\n\nOne row per {key} (the first event carrying it wins)."


def _fact_comments(schema: Schema, fact: FactSpec) -> dict[str, str]:
    """Column → comment ("" for none) for the fact's table, in column order."""
    found = {}
    for column in fact.table.column_names:
        text = fact.descriptions.get(column) or _ENVELOPE.get(column, "")
        dimension = fact.references.get(column)
        if dimension is not None:
            key = f"{dimension}.{schema.dimension(dimension).key}"
            text = f"{_sentence(text)} Refers to {key}." if text else f"Refers to {key}."
        found[column] = text
    return found


def _member_key_comments(fact: FactSpec) -> dict[str, str]:
    return {
        column: f"The {MEMBER_KEY} of the {fact.references[field]} in {field}: join on it "
        "rather than on the text key (an integer join, faster over many rows)."
        for field, column in fact.member_keys.items()
    }


def _dimension_fields(schema: Schema, dim: DimensionSpec) -> dict[str, str]:
    found = {}
    for name in (dim.key, *dim.attributes):
        text = dim.descriptions.get(name, "")
        target = dim.references.get(name)
        if target is not None:
            key = f"{target}.{schema.dimension(target).key}"
            text = f"{_sentence(text)} Refers to {key}." if text else f"Refers to {key}."
        found[name] = text
    if not found[dim.key]:
        found[dim.key] = "The natural key."
    return found


def _add(found: dict[Comment, str], table: Table, comment: str, columns: dict[str, str]) -> None:
    found[(table.name, None)] = comment
    for column in table.column_names:
        text = columns.get(column)
        if text:
            found[(table.name, column)] = text


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?", "…")) else f"{text}."


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
