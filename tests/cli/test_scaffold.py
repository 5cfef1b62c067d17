"""`factflow new app|fact|dimension`, and docs/add-a-kpi.md followed step by step.

The guide test reads the guide and does what it says, in a fresh folder, with the real
commands: its shell lines run as they are; a Python block headed `# path` replaces the
definitions of the same names in that file (imports are merged) or creates the file; the
`jsonl` block is the event file; the failure shown in a `text` block and the JSON shown after
`--format json` must be what the commands print. So the guide cannot rot; nor can the example
of docs/testing.md, run as a test of the app the guide builds.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from factflow.cli import main
from factflow.scaffold._python import add_import

GUIDE = Path(__file__).parents[2] / "docs" / "add-a-kpi.md"
TESTING = GUIDE.with_name("testing.md")
BIN = Path(sys.executable).parent


def run(command: str, cwd: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A command line, as a user types it, with the venv's programs first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTFLOW_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        shlex.split(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    if check:
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


def blocks(markdown: str) -> Iterator[tuple[str, str]]:
    """The fenced code blocks: (info string, text)."""
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", markdown, re.DOTALL | re.MULTILINE):
        yield match.group(1), match.group(2)


def replace_definitions(source: str, path: str, block: str) -> str:
    """`source` with each top-level definition of `block` in place of the one of the same name
    (appended if there is none), and the block's imports merged into the module's."""
    for node in ast.parse(block).body:
        if isinstance(node, ast.ImportFrom):
            source = add_import(source, path, node.module or "", [a.name for a in node.names])
            continue
        name = definition_name(node)
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        text = "".join(block.splitlines(keepends=True)[start - 1 : node.end_lineno])
        lines = source.splitlines(keepends=True)
        old = next((n for n in ast.parse(source).body if definition_name(n) == name), None)
        if old is None:
            source = source.rstrip("\n") + "\n\n\n" + text
        else:
            first = min([old.lineno, *(d.lineno for d in getattr(old, "decorator_list", []))])
            source = "".join([*lines[: first - 1], text, *lines[old.end_lineno or 0 :]])
    return source


def definition_name(node: ast.stmt) -> str | None:
    if isinstance(node, ast.ClassDef | ast.FunctionDef):
        return node.name
    target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
    return target.id if isinstance(target, ast.Name) else None


@pytest.mark.slow
def test_the_add_a_kpi_guide_works_as_written(tmp_path: Path) -> None:
    cwd = tmp_path
    printed_json = ""
    for info, text in blocks(GUIDE.read_text()):
        if info == "sh":
            for line in text.splitlines():
                if line.startswith("source "):
                    continue  # the venv's programs are first on PATH already
                for command in line.split("&&"):
                    command = command.strip()
                    if command.startswith("cd "):
                        cwd = cwd / command[3:]
                        continue
                    result = run(command, cwd)
                    if "--format json" in command:
                        printed_json = result.stdout
        elif info == "python":
            header, _, body = text.partition("\n")
            assert header.startswith("# "), f"a Python block names its file first: {header}"
            path = cwd / header[2:]
            if path.exists():
                body = replace_definitions(path.read_text(), header[2:], body)
            path.write_text(body)
        elif info == "text" and text.startswith("AssertionError"):
            result = run("pytest", cwd, check=False)
            assert result.returncode == 1, result.stdout
            for line in text.splitlines():
                assert line in result.stdout, f"the guide shows {line!r}\n{result.stdout}"
        elif info == "jsonl":
            (cwd / "events.jsonl").write_text(text)
        elif info == "json":
            assert printed_json.strip() == text.strip()
    assert printed_json, "the guide shows a KPI answered with --format json"
    # docs/testing.md's example is a test of the app the guide builds.
    [example, *_] = (text for info, text in blocks(TESTING.read_text()) if info == "python")
    (cwd / "tests" / "test_testing_docs.py").write_text(example)
    assert "1 passed" in run("pytest tests/test_testing_docs.py", cwd).stdout
    # What the guide's user has in the end is clean for ruff's checks and formatter.
    run("ruff check .", cwd)
    run("ruff format --check .", cwd)
    dead = run("factflow dlq list --format json", cwd).stdout
    assert '"event_id":"e-6"' in dead.replace(" ", "")


@pytest.mark.slow
def test_scaffolded_code_passes_lint_type_checks_and_its_tests(tmp_path: Path) -> None:
    """Several domains and things, a dimension with history, another key: all clean at once."""
    run("factflow new app shop_kpis", tmp_path)
    for command in (
        "factflow new dimension customers customer --event customer_registered --scd 2",
        "factflow new fact orders order --event order_placed",
        "factflow new fact orders order_line --event line_added --key line_id",
        "factflow new dimension orders shipping_method",
        "factflow new fact payments refund_requested_by_customer --event refund_asked",
    ):
        run(command, tmp_path)
    result = run(f"{BIN / 'python'} -m pytest -q -p no:cacheprovider", tmp_path)
    assert "6 passed" in result.stdout
    run("ruff check .", tmp_path)
    run("ruff format --check .", tmp_path)
    run(f"{BIN / 'mypy'} --strict", tmp_path)
    kpis = run("factflow kpi", tmp_path)
    assert kpis.stdout == ""
    assert "customers.customer" in (tmp_path / "shop_kpis" / "consumers.py").read_text()


@pytest.fixture
def app_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    invoke("new", "app", "lending")
    return tmp_path


def invoke(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, result.output
    return result.output


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): p.read_text()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "cache" not in str(p)
    }


def test_new_app_writes_the_package_its_settings_and_tests(app_folder: Path) -> None:
    assert set(snapshot(app_folder)) == {
        ".gitignore",
        "factflow.toml",
        "pyproject.toml",
        "lending/__init__.py",
        "lending/consumers.py",
        "lending/kpis.py",
        "tests/test_app.py",
    }
    assert 'app = "lending"' in (app_folder / "factflow.toml").read_text()


def test_new_app_refuses_a_folder_with_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    output = invoke("new", "app", "lending", code=1)
    assert "is not empty (notes.txt); run `factflow new app` in an empty folder" in output
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_new_app_refuses_the_name_of_an_installed_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert "a module named 'json' is installed already" in invoke("new", "app", "json", code=1)


def test_a_second_domain_gets_its_own_module_and_import(app_folder: Path) -> None:
    invoke("new", "fact", "library", "loan", "--event", "book_borrowed")
    output = invoke("new", "dimension", "shop", "customer")
    assert "created lending/shop.py: event CustomerUpdated (shop.customer_updated)" in output
    consumers = (app_folder / "lending" / "consumers.py").read_text()
    assert "from . import library, shop\n" in consumers
    assert 'Consumer("shop").pipe(shop.CustomerUpdated, shop.customer_pipeline),\n)' in consumers
    assert "    shop.customer_history,\n)" in consumers


def test_what_exists_is_refused_and_nothing_is_written(app_folder: Path) -> None:
    invoke("new", "dimension", "library", "book", "--event", "book_added")
    before = snapshot(app_folder)
    for args, message in [
        (("dimension", "library", "book", "--event", "book_added"), "declared already, by"),
        (("fact", "library", "book", "--event", "book_lent"), "lending/library.py has Book"),
        (("fact", "shop", "book", "--event", "sold"), "defines Book already; its table"),
        (("fact", "library", "loan", "--event", "book_added"), "library.book_added is declared"),
        (("fact", "library", "a_b"), "would not survive the class name"),
        (("fact", "consumers", "loan"), "DOMAIN 'consumers' is taken"),
        (("fact", "library", "event"), "'event_id' is a column factflow fills"),
    ]:
        assert message in invoke("new", *args, code=1)
    assert snapshot(app_folder) == before


def test_consumers_edited_by_hand_are_added_to_or_refused_with_what_to_do(
    app_folder: Path,
) -> None:
    consumers = app_folder / "lending" / "consumers.py"
    text = consumers.read_text().replace(
        "CONSUMERS: tuple[Consumer, ...] = ()",
        "CONSUMERS: tuple[Consumer, ...] = (\n    # ours\n    *(),\n    Consumer('x')\n)",
    )
    consumers.write_text(text)
    invoke("new", "fact", "x", "thing")
    assert "    Consumer('x'),\n    Consumer(\"x\").pipe(x.ThingRecorded" in consumers.read_text()
    consumers.write_text(consumers.read_text().replace("SOURCES: tuple", "OTHER: tuple"))
    before = snapshot(app_folder)
    output = invoke("new", "fact", "x", "other", code=1)
    assert "assigns no SOURCES; add `x.other_history,` to SOURCES in" in output
    assert "nothing was written" in output
    assert snapshot(app_folder) == before


def test_sections_go_to_a_domain_module_the_team_edited(app_folder: Path) -> None:
    """Imports the team changed are merged into, in the order ruff's isort keeps."""
    invoke("new", "dimension", "library", "book", "--event", "book_added")
    module = app_folder / "lending" / "library.py"
    text = module.read_text()
    # The team dropped the bootstrap source (and so Iterator), and uses Money and date.
    text = text[: text.index("\n\n@bootstrap_source")] + "\n\nFINE = Money('0.10')\n"
    text = text.replace("from collections.abc import Iterator\n", "from datetime import date\n")
    text = text.replace("    SourceEvent,\n    bootstrap_source,\n", "")
    text = text.replace("    Event,\n", "    Event,\n    Money,\n")
    module.write_text(text + "TODAY: date | None = None\n")
    run("ruff check lending/library.py", app_folder)
    invoke("new", "fact", "library", "loan", "--event", "book_borrowed")
    text = module.read_text()
    assert "from collections.abc import Iterator\nfrom datetime import date\n" in text
    assert "    Money,\n" in text and "    insert_first,\n" in text
    assert text.index("FINE = Money") < text.index("class BookBorrowed")
    run("ruff check lending/library.py", app_folder)


