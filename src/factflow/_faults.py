"""Fault points for factflow's own reliability suite (tests/reliability); inert unless the
environment variable ``FACTFLOW_FAULT`` is set when factflow is imported.

``FACTFLOW_FAULT=<point>:<n>`` makes the process kill itself with SIGKILL the `n`-th time
(counting from 1) it reaches `<point>`, so that a test can prove what a crash at exactly that
moment leaves behind:

* ``write-before-commit``: the PostgreSQL warehouse ran every statement of a batch's
  transaction and has not sent COMMIT yet;
* ``commit-before-ack``: a batch is committed, its acknowledgement to the transport not sent.

It is a test hook, not a feature: an unset or empty variable makes `reached` return at once.
"""

from __future__ import annotations

import os
import signal

__all__ = ["reached"]


def _plan(setting: str) -> tuple[str, int] | None:
    point, _, count = setting.partition(":")
    if not point:
        return None
    return point, int(count or 1)


# Read once: the point to die at and at which arrival, and the arrivals counted so far.
_PLAN = _plan(os.environ.get("FACTFLOW_FAULT", ""))
_arrivals = [0]


def reached(point: str) -> None:
    """Note that the process is at `point`; SIGKILL itself if ``FACTFLOW_FAULT`` says so."""
    if _PLAN is None or _PLAN[0] != point:
        return
    _arrivals[0] += 1
    if _arrivals[0] == _PLAN[1]:
        os.kill(os.getpid(), signal.SIGKILL)
