import gc
import sys

import pytest

from factflow.runtime.interpreter import (
    BATCH_GC_THRESHOLDS,
    BATCH_SWITCH_INTERVAL,
    tuned_for_batches,
)


def test_batch_settings_hold_inside_and_are_put_back_after() -> None:
    before = gc.get_threshold(), sys.getswitchinterval()
    with tuned_for_batches():
        assert gc.get_threshold() == BATCH_GC_THRESHOLDS
        assert sys.getswitchinterval() == pytest.approx(BATCH_SWITCH_INTERVAL)
        assert gc.get_freeze_count() > 0
    assert (gc.get_threshold(), sys.getswitchinterval()) == before
    assert gc.get_freeze_count() == 0


def test_settings_are_put_back_when_the_batch_loop_fails() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), tuned_for_batches():
        raise RuntimeError("the warehouse is gone")
    assert gc.get_threshold() == before
