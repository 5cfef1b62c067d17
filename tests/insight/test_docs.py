"""docs/insight.md shows real code: its examples run against a filled warehouse."""

import re
from pathlib import Path

from filled_warehouse import filled_warehouse

DOC = Path(__file__).parent.parent.parent / "docs" / "insight.md"


def examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)


def test_the_notebook_example_runs_and_keeps_amounts_exact(tmp_path: Path) -> None:
    [notebook] = [code for code in examples() if "connect(" in code]
    with filled_warehouse("duckdb", tmp_path) as url:
        namespace: dict[str, object] = {}
        code = notebook.replace('"duckdb:///kpi.duckdb"', repr(url))
        exec(compile(code, str(DOC), "exec"), namespace)
    assert type(namespace["total"]).__name__ == "Decimal"
    assert namespace["by_segment"].height > 0  # type: ignore[attr-defined]


def test_the_declaration_example_declares_a_fact_with_descriptions() -> None:
    [declaration] = [code for code in examples() if "@fact" in code]
    namespace: dict[str, object] = {}
    exec(compile(declaration, str(DOC), "exec"), namespace)
    from factflow.model.schema import compile_fact

    spec = compile_fact(namespace["CardTransaction"])  # type: ignore[arg-type]
    assert spec.descriptions["amount"] == "What the merchant charged."
