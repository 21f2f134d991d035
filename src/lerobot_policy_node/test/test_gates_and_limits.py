"""Safety gates on proposals, and the bounds they are derived from (URDF limits, dataset action deltas).

Both directions are tested: real faults are caught (NaN, a limit overrun, a far first row, a boundary jump) and
clean chunks pass (consecutive chunks cut from smooth demonstration-like motions, with the timing and noise a
policy's chunks have, never trip the jump bound derived from those demonstrations).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from policy_runtime_testlib import make_interface  # noqa: E402

from lerobot_policy_node.runtime.action_queue import ActionQueue  # noqa: E402
from lerobot_policy_node.runtime.errors import ConfigurationError  # noqa: E402
from lerobot_policy_node.runtime.gates import GateConfig, SafetyGates, TripKind  # noqa: E402
from lerobot_policy_node.runtime.limits import (  # noqa: E402
    StepBoundConfig, action_limits, step_bound_from_dataset, step_bound_from_episodes, urdf_joint_limits,
)

NAMES = ("a.pos", "b.pos")
URDF = """<robot name="t">
  <link name="base"/><link name="l1"/><link name="l2"/><link name="l3"/>
  <joint name="a" type="revolute"><parent link="base"/><child link="l1"/>
    <limit lower="-1.5" upper="1.0" effort="10" velocity="10"/></joint>
  <joint name="b" type="continuous"><parent link="l1"/><child link="l2"/></joint>
  <joint name="fixed" type="fixed"><parent link="l2"/><child link="l3"/></joint>
</robot>"""


def proposal_with_overlap(new_rows, old_rows, delay=2):
    queue = ActionQueue(2)
    queue.commit(queue.propose(np.asarray(old_rows, float), -1, 0, -2))  # old plan at ticks 0..
    return queue.propose(np.asarray(new_rows, float), 3, 3 + delay, 3 + delay - 1)


def fresh_proposal(rows):
    return ActionQueue(2).propose(np.asarray(rows, float), 0, 1, 0)


def test_non_finite_actions_are_held():
    rows = np.zeros((5, 2))
    rows[3, 1] = np.nan
    report = SafetyGates(GateConfig(NAMES)).check(fresh_proposal(rows), None)
    assert report.hold and report.trips[0].kind == TripKind.NON_FINITE and "b.pos" in report.trips[0].message


@pytest.mark.parametrize("action", ["clamp", "hold"])
def test_out_of_limit_actions_are_clamped_or_held(action):
    rows = np.array([[0.0, 0.0], [10.0, 0.0], [30.0, -5.0]])
    gates = SafetyGates(GateConfig(NAMES, lower=np.array([-20.0, -1.0]), upper=np.array([20.0, 1.0]),
                                   limit_action=action))
    proposal = fresh_proposal(rows)
    report = gates.check(proposal, None)
    assert [t.kind for t in report.trips] == [TripKind.OUT_OF_LIMITS]
    assert "a.pos 10" in report.trips[0].message and "b.pos 4" in report.trips[0].message
    assert report.hold == (action == "hold")
    if action == "clamp":
        assert np.array_equal(proposal.executed[-1], [20.0, -1.0])
    # Inside the limits nothing trips.
    assert not gates.check(fresh_proposal(np.clip(rows, -1, 1)), None).trips


def test_first_row_far_from_the_measured_state_is_held():
    gates = SafetyGates(GateConfig(NAMES, max_first_row_deviation=15.0, state_index=np.array([1, -1])))
    state = np.array([0.0, 50.0])  # state order: b, a (only b is compared to action a here by index 1)
    far = gates.check(fresh_proposal([[70.0, 0.0], [71.0, 0.0]]), state)
    assert far.hold and far.trips[0].kind == TripKind.FIRST_ROW and "a.pos 20" in far.trips[0].message
    assert not gates.check(fresh_proposal([[60.0, 999.0]]), state).trips  # b has no state entry: not compared


def test_boundary_jump_is_caught_and_clamp_limits_every_step():
    old = np.array([[float(k), 0.0] for k in range(20)])
    new = old[3:].copy() + [12.0, 0.0]  # the new chunk is offset by 12 from the old plan it replaces
    proposal = proposal_with_overlap(new, old, delay=2)
    gates = SafetyGates(GateConfig(NAMES, max_step=np.array([2.0, 2.0])))
    report = gates.check(proposal, None)
    assert [(t.kind, t.clamped) for t in report.trips] == [(TripKind.BOUNDARY_JUMP, True)]
    executed = proposal.executed
    assert executed[0, 0] - proposal.overlap[0, 0] == pytest.approx(2.0)  # the discontinuity is cut to the bound
    steps = np.diff(np.vstack([proposal.previous_row, executed]), axis=0)
    assert np.all(steps[:, 0] <= 1.0 + 2.0 + 1e-9)  # never more than the chunk's own step plus the bound
    assert np.allclose(executed[6:], proposal.chunk[proposal.skip + 6:])  # then it has caught up with the chunk
    hold = SafetyGates(GateConfig(NAMES, max_step=np.array([2.0, 2.0]), jump_action="hold"))
    assert hold.check(proposal_with_overlap(new, old), None).hold


def demonstrations(seed=0, episodes=8, frames=150, fps=30):
    """Smooth reaching motions with sensor noise, like teleoperated SO-101 demonstrations (degrees)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(episodes):
        t = np.arange(frames) / fps
        targets = rng.uniform(-60, 60, size=2)
        duration = rng.uniform(2.0, 4.0)
        s = np.clip(t / duration, 0, 1)
        profile = 10 * s**3 - 15 * s**4 + 6 * s**5  # minimum-jerk
        out.append(profile[:, None] * targets[None, :] + rng.normal(0, 0.05, size=(frames, 2)))
    return out


