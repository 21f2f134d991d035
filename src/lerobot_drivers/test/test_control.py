"""ROS-free control core: units, command validation, trajectory sampling, clamp, watchdog, source switching."""
import math

import numpy as np
import pytest

from lerobot_drivers.control import (
    CommandRejected, GoalController, JointPositionCommand, JointTrajectoryCommand, JointUnit, PositionLimit,
    RelativeTargetLimit, UnitMap, VelocityLimit, trajectory_from_action_chunk,
)
from lerobot_drivers.control.commands import JointNameResolver
from lerobot_drivers.control.controller import GoalSource
from lerobot_drivers.control.loop_stats import Backoff, LoopStats

NAMES = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
MODES = {n: "degrees" for n in NAMES[:-1]} | {"gripper": "range_0_100"}


@pytest.fixture
def resolver():
    return JointNameResolver(NAMES)


def test_units_degrees_to_radians_and_gripper_to_fraction():
    units = UnitMap.from_modes(MODES)
    ros = units.to_ros([90.0, -45.0, 0.0, 180.0, 30.0, 50.0])
    np.testing.assert_allclose(ros, [math.pi / 2, -math.pi / 4, 0.0, math.pi, math.pi / 6, 0.5])
    np.testing.assert_allclose(units.to_lerobot(ros), [90.0, -45.0, 0.0, 180.0, 30.0, 50.0])
    assert units.ros_to_dict(ros)["gripper"] == pytest.approx(50.0)
    assert units.dict_to_ros({f"{n}.pos": 10.0 for n in NAMES})[5] == pytest.approx(0.1)


def test_units_range_m100_100_and_unknown_mode():
    units = UnitMap.from_modes({"a": JointUnit.RANGE_M100_100})
    np.testing.assert_allclose(units.to_ros([-50.0]), [-0.5])
    with pytest.raises(ValueError, match="joint 'a': unknown normalization mode 'percent'"):
        UnitMap.from_modes({"a": "percent"})
    with pytest.raises(KeyError, match="no value for joint 'a'"):
        units.dict_to_ros({"b": 1.0})


def test_resolver_accepts_prefix_bare_and_lerobot_feature_names():
    resolver = JointNameResolver(NAMES, prefix="follower_")
    assert resolver.ros_names[0] == "follower_shoulder_pan"
    np.testing.assert_array_equal(
        resolver.indices(["follower_gripper", "shoulder_pan", "elbow_flex.pos"], "t"), [5, 0, 2])
    with pytest.raises(CommandRejected, match=r"t: unknown joint name\(s\) \['elbow'\]"):
        resolver.indices(["elbow"], "t")
    with pytest.raises(CommandRejected, match="named twice"):
        resolver.indices(["gripper", "gripper.pos"], "t")


def test_position_command_rejects_nan_inf_and_size_mismatch(resolver):
    with pytest.raises(CommandRejected, match=r"non-finite position \{'elbow_flex': nan\}"):
        JointPositionCommand.parse(resolver, ["shoulder_pan", "elbow_flex"], [0.1, float("nan")], 0.0)
    with pytest.raises(CommandRejected, match="non-finite position"):
        JointPositionCommand.parse(resolver, ["gripper"], [float("inf")], 0.0)
    with pytest.raises(CommandRejected, match="position has 1 values, expected 2"):
        JointPositionCommand.parse(resolver, ["shoulder_pan", "elbow_flex"], [0.1], 0.0)
    with pytest.raises(CommandRejected, match="empty joint name list"):
        JointPositionCommand.parse(resolver, [], [], 0.0)


def test_trajectory_validation(resolver):
    ok = JointTrajectoryCommand.parse(resolver, ["gripper"], None, now=5.0, points=[(0.5, [0.2], [])])
    assert ok.start_time == 5.0 and ok.end_time == 5.5
    with pytest.raises(CommandRejected, match="no points"):
        JointTrajectoryCommand.parse(resolver, ["gripper"], None, 0.0, [])
    with pytest.raises(CommandRejected, match=r"points\[1\].time_from_start = 0.5 s is not after"):
        JointTrajectoryCommand.parse(resolver, ["gripper"], None, 0.0, [(0.5, [0.1], []), (0.5, [0.2], [])])
    with pytest.raises(CommandRejected, match=r"points\[0\]: velocities has 2 values, expected 1"):
        JointTrajectoryCommand.parse(resolver, ["gripper"], None, 0.0, [(0.5, [0.1], [0.0, 0.0])])
    with pytest.raises(CommandRejected, match=r"points\[0\]: non-finite positions"):
        JointTrajectoryCommand.parse(resolver, ["gripper"], None, 0.0, [(0.5, [float("nan")], [])])


