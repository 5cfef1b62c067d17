"""Read-only warehouses for the dashboard's requests, and why one cannot answer now."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

from factflow.errors import ConfigurationError, WarehouseUnavailable
from factflow.warehouse.base import Warehouse

__all__ = ["Readers", "WarehouseUnready", "probe"]

#: What the page shows while a writer holds a DuckDB file.
BUSY = (
    "the warehouse is busy: a writer (factflow run, bootstrap, rebuild or dlq replay) holds the "
    "DuckDB file, and DuckDB lets no other process read it meanwhile. Answers come back when it "
    "lets go; for a dashboard beside a running service, use PostgreSQL."
)


class WarehouseUnready(Exception):
    """The warehouse cannot answer now: `state` is ``busy`` (a writer holds the DuckDB file) or
    ``unavailable`` (not there, not reachable); `message` says what to do."""

    def __init__(self, state: Literal["busy", "unavailable"], message: str) -> None:
        super().__init__(message)
        self.state = state
        self.message = message


class Readers:
    """Warehouses opened read-only by `open_reader`, one per request at a time.

    With `keep_open=False` (DuckDB) each request opens the warehouse and closes it right after:
    a process holding a DuckDB file open, even read-only, keeps its writer (`factflow run`)
    from opening it. With `keep_open=True` (PostgreSQL) up to `size` connections are kept and
    reused, so that a page of KPIs does not pay for a connection each.
    """

    def __init__(
        self, open_reader: Callable[[], Warehouse], *, keep_open: bool, size: int = 4
    ) -> None:
        self._open_reader = open_reader
        self._keep_open = keep_open
        self._idle: queue.SimpleQueue[Warehouse] = queue.SimpleQueue()
        # More requests than connections wait for one instead of opening more.
        self._slots = threading.BoundedSemaphore(size)

    @contextmanager
    def reading(self) -> Iterator[Warehouse]:
        """A read-only warehouse for one request.

        Raises:
            WarehouseUnready: it cannot be opened now (busy or unavailable), or the connection
                was lost while answering.
        """
        with self._slots:
            store = self._take()
            keep = self._keep_open
            try:
                yield store
            except WarehouseUnavailable as error:
                keep = False  # its connection may be broken: the next request opens another
                raise WarehouseUnready("unavailable", str(error)) from None
            finally:
                if keep:
                    self._idle.put(store)
                else:
                    store.close()

    def close(self) -> None:
        """Close the connections kept open."""
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    def _take(self) -> Warehouse:
        if self._keep_open:
            try:
                return self._idle.get_nowait()
            except queue.Empty:
                pass
        try:
            return self._open_reader()
        except WarehouseUnavailable as error:
            raise WarehouseUnready("unavailable", str(error)) from None
        except ConfigurationError as error:
            if _held_by_writer(error):
                raise WarehouseUnready("busy", BUSY) from None
            raise WarehouseUnready("unavailable", str(error)) from None


def _held_by_writer(error: ConfigurationError) -> bool:
    # DuckDB says "Could not set lock on file … Conflicting lock is held in …" when another
    # process has the file open for writing; there is no error class of its own to test for.
    return "lock" in str(error).lower()


def probe(open_reader: Callable[[], Warehouse]) -> WarehouseUnready | None:
    """Open the warehouse and ask it one thing: None when it answers, else why it cannot now
    (busy, unreachable: worth waiting for).

    Raises:
        ConfigurationError: a wrong URL, a file that is not there: no use waiting.
    """
    try:
        store = open_reader()
    except WarehouseUnavailable as error:
        return WarehouseUnready("unavailable", str(error))
    except ConfigurationError as error:
        if _held_by_writer(error):
            return WarehouseUnready("busy", BUSY)
        raise
    try:
        store.read("SELECT 1")  # PostgreSQL connects on first use
    except WarehouseUnavailable as error:
        return WarehouseUnready("unavailable", str(error))
    finally:
        store.close()
    return None
