"""Guarantees 2 and 3 as a property: any permutation of a stream, with any duplicates, in any
batching, gives the same warehouse."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factflow.examples.banking.simulator import SimulationOptions, simulate
from model_dump import dump_model

STREAM = list(simulate(SimulationOptions(events=60, seed=3, republications=0.1, bad_lines=0.05)))
REFERENCE = dump_model(STREAM, batch_size=len(STREAM))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    order=st.permutations(STREAM),
    duplicates=st.lists(st.sampled_from(STREAM), max_size=20),
    batch_size=st.integers(min_value=1, max_value=len(STREAM)),
    data=st.data(),
)
def test_any_permutation_with_any_duplicates_gives_the_same_warehouse(
    order: list[bytes], duplicates: list[bytes], batch_size: int, data: st.DataObject
) -> None:
    arriving = list(order)
    for duplicate in duplicates:
        arriving.insert(data.draw(st.integers(0, len(arriving))), duplicate)
    assert dump_model(arriving, batch_size=batch_size) == REFERENCE
