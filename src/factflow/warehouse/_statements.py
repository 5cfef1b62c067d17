"""PostgreSQL queries: checking one statement reads, and spelling its `?` placeholders `%s`."""

from __future__ import annotations

import re

from factflow.errors import ConfigurationError

__all__ = ["read_only_statement"]

_READS = frozenset({"select", "with", "values", "explain", "table"})
_TOKEN = re.compile(
    r"""(?P<space>\s+|--[^\n]*)
      | (?P<comment>/\*)
      | (?P<escaped>[eE]')
      | (?P<quote>['"])
      | (?P<dollar>\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$)
      | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
      | (?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)


def read_only_statement(sql: str, *, placeholders: bool) -> str:
    """`sql` if it is one statement that reads; with `placeholders`, `?` spelled as psycopg's `%s`.

    A small scanner, not a parser: it knows PostgreSQL's literals, quoted names and comments
    well enough to find statement ends and placeholders. Whatever it lets through still runs in a
    READ ONLY transaction.
    """
    out: list[str] = []
    first: str | None = None
    ended = several = False
    position = 0
    while position < len(sql):
        match = _TOKEN.match(sql, position)
        assert match is not None  # `other` matches any character
        kind, text = match.lastgroup, match.group()
        end = match.end()
        if kind == "comment":
            end = _comment_end(sql, position)
        elif kind in ("escaped", "quote"):
            end = _quoted_end(sql, end, text[-1], backslashes=kind == "escaped")
        elif kind == "dollar":
            closing = sql.find(text, end)
            end = len(sql) if closing < 0 else closing + len(text)
        piece = sql[position:end]
        position = end
        if placeholders:
            # psycopg reads % everywhere, even inside literals and comments.
            piece = "%s" if piece == "?" and kind == "other" else piece.replace("%", "%%")
        if kind in ("space", "comment"):
            out.append(piece)
            continue
        if ended:
            several = True
            break
        if piece == ";":
            ended = True
        elif first is None and kind == "word":
            first = piece.lower()
        elif first is None and piece != "(":
            first = piece
        out.append(piece)
    if several or first not in _READS:
        got = "several statements" if several else repr(first or sql.strip()[:20])
        raise ConfigurationError(
            "only one read-only statement (SELECT, WITH … SELECT, VALUES, EXPLAIN) can be "
            f"queried, got {got}"
        )
    return "".join(out)


def _quoted_end(sql: str, start: int, quote_char: str, *, backslashes: bool) -> int:
    """The end of a literal or quoted name whose body starts at `start`."""
    position = start
    while position < len(sql):
        char = sql[position]
        if backslashes and char == "\\":
            position += 2
        elif char == quote_char:
            if sql.startswith(quote_char, position + 1):
                position += 2  # a doubled quote stands for itself
            else:
                return position + 1
        else:
            position += 1
    return len(sql)


def _comment_end(sql: str, start: int) -> int:
    """The end of the block comment at `start`; PostgreSQL's block comments nest."""
    depth, position = 0, start
    while position < len(sql):
        if sql.startswith("/*", position):
            depth, position = depth + 1, position + 2
        elif sql.startswith("*/", position):
            depth, position = depth - 1, position + 2
            if depth == 0:
                return position
        else:
            position += 1
    return len(sql)
