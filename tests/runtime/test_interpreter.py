import gc
import sys

import pyarrow as pa
import pytest

from factflow.runtime.interpreter import (
    BATCH_GC_THRESHOLDS,
    BATCH_SWITCH_INTERVAL,
    tuned_for_batches,
)


def test_batch_settings_hold_inside_and_are_put_back_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    before = gc.get_threshold(), sys.getswitchinterval(), pa.default_memory_pool().backend_name
    with tuned_for_batches():
        assert gc.get_threshold() == BATCH_GC_THRESHOLDS
        assert sys.getswitchinterval() == pytest.approx(BATCH_SWITCH_INTERVAL)
        assert gc.get_freeze_count() > 0
        assert pa.default_memory_pool().backend_name == "system"
        kept = pa.array(["made inside the batch loop"])
    assert (gc.get_threshold(), sys.getswitchinterval()) == before[:2]
    assert pa.default_memory_pool().backend_name == before[2]
    assert gc.get_freeze_count() == 0
    assert kept.to_pylist() == ["made inside the batch loop"]  # still valid in its own pool


def test_an_arrow_memory_pool_named_in_the_environment_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "mimalloc")
    before = pa.default_memory_pool().backend_name
    with tuned_for_batches():
        assert pa.default_memory_pool().backend_name == before


def test_settings_are_put_back_when_the_batch_loop_fails() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), tuned_for_batches():
        raise RuntimeError("the warehouse is gone")
    assert gc.get_threshold() == before