def _controller(timeout=0.5, limit=None):
    return GoalController(len(NAMES), command_timeout_s=timeout, limit=limit)


def test_holds_measured_position_without_commands():
    ctl = _controller()
    present = np.linspace(-0.5, 0.5, 6)
    tick = ctl.step(0.0, present)
    np.testing.assert_allclose(tick.goal, present)
    assert tick.source is GoalSource.HOLD
    # The hold is latched: later readings (e.g. the arm sagging) do not drag the goal along.
    np.testing.assert_allclose(ctl.step(0.01, present + 0.1).goal, present)


def test_partial_direct_command_and_watchdog(resolver):
    ctl = _controller(timeout=0.5)
    present = np.zeros(6)
    ctl.step(0.0, present)
    ctl.accept_positions(JointPositionCommand.parse(resolver, ["elbow_flex", "gripper"], [0.3, 0.8], 0.1))
    tick = ctl.step(0.2, present)
    np.testing.assert_allclose(tick.goal, [0, 0, 0.3, 0, 0, 0.8])
    assert tick.source is GoalSource.DIRECT
    assert ctl.step(0.59, present).source is GoalSource.DIRECT  # 0.49 s old: still fresh
    moved = np.array([0, 0, 0.25, 0, 0, 0.7])
    stale = ctl.step(0.61, moved)
    assert stale.became_stale and stale.source is GoalSource.STALE_HOLD
    np.testing.assert_allclose(stale.goal, moved)  # holds where the arm is, not the old goal
    assert not ctl.step(0.7, moved).became_stale
    # A fresh command resumes following.
    ctl.accept_positions(JointPositionCommand.parse(resolver, ["gripper"], [0.1], 0.8))
    np.testing.assert_allclose(ctl.step(0.81, moved).goal, [0, 0, 0.25, 0, 0, 0.1])


def test_command_before_first_tick_fills_other_joints_from_measurement(resolver):
    ctl = _controller()
    ctl.accept_positions(JointPositionCommand.parse(resolver, ["gripper"], [0.9], 0.0))
    np.testing.assert_allclose(ctl.step(0.01, np.full(6, 0.2)).goal, [0.2] * 5 + [0.9])


def test_clamp_per_step_lerobot_semantics(resolver):
    limit = RelativeTargetLimit.from_parameters(NAMES, 0.1)
    ctl = _controller(timeout=10, limit=limit)
    present = np.zeros(6)
    ctl.step(0.0, present)
    ctl.accept_positions(JointPositionCommand.parse(resolver, ["shoulder_pan", "elbow_flex"], [1.0, -0.05], 0.0))
    tick = ctl.step(0.01, present)
    np.testing.assert_allclose(tick.goal, [0.1, 0, -0.05, 0, 0, 0])
    np.testing.assert_array_equal(tick.clamped, [True, False, False, False, False, False])
    np.testing.assert_allclose(tick.target[0], 1.0)  # keeps approaching the far target
    present[0] = 0.1
    assert ctl.step(0.02, present).goal[0] == pytest.approx(0.2)


def test_clamp_parameters():
    assert RelativeTargetLimit.from_parameters(NAMES, 0.0) is None
    per_joint = RelativeTargetLimit.from_parameters(NAMES, 0.5, [0.1, 0.1, 0.1, 0.1, 0.1, 0.0])
    np.testing.assert_allclose(per_joint.caps[:5], 0.1)
    assert per_joint.caps[5] == np.inf
    safe, clamped = per_joint.apply(np.array([1, -1, 0, 0, 0, 1.0]), np.zeros(6))
    np.testing.assert_allclose(safe, [0.1, -0.1, 0, 0, 0, 1.0])
    with pytest.raises(ValueError, match="has 2 values, expected 6"):
        RelativeTargetLimit.from_parameters(NAMES, 0.0, [0.1, 0.2])


