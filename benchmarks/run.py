"""Run factflow's benchmark suite and write REPORT.md, its plots and results.json.

From the repository root (``make bench`` installs what it needs, then runs this)::

    .venv/bin/python -m benchmarks.run                      # 10^4, 10^5, 10^6 events
    .venv/bin/python -m benchmarks.run --full               # adds 10^7 and a 10M KPI warehouse
    .venv/bin/python -m benchmarks.run --only kpi,profile --workdir /tmp/bench  # keep inputs
    .venv/bin/python -m benchmarks.run --only stages --merge  # one family again, others kept

A family that fails is reported as failed; the others still run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import embedded, kpi, machine, memory, production, profiling, stages
from benchmarks.measure import REPO, factflow_python, say
from benchmarks.report import HERE, write_report
from benchmarks.settings import FAMILIES, Settings, parse_sizes
from benchmarks.targets import judge
from benchmarks.workspace import Workspace

__all__ = ["main"]

FULL_SIZE = 10_000_000


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    only = _families(args.only)
    sizes = parse_sizes(args.sizes)
    if args.full:
        sizes = tuple(sorted({*sizes, FULL_SIZE}))
    started = time.perf_counter()
    load_at_start = machine.load()
    revision = machine.revision(REPO)
    workspace = Workspace(args.workdir)
    settings = Settings(
        sizes=sizes,
        full=args.full,
        # The full run measures the slow designs on longer streams too, where the start-up of
        # a command no longer weighs in the ratios (about 6 and 4 minutes more).
        per_event_max=args.per_event_max or (100_000 if args.full else 10_000),
        dlt_max=args.dlt_max or (1_000_000 if args.full else 100_000),
        production_max=args.production_max or (1_000_000 if args.full else 100_000),
        kpi_transactions=tuple(
            sorted({*parse_sizes(args.kpi_transactions), *([FULL_SIZE] if args.full else [])})
        ),
        profile_events=args.profile_events,
        workspace=workspace,
    )
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    families: dict[str, Any] = {}
    try:
        steps: dict[str, Callable[[], dict[str, Any]]] = {
            "embedded": lambda: embedded.run(settings),
            "memory": lambda: memory.run(settings, families.get("embedded")),
            "kpi": lambda: kpi.run(settings),
            "production": lambda: production.run(settings),
            "profile": lambda: profiling.run(settings, out / "profile.txt"),
            "stages": lambda: stages.run(settings),
        }
        for name in FAMILIES:
            if name in only:
                families[name] = _guarded(name, steps[name])
    finally:
        workspace.close()
    inputs = {str(events): made for events, made in sorted(workspace.inputs.items())}
    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m benchmarks.run "
        + shlex.join(argv if argv is not None else sys.argv[1:]),
        "seconds": round(time.perf_counter() - started, 1),
        "sizes": list(sizes),
        "inputs": inputs,
        "machine": machine.describe(),
        "load": {"start": load_at_start, "end": machine.load()},
        "versions": machine.versions(),
        "factflow_install": machine.factflow_install(factflow_python()),
        "revision": revision,
        "revision_at_end": machine.revision(REPO),
        "families": families,
    }
    if args.merge:
        results = _merged(out / "results.json", results)
    results["targets"] = judge(results)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    report = write_report(results, out)
    say(f"wrote {report} and {out / 'results.json'}")
    for target in results["targets"]:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[target["met"]]
        say(f"  {target['name']}: {target['value']} ({target['target']}) {verdict}")
    return 0


def _merged(earlier_path: Path, results: dict[str, Any]) -> dict[str, Any]:
    """The earlier run's results with the families of this one in their place, and this run
    noted as a later addition (the report says which families it measured, and when)."""
    earlier: dict[str, Any] = json.loads(earlier_path.read_text())
    added = {
        key: results[key] for key in ("generated_at", "command", "seconds", "load", "revision")
    }
    earlier.setdefault("later", []).append({**added, "families": sorted(results["families"])})
    earlier["families"] = {**earlier["families"], **results["families"]}
    return earlier


def _guarded(name: str, step: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a family; a failure is kept as its result so that the others still run."""
    try:
        return step()
    except Exception as error:
        say(f"{name} failed: {error}")
        return {"failed": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}


def _families(text: str) -> set[str]:
    chosen = {part.strip() for part in text.split(",") if part.strip()}
    unknown = chosen - set(FAMILIES)
    if unknown:
        raise SystemExit(f"unknown families {sorted(unknown)}; choose from {', '.join(FAMILIES)}")
    return chosen


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--sizes",
        default="1e4,1e5,1e6",
        help="stream lengths, comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="add 10^7 events, a 10M-transaction KPI warehouse and 10^6 on the production path",
    )
    parser.add_argument(
        "--only",
        default=",".join(FAMILIES),
        help="families to run, comma-separated (default: all: %(default)s)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other families of the existing results.json (a family added later)",
    )
    parser.add_argument(
        "--per-event-max",
        type=_count,
        default=None,
        help="largest stream for the per-event design, ~0.3k events/s (default: 1e4; 1e5 with"
        " --full)",
    )
    parser.add_argument(
        "--dlt-max",
        type=_count,
        default=None,
        help="largest stream for dlt, ~5k events/s (default: 1e5; 1e6 with --full)",
    )
    parser.add_argument(
        "--production-max",
        type=_count,
        default=None,
        help="largest stream for RabbitMQ → PostgreSQL (default: 1e5; 1e6 with --full)",
    )
    parser.add_argument(
        "--kpi-transactions",
        default="1e6",
        help="settled transactions in each KPI warehouse (default: %(default)s; --full adds 1e7)",
    )
    parser.add_argument(
        "--profile-events", type=_count, default=100_000, help="stream length profiled"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep simulated inputs here for the next run (default: a temporary directory)",
    )
    parser.add_argument(
        "--out", type=Path, default=HERE, help="where REPORT.md and results.json go"
    )
    return parser


def _count(text: str) -> int:
    return parse_sizes(text)[0]


if __name__ == "__main__":
    sys.exit(main())
