"""The background asyncio event loop the synchronous API runs the client's coroutines in."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["EventLoop"]

T = TypeVar("T")


class EventLoop:
    """An asyncio loop in a daemon thread, for the synchronous API to call into."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="factflow-nats", daemon=True
        )
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None) -> T:
        """The result of `coroutine`, run in the loop; `TimeoutError` after `timeout` seconds."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        # Not `future.result(timeout)`: the coroutine's own TimeoutError would look the same.
        concurrent.futures.wait([future], timeout)
        if not future.done():
            future.cancel()
            raise TimeoutError(f"no result within {timeout} s")
        return future.result()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        with contextlib.suppress(TimeoutError, RuntimeError):
            self.run(_cancel_other_tasks(), 5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()


async def _cancel_other_tasks() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
