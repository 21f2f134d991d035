"""Arm definitions and the connected Arm against the simulator: configuration writes, goals, state, faults."""
import time

import pytest

from lerobot_drivers.arms import ARM_DEFINITIONS, Arm, ensure_safe_goal_position, get_arm_definition
from lerobot_drivers.motors import MotorCalibration, MotorCommError, MotorConfigError
from lerobot_drivers.sim.servo_bus_simulator import ServoBusSimulator

# The simulator runs in this process on a shared, loaded CI machine: give replies more time than the SDK's
# ~35-50 ms so scheduling hiccups are not reported as lost packets. Fault tests use the real defaults.
SIM_TIMEOUT_MS = 200.0
NAMES = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]


def calibration_for(sim) -> dict[str, MotorCalibration]:
    """A plausible calibration: the current pose is mid-range, +-1000 ticks of travel."""
    out = {}
    for name, motor in sim.motors.items():
        actual = round(motor.actual)
        if sim.protocol == "feetech":
            offset = actual - 2047
        else:
            offset = 2047 - actual
        out[name] = MotorCalibration(motor.spec.id, 0, offset, 1047, 3047)
    return out


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_definitions():
    assert set(ARM_DEFINITIONS) == {"so100_follower", "so101_follower", "so100_leader", "so101_leader",
                                    "koch_follower", "koch_leader"}
    for name, definition in ARM_DEFINITIONS.items():
        assert definition.motor_names == NAMES
        assert [m.id for m in definition.motors.values()] == [1, 2, 3, 4, 5, 6]
        assert definition.norm_modes == {**{n: "degrees" for n in NAMES[:-1]}, "gripper": "range_0_100"}
    so = get_arm_definition("so101_follower")
    assert {m.model for m in so.motors.values()} == {"sts3215"}
    assert (so.calibration_kind, so.device_name, so.legacy_device_names) == (
        "robots", "so_follower", ("so101_follower", "so100_follower"))
    koch = get_arm_definition("koch_follower")
    assert [m.model for m in koch.motors.values()] == ["xl430-w250"] * 2 + ["xl330-m288"] * 4
    assert {m.model for m in get_arm_definition("koch_leader").motors.values()} == {"xl330-m077"}
    assert get_arm_definition("so100_leader").calibration_kind == "teleoperators"
    with pytest.raises(MotorConfigError, match="unknown arm 'so102'"):
        get_arm_definition("so102")


def test_joint_limits_and_velocity_limits_in_ros_units():
    for name, definition in ARM_DEFINITIONS.items():
        assert list(definition.joint_limits) == NAMES, name
        velocities = definition.ros_velocity_limits()
        assert len(velocities) == 6 and all(v > 0 for v in velocities), name
        gripper = definition.joint_limits["gripper"]
        # the gripper's rad/s over its closed..open angle span = opening fraction per second on the topics
        assert velocities[5] == pytest.approx(gripper.velocity / (gripper.upper - gripper.lower))
        assert velocities[:5] == [definition.joint_limits[n].velocity for n in NAMES[:5]]
    assert get_arm_definition("so101_follower").ros_velocity_limits()[0] == 4.0


def test_goal_limits_are_the_calibrated_range_plus_a_margin():
    calibration = {name: MotorCalibration(i + 1, 0, 0, 1047, 3047) for i, name in enumerate(NAMES)}
    calibration["wrist_roll"] = MotorCalibration(5, 0, 0, 0, 4095)
    arm = Arm("koch_follower", "/dev/null", calibration)  # not connected: limits need only the calibration
    limits = arm.goal_limits(margin_deg=2.0)
    half = 1000 * 360 / 4095  # 87.9 deg either side of the middle
    assert limits["elbow_flex"] == pytest.approx((-half - 2.0, half + 2.0))
    assert limits["wrist_roll"] == pytest.approx((-182.0, 182.0))  # full turn: +-180 deg plus the margin
    assert limits["gripper"] == (0.0, 100.0)  # RANGE_0_100 clamps already; no margin


def test_ensure_safe_goal_position_semantics():
    gp = {"a": (30.0, 0.0), "b": (-30.0, 0.0), "c": (5.0, 0.0)}
    assert ensure_safe_goal_position(gp, 10.0) == {"a": 10.0, "b": -10.0, "c": 5.0}
    assert ensure_safe_goal_position(gp, {"a": 1.0, "b": 50.0, "c": 2.0}) == {"a": 1.0, "b": -30.0, "c": 2.0}
    with pytest.raises(MotorConfigError, match="must equal"):
        ensure_safe_goal_position(gp, {"a": 1.0})
    with pytest.raises(MotorConfigError, match="number or a dict"):
        ensure_safe_goal_position(gp, "10")