def test_linear_trajectory_with_anchor_and_final_hold(resolver):
    ctl = _controller(timeout=0.05)
    present = np.zeros(6)
    ctl.step(10.0, present)
    traj = JointTrajectoryCommand.parse(resolver, ["shoulder_pan", "gripper"], None, now=10.0,
                                        points=[(1.0, [1.0, 0.5], []), (2.0, [-1.0, 1.0], [])])
    ctl.accept_trajectory(traj, 10.0)
    assert ctl.step(10.0, present).goal[0] == pytest.approx(0.0)
    tick = ctl.step(10.5, present)  # halfway from the anchor (current goal 0) to the first point
    assert tick.source is GoalSource.TRAJECTORY
    np.testing.assert_allclose(tick.goal[[0, 5]], [0.5, 0.25])
    np.testing.assert_allclose(ctl.step(11.25, present).goal[[0, 5]], [0.5, 0.625])
    # Long past the command timeout, the executing trajectory is not stale.
    assert ctl.step(11.9, present).source is GoalSource.TRAJECTORY
    done = ctl.step(12.5, present)
    assert done.source is GoalSource.TRAJECTORY_DONE
    np.testing.assert_allclose(done.goal, [-1.0, 0, 0, 0, 0, 1.0])
    assert ctl.step(20.0, present).source is GoalSource.TRAJECTORY_DONE  # holds the last point, no watchdog


def test_cubic_trajectory_matches_hermite_and_endpoints(resolver):
    ctl = _controller()
    ctl.step(0.0, np.zeros(6))
    traj = JointTrajectoryCommand.parse(resolver, ["shoulder_pan"], 0.0, now=0.0,
                                        points=[(0.0, [0.0], [0.0]), (1.0, [1.0], [0.0])])
    ctl.accept_trajectory(traj, 0.0)
    # Zero end velocities: smoothstep 3s^2 - 2s^3.
    for t in (0.25, 0.5, 0.75):
        assert ctl.step(t, np.zeros(6)).goal[0] == pytest.approx(3 * t**2 - 2 * t**3)


def test_future_trajectory_waits_and_replaces_from_its_start(resolver):
    ctl = _controller(timeout=100)
    present = np.zeros(6)
    ctl.step(0.0, present)
    first = JointTrajectoryCommand.parse(resolver, ["shoulder_pan"], None, 0.0, [(2.0, [2.0], [])])
    ctl.accept_trajectory(first, 0.0)
    ctl.step(0.0, present)
    assert ctl.step(0.5, present).goal[0] == pytest.approx(0.5)
    second = JointTrajectoryCommand.parse(resolver, ["shoulder_pan"], 1.0, 0.5, [(1.0, [0.0], [])])
    ctl.accept_trajectory(second, 0.5)
    assert ctl.step(0.9, present).goal[0] == pytest.approx(0.9)  # first still runs until t = 1.0
    assert ctl.step(1.0, present).goal[0] == pytest.approx(1.0)  # second anchors at the goal it takes over
    assert ctl.step(1.5, present).goal[0] == pytest.approx(0.5)
    assert ctl.step(2.0, present).goal[0] == pytest.approx(0.0)


def test_direct_command_cancels_trajectory(resolver):
    ctl = _controller()
    ctl.step(0.0, np.zeros(6))
    ctl.accept_trajectory(JointTrajectoryCommand.parse(resolver, ["shoulder_pan"], None, 0.0, [(1.0, [1.0], [])]),
                          0.0)
    ctl.step(0.5, np.zeros(6))
    ctl.accept_positions(JointPositionCommand.parse(resolver, ["shoulder_pan"], [-0.2], 0.5))
    tick = ctl.step(0.6, np.zeros(6))
    assert tick.source is GoalSource.DIRECT and tick.goal[0] == pytest.approx(-0.2)


def test_action_chunk_rows_and_rtc_delay(resolver):
    horizon, period = 5, 0.1
    names = [f"{n}.pos" for n in NAMES]
    actions = np.repeat(np.arange(horizon, dtype=float)[:, None] * 0.1, 6, axis=1)
    traj = trajectory_from_action_chunk(resolver, names, actions.ravel().tolist(), horizon, 6, period,
                                        stamp=100.0, rtc_delay_steps=2, now=100.2)
    assert [p.time_from_start for p in traj.points] == pytest.approx([0.2, 0.3, 0.4])
    assert traj.start_time == 100.0 and traj.source == "action_chunk"
    ctl = _controller()
    # The arm stands where row 2 puts it (RTC: rows 0-1 were executed from the previous chunk), so nothing jumps.
    here = np.full(6, 0.2)
    ctl.step(100.19, here)
    ctl.accept_trajectory(traj, 100.2)
    np.testing.assert_allclose(ctl.step(100.2, here).goal, 0.2)  # row 2 applies right now
    np.testing.assert_allclose(ctl.step(100.35, here).goal, 0.35)
    np.testing.assert_allclose(ctl.step(101.0, here).goal, 0.4)
    # A zero stamp means: row rtc_delay_steps applies now.
    now_chunk = trajectory_from_action_chunk(resolver, names, actions.ravel().tolist(), horizon, 6, period,
                                             stamp=None, rtc_delay_steps=1, now=50.0)
    assert now_chunk.start_time + now_chunk.points[0].time_from_start == pytest.approx(50.0)


