"""Write the reliability suite's results as the table of docs/reliability.md.

    python -m tests.reliability.report [RESULTS_JSON] [--into docs/reliability.md]

Without `--into` the table is printed. With it, the table replaces what stands between the
markers `<!-- reliability:table -->` and `<!-- /reliability:table -->` of that file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

START, END = "<!-- reliability:table -->", "<!-- /reliability:table -->"
DEFAULT_RESULTS = Path(".pytest_cache/d/reliability/results.json")


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | events published | lost | duplicated | unexpected | result |",
        "|---|--:|--:|--:|--:|---|",
    ]
    for row in rows:
        result = row["result"]
        if row.get("detail") and result != "pass":
            detail = row["detail"] if len(row["detail"]) <= 160 else row["detail"][:160] + " …"
            result += f": {detail}".replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {row['scenario']} | {row['published']} | {row['lost']} | {row['duplicated']} "
            f"| {row['unexpected']} | {result} |"
        )
    passed = sum(row["result"] == "pass" for row in rows)
    seconds = sum(row.get("seconds", 0) for row in rows)
    lines.append("")
    lines.append(
        f"{passed} of {len(rows)} scenarios passed; {_commit()}, "
        f"{datetime.now(UTC):%Y-%m-%d}, scenarios took {seconds:.0f} s in all."
    )
    return "\n".join(lines)


def _issue_order(row: dict[str, Any]) -> int:
    """Scenarios named after issue 8's numbers ("3 PostgreSQL down …") in that order; stable."""
    number = row["scenario"].split(" ", 1)[0]
    return int(number) if number.isdigit() else 99


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "commit unknown"
    return f"at {head}" + (" with local changes" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--into", type=Path, help="the markdown file whose table to replace")
    options = parser.parse_args(argv)
    rows = sorted(json.loads(options.results.read_text()), key=_issue_order)
    rendered = table(rows)
    if options.into is None:
        print(rendered)
        return 0
    text = options.into.read_text()
    before, start, rest = text.partition(START)
    _, end, after = rest.partition(END)
    if not start or not end:
        parser.error(f"{options.into} lacks the markers {START} and {END}")
    options.into.write_text(f"{before}{START}\n{rendered}\n{END}{after}")
    print(f"wrote the table of {len(rows)} scenarios into {options.into}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
