"""The interpreter tuned for batch work: fewer garbage collections, shorter thread switches,
Arrow memory given back once freed.

The settings are process-wide, so they hold only while a batch loop runs and are put back after.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa

__all__ = [
    "BATCH_GC_THRESHOLDS",
    "BATCH_SWITCH_INTERVAL",
    "batch_memory_pool",
    "tuned_for_batches",
]

#: A batch allocates hundreds of thousands of short-lived, acyclic objects (envelopes, rows,
#: tuples). With the default thresholds the cyclic collector runs every 700 allocations and its
#: older generations walk every live object again and again: 30 % of the bootstrap of a million
#: events. Reference counting frees these objects anyway, so the collector may run far less
#: often: a young collection then looks at about a batch of objects.
BATCH_GC_THRESHOLDS = (50_000, 20, 100)

#: The warehouse writes on its own thread, mostly outside the interpreter lock, but it needs the
#: lock back between statements. With the default 5 ms switch interval it waits for the busy
#: decoding thread every time (a lock convoy): writing took 2.7 times as long as on its own.
BATCH_SWITCH_INTERVAL = 0.0002


def batch_memory_pool() -> pa.MemoryPool:
    """The Arrow memory pool for batch work: the C heap, unless `ARROW_DEFAULT_MEMORY_POOL`
    names one.

    Parsing a batch briefly takes several times the batch's size; Arrow's default pool
    (mimalloc) keeps those pages once freed, the C heap gives large blocks back at once: with
    batches of 10^5 events the bootstrap's peak memory was 680 MiB against 540 MiB, in the same
    time.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return pa.default_memory_pool()
    return pa.system_memory_pool()


@contextmanager
def tuned_for_batches() -> Iterator[None]:
    """While inside, collect garbage rarely, hand the interpreter lock over promptly and give
    Arrow's memory back once freed."""
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    pool = pa.default_memory_pool()
    # What is alive now (modules, the app, the warehouse) lives as long as the run: exempt it
    # from collections instead of walking it each time an older generation is collected.
    gc.freeze()
    gc.set_threshold(*BATCH_GC_THRESHOLDS)
    sys.setswitchinterval(BATCH_SWITCH_INTERVAL)
    # Buffers keep the pool they came from: switching back frees them where they belong.
    pa.set_memory_pool(batch_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(pool)
        sys.setswitchinterval(interval)
        gc.set_threshold(*thresholds)
        gc.unfreeze()
