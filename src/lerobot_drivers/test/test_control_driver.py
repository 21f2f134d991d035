"""ArmDriver (the arm driver's bus thread, no ROS) against the wire-level servo simulator in this process.

Real Feetech/Dynamixel SDK traffic on a pty; the simulator's true state (torque, goal, position) is the oracle.
"""
import json
import math
import time
from dataclasses import replace

import numpy as np
import pytest

from lerobot_drivers.arms import GOAL_RANGE_MARGIN_DEG, Arm, get_arm_definition
from lerobot_drivers.control import GoalController, RelativeTargetLimit, UnitMap
from lerobot_drivers.control.calibration_source import (
    CalibrationMissing, resolve_calibration, simulator_default_calibration,
)
from lerobot_drivers.control.commands import JointNameResolver, JointPositionCommand, JointTrajectoryCommand
from lerobot_drivers.control.driver import ArmDriver, DriverSettings
from lerobot_drivers.control.health import ERROR, OK, HealthLimits, assess
from lerobot_drivers.sim.servo_bus_simulator import ServoBusSimulator


def wait_for(predicate, timeout=10.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def make_driver(sim, arm_name, follower=True, limit=None, timeout_s=30.0, rate_hz=100.0, samples=None,
                calibration=None):
    # timeout_s: long by default, so a single command is not dropped by the watchdog on a slow host.
    definition = get_arm_definition(arm_name)
    units = UnitMap.from_modes(definition.norm_modes)
    controller = GoalController(len(units.names), timeout_s, limit) if follower else None
    settings = DriverSettings(rate_hz=rate_hz, follower=follower, reconnect_initial_s=0.05, reconnect_max_s=0.2,
                              release_torque_after_configure=follower or definition.role == "follower")
    sink = samples if samples is not None else []
    calibration = calibration or simulator_default_calibration(definition)
    driver = ArmDriver(lambda: Arm(definition, sim.port, calibration), units, settings, controller, time.monotonic,
                       sink.append)
    return driver, JointNameResolver(units.names), sink


def torque(sim):
    return {name: m["torque_enabled"] for name, m in sim.state().items()}


def true_rad(sim, name):
    return math.radians(sim.state()[name]["normalized"])


@pytest.fixture
def follower_sim():
    with ServoBusSimulator("so101_follower") as sim:
        yield sim


def test_lifecycle_torque_and_direct_commands(follower_sim):
    sim = follower_sim
    driver, resolver, samples = make_driver(sim, "so101_follower")
    try:
        driver.configure()
        assert not any(torque(sim).values()), "configured follower must stay limp until activate"
        driver.activate()
        assert all(torque(sim).values())
        assert wait_for(lambda: len(samples) > 10)
        start = true_rad(sim, "shoulder_pan")
        driver.submit_positions(JointPositionCommand.parse(resolver, ["shoulder_pan", "gripper"],
                                                           [start + 0.3, 0.8], time.monotonic()))
        assert wait_for(lambda: abs(true_rad(sim, "shoulder_pan") - (start + 0.3)) < 0.01)
        assert wait_for(lambda: abs(sim.state()["gripper"]["normalized"] - 80.0) < 0.05)
        time.sleep(0.1)
        # Published samples are in ROS units and agree with the simulator's true position.
        assert wait_for(lambda: abs(samples[-1].positions[0] - true_rad(sim, "shoulder_pan")) < 0.01
                        and abs(samples[-1].positions[5] - 0.8) < 0.005)
        driver.deactivate()
        assert not any(torque(sim).values())
    finally:
        driver.close()
    assert not any(torque(sim).values())


def test_watchdog_holds_where_the_arm_is(follower_sim):
    sim = follower_sim
    driver, resolver, samples = make_driver(sim, "so101_follower", timeout_s=0.3)
    try:
        driver.configure()
        driver.activate()
        target = true_rad(sim, "elbow_flex") + 0.2
        deadline = time.monotonic() + 20
        while abs(true_rad(sim, "elbow_flex") - target) > 0.01 and time.monotonic() < deadline:  # a live stream
            driver.submit_positions(JointPositionCommand.parse(resolver, ["elbow_flex"], [target], time.monotonic()))
            time.sleep(0.02)
        assert driver.health.command_source == "joint_commands"
        # The stream stops: the watchdog fires and holds.
        assert wait_for(lambda: driver.health.command_source == "stale_hold", timeout=5)
        held = sim.state()["elbow_flex"]["goal"]
        time.sleep(0.3)
        assert sim.state()["elbow_flex"]["goal"] == held  # no new goal while stale
        assert abs(true_rad(sim, "elbow_flex") - target) < 0.02  # it had arrived before going stale
    finally:
        driver.close()


def test_clamp_limits_each_step(follower_sim):
    sim = follower_sim
    cap = 0.02
    limit = RelativeTargetLimit.from_parameters(["x"] * 6, cap)
    driver, resolver, samples = make_driver(sim, "so101_follower", limit=limit, timeout_s=5.0)
    try:
        driver.configure()
        driver.activate()
        assert wait_for(lambda: len(samples) > 5)
        start = true_rad(sim, "shoulder_pan")
        driver.submit_positions(JointPositionCommand.parse(resolver, ["shoulder_pan"], [start + 0.6], time.monotonic()))
        gaps = []
        deadline = time.monotonic() + 10
        while abs(true_rad(sim, "shoulder_pan") - (start + 0.6)) > 0.01 and time.monotonic() < deadline:
            s = sim.state()["shoulder_pan"]
            gaps.append(abs(s["goal"] - s["present"]) * 2 * math.pi / 4095)
            time.sleep(0.01)
        assert abs(true_rad(sim, "shoulder_pan") - (start + 0.6)) <= 0.01, "the clamp must not stop the motion"
        assert max(gaps) <= cap + 0.004, f"goal ran ahead of the measured position by {max(gaps):.4f} rad"
        assert len(gaps) > 5 and driver.health.clamped_ticks > 5
    finally:
        driver.close()


def test_trajectory_through_driver(follower_sim):
    sim = follower_sim
    driver, resolver, samples = make_driver(sim, "so101_follower", timeout_s=0.1)
    try:
        driver.configure()
        driver.activate()
        assert wait_for(lambda: len(samples) > 5)
        start = true_rad(sim, "wrist_flex")
        now = time.monotonic()
        driver.submit_trajectory(JointTrajectoryCommand.parse(
            resolver, ["wrist_flex"], now + 0.2, now, [(0.0, [start], []), (1.0, [start + 0.4], [])]))

        def expected(t):
            return start + 0.4 * min(1.0, max(0.0, t - (now + 0.2)))

        errors = []
        while time.monotonic() < now + 1.6:
            t = time.monotonic()
            errors.append(abs(true_rad(sim, "wrist_flex") - expected(t)))
            time.sleep(0.02)
        assert wait_for(lambda: driver.health.command_source == "trajectory_done", 5)
        # On schedule, exactly: every goal written equals the trajectory at the time it was computed for.
        goals = [(s.stamp, s.goal[3]) for s in list(samples) if s.goal is not None and now <= s.stamp <= now + 1.3]
        assert len(goals) > 10
        assert max(abs(g - expected(t)) for t, g in goals) < 1e-3
        # Following (the simulator's true position): 90 % within 0.1 rad (idle host: ~0.016 rad).
        assert np.percentile(errors, 90) < 0.1, np.percentile(errors, 90)
        assert wait_for(lambda: abs(true_rad(sim, "wrist_flex") - (start + 0.4)) < 0.01)
    finally:
        driver.close()


def test_faults_show_in_health_and_the_driver_recovers(follower_sim):
    sim = follower_sim
    driver, resolver, samples = make_driver(sim, "so101_follower")
    # The loop-rate warning is left out: this shared machine's timing is not under test here.
    limits = HealthLimits(min_voltage_v=6.0, rate_warn_fraction=0.0)

    def statuses():
        return {s.name.split("/")[-1]: s for s in assess(driver.snapshot(), limits, "arm")}

    try:
        driver.configure()
        driver.activate()
        assert wait_for(lambda: len(samples) > 5)
        assert statuses()["arm"].level == OK

        for fault, motor, expected in [("hardware_error", "elbow_flex", "overload"),
                                       ("low_voltage", "wrist_flex", "low voltage"),
                                       ("overheat", "gripper", "overheating")]:
            sim.set_fault(motor, fault)
            assert wait_for(lambda: expected in statuses()[motor].message, timeout=5), statuses()[motor]
            assert statuses()[motor].level == ERROR
            sim.clear_faults()
            assert wait_for(lambda: statuses()[motor].level == OK, timeout=5), statuses()[motor]

        for fault in ("no_reply", "corrupt_reply", "missing"):
            errors_before = driver.health.comm_errors
            sim.set_fault("wrist_roll", fault)
            assert wait_for(lambda: driver.health.comm_errors > errors_before, timeout=5), fault
            assert wait_for(lambda: statuses()["arm"].level == ERROR, timeout=5), fault
            # The fault recurs every tick, so the last error names it (a spurious timeout on a busy host may not).
            assert wait_for(lambda: "wrist_roll" in driver.health.last_error, timeout=5), driver.health.last_error
            sim.clear_faults()
            assert wait_for(lambda: driver.connected and statuses()["arm"].level == OK, timeout=10), \
                (fault, statuses()["arm"])

        reconnects = driver.health.reconnects
        sim.set_silent(True)
        assert wait_for(lambda: not driver.connected, timeout=5)
        assert "disconnected" in statuses()["arm"].message
        sim.set_silent(False)
        assert wait_for(lambda: driver.connected, timeout=10)
        assert driver.health.reconnects > reconnects
        # It resumes commanding: holding on reconnect, then following a new command.
        count = len(samples)
        assert wait_for(lambda: len(samples) > count + 5)
        target = true_rad(sim, "shoulder_pan") - 0.2
        driver.submit_positions(JointPositionCommand.parse(resolver, ["shoulder_pan"], [target], time.monotonic()))
        assert wait_for(lambda: abs(true_rad(sim, "shoulder_pan") - target) < 0.01)
        assert all(torque(sim).values())
    finally:
        driver.close()
    assert not any(torque(sim).values())


@pytest.mark.parametrize("arm_name", ["so101_leader", "koch_leader"])
def test_leader_mode_publishes_and_stays_limp(arm_name):
    with ServoBusSimulator(arm_name) as sim:
        driver, resolver, samples = make_driver(sim, arm_name, follower=False)
        try:
            driver.configure()
            driver.activate()
            expected_torque = {n: (arm_name == "koch_leader" and n == "gripper") for n in sim.motor_names}
            assert torque(sim) == expected_torque  # Koch leader: the gripper is a spring-loaded trigger
            sim.move({"elbow_flex": 20.0}, frame="normalized")
            assert wait_for(lambda: samples and abs(samples[-1].positions[2] - math.radians(20.0)) < 0.01)
            assert samples[-1].goal is None  # a leader never writes goals
        finally:
            driver.close()
        assert not any(torque(sim).values())


def test_koch_follower_follows_on_dynamixel():
    with ServoBusSimulator("koch_follower") as sim:
        driver, resolver, samples = make_driver(sim, "koch_follower")
        try:
            driver.configure()
            driver.activate()
            assert wait_for(lambda: len(samples) > 5)
            start = true_rad(sim, "shoulder_lift")
            driver.submit_positions(JointPositionCommand.parse(resolver, ["shoulder_lift"], [start - 0.25],
                                                               time.monotonic()))
            assert wait_for(lambda: abs(true_rad(sim, "shoulder_lift") - (start - 0.25)) < 0.01)
        finally:
            driver.close()
        assert not any(torque(sim).values())


@pytest.mark.parametrize("arm_name", ["so101_follower", "koch_follower"])
def test_goals_stay_inside_the_calibrated_range(arm_name):
    """A calibration whose shoulder_lift range is 1600..2500 ticks (+-39.6 deg around its middle): a goal of
    69 deg is kept at the range's end plus the 2 deg margin. Koch runs extended-position mode, where the servo
    ignores its limit registers, so the driver's clamp is all that stops it; the Feetech firmware would clamp
    too, but the written (and published) goal must already be in range."""
    definition = get_arm_definition(arm_name)
    calibration = simulator_default_calibration(definition)
    calibration["shoulder_lift"] = replace(calibration["shoulder_lift"], range_min=1600, range_max=2500)
    range_end = math.radians((2500 - 1600) / 2 * 360 / 4095)
    upper = range_end + math.radians(GOAL_RANGE_MARGIN_DEG)
    # Where the arm stops: Feetech's firmware clamps to the range itself, Koch's extended mode does not.
    stop = range_end if definition.bus_type == "feetech" else upper
    with ServoBusSimulator(arm_name) as sim:
        driver, resolver, samples = make_driver(sim, arm_name, calibration=calibration)
        try:
            driver.configure()
            driver.activate()
            assert wait_for(lambda: len(samples) > 5)
            driver.submit_positions(JointPositionCommand.parse(resolver, ["shoulder_lift"], [1.2], time.monotonic()))
            assert wait_for(lambda: abs(true_rad(sim, "shoulder_lift") - stop) < 0.01), true_rad(sim, "shoulder_lift")
            time.sleep(0.3)  # it stays there
            assert true_rad(sim, "shoulder_lift") == pytest.approx(stop, abs=0.01)
            goals = [s.goal[1] for s in list(samples) if s.goal is not None]
            assert max(goals) == pytest.approx(upper, abs=1e-9)
            assert driver.health.position_limited_ticks > 0
            # Back inside the range, commands are followed as before.
            driver.submit_positions(JointPositionCommand.parse(resolver, ["shoulder_lift"], [0.3], time.monotonic()))
            assert wait_for(lambda: abs(true_rad(sim, "shoulder_lift") - 0.3) < 0.01)
        finally:
            driver.close()


def test_configure_fails_cleanly_on_a_dead_port(tmp_path):
    definition = get_arm_definition("so101_follower")
    units = UnitMap.from_modes(definition.norm_modes)
    driver = ArmDriver(lambda: Arm(definition, str(tmp_path / "no_such_port"),
                                   simulator_default_calibration(definition)),
                       units, DriverSettings(connect_attempts=2), GoalController(6, 0.5), time.monotonic)
    with pytest.raises(ConnectionError, match="no_such_port"):
        driver.configure()
    driver.close()


def test_calibration_resolution(tmp_path):
    definition = get_arm_definition("so101_follower")
    with pytest.raises(CalibrationMissing, match=r"lerobot-calibrate --arm so101_follower --port /dev/ttyACM0 "
                                                 r"--id arm7 --calibration-dir"):
        resolve_calibration(definition, "/dev/ttyACM0", calibration_id="arm7", calibration_dir=str(tmp_path))
    assert resolve_calibration(definition, "p", simulator_default=True).origin == "simulator default"
    # A LeRobot file in LeRobot's layout wins over the simulator default.
    calibration = {name: {"id": c.id, "drive_mode": 0, "homing_offset": 5, "range_min": 100, "range_max": 3900}
                   for name, c in simulator_default_calibration(definition).items()}
    path = tmp_path / "robots" / "so_follower" / "arm7.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(calibration, indent=4))
    choice = resolve_calibration(definition, "p", calibration_id="arm7", calibration_dir=str(tmp_path),
                                 simulator_default=True)
    assert choice.origin == str(path) and choice.calibration["gripper"].range_min == 100
    assert resolve_calibration(definition, "p", calibration_file=str(path)).calibration["wrist_roll"].homing_offset == 5
    with pytest.raises(CalibrationMissing, match="calibration_file .*missing.json does not exist"):
        resolve_calibration(definition, "p", calibration_file=str(tmp_path / "missing.json"))


def test_port_vanishes_and_comes_back(tmp_path):
    """The adapter is unplugged (the pty disappears) and plugged back (a new pty behind the same link path)."""
    link = tmp_path / "ttyFOLLOWER"
    first = ServoBusSimulator("so101_follower").start()
    link.symlink_to(first.port)
    definition = get_arm_definition("so101_follower")
    units = UnitMap.from_modes(definition.norm_modes)
    samples = []
    driver = ArmDriver(lambda: Arm(definition, str(link), simulator_default_calibration(definition)), units,
                       DriverSettings(reconnect_initial_s=0.05, reconnect_max_s=0.2),
                       GoalController(6, 0.5), time.monotonic, samples.append)
    second = None
    try:
        driver.configure()
        driver.activate()
        assert wait_for(lambda: len(samples) > 5)
        first.stop()
        link.unlink()
        assert wait_for(lambda: not driver.connected, timeout=10)
        # Failed reconnect attempts against the missing port, until it comes back.
        assert wait_for(lambda: "reconnect attempt" in driver.health.last_error, timeout=10)
        assert not driver.connected and "could not open" in driver.health.last_error
        second = ServoBusSimulator("so101_follower").start()
        link.symlink_to(second.port)
        assert wait_for(lambda: driver.connected, timeout=10), driver.health.last_error
        count = len(samples)
        assert wait_for(lambda: len(samples) > count + 5)
        assert all(torque(second).values()), "an active follower gets torque back after the reconnect"
    finally:
        driver.close()
        if second is not None:
            assert not any(torque(second).values())
            second.stop()


def test_shutdown_torque_off_persists_through_a_flaky_motor(follower_sim):
    import threading

    sim = follower_sim
    driver, resolver, samples = make_driver(sim, "so101_follower")
    driver.configure()
    driver.activate()
    assert wait_for(lambda: len(samples) > 5)
    sim.set_fault("wrist_flex", "no_reply")  # the motor misses every packet for a while
    clear = threading.Timer(0.8, sim.clear_faults)
    clear.start()
    try:
        assert driver.close(), "close() must report that every motor acknowledged torque off"
    finally:
        clear.cancel()
    assert not any(torque(sim).values()), torque(sim)


def test_close_reports_unconfirmed_torque_off_when_the_bus_is_gone():
    sim = ServoBusSimulator("so101_follower").start()
    driver, resolver, samples = make_driver(sim, "so101_follower")
    driver.configure()
    driver.activate()
    assert wait_for(lambda: len(samples) > 5)
    sim.stop()  # simulator (and its pty) gone: nobody can acknowledge torque off
    assert driver.close() is False
