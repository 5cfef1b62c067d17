"""Small, checked edits of Python modules a team owns: add names to an import, add an element
to a tuple, list what a module defines. Each edit refuses (raises `CannotEdit`) rather than
guess when the code is not laid out as expected, and the result is parsed again."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable

__all__ = [
    "CannotEdit",
    "add_import",
    "append_to_tuple",
    "declared_event_types",
    "defined_names",
    "format_import",
    "long_lines",
    "parse",
]

LINE_LENGTH = 100


class CannotEdit(Exception):
    """The module is not laid out as the edit expects; the message says what to do by hand."""


def parse(source: str, path: str) -> ast.Module:
    try:
        return ast.parse(source, filename=path)
    except SyntaxError as error:
        raise CannotEdit(f"{path} does not parse (line {error.lineno}: {error.msg})") from None


def defined_names(module: ast.Module) -> set[str]:
    """Names bound at module level: classes, functions, assignments and imports."""
    names: set[str] = set()
    for node in module.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).partition(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def declared_event_types(module: ast.Module) -> dict[str, str]:
    """Event type → class name, for the classes decorated with `@event("<type>", ...)`."""
    found: dict[str, str] = {}
    for node in module.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for decorator in node.decorator_list:
            if (
                isinstance(decorator, ast.Call)
                and getattr(decorator.func, "id", getattr(decorator.func, "attr", None)) == "event"
                and decorator.args
                and isinstance(decorator.args[0], ast.Constant)
                and isinstance(decorator.args[0].value, str)
            ):
                found[decorator.args[0].value] = node.name
    return found


def _member_key(name: str) -> tuple[int, str, str]:
    """isort's "order by type" (ruff's default): CONSTANTS, then Classes, then the rest."""
    bare = name.partition(" as ")[0]
    if len(bare) > 1 and bare.isupper():
        rank = 0
    elif bare[:1].isupper():
        rank = 1
    else:
        rank = 2
    return rank, bare.lower(), name


def format_import(module: str, names: Iterable[str]) -> str:
    """`from module import a, B` as isort (and ruff) lays it out: sorted, wrapped if long."""
    ordered = sorted(set(names), key=_member_key)
    line = f"from {module} import {', '.join(ordered)}"
    if len(line) <= LINE_LENGTH:
        return line
    return f"from {module} import (\n" + "".join(f"    {name},\n" for name in ordered) + ")"


def _lines(source: str) -> list[str]:
    return source.splitlines(keepends=True)


def _whole_lines(lines: list[str], node: ast.stmt) -> bool:
    """Whether `node` fills its lines alone (nothing before it or after it on them)."""
    end = node.end_lineno or node.lineno
    before = lines[node.lineno - 1][: node.col_offset]
    after = lines[end - 1][node.end_col_offset or 0 :]
    return not before.strip() and not after.strip()


def add_import(source: str, path: str, module: str, names: Iterable[str]) -> str:
    """`source` importing `names` from `module` too: merged into its `from module import …`
    (relative modules as `.`), or a new statement placed after the module's imports."""
    wanted = set(names)
    tree = parse(source, path)
    lines = _lines(source)
    level = len(module) - len(module.lstrip("."))
    bare = module.lstrip(".") or None
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    for node in imports:
        if isinstance(node, ast.ImportFrom) and node.module == bare and node.level == level:
            present = {
                a.name if a.asname is None else f"{a.name} as {a.asname}" for a in node.names
            }
            if wanted <= {a.asname or a.name for a in node.names}:
                return source
            if not _whole_lines(lines, node) or "*" in present:
                raise CannotEdit(f"add {', '.join(sorted(wanted))} to the import from {module}")
            end = node.end_lineno or node.lineno
            text = format_import(module, present | wanted) + "\n"
            return _checked("".join([*lines[: node.lineno - 1], text, *lines[end:]]), path)
    if not imports:
        raise CannotEdit(f"{path} imports nothing; add `{format_import(module, wanted)}`")
    text = format_import(module, wanted) + "\n"
    relative = [n for n in imports if isinstance(n, ast.ImportFrom) and n.level]
    if not level and module.partition(".")[0] in sys.stdlib_module_names:
        # The standard library's section comes first, after `from __future__ import …`.
        later = [
            n
            for n in imports
            if not (isinstance(n, ast.ImportFrom) and n.level == 0 and n.module == "__future__")
        ]
        if later:
            at = later[0].lineno - 1
            gap = "" if _stdlib(later[0]) else "\n"
            return _checked("".join([*lines[:at], text, gap, *lines[at:]]), path)
    if level and relative:
        at = relative[0].lineno - 1  # `from . import x` sorts before `from .module import y`
        return _checked("".join([*lines[:at], text, *lines[at:]]), path)
    at = imports[-1].end_lineno or imports[-1].lineno
    return _checked("".join([*lines[:at], "\n", text, *lines[at:]]), path)


