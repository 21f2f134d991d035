"""ROS-free control core: units, command validation, trajectory sampling, clamp, watchdog, source switching."""
import math

import numpy as np
import pytest

from lerobot_drivers.control import (
    CommandRejected, GoalController, JointPositionCommand, JointTrajectoryCommand, JointUnit, RelativeTargetLimit,
    UnitMap, trajectory_from_action_chunk,
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
    ctl.accept_trajectory(traj)
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
    ctl.accept_trajectory(traj)
    # Zero end velocities: smoothstep 3s^2 - 2s^3.
    for t in (0.25, 0.5, 0.75):
        assert ctl.step(t, np.zeros(6)).goal[0] == pytest.approx(3 * t**2 - 2 * t**3)


def test_future_trajectory_waits_and_replaces_from_its_start(resolver):
    ctl = _controller(timeout=100)
    present = np.zeros(6)
    ctl.step(0.0, present)
    first = JointTrajectoryCommand.parse(resolver, ["shoulder_pan"], None, 0.0, [(2.0, [2.0], [])])
    ctl.accept_trajectory(first)
    ctl.step(0.0, present)
    assert ctl.step(0.5, present).goal[0] == pytest.approx(0.5)
    second = JointTrajectoryCommand.parse(resolver, ["shoulder_pan"], 1.0, 0.5, [(1.0, [0.0], [])])
    ctl.accept_trajectory(second)
    assert ctl.step(0.9, present).goal[0] == pytest.approx(0.9)  # first still runs until t = 1.0
    assert ctl.step(1.0, present).goal[0] == pytest.approx(1.0)  # second anchors at the goal it takes over
    assert ctl.step(1.5, present).goal[0] == pytest.approx(0.5)
    assert ctl.step(2.0, present).goal[0] == pytest.approx(0.0)


def test_direct_command_cancels_trajectory(resolver):
    ctl = _controller()
    ctl.step(0.0, np.zeros(6))
    ctl.accept_trajectory(JointTrajectoryCommand.parse(resolver, ["shoulder_pan"], None, 0.0, [(1.0, [1.0], [])]))
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
    assert traj.start_time == 100.0
    ctl = _controller()
    ctl.step(100.2, np.zeros(6))
    ctl.accept_trajectory(traj)
    np.testing.assert_allclose(ctl.step(100.2, np.zeros(6)).goal, 0.2)  # row 2 applies right now
    np.testing.assert_allclose(ctl.step(100.35, np.zeros(6)).goal, 0.35)
    np.testing.assert_allclose(ctl.step(101.0, np.zeros(6)).goal, 0.4)
    # A zero stamp means: row rtc_delay_steps applies now.
    now_chunk = trajectory_from_action_chunk(resolver, names, actions.ravel().tolist(), horizon, 6, period,
                                             stamp=None, rtc_delay_steps=1, now=50.0)
    assert now_chunk.start_time + now_chunk.points[0].time_from_start == pytest.approx(50.0)


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
