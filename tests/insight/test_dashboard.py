"""The dashboard's JSON API and access rules, in process (Starlette's TestClient), no browser."""

import json
import os
import re
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from factflow.cli import main
from factflow.cli.locations import open_warehouse
from factflow.examples.banking import app
from factflow.examples.banking.simulator import SimulationOptions, simulate
from factflow.insight.dashboard import COOKIE, create_app
from factflow.insight.dashboard import _questions as questions
from factflow.insight.formats import csv_text
from factflow.insight.kpi import answer_table
from factflow.testing import Harness
from factflow.warehouse.duckdb import DuckDBWarehouse
from filled_warehouse import dump, filled_warehouse

TOKEN = "test-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
KPI = "/api/kpi/travel_card_foreign_visa_users"


@pytest.fixture(scope="module")
def warehouse_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A DuckDB banking warehouse, closed by its writer, with some dead letters."""
    path = tmp_path_factory.mktemp("dashboard") / "kpi.duckdb"
    messages = simulate(SimulationOptions(events=800, seed=7, bad_lines=0.02))
    with DuckDBWarehouse(path) as store:
        Harness(app, store).deliver(messages)
    return f"duckdb:///{path}"


@pytest.fixture
def client(warehouse_url: str) -> Iterator[TestClient]:
    dashboard = create_app(app, lambda: open_warehouse(warehouse_url, read_only=True), token=TOKEN)
    with TestClient(dashboard, follow_redirects=False) as client:
        yield client


def cli_json(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


# -- access --------------------------------------------------------------------------------

PROTECTED = [
    "/",
    "/api/kpis",
    KPI,
    f"{KPI}.csv",
    "/api/kpi/no_such_kpi",
    "/api/status",
    "/static/dashboard.js",
    "/static/plotly.min.js",
    "/no/such/page",
]


@pytest.mark.parametrize("path", PROTECTED)
def test_without_the_token_every_page_and_endpoint_answers_401(
    client: TestClient, path: str
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        refused = client.get(path, headers=headers)
        assert refused.status_code == 401, (path, headers)
        assert "Authorization: Bearer" in refused.text
        assert refused.headers["www-authenticate"].startswith("Bearer")
    assert client.get(path, params={"token": "wrong"}).status_code == 401
    # A cookie holding the token itself is not the cookie the dashboard sets.
    assert client.get(path, headers={"Cookie": f"{COOKIE}={TOKEN}"}).status_code == 401


def test_an_api_refusal_is_json(client: TestClient) -> None:
    refused = client.get(KPI)
    assert refused.headers["content-type"] == "application/json"
    assert "token" in refused.json()["error"]


@pytest.mark.parametrize("path", ["/api/health", "/healthz"])
def test_the_health_check_answers_without_the_token(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_the_bearer_token_opens_every_page_and_endpoint(client: TestClient) -> None:
    for path in PROTECTED:
        expected = 404 if "no_such" in path or "/no/" in path else 200
        assert client.get(path, headers=BEARER).status_code == expected, path


def test_the_token_in_the_address_sets_a_cookie_and_reloads_the_page_without_it(
    client: TestClient,
) -> None:
    first = client.get("/", params={"token": TOKEN, "keep": "this"})
    assert first.status_code == 303
    assert first.headers["location"] == "/?keep=this"
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert TOKEN not in cookie  # the cookie holds a value derived from the token
    # The client keeps the cookie: from now on the page and the API answer without the token.
    assert client.get("/").status_code == 200
    assert client.get(KPI).status_code == 200


def test_the_token_in_an_api_address_answers_at_once_and_sets_the_cookie(
    client: TestClient,
) -> None:
    answer = client.get(KPI, params={"token": TOKEN})
    assert answer.status_code == 200
    assert "HttpOnly" in answer.headers["set-cookie"]
    assert client.get("/api/status").status_code == 200


def test_the_dashboard_is_read_only(client: TestClient, warehouse_url: str) -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert client.request(method, KPI, headers=BEARER).status_code == 405
        assert client.request(method, KPI).status_code == 401
    store = open_warehouse(warehouse_url, read_only=True)
    before = dump(store)
    store.close()
    for path in PROTECTED:
        client.get(path, headers=BEARER)
    client.get("/api/kpi/spend_by_segment", params={"by": "nothing"}, headers=BEARER)
    store = open_warehouse(warehouse_url, read_only=True)
    assert dump(store) == before
    store.close()


def test_pages_say_that_only_this_server_may_serve_their_scripts(client: TestClient) -> None:
    headers = client.get("/", headers=BEARER).headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"


# -- KPIs ----------------------------------------------------------------------------------


def test_the_kpis_are_listed_with_the_headline_first(client: TestClient) -> None:
    listed = client.get("/api/kpis", headers=BEARER).json()
    assert listed["app"] == "banking"
    assert listed["headline"] == "travel_card_foreign_visa_users"
    assert [kpi["name"] for kpi in listed["kpis"]] == list(app.kpis)
    for kpi in listed["kpis"]:
        assert kpi["description"] == app.kpis[kpi["name"]].description
        assert set(kpi) >= {"owner", "measures", "group_bys", "default_by", "time_by"}


@pytest.mark.parametrize("name", list(app.kpis))
def test_a_kpi_answers_as_factflow_kpi_prints_it(
    client: TestClient, warehouse_url: str, name: str
) -> None:
    answer = client.get(f"/api/kpi/{name}", headers=BEARER)
    assert answer.status_code == 200
    body = answer.json()
    printed = cli_json("kpi", name, "--warehouse", warehouse_url, "--format", "json")
    assert body["kpi"] == printed["kpi"] == name
    assert body["rows"] == printed["rows"]  # decimals as the same exact strings
    assert body["description"] == app.kpis[name].description
    assert body["measures"] == list(app.kpis[name].measures)
    assert body["columns"] == list(printed["rows"][0])


def test_decimals_stay_exact_strings(client: TestClient) -> None:
    rows = client.get("/api/kpi/spend_by_segment", headers=BEARER).json()["rows"]
    assert rows and all(isinstance(row["billing_amount"], str) for row in rows)
    assert all("." in row["billing_amount"] for row in rows)


def test_a_kpi_over_months_names_its_time_column(client: TestClient) -> None:
    body = client.get("/api/kpi/active_users_by_month", headers=BEARER).json()
    assert body["time_column"] == "month"
    assert client.get("/api/kpi/goals_by_category", headers=BEARER).json()["time_column"] is None


@pytest.mark.parametrize("address", ["/api/kpi/spend_by_segment.csv", "/api/kpi/spend_by_segment"])
def test_csv_download_is_the_answer_as_factflow_kpi_writes_csv(
    client: TestClient, warehouse_url: str, address: str
) -> None:
    params = {} if address.endswith(".csv") else {"format": "csv"}
    download = client.get(address, params=params, headers=BEARER)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert 'filename="spend_by_segment.csv"' in download.headers["content-disposition"]
    result = CliRunner().invoke(
        main, ["kpi", "spend_by_segment", "--warehouse", warehouse_url, "--format", "csv"]
    )
    assert download.text == result.output


def test_an_unknown_kpi_answers_404_naming_those_there_are(client: TestClient) -> None:
    missing = client.get("/api/kpi/no_such_kpi", headers=BEARER)
    assert missing.status_code == 404
    assert "travel_card_foreign_visa_users" in missing.json()["error"]


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"where": "segment"}, "where=NAME:VALUE"),
        ({"from": "March"}, "YYYY-MM-DD"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "after"),
        ({"format": "xml"}, "format=json or format=csv"),
        ({"colour": "red"}, "unknown parameter 'colour'"),
        ({"by": "month"}, "travel_card_foreign_visa_users"),
    ],
)
def test_a_question_the_kpi_cannot_answer_is_a_400_saying_why(
    client: TestClient, params: dict[str, str], says: str
) -> None:
    refused = client.get(KPI, params=params, headers=BEARER)
    assert refused.status_code == 400
    assert says in refused.json()["error"]


def test_by_where_from_and_to_reach_the_kpi_as_asked(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: dict[str, Any] = {}

    def answer(*args: Any, **options: Any) -> pa.Table:
        asked.update(options)
        return pa.table({"month": ["2026-01"], "segment": ["plus"], "users": [3]})

    monkeypatch.setattr(questions, "answer_table", answer)
    address = (
        "/api/kpi/active_users_by_month?by=month&by=segment&where=segment:plus"
        "&where=segment:standard&where=country:DK&from=2026-01-01&to=2026-03-31"
    )
    body = client.get(address, headers=BEARER).json()
    assert asked["by"] == ("month", "segment")
    assert asked["where"] == {"segment": ("plus", "standard"), "country": ("DK",)}
    assert (asked["since"], asked["until"]) == (date(2026, 1, 1), date(2026, 3, 31))
    assert body["question"] == {
        "by": ["month", "segment"],
        "where": {"segment": ["plus", "standard"], "country": ["DK"]},
        "from": "2026-01-01",
        "to": "2026-03-31",
    }
    assert body["rows"] == [{"month": "2026-01", "segment": "plus", "users": 3}]


def test_names_of_by_may_also_be_given_separated_by_commas() -> None:
    question = questions.parse_question([("by", "month, segment"), ("by", "month")])
    assert question.by == ("month", "segment")
    assert questions.parse_question([("where", "merchant:A:B")]).where == {"merchant": ("A:B",)}
    # As on the command line (factflow kpi --where segment=plus):
    assert questions.parse_question([("where", "segment=plus")]).where == {"segment": ("plus",)}


def test_a_grouped_and_filtered_kpi_answers_as_factflow_kpi_does(
    client: TestClient, warehouse_url: str
) -> None:
    body = client.get(
        "/api/kpi/active_users_by_month",
        params=[("by", "month"), ("by", "segment"), ("where", "segment:plus")],
        headers=BEARER,
    ).json()
    assert body["columns"] == ["month", "segment", "users"]
    assert body["rows"] and {row["segment"] for row in body["rows"]} == {"plus"}
    store = open_warehouse(warehouse_url, read_only=True)
    try:
        expected = answer_table(
            app,
            "active_users_by_month",
            store,
            by=["month", "segment"],
            where={"segment": ["plus"]},
        )
    finally:
        store.close()
    assert csv_text(expected).splitlines()[1:] == [
        f"{row['month']},{row['segment']},{row['users']}" for row in body["rows"]
    ]


# -- live status ---------------------------------------------------------------------------


def test_status_counts_events_and_dead_letters_as_factflow_status_does(
    client: TestClient, warehouse_url: str, tmp_path: Path
) -> None:
    status = client.get("/api/status", headers=BEARER).json()
    printed = cli_json(
        "status",
        "--warehouse",
        warehouse_url,
        "--transport",
        f"log:///{tmp_path}/log",
        "--format",
        "json",
    )
    by_type = {row["event_type"]: row for row in printed["pipelines"]}
    assert status["warehouse"] == "ok"
    assert status["events"] == sum(row["events"] for row in by_type.values())
    assert status["dead_letters"] == 16  # 2 % of 800 bad lines
    assert status["last_event_at"] == max(row["last_event_at"] for row in by_type.values())
    for row in status["event_types"]:
        if row["event_type"] in by_type:
            assert row["events"] == by_type[row["event_type"]]["events"]
    assert status["events_per_second"] is None  # one look: no rate yet


def test_events_per_second_come_from_the_totals_over_time() -> None:
    from factflow.insight.dashboard._status import Throughput

    now = [100.0]
    throughput = Throughput(window=60.0, clock=lambda: now[0])
    assert throughput.observe(1000) is None
    now[0] += 0.5
    assert throughput.observe(1010) is None  # too soon to tell
    now[0] += 9.5
    assert throughput.observe(1500) == 50.0
    now[0] += 100  # the window moved on: the rate is over the last looks only
    assert throughput.observe(1500) == 0.0
    now[0] += 10
    assert throughput.observe(100) is None  # fewer events than before: a new warehouse


def test_a_warehouse_that_is_not_filled_yet_shows_nothing_processed(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    DuckDBWarehouse(path).close()
    dashboard = create_app(
        app, lambda: open_warehouse(f"duckdb:///{path}", read_only=True), token=TOKEN
    )
    with TestClient(dashboard) as client:
        status = client.get("/api/status", headers=BEARER).json()
    assert (status["warehouse"], status["events"], status["dead_letters"]) == ("ok", 0, 0)
    assert status["last_event_at"] is None


# -- a busy or missing warehouse -----------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from factflow.warehouse.duckdb import DuckDBWarehouse
    store = DuckDBWarehouse(sys.argv[1])
    print("holding", flush=True)
    sys.stdin.read()
    store.close()
    """
)