def test_clean_chunks_pass_the_jump_bound_derived_from_the_demonstrations_and_real_jumps_trip_it():
    episodes = demonstrations()
    bound = step_bound_from_episodes(episodes)
    gates = SafetyGates(GateConfig(NAMES, max_step=bound))
    rng = np.random.default_rng(1)
    clean_trips = 0
    checked = 0
    for episode in demonstrations(seed=7):
        # Old chunk from frame i, new chunk from frame i + 5 (a 5-row delay); each is the demonstration itself with
        # a policy-like error: a timing error of up to a frame and a little noise.
        for i in range(0, len(episode) - 40, 7):
            def policy_chunk(start):
                shift = rng.uniform(-1.0, 1.0)
                index = np.clip(np.arange(start, start + 30) + shift, 0, len(episode) - 1)
                rows = np.stack([np.interp(index, np.arange(len(episode)), episode[:, j]) for j in range(2)], axis=1)
                return rows + rng.normal(0, 0.1, size=rows.shape)

            old, new = policy_chunk(i), policy_chunk(i + 5)
            queue = ActionQueue(2)
            queue.commit(queue.propose(old, i - 1, i, i - 2))
            proposal = queue.propose(new, i + 5, i + 10, i + 9)
            checked += 1
            clean_trips += bool(gates.check(proposal, None).trips)
            # The same pair with a real jump (the new chunk 8 x the bound away) is caught.
            jumped = queue.propose(new + 8 * bound, i + 5, i + 10, i + 9)
            assert gates.check(jumped, None).trips[0].kind == TripKind.BOUNDARY_JUMP
    assert checked > 100 and clean_trips == 0


def test_step_bound_formula_and_floor():
    still = np.zeros((50, 2))
    still[:, 0] = np.linspace(0, 49, 50)  # a moves 1 per tick; b never moves
    bound = step_bound_from_episodes([still], StepBoundConfig(percentile=100, factor=3, floor_fraction=0.01))
    # a: 3 x its per-tick motion; b never moved: 3 x 1 % of the largest range (a's 49).
    assert bound[0] == pytest.approx(3.0) and bound[1] == pytest.approx(3 * 0.49)
    assert step_bound_from_episodes([np.zeros((5, 2))]).min() > 0  # nothing moved: still a positive bound
    with pytest.raises(ConfigurationError, match="two frames"):
        step_bound_from_episodes([np.zeros((1, 2))])


def test_urdf_limits_become_dataset_unit_limits():
    limits = urdf_joint_limits(URDF)
    assert limits == {"a": (-1.5, 1.0)}  # continuous and fixed joints have no position limit
    lower, upper = action_limits(make_interface(), limits)
    assert np.allclose(lower, [math.degrees(-1.5), -np.inf]) and np.allclose(upper, [math.degrees(1.0), np.inf])


def test_urdf_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot read"):
        urdf_joint_limits(tmp_path / "absent.urdf")
    with pytest.raises(ConfigurationError, match="not valid XML"):
        urdf_joint_limits("<robot><joint></robot>")
    with pytest.raises(ConfigurationError, match="lower limit 2.0 > upper 1.0"):
        urdf_joint_limits('<robot><joint name="j" type="revolute"><limit lower="2" upper="1"/></joint></robot>')


def test_step_bound_from_a_real_dataset(tmp_path):
    from lerobot_dataset import LeRobotDatasetWriter

    features = {"action": {"dtype": "float32", "shape": (2,), "names": list(NAMES)},
                "observation.state": {"dtype": "float32", "shape": (2,), "names": list(NAMES)}}
    writer = LeRobotDatasetWriter.create(tmp_path / "ds", fps=30, features=features, use_videos=False)
    episodes = demonstrations(episodes=2, frames=40)
    for episode in episodes:
        for row in episode.astype(np.float32):
            writer.add_frame({"action": row, "observation.state": row}, task="reach")
        writer.save_episode()
    writer.close()
    bound = step_bound_from_dataset(tmp_path / "ds")
    assert np.allclose(bound, step_bound_from_episodes([e.astype(np.float32) for e in episodes]), rtol=1e-5)
    with pytest.raises(ConfigurationError, match="cannot read it"):
        step_bound_from_dataset(tmp_path / "nothing")