def test_so101_follower_connect_writes_calibration_and_configuration():
    with ServoBusSimulator("so101_follower") as sim:
        calibration = calibration_for(sim)
        arm = Arm("so101_follower", sim.port, calibration)
        arm.connect()
        for name in NAMES:
            assert sim.register(name, "Homing_Offset") == calibration[name].homing_offset
            assert sim.register(name, "Min_Position_Limit") == 1047
            assert sim.register(name, "Return_Delay_Time") == 0
            assert sim.register(name, "Maximum_Acceleration") == 254
            assert sim.register(name, "Acceleration") == 254
            assert sim.register(name, "Phase") & 0x10 == 0
            assert sim.register(name, "Operating_Mode") == 0
            assert (sim.register(name, "P_Coefficient"), sim.register(name, "I_Coefficient"),
                    sim.register(name, "D_Coefficient")) == (16, 0, 32)
            assert sim.register(name, "Torque_Enable") == 1 and sim.register(name, "Lock") == 1
        assert sim.register("gripper", "Max_Torque_Limit") == 500
        assert sim.register("gripper", "Protection_Current") == 250
        assert sim.register("gripper", "Overload_Torque") == 25
        assert sim.register("elbow_flex", "Max_Torque_Limit") == 1000
        assert arm.is_calibrated
        positions = arm.read_positions()
        assert positions["shoulder_pan"] == pytest.approx(0.0)  # present 2047 == mid (1047+3047)/2
        assert list(positions) == NAMES
        arm.disconnect()
        assert all(sim.register(n, "Torque_Enable") == 0 for n in NAMES)


def test_koch_follower_and_leader_configuration():
    with ServoBusSimulator("koch_follower") as sim, \
            Arm("koch_follower", sim.port, calibration_for(sim), min_packet_timeout_ms=SIM_TIMEOUT_MS) as arm:
        assert [sim.register(n, "Operating_Mode") for n in NAMES] == [4, 4, 4, 4, 4, 5]
        assert (sim.register("elbow_flex", "Position_P_Gain"), sim.register("elbow_flex", "Position_I_Gain"),
                sim.register("elbow_flex", "Position_D_Gain")) == (1500, 0, 600)
        assert all(sim.register(n, "Return_Delay_Time") == 0 and sim.register(n, "Torque_Enable") == 1 for n in NAMES)
    with ServoBusSimulator("koch_leader") as sim:
        arm = Arm("koch_leader", sim.port, calibration_for(sim), min_packet_timeout_ms=SIM_TIMEOUT_MS)
        arm.connect()
        assert [sim.register(n, "Torque_Enable") for n in NAMES] == [0, 0, 0, 0, 0, 1]
        assert sim.register("gripper", "Operating_Mode") == 5
        assert sim.register("gripper", "Goal_Position") == int(50 / 100 * 2000 + 1047)  # gripper_open_pos 50
        # the trigger: the hand squeezes the torqued gripper, and it springs back when released
        sim.move({"gripper": 20.0}, frame="normalized", speed=20000)
        assert wait_for(lambda: abs(arm.read_positions()["gripper"] - 20.0) < 0.2)
        sim.release()
        assert wait_for(lambda: abs(arm.read_positions()["gripper"] - 50.0) < 0.2)
        arm.disconnect()


def test_so_leader_stays_limp_and_follows_the_hand():
    with ServoBusSimulator("so101_leader") as sim:
        arm = Arm("so101_leader", sim.port, calibration_for(sim), min_packet_timeout_ms=SIM_TIMEOUT_MS)
        arm.connect()
        assert all(sim.register(n, "Torque_Enable") == 0 for n in NAMES)
        sim.move({"shoulder_lift": -30.0, "gripper": 80.0}, frame="normalized", speed=20000)
        assert wait_for(lambda: abs(arm.read_positions()["shoulder_lift"] + 30.0) < 0.1
                        and abs(arm.read_positions()["gripper"] - 80.0) < 0.1)
        arm.disconnect()


@pytest.mark.parametrize("arm_name", ["so101_follower", "koch_follower"])
def test_goal_positions_with_max_relative_target(arm_name):
    with ServoBusSimulator(arm_name) as sim:
        arm = Arm(arm_name, sim.port, calibration_for(sim), max_relative_target=10.0,
                  min_packet_timeout_ms=SIM_TIMEOUT_MS)
        arm.connect()
        start = arm.read_positions()
        sent = arm.write_goal_positions({"shoulder_pan.pos": start["shoulder_pan"] + 30.0, "gripper": 90.0})
        assert sent["shoulder_pan"] == pytest.approx(start["shoulder_pan"] + 10.0)
        assert sent["gripper"] == pytest.approx(start["gripper"] + 10.0)
        assert wait_for(lambda: abs(arm.read_positions()["shoulder_pan"] - sent["shoulder_pan"]) < 0.1)
        # without a cap the goal passes through unchanged
        sent = arm.write_goal_positions({"wrist_flex": 25.0}, max_relative_target=1000.0)
        assert sent == {"wrist_flex": 25.0}
        # Sync Write has no reply: wait until the simulator has applied it
        assert wait_for(lambda: sim.register("wrist_flex", "Goal_Position") == arm.bus.unnormalize("wrist_flex", 25.0))
        with pytest.raises(MotorConfigError, match="unknown joint 'elbow'"):
            arm.write_goal_positions({"elbow": 1.0})
        with pytest.raises(MotorConfigError, match="not finite"):
            arm.write_goal_positions({"elbow_flex": float("nan")})
        arm.disconnect()