def test_while_a_writer_holds_the_duckdb_file_the_dashboard_says_busy_and_recovers(
    client: TestClient, warehouse_url: str
) -> None:
    path = warehouse_url.removeprefix("duckdb:///")
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "holding"
        busy = client.get(KPI, headers=BEARER)
        assert busy.status_code == 503
        assert busy.json()["warehouse"] == "busy"
        assert "busy" in busy.json()["error"] and "PostgreSQL" in busy.json()["error"]
        status = client.get("/api/status", headers=BEARER)
        assert status.status_code == 200
        assert status.json()["warehouse"] == "busy"
    finally:
        writer.communicate("", timeout=30)
    assert client.get(KPI, headers=BEARER).status_code == 200


def test_a_missing_warehouse_is_unavailable_with_what_to_do(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path}/none.duckdb"
    dashboard = create_app(app, lambda: open_warehouse(url, read_only=True), token=TOKEN)
    with TestClient(dashboard) as client:
        missing = client.get(KPI, headers=BEARER)
        status = client.get("/api/status", headers=BEARER).json()
    assert missing.status_code == 503
    assert missing.json()["warehouse"] == "unavailable"
    assert "fill it first" in missing.json()["error"]
    assert status["warehouse"] == "unavailable" and "fill it first" in status["message"]


