"""factflow's benchmark suite (issue 4): apart from the tests, never asserting anything.

Run it with ``make bench`` (or ``.venv/bin/python -m benchmarks.run --help`` from the
repository root). It writes ``benchmarks/REPORT.md``, its plots, and ``benchmarks/results.json``.

One module per benchmark family (`embedded`, `memory`, `kpi`, `production`, `profiling`); every
measured case runs in a fresh subprocess (`measure`), so each peak RSS belongs to that case alone.
"""