def test_read_state_and_feetech_faults():
    with ServoBusSimulator("so101_follower") as sim:
        arm = Arm("so101_follower", sim.port, calibration_for(sim), min_packet_timeout_ms=SIM_TIMEOUT_MS)
        arm.connect()
        arm.write_goal_positions({"elbow_flex": 40.0})
        assert wait_for(lambda: arm.read_state().velocities["elbow_flex"] > 10.0)
        state = arm.read_state()
        assert state.efforts["elbow_flex"] > 0 and state.effort_units["elbow_flex"] == "load_percent"
        assert state.voltages["gripper"] == pytest.approx(12.0)
        assert state.temperatures["gripper"] == pytest.approx(28.0)
        assert all(flags == () for flags in state.error_flags.values())
        sim.set_fault("wrist_flex", "overheat")
        sim.set_fault("gripper", "low_voltage")
        state = arm.read_state()
        assert state.error_flags["wrist_flex"] == ("overheat",)
        assert state.temperatures["wrist_flex"] >= 70
        assert state.error_flags["gripper"] == ("input_voltage",) and state.voltages["gripper"] < 4.0
        assert sim.register("wrist_flex", "Torque_Enable") == 0  # the firmware unloaded it
        sim.set_fault("elbow_flex", "no_reply")
        with pytest.raises(MotorCommError, match=r"elbow_flex.*id 3"):
            arm.read_positions()
        sim.clear_faults()
        assert arm.read_state().error_flags == {n: () for n in NAMES}
        arm.disconnect()


def test_dynamixel_hardware_error_flags():
    with ServoBusSimulator("koch_follower") as sim:
        arm = Arm("koch_follower", sim.port, calibration_for(sim), min_packet_timeout_ms=SIM_TIMEOUT_MS)
        arm.connect()
        sim.set_fault("shoulder_lift", "hardware_error")
        sim.set_fault("gripper", "low_voltage")
        state = arm.read_state()
        assert state.error_flags["shoulder_lift"] == ("overload",)
        assert state.error_flags["gripper"] == ("input_voltage",)
        assert state.effort_units == {**{n: "load_percent" for n in NAMES[:2]},
                                      **{n: "current_mA" for n in NAMES[2:]}}
        assert state.voltages["elbow_flex"] == pytest.approx(12.0)
        arm.disconnect()


def test_silent_bus_then_reconnect():
    with ServoBusSimulator("so101_follower") as sim:
        arm = Arm("so101_follower", sim.port, calibration_for(sim), min_packet_timeout_ms=SIM_TIMEOUT_MS)
        arm.connect()
        sim.set_silent(True)
        with pytest.raises(MotorCommError, match="no status packet"):
            arm.read_positions()
        arm.disconnect(disable_torque=False)
        with pytest.raises(Exception, match="did not answer ping"):
            arm.connect()
        sim.set_silent(False)
        arm.connect()
        assert set(arm.read_positions()) == set(NAMES)
        arm.disconnect()


@pytest.mark.parametrize("arm_name", ["so101_follower", "koch_follower"])
@pytest.mark.parametrize("fault,flags,comm_error", [
    ("hardware_error", ("overload",), None),
    ("overheat", ("overheat",), None),
    ("low_voltage", ("input_voltage",), None),
    ("no_reply", None, "no status packet"),
    ("missing", None, "no status packet"),
    ("corrupt_reply", None, "Incorrect status packet"),
])
def test_each_fault_gives_its_flag_or_error(arm_name, fault, flags, comm_error):
    with ServoBusSimulator(arm_name) as sim:
        arm = Arm(arm_name, sim.port, calibration_for(sim), min_packet_timeout_ms=SIM_TIMEOUT_MS, num_read_retries=1)
        arm.connect()
        sim.set_fault("wrist_flex", fault)
        if comm_error is None:
            state = arm.read_state()
            assert state.error_flags["wrist_flex"] == flags
            assert all(state.error_flags[n] == () for n in NAMES if n != "wrist_flex")
            shutdown = fault in ("hardware_error", "overheat")  # the firmware unloads the motor
            assert sim.register("wrist_flex", "Torque_Enable") == (0 if shutdown else 1)
        else:
            with pytest.raises(MotorCommError, match=rf"port {sim.port}, motor 'wrist_flex' \(id 4\), "
                                                     rf"register Present_Position.*{comm_error}"):
                arm.read_positions()
        sim.clear_faults()
        assert set(arm.read_state().error_flags.values()) == {()}
        arm.disconnect()