def _stdlib(node: ast.Import | ast.ImportFrom) -> bool:
    name = node.names[0].name if isinstance(node, ast.Import) else (node.module or "")
    return not getattr(node, "level", 0) and name.partition(".")[0] in sys.stdlib_module_names


def append_to_tuple(source: str, path: str, variable: str, element: str) -> str:
    """`source` with `element` added at the end of the tuple (or list) assigned to `variable`
    at module level, one element per line, each with a trailing comma."""
    tree = parse(source, path)
    lines = _lines(source)
    by_hand = f"add `{element},` to {variable} in {path} by hand"
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        value = getattr(node, "value", None)
        if not (isinstance(target, ast.Name) and target.id == variable):
            continue
        if not isinstance(value, ast.Tuple | ast.List) or value.end_lineno is None:
            raise CannotEdit(f"{variable} in {path} is not a tuple written out; {by_hand}")
        closing = value.end_col_offset or 0
        last = lines[value.end_lineno - 1]
        bracket = last[closing - 1 : closing]
        if not value.elts and value.lineno == value.end_lineno:
            # `X = ()`: open it up, one element per line.
            opening = last[: closing - 1].rstrip()
            if not opening.endswith(("(", "[")):
                raise CannotEdit(f"{variable} in {path} is written unusually; {by_hand}")
            text = f"{opening}\n    {element},\n{bracket}{last[closing:]}"
            edited = [*lines[: value.end_lineno - 1], text, *lines[value.end_lineno :]]
        elif last[: closing - 1].strip() == "":
            edited = list(lines)
            if value.elts:
                tail = value.elts[-1]
                end_line = tail.end_lineno or tail.lineno
                position = tail.end_col_offset or 0
                if not lines[end_line - 1][position:].lstrip().startswith(","):
                    # The last element has no trailing comma yet: give it one.
                    text = lines[end_line - 1]
                    edited[end_line - 1] = text[:position] + "," + text[position:]
            edited.insert(value.end_lineno - 1, f"    {element},\n")
        else:
            raise CannotEdit(
                f"the closing bracket of {variable} in {path} does not stand on a line of its "
                f"own; {by_hand}"
            )
        result = _checked("".join(edited), path)
        if _tuple_length(result, path, variable) != len(value.elts) + 1:
            raise CannotEdit(f"{variable} in {path} is written unusually; {by_hand}")
        return result
    raise CannotEdit(f"{path} assigns no {variable}; {by_hand}")


def _tuple_length(source: str, path: str, variable: str) -> int:
    for node in parse(source, path).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and target.id == variable:
            return len(value.elts) if isinstance(value, ast.Tuple | ast.List) else -1
    return -1


def _checked(source: str, path: str) -> str:
    """The edited source, if it still parses (else the edit is refused, nothing written)."""
    parse(source, path)
    return source


def long_lines(source: str) -> list[int]:
    """The numbers of the lines longer than the line length the generated code keeps to."""
    return [n for n, line in enumerate(source.splitlines(), 1) if len(line) > LINE_LENGTH]