@pytest.mark.postgres
def test_a_postgres_warehouse_keeps_its_connections_and_answers_alike(tmp_path: Path) -> None:
    with filled_warehouse("postgres", tmp_path) as url:
        dashboard = create_app(
            app, lambda: open_warehouse(url, read_only=True), token=TOKEN, keep_open=True
        )
        with TestClient(dashboard) as client:
            for name in app.kpis:
                body = client.get(f"/api/kpi/{name}", headers=BEARER).json()
                printed = cli_json("kpi", name, "--warehouse", url, "--format", "json")
                assert body["rows"] == printed["rows"], name
            assert client.get("/api/status", headers=BEARER).json()["events"] == 800


# -- the command ---------------------------------------------------------------------------


def test_serve_is_a_command_with_its_options() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--app", "--warehouse", "--host", "--port", "--headline"):
        assert option in result.output


def test_serve_refuses_a_missing_warehouse_before_listening(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["serve", "--warehouse", f"duckdb:///{tmp_path}/none.duckdb", "--port", "0"]
    )
    assert result.exit_code == 1
    assert "fill it first" in result.output


def test_serve_refuses_an_unknown_headline(warehouse_url: str) -> None:
    result = CliRunner().invoke(
        main, ["serve", "--warehouse", warehouse_url, "--headline", "nope", "--port", "0"]
    )
    assert result.exit_code == 1
    assert "no KPI 'nope'" in result.output and "spend_by_segment" in result.output


