"""Scaffolding for a team's own KPI app: `factflow new app|fact|dimension`.

`new_app` writes a new app into an empty folder: the package (its `__init__.py` with the
`App`, `consumers.py` binding pipelines to events, `kpis.py`), `factflow.toml` naming it,
`pyproject.toml` with the settings of pytest, ruff and mypy, and `tests/`.

`new_thing` adds a fact or a dimension to such an app: a section in the domain's module
(`<app>/<domain>.py`: the event, the fact or dimension, its map (a projection), the pipeline and a
bootstrap source that raises `NotImplementedError` until written) at its end, or for a
dimension above the first fact (facts refer to dimensions declared before them); a line in each
tuple of `consumers.py`; and `tests/test_<domain>_<name>.py`, which passes at once.

Everything is checked before anything is written: existing code is only ever added to, never
overwritten, and a name, an event type or a file that exists already is refused with the
reason. The templates are `string.Template` files in `templates/`.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from importlib.resources import files
from pathlib import Path
from string import Template
from typing import Literal

import msgspec

from factflow.errors import ConfigurationError

from ._names import RESERVED_MODULES, Thing, check_identifier
from ._python import (
    CannotEdit,
    add_import,
    append_to_tuple,
    declared_event_types,
    defined_names,
    format_import,
    long_lines,
    parse,
)

__all__ = ["Change", "Thing", "new_app", "new_thing"]

#: The line length generated code keeps to (the app's ruff setting).
LINE_LENGTH = 100

_IMPORTS = {
    "fact": ("Fact", "fact", "insert_first"),
    "dimension": ("Dimension", "dimension", "update_dimension"),
}
_COMMON_IMPORTS = (
    "Event",
    "Pipeline",
    "SourceEvent",
    "bootstrap_source",
    "ensure_dimensions",
    "event",
    "project",
)


class Change(msgspec.Struct, frozen=True):
    """A file a scaffold wrote: its path (relative to the app's folder) and what it holds."""

    path: Path
    action: Literal["created", "updated"]
    what: str


def _template(template: str, /, **values: str) -> str:
    text = (files(__package__) / "templates" / f"{template}.tmpl").read_text(encoding="utf-8")
    return Template(text).substitute(values)


def new_app(folder: Path, name: str) -> list[Change]:
    """Write the app `name` into `folder`, which must be empty (hidden entries aside).

    Raises:
        ConfigurationError: `name` is not a usable package name, a module of that name is
            installed already, or `folder` holds files.
    """
    package = check_identifier(name, "NAME", "lending")
    if package in RESERVED_MODULES:
        raise ConfigurationError(f"NAME {package!r} is taken; choose another name for the app")
    spec = importlib.util.find_spec(package)
    if spec is not None:
        raise ConfigurationError(
            f"a module named {package!r} is installed already ({spec.origin}); an app of that "
            "name would be confused with it: choose another NAME"
        )
    folder.mkdir(parents=True, exist_ok=True)
    present = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    if present:
        raise ConfigurationError(
            f"the folder {folder} is not empty ({', '.join(present[:5])}"
            f"{', …' if len(present) > 5 else ''}); run `factflow new app` in an empty folder, "
            f"for example: mkdir {package} && cd {package} && factflow new app {package}"
        )
    planned = {
        Path("factflow.toml"): ("factflow.toml", "the settings: app and warehouse"),
        Path("pyproject.toml"): ("pyproject.toml", "pytest, ruff and mypy settings"),
        Path(package, "__init__.py"): ("app_init.py", "the App"),
        Path(package, "consumers.py"): ("consumers.py", "consumers and bootstrap sources"),
        Path(package, "kpis.py"): ("kpis.py", "the KPIs"),
        Path("tests", "test_app.py"): ("test_app.py", "every KPI answers"),
    }
    if not (folder / ".gitignore").exists():
        planned[Path(".gitignore")] = ("gitignore", "caches and warehouses")
    texts = {path: _template(template, app=package) for path, (template, _) in planned.items()}
    for path, text in texts.items():
        _refuse_long_lines(path, text)
    for path, text in texts.items():
        _create(folder / path, text)
    return [Change(path, "created", what) for path, (_, what) in planned.items()]


def new_thing(folder: Path, app: str, thing: Thing) -> list[Change]:
    """Add the fact or dimension `thing` to the app `app` (a package in `folder`).

    Raises:
        ConfigurationError: the app's package is not in `folder`, a name, event type or test
            file exists already, or `consumers.py` is laid out so that the lines cannot be
            added safely (the message says what to add by hand). Nothing is written then.
    """
    app = app.partition(":")[0]  # `package:attribute` names the same package
    package = folder.joinpath(*app.split("."))
    registry = package / "consumers.py"
    if not (package / "__init__.py").is_file() or not registry.is_file():
        raise ConfigurationError(
            f"no app package {app!r} with a consumers.py in {folder.resolve()}: run this in "
            "the folder `factflow new app` made (its factflow.toml names the app), or give "
            "--app PACKAGE"
        )
    relative = package.relative_to(folder)
    module_path = package / f"{thing.domain}.py"
    test_path = folder / "tests" / f"test_{thing.domain}_{thing.name}.py"
    if (package / thing.domain).is_dir():
        raise ConfigurationError(
            f"{relative / thing.domain} is a package; factflow new writes a domain's code into "
            f"one module, {relative / (thing.domain + '.py')}"
        )
    _refuse_clashes(folder, package, thing)
    try:
        module = _domain_module(module_path, relative, thing)
        consumers = _registry(registry, relative / "consumers.py", thing)
    except CannotEdit as error:
        raise ConfigurationError(f"{error}; nothing was written") from None
    if test_path.exists():
        raise ConfigurationError(f"{test_path.relative_to(folder)} exists already")
    test = _template(f"test_{thing.kind}.py", **_values(thing), app=app)
    written = {module_path: module, registry: consumers, test_path: test}
    for path, text in written.items():
        _refuse_long_lines(path.relative_to(folder), text)
    existed = module_path.exists()
    _replace(module_path, module)
    _replace(registry, consumers)
    test_path.parent.mkdir(exist_ok=True)
    _create(test_path, test)
    row = f"{thing.kind} {thing.row_class}"
    return [
        Change(
            module_path.relative_to(folder),
            "updated" if existed else "created",
            f"event {thing.event_class} ({thing.event_type}), {row}, {thing.map_function}, "
            f"{thing.pipeline}, bootstrap source {thing.source_name}",
        ),
        Change(
            registry.relative_to(folder),
            "updated",
            f"{thing.pipeline} piped on {thing.event_type}, source {thing.source_name}",
        ),
        Change(test_path.relative_to(folder), "created", f"the test of {row}"),
    ]


def _refuse_long_lines(path: Path, text: str) -> None:
    """Names are limited in length so that generated lines fit; this is the last check."""
    too_long = long_lines(text)
    if too_long:
        raise ConfigurationError(
            f"with these names, line {too_long[0]} of {path} would be longer than "
            f"{LINE_LENGTH} characters; choose shorter ones"
        )


def _refuse_clashes(folder: Path, package: Path, thing: Thing) -> None:
    """Refuse an event type declared already, or a class of the same name (hence the same
    table) anywhere in the app's package."""
    for path in sorted(package.rglob("*.py")):
        try:
            tree = parse(path.read_text(encoding="utf-8"), str(path.relative_to(folder)))
        except CannotEdit as error:
            raise ConfigurationError(f"{error}; fix it first") from None
        declared = declared_event_types(tree)
        if thing.event_type in declared:
            raise ConfigurationError(
                f"{thing.event_type} is declared already, by {declared[thing.event_type]} in "
                f"{path.relative_to(folder)}: give another event with --event, or add a second "
                "pipeline on that event class by hand"
            )
        if path.stem == thing.domain and path.parent == package:
            continue  # the domain's own module: its names are checked with the section's
        if thing.row_class in defined_names(tree):
            raise ConfigurationError(
                f"{path.relative_to(folder)} defines {thing.row_class} already; its table "
                f"{thing.table} would clash: choose another NAME"
            )


def _values(thing: Thing) -> dict[str, str]:
    store = "insert_first" if thing.kind == "fact" else "update_dimension"
    title = f"# {thing.kind.capitalize()} {thing.row_class}, from {thing.event_type} "
    if len(title) > LINE_LENGTH - 1:
        title = f"# {thing.kind.capitalize()} {thing.row_class} "
    source = [f'name="{thing.source_name}"', f'service="{thing.domain}-service"']
    return {
        "section_title": title.ljust(LINE_LENGTH - 1, "-"),
        "domain": thing.domain,
        "name": thing.name,
        "event_name": thing.event_name,
        "event_type": thing.event_type,
        "event_class": thing.event_class,
        "row_class": thing.row_class,
        "key": thing.key,
        "source_function": thing.source_function,
        "source_name": thing.source_name,
        "map_function": thing.map_function,
        "pipeline_statement": _pipeline(thing, f"{store}({thing.row_class})"),
        "source_decorator": call("@bootstrap_source", source),
        "dimension_arguments": f'key="{thing.key}"' + (", scd=2" if thing.scd == 2 else ""),
        "scd_note": (
            f"With scd=2, `dim_{thing.name}__history` keeps each version too, by event time."
            if thing.scd == 2
            else "Declared with scd=2, it would keep each version too, by event time."
        ),
    }


def call(head: str, arguments: list[str], tail: str = "", *, indent: str = "") -> str:
    """`head(arguments)tail`, split as ruff formats it when longer than a line: the arguments
    on one line of their own if they fit, else one per line."""
    line = f"{indent}{head}({', '.join(arguments)}){tail}"
    if len(line) <= LINE_LENGTH:
        return line
    inner = f"{indent}    {', '.join(arguments)}"
    if len(inner) <= LINE_LENGTH:
        return f"{indent}{head}(\n{inner}\n{indent}){tail}"
    each = "".join(f"{indent}    {argument},\n" for argument in arguments)
    return f"{indent}{head}(\n{each}{indent}){tail}"


def _pipeline(thing: Thing, store: str) -> str:
    """The pipeline's assignment, laid out as ruff would: one line if it fits, else a chain."""
    steps = [
        f"Pipeline({thing.event_class})",
        f".map({thing.map_function})",
        ".then(ensure_dimensions)",
        f".then({store})",
    ]
    line = f"{thing.pipeline} = {''.join(steps)}"
    if len(line) <= LINE_LENGTH:
        return line
    if len("".join(steps)) + 4 <= LINE_LENGTH:
        return f"{thing.pipeline} = (\n    {''.join(steps)}\n)"
    return f"{thing.pipeline} = (\n" + "".join(f"    {step}\n" for step in steps) + ")"


def _domain_module(path: Path, package: Path, thing: Thing) -> str:
    """The domain's module with the thing's section added (created if need be)."""
    shown = str(package / path.name)
    names = {*_COMMON_IMPORTS, *_IMPORTS[thing.kind]}
    section = _template(f"{thing.kind}.py", **_values(thing))
    if not path.exists():
        imports = format_import("factflow", names)
        header = _template("domain.py", domain=thing.domain, imports=imports)
        taken = {*names, "Iterator", "annotations"}
        _refuse_taken(taken, thing, shown)
        return header + section
    source = path.read_text(encoding="utf-8")
    _refuse_taken(defined_names(parse(source, shown)), thing, shown)
    source = add_import(source, shown, "factflow", names)
    source = add_import(source, shown, "collections.abc", ["Iterator"])
    lines = source.splitlines(keepends=True)
    facts = [i for i, line in enumerate(lines) if line.startswith("# Fact ")]
    if thing.kind == "dimension" and facts:
        # Facts refer to dimensions, which must be declared first: a dimension's section goes
        # above the first fact's (found by its title).
        at = facts[0]
        return "".join([*lines[:at], section.lstrip("\n"), "\n\n", *lines[at:]])
    return source.rstrip("\n") + "\n" + section


def _refuse_taken(taken: set[str], thing: Thing, module: str) -> None:
    clash = [name for name in thing.defines if name in taken]
    if clash:
        raise ConfigurationError(
            f"{module} has {', '.join(clash)} already; choose another NAME (or --event)"
        )


def _registry(path: Path, shown: Path, thing: Thing) -> str:
    """consumers.py with the domain's module imported, the pipeline bound and the source."""
    source = path.read_text(encoding="utf-8")
    source = add_import(source, str(shown), ".", [thing.domain])
    d = thing.domain
    arguments = [f"{d}.{thing.event_class}", f"{d}.{thing.pipeline}"]
    # Laid out with the tuple's indentation and trailing comma, which append_to_tuple adds.
    binding = call(f'Consumer("{d}").pipe', arguments, ",", indent="    ")
    binding = binding.lstrip().removesuffix(",")
    source = append_to_tuple(source, str(shown), "CONSUMERS", binding)
    return append_to_tuple(source, str(shown), "SOURCES", f"{d}.{thing.source_function}")


def _create(path: Path, text: str) -> None:
    """Write a new file; never replaces one (`FileExistsError` if it appeared meanwhile)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as out:
        out.write(text)


def _replace(path: Path, text: str) -> None:
    """Write `path` whole or not at all (a temporary file renamed over it)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