def _ramp_chunk(resolver, stamp, now, horizon=5, period=0.1, rtc_delay_steps=0):
    """Rows 0, 0.1, 0.2, ... on every joint, row k at stamp + k * period."""
    actions = np.repeat(np.arange(horizon, dtype=float)[:, None] * 0.1, 6, axis=1)
    return trajectory_from_action_chunk(resolver, NAMES, actions.ravel().tolist(), horizon, 6, period, stamp,
                                        rtc_delay_steps, now)


def test_chunk_that_ends_in_the_past_is_rejected_and_the_arm_holds(resolver):
    ctl = _controller(timeout=10)
    present = np.full(6, -0.3)
    ctl.step(20.0, present)
    late = _ramp_chunk(resolver, stamp=19.0, now=20.0)  # rows at 19.0 .. 19.4: all gone
    with pytest.raises(CommandRejected, match=r"action_chunk: ends 0.600 s in the past .* rejected, holding"):
        ctl.accept_trajectory(late, 20.0)
    tick = ctl.step(20.01, present)
    assert tick.source is GoalSource.HOLD
    np.testing.assert_allclose(tick.goal, present)  # not the chunk's last row (0.4)


def test_late_start_beyond_the_bound_is_rejected(resolver):
    ctl = GoalController(6, command_timeout_s=10, max_late_start_s=0.15)
    present = np.zeros(6)
    ctl.step(20.0, present)
    chunk = _ramp_chunk(resolver, stamp=19.8, now=20.0)  # row 0 is 0.2 s old, the end (20.2) still to come
    with pytest.raises(CommandRejected, match=r"first point is 0.200 s in the past, more than max_late_start_s = "
                                              r"0.150 s"):
        ctl.accept_trajectory(chunk, 20.0)
    assert ctl.step(20.01, present).source is GoalSource.HOLD
    traj = JointTrajectoryCommand.parse(resolver, ["wrist_flex"], 19.0, 20.0, [(0.5, [0.1], []), (2.0, [0.2], [])])
    with pytest.raises(CommandRejected, match=r"joint_trajectory: first point is 0.500 s in the past"):
        ctl.accept_trajectory(traj, 20.0)
    with pytest.raises(ValueError, match="max_late_start_s = -1"):
        GoalController(6, 1.0, max_late_start_s=-1)


def test_late_start_within_the_bound_begins_at_the_value_for_now(resolver):
    ctl = GoalController(6, command_timeout_s=10, max_late_start_s=0.15)
    present = np.full(6, 0.05)
    ctl.step(19.99, present)
    chunk = _ramp_chunk(resolver, stamp=19.9, now=20.0)  # rows at 19.9 (0.0), 20.0 (0.1), 20.1 (0.2), ...
    ctl.accept_trajectory(chunk, 20.0)
    tick = ctl.step(20.05, present)
    assert tick.source is GoalSource.TRAJECTORY
    np.testing.assert_allclose(tick.goal, 0.15)  # between rows 1 and 2, as scheduled; not a later row
    np.testing.assert_allclose(ctl.step(20.3, present).goal, 0.4)


def test_velocity_limit_ramps_a_jump_at_the_same_speed_at_any_rate(resolver):
    goals_after_04_s = []
    for rate_hz in (100.0, 25.0):
        ctl = GoalController(6, 10.0, velocity_limit=VelocityLimit(np.full(6, 2.0)))
        present = np.zeros(6)
        ctl.step(0.0, present)
        ctl.accept_positions(JointPositionCommand.parse(resolver, ["elbow_flex"], [3.0], 0.0))
        ticks = [ctl.step(k / rate_hz, present) for k in range(1, round(0.4 * rate_hz) + 1)]
        assert all(t.velocity_limited[2] for t in ticks) and not ticks[0].velocity_limited[0]
        assert ticks[0].goal[2] == pytest.approx(2.0 / rate_hz)
        np.testing.assert_allclose(ticks[-1].target[2], 3.0)  # the target stays; the goal approaches it
        goals_after_04_s.append(ticks[-1].goal[2])
    assert goals_after_04_s == pytest.approx([0.8, 0.8])  # 2 rad/s x 0.4 s, whatever rate_hz


