"""DuckDB's memory cap: smaller for a writer (its cache would grow with the data and a bootstrap
touches mostly recent row groups), larger for queries, and the URL's choice wins."""

from pathlib import Path

from factflow.warehouse.duckdb import DuckDBWarehouse


def memory_limit(warehouse: DuckDBWarehouse) -> str:
    return str(warehouse.query("SELECT current_setting('memory_limit')").rows[0][0])


def test_a_writer_caps_duckdb_at_128_mb_and_a_reader_at_256_mb(tmp_path: Path) -> None:
    path = tmp_path / "kpi.duckdb"
    with DuckDBWarehouse(path) as writer:
        assert memory_limit(writer) == "122.0 MiB"  # 128 MB
    with DuckDBWarehouse(path, read_only=True) as reader:
        assert memory_limit(reader) == "244.1 MiB"  # 256 MB


def test_a_memory_limit_given_is_kept_for_writing_and_reading(tmp_path: Path) -> None:
    path = tmp_path / "kpi.duckdb"
    with DuckDBWarehouse(path, memory_limit="1GB") as writer:
        assert memory_limit(writer) == "953.6 MiB"
    with DuckDBWarehouse(path, read_only=True, memory_limit="1GB") as reader:
        assert memory_limit(reader) == "953.6 MiB"