def test_a_dimension_added_after_a_fact_goes_above_it(app_folder: Path) -> None:
    invoke("new", "fact", "library", "loan", "--event", "book_borrowed")
    invoke("new", "dimension", "library", "book", "--event", "book_added")
    text = (app_folder / "lending" / "library.py").read_text()
    assert text.index("class Book(") < text.index("class Loan(")
    assert "\n\n\n# Dimension Book, from library.book_added ---" in text
    assert "book_history(location: str) -> Iterator[SourceEvent]:\n" in text
    ast.parse(text)
    run("ruff check lending/library.py", app_folder)
    run("ruff format --check lending/library.py", app_folder)


def test_fact_and_dimension_need_an_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert "which app? Run this in the folder" in invoke("new", "fact", "a", "b", code=2)
    output = invoke("new", "fact", "a", "b", "--app", "nowhere", code=1)
    assert "no app package 'nowhere' with a consumers.py in" in output


def test_an_unwritten_bootstrap_source_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # A name of its own: the app is imported into this process, once.
    invoke("new", "app", "lending_unwritten_source")
    invoke("new", "fact", "library", "loan", "--event", "book_borrowed")
    result = CliRunner().invoke(main, ["bootstrap", "--from", "postgresql://nobody@nowhere/db"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback
    told = " ".join(result.output.split())
    assert "bootstrap source library.loan is not written yet: write loan_history in " in told
