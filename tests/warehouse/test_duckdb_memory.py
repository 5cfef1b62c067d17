"""DuckDB's memory cap: smaller for a writer (its cache would grow with the data and a bootstrap
touches mostly recent row groups), larger for queries, and the URL's choice wins. A writer's
threads leave a core to the decoding of the next batch; a write past the cap stops with advice."""

from pathlib import Path

import pytest

from factflow.errors import ConfigurationError
from factflow.examples.banking import app
from factflow.runtime.columnar import ColumnarProcessor
from factflow.testing import envelope
from factflow.warehouse.duckdb import DuckDBWarehouse


def setting(warehouse: DuckDBWarehouse, name: str) -> str:
    return str(warehouse.query(f"SELECT current_setting('{name}')").rows[0][0])


def test_a_writer_caps_duckdb_at_128_mb_and_a_reader_at_256_mb(tmp_path: Path) -> None:
    path = tmp_path / "kpi.duckdb"
    with DuckDBWarehouse(path) as writer:
        assert setting(writer, "memory_limit") == "122.0 MiB"  # 128 MB
    with DuckDBWarehouse(path, read_only=True) as reader:
        assert setting(reader, "memory_limit") == "244.1 MiB"  # 256 MB


def test_a_memory_limit_given_is_kept_for_writing_and_reading(tmp_path: Path) -> None:
    path = tmp_path / "kpi.duckdb"
    with DuckDBWarehouse(path, memory_limit="1GB") as writer:
        assert setting(writer, "memory_limit") == "953.6 MiB"
    with DuckDBWarehouse(path, read_only=True, memory_limit="1GB") as reader:
        assert setting(reader, "memory_limit") == "953.6 MiB"


@pytest.mark.parametrize(("cores", "writer_threads"), [(1, 1), (2, 1), (8, 7)])
def test_a_writer_leaves_one_core_to_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cores: int, writer_threads: int
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    with DuckDBWarehouse(tmp_path / "kpi.duckdb") as writer:
        assert setting(writer, "threads") == str(writer_threads)


def test_a_write_past_the_memory_cap_stops_saying_what_to_raise() -> None:
    """Retrying cannot help (the cap is the process's own), so it is not a warehouse that is
    down. DuckDB refuses everything after a failed statement until the transaction is rolled
    back: the write's clean-up must not hide the statement's error either."""
    users = [
        envelope("user.user_created", {"user_id": f"u-{i}", "country": "DK", "segment": "plus"})
        for i in range(20_000)
    ]
    with DuckDBWarehouse(None, memory_limit="2MB") as store:
        store.prepare(app.schema)
        with pytest.raises(ConfigurationError, match=r"raise its memory_limit .*Out of Memory"):
            store.write(ColumnarProcessor(app).process(users))
