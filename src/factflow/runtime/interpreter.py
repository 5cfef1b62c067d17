"""The interpreter tuned for batch work: fewer garbage collections, shorter thread switches.

Both settings are process-wide, so they hold only while a batch loop runs and are put back after.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["BATCH_GC_THRESHOLDS", "BATCH_SWITCH_INTERVAL", "tuned_for_batches"]

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


@contextmanager
def tuned_for_batches() -> Iterator[None]:
    """While inside, collect garbage rarely and hand the interpreter lock over promptly."""
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    # What is alive now (modules, the app, the warehouse) lives as long as the run: exempt it
    # from collections instead of walking it each time an older generation is collected.
    gc.freeze()
    gc.set_threshold(*BATCH_GC_THRESHOLDS)
    sys.setswitchinterval(BATCH_SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*thresholds)
        gc.unfreeze()