def test_velocity_limit_after_a_stall_a_reset_and_a_clock_going_back(resolver):
    ctl = GoalController(6, 10.0, velocity_limit=VelocityLimit(np.full(6, 1.0), max_dt_s=0.1))
    present = np.zeros(6)
    ctl.accept_positions(JointPositionCommand.parse(resolver, ["shoulder_pan"], [5.0], 0.0))
    assert ctl.step(0.0, present).goal[0] == 0.0   # first tick: stays at the measured position
    assert ctl.step(2.0, present).goal[0] == pytest.approx(0.1)  # a 2 s stall moves at most v * max_dt_s
    assert ctl.step(1.0, present).goal[0] == pytest.approx(0.1)  # clock went back: no motion
    ctl.reset(None)
    assert ctl.step(1.01, np.full(6, 0.7)).goal[0] == pytest.approx(0.7)


def test_velocity_limit_parameters():
    limit = VelocityLimit.from_parameters(NAMES, [4.0] * 5 + [2.0])
    np.testing.assert_allclose(limit.velocities, [4, 4, 4, 4, 4, 2])
    override = VelocityLimit.from_parameters(NAMES, [4.0] * 6, [1.0, 1.0, 1.0, 1.0, 0.0, -1.0])
    assert override.velocities[:4].tolist() == [1.0] * 4 and np.isinf(override.velocities[4:]).all()
    assert VelocityLimit.from_parameters(NAMES, [4.0] * 6, [0.0] * 6) is None
    assert VelocityLimit.from_parameters(NAMES, [4.0] * 6, [0.0]).velocities.tolist() == [4.0] * 6  # the default
    assert VelocityLimit.from_parameters(NAMES, [4.0] * 6, [-1.0]) is None  # off
    with pytest.raises(ValueError, match=r"max_velocity has 2 values, expected 6"):
        VelocityLimit.from_parameters(NAMES, [4.0] * 6, [1.0, 2.0])
    with pytest.raises(ValueError, match="expected one value > 0 per joint"):
        VelocityLimit(np.array([1.0, 0.0]))


def test_position_limit_keeps_goals_in_range_and_allows_coming_back(resolver):
    limits = PositionLimit(np.array([-1.0] * 5 + [0.0]), np.array([1.0] * 5 + [1.0]))
    ctl = GoalController(6, 10.0, position_limit=limits)
    present = np.zeros(6)
    ctl.step(0.0, present)
    ctl.accept_positions(JointPositionCommand.parse(resolver, ["shoulder_lift", "elbow_flex"], [2.5, -0.5], 0.0))
    tick = ctl.step(0.01, present)
    np.testing.assert_allclose(tick.goal[[1, 2]], [1.0, -0.5])
    assert tick.position_limited.tolist() == [False, True, False, False, False, False]
    # The arm stands outside the range (moved by hand while limp): holding is allowed, pushing further is not.
    outside = np.array([0, 1.3, 0, 0, 0, 0.5])
    ctl.reset(None)
    np.testing.assert_allclose(ctl.step(1.0, outside).goal, outside)
    ctl.accept_positions(JointPositionCommand.parse(resolver, ["shoulder_lift"], [1.6], 1.0))
    assert ctl.step(1.01, outside).goal[1] == pytest.approx(1.3)
    ctl.accept_positions(JointPositionCommand.parse(resolver, ["shoulder_lift"], [0.2], 1.02))
    assert ctl.step(1.03, outside).goal[1] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="expected lower <= upper"):
        PositionLimit(np.array([1.0]), np.array([0.0]))


def test_limits_compose_velocity_then_relative_then_position(resolver):
    ctl = GoalController(6, 10.0, limit=RelativeTargetLimit.from_parameters(NAMES, 0.05),
                         velocity_limit=VelocityLimit(np.full(6, 10.0)),
                         position_limit=PositionLimit(np.full(6, -0.3), np.full(6, 0.3)))
    present = np.zeros(6)
    ctl.step(0.0, present)
    ctl.accept_positions(JointPositionCommand.parse(resolver, ["shoulder_pan", "wrist_flex"], [1.0, 0.02], 0.0))
    tick = ctl.step(0.01, present)
    # velocity: 0.1 rad in 10 ms; relative: 0.05 from the measured 0; both inside the range
    np.testing.assert_allclose(tick.goal[[0, 3]], [0.05, 0.02])
    assert tick.velocity_limited[0] and tick.clamped[0] and not tick.position_limited[0]
    present[0] = 0.12
    tick = ctl.step(0.02, present)
    assert tick.goal[0] == pytest.approx(0.15) and tick.velocity_limited[0]  # 0.05 + 10 rad/s x 10 ms
    present[0] = 0.28
    tick = ctl.step(0.03, present)  # velocity allows 0.25; the relative clamp keeps it within 0.05 of 0.28
    assert tick.goal[0] == pytest.approx(0.25) and not tick.clamped[0]
    present[0] = 0.29
    ctl.step(0.1, present)
    assert ctl.step(0.2, present).goal[0] == pytest.approx(0.3)  # the range's edge, never beyond


