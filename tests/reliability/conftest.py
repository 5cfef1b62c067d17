"""The results table of the reliability suite: each scenario adds one row through the
`reliability_table` fixture; the rows of a session go to a JSON file that
``python -m tests.reliability.report`` turns into the table of docs/reliability.md.

The file is ``$FACTFLOW_RELIABILITY_RESULTS`` (set by ``make reliability``), else
``.pytest_cache/d/reliability/results.json``. A scenario whose test fails after adding its row
is marked failed, whatever its verdict said.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from collections.abc import Generator, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

from reliability.infra import PrivatePostgres, PrivateRabbitMQ
from reliability.ledger import Verdict

RESULTS_VARIABLE = "FACTFLOW_RELIABILITY_RESULTS"


@dataclass
class Row:
    """One scenario's line of the table."""

    scenario: str
    published: int
    lost: int
    duplicated: int
    unexpected: int
    result: str  # "pass", "fail" or "blocked"
    detail: str = ""
    test: str = ""
    seconds: float = 0.0


@dataclass
class Results:
    """The rows of this session, by test id."""

    path: Path
    rows: dict[str, list[Row]] = field(default_factory=dict)

    def write(self) -> None:
        if not self.rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = [asdict(row) for test_rows in self.rows.values() for row in test_rows]
        self.path.write_text(json.dumps(rows, indent=1) + "\n")


class ReliabilityTable:
    """What a scenario test is given: `add` its verdict, or `add_result` without a ledger."""

    def __init__(self, results: Results, test: str) -> None:
        self._results, self._test = results, test
        self._started = time.monotonic()

    def add(self, scenario: str, verdict: Verdict) -> None:
        """One row from a ledger's verdict: passes when every invariant held."""
        self._add(
            Row(
                scenario,
                verdict.published,
                len(verdict.lost),
                len(verdict.duplicated),
                len(verdict.unexpected),
                "pass" if verdict.ok else "fail",
                "; ".join(str(f) for f in verdict.failures)[:500],
            )
        )

    def add_result(
        self, scenario: str, *, passed: bool, published: int = 0, detail: str = ""
    ) -> None:
        """One row of a scenario that checks something other than a ledger (e.g. security)."""
        self._add(Row(scenario, published, 0, 0, 0, "pass" if passed else "fail", detail))

    def add_blocked(self, scenario: str, detail: str) -> None:
        """A scenario this machine cannot run, with what was tried."""
        self._add(Row(scenario, 0, 0, 0, 0, "blocked", detail))

    def _add(self, row: Row) -> None:
        row.test = self._test
        row.seconds = round(time.monotonic() - self._started, 1)
        self._results.rows.setdefault(self._test, []).append(row)


@pytest.fixture(scope="session")
def reliability_results(request: pytest.FixtureRequest) -> Iterator[Results]:
    variable = os.environ.get(RESULTS_VARIABLE)
    cache = getattr(request.config, "cache", None)  # None with -p no:cacheprovider
    if variable:
        path = Path(variable)
    elif cache is not None:
        path = cache.mkdir("reliability") / "results.json"
    else:
        path = Path(tempfile.mkdtemp(prefix="factflow-reliability-")) / "results.json"
    results = Results(path)
    request.config.stash[_RESULTS] = results
    yield results
    results.write()


_RESULTS = pytest.StashKey[Results]()


@pytest.fixture
def reliability_table(
    request: pytest.FixtureRequest, reliability_results: Results
) -> ReliabilityTable:
    """Add this scenario's row to the reliability table (see `ReliabilityTable`)."""
    return ReliabilityTable(reliability_results, request.node.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    results = item.config.stash.get(_RESULTS, None)
    if results is not None and report.failed:
        for row in results.rows.get(item.nodeid, []):
            if row.result == "pass":
                row.result = "fail"
                why = str(call.excinfo.value).splitlines()[0][:300] if call.excinfo else ""
                row.detail = f"{row.detail} test failed: {why}".strip()
    return report


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A schema of this test's own on the shared PostgreSQL, dropped afterwards."""
    from conftest import service_url
    from factflow.warehouse.postgres import PostgresWarehouse

    url = f"{service_url('postgres')}?schema=rel_{uuid.uuid4().hex[:12]}"
    yield url
    with PostgresWarehouse(url) as store:
        store.drop_schema()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of this test's own, which it may stop, crash and restart."""
    server = PrivatePostgres()
    yield server
    server.close()


@pytest.fixture
def private_rabbitmq() -> Iterator[PrivateRabbitMQ]:
    """A RabbitMQ node of this test's own, which it may stop, restart and pause."""
    server = PrivateRabbitMQ()
    yield server
    server.close()
