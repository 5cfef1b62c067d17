"""Family `profile` (issue 4, item 6): where the embedded bootstrap spends its time.

py-spy samples the real command, `factflow bootstrap` of a simulated stream into a new DuckDB
file, from outside the process and in every thread (the bootstrap writes batches in a thread
of its own while the main thread decodes the next). Idle samples (a thread waiting on a lock or
a queue) are left out, so each thread's seconds are its busy time. Time in C (msgspec's
decoding, DuckDB's execution, Arrow's conversions) counts for the Python function that called
it, which is what says which step of factflow is costly.

Where py-spy cannot attach (it needs ptrace), pyinstrument profiles `bootstrap_file` in a
worker instead, which sees the main thread only; the result says which profiler ran.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from benchmarks.embedded import APP, CLI_ENV, remove_database
from benchmarks.measure import CaseFailed, factflow, run_process, run_worker, say
from benchmarks.settings import Settings
from benchmarks.workspace import duckdb_url

__all__ = ["RATE", "TOP", "WORK", "profile_bootstrap", "run", "summarize"]

TOP = 15
RATE = 250  # py-spy samples per second
WORK = "factflow/bootstrap/"  # a sample with a frame in this package is the bootstrap at work
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]*)(?::(?P<line>\d+))?\)$")
_THREAD = re.compile(r"^thread \((?P<id>\w+)\)(?:: (?P<name>.*))?$")


def run(settings: Settings, folded: Path) -> dict[str, Any]:
    """Profile the bootstrap of `settings.profile_events` events; the stacks go to `folded`."""
    ws = settings.workspace
    events = settings.profile_events
    path, database = ws.events_file(events), ws.path(f"profile-{events}.duckdb")
    spy = _py_spy()
    try:
        if spy is not None:
            say(f"profile: factflow bootstrap of {events:,} events under py-spy")
            try:
                return {"events": events, **_with_py_spy(spy, path, database, folded)}
            except CaseFailed as error:
                say(f"  py-spy could not profile ({str(error)[-200:]}); using pyinstrument")
        remove_database(database)
        say(f"profile: bootstrap_file of {events:,} events under pyinstrument (main thread)")
        _, result = run_worker(
            "profile_bootstrap",
            {"path": str(path), "database": str(database), "tree": str(folded)},
        )
        return {"events": events, **result}
    finally:
        remove_database(database)


def _py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def _with_py_spy(spy: str, path: Path, database: Path, folded: Path) -> dict[str, Any]:
    command = [
        spy, "record", "--format", "raw", "--threads", "--rate", str(RATE), "--output",
        str(folded), "--",
        *factflow("bootstrap", "--app", APP, "--from", str(path), "--warehouse",
                  duckdb_url(database)),
    ]  # fmt: skip
    measured = run_process(command, env=CLI_ENV)
    return {
        "profiler": "py-spy",
        "rate": RATE,
        "command": "factflow bootstrap (all threads, busy samples only)",
        "tree_file": folded.name,
        **summarize(folded.read_text(), RATE, measured.seconds),
    }


def summarize(folded: str, rate: int, wall: float) -> dict[str, Any]:
    """Costs from py-spy's raw (folded) stacks: per thread, per function, per factflow layer.

    `top_self` is time with the function at the top of the stack (C it calls included);
    `top_total` time with it anywhere on the stack (factflow's functions only); `by_layer` the
    self time per package of factflow, libraries counting for the factflow frame under them.
    Samples outside the bootstrap's work (start-up, imports, exit) are counted apart.
    """
    names: dict[str, str] = {}
    threads: Counter[str] = Counter()
    own: Counter[tuple[str, str, str]] = Counter()
    own_lines: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    total: Counter[tuple[str, str]] = Counter()
    layers: Counter[str] = Counter()
    outside = 0
    for line in folded.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        thread, *frames = stack.split(";")
        thread_id = _thread(thread, names)
        parsed = [_frame(f) for f in frames]
        if not any(file.startswith(WORK) for _, file, _ in parsed):
            outside += count
            continue
        threads[thread_id] += count
        function, file, number = parsed[-1]
        key = (thread_id, function, file)
        own[key] += count
        own_lines[key][number] += count
        for function_file in {(f, p) for f, p, _ in parsed if _counted(f, p)}:
            total[function_file] += count
        innermost = next((layer for _, p, _ in reversed(parsed) if (layer := _layer(p))), "other")
        layers[innermost] += count
    busy = sum(threads.values())
    return {
        "seconds": round(wall, 3),
        "busy_seconds": round(busy / rate, 3),
        "outside_seconds": round(outside / rate, 3),
        "threads": {
            names.get(t, t): {
                "seconds": round(n / rate, 3),
                "share_of_wall": round(n / rate / wall, 4),
            }
            for t, n in threads.most_common()
        },
        "top_self": [
            {
                "thread": names.get(t, t),
                "function": function,
                "where": f"{file}:{own_lines[(t, function, file)].most_common(1)[0][0]}",
                "seconds": round(n / rate, 3),
                "share": round(n / busy, 4),
            }
            for (t, function, file), n in own.most_common(TOP)
        ],
        "top_total": [
            {
                "function": function,
                "where": file,
                "seconds": round(n / rate, 3),
                "share": round(n / busy, 4),
            }
            for (function, file), n in total.most_common(TOP)
        ],
        "by_layer": {
            layer: {"seconds": round(n / rate, 3), "share": round(n / busy, 4)}
            for layer, n in layers.most_common()
        },
    }


def _counted(function: str, file: str) -> bool:
    """Whether a frame counts in `top_total`: factflow's functions, not its modules' bodies."""
    return file.startswith("factflow/") and function != "<module>"


def _thread(text: str, names: dict[str, str]) -> str:
    match = _THREAD.match(text)
    if match is None:
        return text
    if match["name"]:
        names[match["id"]] = match["name"]
    return match["id"]


def _frame(text: str) -> tuple[str, str, str]:
    match = _FRAME.match(text)
    if match is None:
        return text, "?", "?"
    return match["function"], match["file"], match["line"] or "?"


def _layer(file: str) -> str | None:
    """`factflow/warehouse` for `factflow/warehouse/duckdb.py`; None outside factflow."""
    parts = file.split("/")
    return "/".join(parts[:2]) if parts[0] == "factflow" and len(parts) > 2 else None


# -- the fallback, in a worker -------------------------------------------------------------


def profile_bootstrap(path: str, database: str, tree: str) -> dict[str, Any]:
    """pyinstrument around `bootstrap_file` (main thread only); its text tree goes to `tree`."""
    from pyinstrument import Profiler

    from factflow.bootstrap.files import bootstrap_file
    from factflow.cli.locations import load_app
    from factflow.warehouse.duckdb import DuckDBWarehouse

    app = load_app(APP)
    store = DuckDBWarehouse(Path(database))
    profiler = Profiler(interval=1 / RATE)
    profiler.start()
    try:
        bootstrap_file(app, Path(path), store)
    finally:
        store.close()
        session = profiler.stop()
    Path(tree).write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    own: dict[tuple[str, str], float] = defaultdict(float)
    total: dict[tuple[str, str], float] = defaultdict(float)
    layers: dict[str, float] = defaultdict(float)
    root = session.root_frame()
    if root is not None:
        _walk(root, frozenset(), "other", own, total, layers)
    busy = session.duration
    return {
        "profiler": "pyinstrument",
        "command": "bootstrap_file (main thread only: py-spy was not available)",
        "tree_file": Path(tree).name,
        "seconds": round(busy, 3),
        "busy_seconds": round(busy, 3),
        "outside_seconds": 0.0,
        "threads": {"MainThread": {"seconds": round(busy, 3), "share_of_wall": 1.0}},
        "top_self": [
            {
                "thread": "MainThread",
                "function": f,
                "where": w,
                "seconds": round(s, 3),
                "share": round(s / busy, 4),
            }
            for (f, w), s in _ranked(own)[:TOP]
        ],
        "top_total": [
            {"function": f, "where": w, "seconds": round(s, 3), "share": round(s / busy, 4)}
            for (f, w), s in [x for x in _ranked(total) if x[0][1].startswith("factflow/")][:TOP]
        ],
        "by_layer": {
            layer: {"seconds": round(s, 3), "share": round(s / busy, 4)}
            for layer, s in _ranked(layers)
        },
    }


def _ranked(costs: dict[Any, float]) -> list[tuple[Any, float]]:
    return sorted(costs.items(), key=lambda item: item[1], reverse=True)


def _walk(
    frame: Any,
    above: frozenset[tuple[str, str]],
    layer: str,
    own: dict[tuple[str, str], float],
    total: dict[tuple[str, str], float],
    layers: dict[str, float],
) -> None:
    function = f"{frame.class_name}.{frame.function}" if frame.class_name else frame.function
    key = (function or "?", frame.file_path_short or "?")
    layer = _layer(key[1]) or layer
    own[key] += frame.total_self_time
    layers[layer] += frame.total_self_time
    if key not in above:  # a recursive call is already inside its caller's total
        total[key] += frame.time
    for child in frame.children:
        if not child.is_synthetic:
            _walk(child, above | {key}, layer, own, total, layers)