def test_action_chunk_validation(resolver):
    with pytest.raises(CommandRejected, match="action_dim = 5 but 6 names"):
        trajectory_from_action_chunk(resolver, NAMES, [0.0] * 30, 5, 5, 0.1, None, 0, 0.0)
    with pytest.raises(CommandRejected, match=r"actions has 29 values, expected horizon x action_dim = 5 x 6"):
        trajectory_from_action_chunk(resolver, NAMES, [0.0] * 29, 5, 6, 0.1, None, 0, 0.0)
    with pytest.raises(CommandRejected, match="period = 0.0 s"):
        trajectory_from_action_chunk(resolver, NAMES, [0.0] * 30, 5, 6, 0.0, None, 0, 0.0)
    with pytest.raises(CommandRejected, match="rtc_delay_steps = 5 leaves no row"):
        trajectory_from_action_chunk(resolver, NAMES, [0.0] * 30, 5, 6, 0.1, None, 5, 0.0)
    with pytest.raises(CommandRejected, match="non-finite"):
        trajectory_from_action_chunk(resolver, NAMES, [float("nan")] * 30, 5, 6, 0.1, None, 0, 0.0)


def test_reset_drops_commands_and_holds_present(resolver):
    ctl = _controller()
    ctl.accept_positions(JointPositionCommand.parse(resolver, ["gripper"], [1.0], 0.0))
    ctl.reset(np.full(6, 0.3))
    tick = ctl.step(0.01, np.zeros(6))
    assert tick.source is GoalSource.HOLD
    np.testing.assert_allclose(tick.goal, 0.3)


def test_loop_stats_and_backoff():
    stats = LoopStats(window_s=1.0)
    for k in range(201):
        stats.record(k * 0.005, 0.001)
    assert stats.rate_hz(1.0) == pytest.approx(200.0, rel=0.01)
    assert stats.duration_percentile_ms(99) == pytest.approx(1.0)
    assert stats.rate_hz(5.0) == 0.0
    backoff = Backoff(0.1, 0.5)
    assert [backoff.next_delay() for _ in range(5)] == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])
    backoff.reset()
    assert backoff.next_delay() == pytest.approx(0.1)


def test_health_assessment_levels():
    from lerobot_drivers.control.health import ERROR, OK, STALE, WARN, DriverHealth, HealthLimits, MotorReading, assess

    limits = HealthLimits(temperature_warn_c=60, temperature_error_c=70, min_voltage_v=6.0)
    health = DriverHealth(arm="so101_follower", port="/dev/x", mode="follower", lifecycle="active", connected=True,
                          rate_target_hz=100, rate_achieved_hz=99, motors_age_s=0.1,
                          motors={"a": MotorReading(30, 12, 1, "load_percent"),
                                  "b": MotorReading(65, 12, 1, "load_percent"),
                                  "c": MotorReading(75, 5.0, 1, "load_percent", ("overload",))})
    by_name = {s.name: s for s in assess(health, limits, "/arm")}
    assert by_name["/arm"].level == OK
    assert by_name["/arm/a"].level == OK
    assert by_name["/arm/b"].level == WARN and "hot: 65 C" in by_name["/arm/b"].message
    c = by_name["/arm/c"]
    assert c.level == ERROR
    assert "hardware error: overload" in c.message and "overheating" in c.message and "low voltage: 5.0 V" in c.message
    health.rate_achieved_hz = 50
    assert assess(health, limits, "/arm")[0].level == WARN
    health.connected, health.last_error = False, "no status packet"
    statuses = assess(health, limits, "/arm")
    assert statuses[0].level == ERROR and "reconnecting: no status packet" in statuses[0].message
    assert all(s.level == STALE for s in statuses[1:])
