"""`factflow serve` end to end in real headless Chromium (Debian's `chromium`), driven by
Playwright: the page shows the talk's number as `factflow kpi` answers it, draws every KPI,
filters, and lets nobody in without the token. The screenshot is kept in test-artifacts/.

Chromium missing skips these tests with the reason, unless FACTFLOW_REQUIRE_SERVICES=1 (as in
CI, whose .ci/run installs it), where it fails them. Playwright never downloads a browser here.
"""

import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from factflow.examples.banking import app
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.testing import Harness
from factflow.warehouse.duckdb import DuckDBWarehouse

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HEADLINE = "travel_card_foreign_visa_users"


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("FACTFLOW_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}; FACTFLOW_REQUIRE_SERVICES=1 requires it")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, with a fresh profile of Playwright's own."""
    if not CHROMIUM.exists():
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield chromium
        chromium.close()


@dataclass(frozen=True)
class Dashboard:
    address: str  # http://127.0.0.1:PORT/
    token: str
    warehouse: str


def factflow_json(*args: str) -> Any:
    """What the real command prints, as another program would run it."""
    done = subprocess.run(
        [sys.executable, "-m", "factflow", *args, "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """`factflow serve` running as its own process over a filled DuckDB warehouse."""
    folder = tmp_path_factory.mktemp("serve")
    path = folder / "kpi.duckdb"
    with DuckDBWarehouse(path) as store:
        Harness(app, store).deliver(simulate(SimulationOptions(events=800, seed=7, bad_lines=0.01)))
    warehouse = f"duckdb:///{path}"
    token = secrets.token_urlsafe(24)
    server = subprocess.Popen(
        [sys.executable, "-m", "factflow", "serve", "--warehouse", warehouse, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=folder,
        env={**os.environ, "FACTFLOW_TOKEN": token},
    )
    # A server that never says where it listens is stopped, so that readline returns.
    watchdog = threading.Timer(60, server.kill)
    watchdog.start()
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        watchdog.cancel()
        found = re.search(r"http://\S+/", line)
        assert found, f"factflow serve printed {line!r}; stderr: {server.stderr.read()}"
        assert token not in line  # a token given in FACTFLOW_TOKEN is not printed
        address = found.group(0)
        wait_until_healthy(address)
        yield Dashboard(address, token, warehouse)
    finally:
        watchdog.cancel()
        server.terminate()
        server.communicate(timeout=30)  # also closes its pipes


def wait_until_healthy(address: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{address}api/health", timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def test_the_page_shows_the_talks_number_as_factflow_kpi_answers_it(
    browser: Any, dashboard: Dashboard
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    try:
        page.goto(f"{dashboard.address}?token={dashboard.token}")
        assert page.url == dashboard.address  # reloaded without the token in its address
        [cookie] = context.cookies()
        assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
        assert cookie["value"] != dashboard.token

        # The talk's question and its number, as `factflow kpi` answers it.
        page.wait_for_selector('#headline-value[data-ready="true"]', timeout=30_000)
        [expected] = factflow_json("kpi", HEADLINE, "--warehouse", dashboard.warehouse)["rows"]
        assert page.text_content("#headline-value") == str(expected["users"])
        assert page.text_content("#headline-question") == app.kpis[HEADLINE].description

        # Every KPI drawn, and its table as `factflow kpi` prints it.
        for name in app.kpis:
            page.wait_for_selector(f'#kpi-{name}[data-state="ready"]', timeout=30_000)
            printed = factflow_json("kpi", name, "--warehouse", dashboard.warehouse)["rows"]
            assert table_rows(page, name) == [
                [str(value) for value in row.values()] for row in printed
            ], name
        assert page.get_attribute("#chart-active_users_by_month", "data-kind") == "line"
        assert page.locator("#chart-active_users_by_month .scatterlayer .trace").count() >= 1
        assert page.get_attribute("#chart-goals_by_category", "data-kind") == "bar"
        goals = factflow_json("kpi", "goals_by_category", "--warehouse", dashboard.warehouse)
        bars = page.locator("#chart-goals_by_category .barlayer .point").count()
        assert bars == len(goals["rows"]) > 0

        # Live status, as `factflow status` counts.
        status = factflow_json(
            "status",
            "--warehouse",
            dashboard.warehouse,
            "--transport",
            f"log:///{Path(dashboard.warehouse.removeprefix('duckdb:///')).parent}/log",
        )
        events = sum(row["events"] for row in status["pipelines"])
        page.wait_for_function(
            "n => document.getElementById('status-events').textContent.replace(/,/g, '') == n",
            arg=str(events),
            timeout=30_000,
        )
        assert page.text_content("#status-warehouse") == "ok"
        assert page.text_content("#status-dead-letters") == "8"  # 1 % of 800 are bad lines

        ARTIFACTS.mkdir(exist_ok=True)
        screenshot = ARTIFACTS / "dashboard.png"
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"screenshot: {screenshot}")

        # A filter: active users by month and segment, plus only.
        card = "#kpi-active_users_by_month"
        page.check(f'{card} .group-by input[value="segment"]')
        page.wait_for_function(
            "() => [...document.querySelectorAll('#table-active_users_by_month th')]"
            ".map(th => th.textContent).join() == 'month,segment,users'",
            timeout=30_000,
        )
        page.select_option(f"{card} .where-name", "segment")
        page.fill(f"{card} .where-value", "plus")
        page.click(f"{card} .where-add")
        page.wait_for_selector(f'{card} .chip >> text="segment = plus"')
        page.wait_for_function(
            "() => { const rows = [...document.querySelectorAll("
            "'#table-active_users_by_month tbody tr')];"
            " return rows.length > 0 && rows.every(r => r.cells[1].textContent == 'plus'); }",
            timeout=30_000,
        )
        filtered = factflow_json(
            "kpi",
            "active_users_by_month",
            "--warehouse",
            dashboard.warehouse,
            "--by",
            "month",
            "--by",
            "segment",
            "--where",
            "segment=plus",
        )["rows"]
        assert table_rows(page, "active_users_by_month") == [
            [str(value) for value in row.values()] for row in filtered
        ]
        # Redrawn in place: one line, for plus.
        assert page.locator("#chart-active_users_by_month .scatterlayer .trace").count() == 1
        csv = page.get_attribute("#csv-active_users_by_month", "href")
        assert csv == "/api/kpi/active_users_by_month.csv?by=month&by=segment&where=segment%3Aplus"

        # Days: from March on.
        page.fill(f"{card} .days .from", "2026-03-01")
        page.wait_for_function(
            "() => { const rows = [...document.querySelectorAll("
            "'#table-active_users_by_month tbody tr')];"
            " return rows.length > 0 && rows.every(r => r.cells[0].textContent >= '2026-03'); }",
            timeout=30_000,
        )
        since = factflow_json(
            "kpi",
            "active_users_by_month",
            "--warehouse",
            dashboard.warehouse,
            *("--by", "month", "--by", "segment", "--where", "segment=plus"),
            *("--from", "2026-03-01"),
        )["rows"]
        assert table_rows(page, "active_users_by_month") == [
            [str(value) for value in row.values()] for row in since
        ]
        page.screenshot(path=str(ARTIFACTS / "dashboard-filtered.png"), full_page=True)
        assert not problems, problems
    finally:
        context.close()


def table_rows(page: Any, name: str) -> list[list[str]]:
    rows: list[list[str]] = page.eval_on_selector_all(
        f"#table-{name} tbody tr",
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))",
    )
    return rows


def test_without_the_token_the_browser_gets_401_and_with_it_gets_in(
    browser: Any, dashboard: Dashboard
) -> None:
    stranger = browser.new_context()
    try:
        page = stranger.new_page()
        for path in ("", f"api/kpi/{HEADLINE}", "api/status", "static/dashboard.js"):
            answer = page.goto(dashboard.address + path)
            assert answer.status == 401, path
        assert "token" in page.content()
        assert page.goto(f"{dashboard.address}?token=wrong-{dashboard.token}").status == 401
        assert not stranger.cookies()
        health = page.goto(f"{dashboard.address}api/health")
        assert health.status == 200 and health.json() == {"status": "ok"}
    finally:
        stranger.close()

    bearer = browser.new_context(extra_http_headers={"Authorization": f"Bearer {dashboard.token}"})
    try:
        page = bearer.new_page()
        answer = page.goto(f"{dashboard.address}api/kpi/{HEADLINE}")
        assert answer.status == 200
        assert answer.json()["kpi"] == HEADLINE
        page.goto(dashboard.address)
        page.wait_for_selector('#headline-value[data-ready="true"]', timeout=30_000)
    finally:
        bearer.close()