def test_serve_refuses_an_empty_token(warehouse_url: str) -> None:
    result = CliRunner(env={"FACTFLOW_TOKEN": " "}).invoke(
        main, ["serve", "--warehouse", warehouse_url, "--port", "0"]
    )
    assert result.exit_code == 2
    assert "FACTFLOW_TOKEN is empty" in result.output


def test_serve_says_when_its_port_is_taken(warehouse_url: str) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            main, ["serve", "--warehouse", warehouse_url, "--port", str(port)]
        )
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "--port" in result.output


def test_serve_without_factflow_token_prints_the_address_with_a_token_of_its_own(
    warehouse_url: str, tmp_path: Path
) -> None:
    environment = {k: v for k, v in os.environ.items() if k != "FACTFLOW_TOKEN"}
    with subprocess.Popen(
        [sys.executable, "-m", "factflow", "serve", "--warehouse", warehouse_url, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
        cwd=tmp_path,
    ) as server:
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            found = re.search(r"(http://127\.0\.0\.1:\d+/)\?token=(\S+)", line)
            assert found, line
            address, token = found.groups()
            assert len(token) >= 32
            deadline = time.monotonic() + 30
            while True:
                try:
                    request = urllib.request.Request(
                        f"{address}api/kpis", headers={"Authorization": f"Bearer {token}"}
                    )
                    with urllib.request.urlopen(request, timeout=5) as answer:
                        assert json.load(answer)["headline"] == "travel_card_foreign_visa_users"
                        break
                except urllib.error.URLError:
                    assert time.monotonic() < deadline, "factflow serve did not answer"
                    time.sleep(0.2)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{address}api/kpis", timeout=5)
            assert refused.value.code == 401
            refused.value.close()
        finally:
            server.terminate()
            server.communicate(timeout=30)


def test_serve_without_its_extra_says_how_to_install_it(
    warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m.startswith("factflow.insight.dashboard")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "plotly.offline", None)  # as if not installed
    result = CliRunner().invoke(main, ["serve", "--warehouse", warehouse_url, "--port", "0"])
    assert result.exit_code == 1
    assert "the dashboard needs plotly: pip install 'factflow[dashboard]'" in result.output
