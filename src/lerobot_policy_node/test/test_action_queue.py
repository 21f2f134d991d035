"""ActionQueue: placing chunks on control ticks, the skip rule (upstream PR #4454), aggregation, sampling."""
from __future__ import annotations

import numpy as np
import pytest

from lerobot_policy_node.runtime.action_queue import AGGREGATE_OLD_WEIGHTS, ActionQueue, aggregate_old_weight
from lerobot_policy_node.runtime.ticks import ControlTicks


def ramp(rows: int, start: float, dim: int = 2) -> np.ndarray:
    return start + np.arange(rows, dtype=np.float64)[:, None] * np.ones((1, dim))


def queue_with_plan(first_tick: int, rows: np.ndarray) -> ActionQueue:
    queue = ActionQueue(rows.shape[1])
    queue.commit(queue.propose(rows, first_tick - 1, first_tick, first_tick - 2))  # nothing executed: skip 0
    return queue


def test_first_chunk_is_executed_from_row_zero_however_long_inference_took():
    queue = ActionQueue(2)
    chunk = ramp(30, 0.0)
    # Observation at tick 0, merged at tick 21 (0.7 s at 30 fps): nothing was executed meanwhile.
    proposal = queue.propose(chunk, observation_tick=0, switch_tick=21, executed_until_tick=20)
    assert proposal.delay_rows == 21 and proposal.executed_rows == 0 and proposal.skip == 0
    assert proposal.row0_tick == 21 and len(proposal.overlap) == 0 and proposal.previous_row is None
    queue.commit(proposal)
    assert np.array_equal(queue.row(21), chunk[0]) and queue.last_tick == 50


def test_steady_async_skips_the_measured_delay():
    queue = queue_with_plan(0, ramp(30, 0.0))  # old plan at ticks 0..29
    new = ramp(30, 100.0)
    proposal = queue.propose(new, observation_tick=10, switch_tick=14, executed_until_tick=13)
    assert (proposal.delay_rows, proposal.executed_rows, proposal.skip) == (4, 4, 4)
    assert proposal.row0_tick == 10  # nominal alignment: row k is the k-th step from the observation
    assert np.array_equal(proposal.overlap, ramp(16, 14.0))  # old rows at ticks 14..29
    assert np.array_equal(proposal.previous_row, [13.0, 13.0])
    queue.commit(proposal)
    assert np.array_equal(queue.row(13), [13.0, 13.0])  # history kept
    assert np.array_equal(queue.row(14), new[4]) and queue.last_tick == 14 + 26 - 1


def test_a_plan_that_ran_out_during_inference_skips_only_what_was_executed():
    queue = queue_with_plan(0, ramp(12, 0.0))  # ticks 0..11
    proposal = queue.propose(ramp(30, 50.0), observation_tick=9, switch_tick=19, executed_until_tick=18)
    # Measured delay 10 rows, but only ticks 9, 10, 11 had rows: skipping 10 would jump 7 rows ahead.
    assert (proposal.delay_rows, proposal.executed_rows, proposal.skip) == (10, 3, 3)
    assert proposal.row0_tick == 16 and len(proposal.overlap) == 0


def test_rows_the_executor_did_not_confirm_are_not_skipped():
    queue = queue_with_plan(0, ramp(30, 0.0))
    proposal = queue.propose(ramp(30, 50.0), observation_tick=10, switch_tick=16, executed_until_tick=11)
    assert (proposal.delay_rows, proposal.executed_rows, proposal.skip) == (6, 2, 2)


@pytest.mark.parametrize("name", sorted(AGGREGATE_OLD_WEIGHTS))
def test_aggregation_blends_overlapping_rows_with_upstreams_weights(name):
    old_weight = aggregate_old_weight(name)
    queue = queue_with_plan(0, ramp(10, 0.0))  # ticks 0..9
    new = ramp(10, 100.0)
    proposal = queue.propose(new, observation_tick=5, switch_tick=7, executed_until_tick=6, old_weight=old_weight)
    assert proposal.skip == 2
    executed = proposal.executed  # ticks 7.. ; the old plan has rows at 7, 8, 9
    expected_overlap = old_weight * ramp(3, 7.0) + (1 - old_weight) * new[2:5]
    assert np.allclose(executed[:3], expected_overlap)
    assert np.array_equal(executed[3:], new[5:])  # past the old plan's end: the new rows


def test_unknown_aggregate_function_is_named():
    with pytest.raises(ValueError, match="weighted_average"):
        aggregate_old_weight("median")


def test_sampling_interpolates_between_ticks_and_stops_after_the_plan():
    ticks = ControlTicks(10, anchor_ns=1_000_000_000)
    queue = queue_with_plan(2, ramp(3, 0.0))  # ticks 2, 3, 4 -> 0, 1, 2
    assert queue.sample(ticks.time_ns(1), ticks) is None
    assert np.allclose(queue.sample(ticks.time_ns(2) + 25_000_000, ticks), [0.25, 0.25])
    assert np.allclose(queue.sample(ticks.time_ns(4) + 50_000_000, ticks), [2.0, 2.0])  # last row holds a tick
    assert queue.sample(ticks.time_ns(5), ticks) is None
    assert queue.remaining_after(2) == 2 and queue.remaining_after(4) == 0
    assert queue.rows_from(3, 10).shape == (2, 2) and queue.rows_from(7, 10).shape == (0, 2)


def test_ticks_are_exact_integer_times():
    ticks = ControlTicks(30, anchor_ns=5)
    for n in (-3, 0, 1, 29, 30, 31, 10_000):
        t = ticks.time_ns(n)
        assert ticks.tick_at_or_before(t) == n and ticks.tick_at_or_before(t - 1) == n - 1
        assert ticks.first_tick_after(t) == n + 1


def test_bad_chunks_and_switch_ticks_are_refused():
    queue = ActionQueue(2)
    with pytest.raises(ValueError, match="shape"):
        queue.propose(np.zeros((5, 3)), 0, 1, 0)
    with pytest.raises(ValueError, match="not after"):
        queue.propose(np.zeros((5, 2)), 4, 4, 3)
