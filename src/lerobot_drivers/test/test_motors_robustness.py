"""Bus robustness against the pty servo-bus simulator: torque-off reaches every motor, a failed transaction does
not leave the SDK port busy, and a vanished serial device raises MotorPortError naming port, motor, register."""
import errno
import os

import pytest

from lerobot_drivers.motors import (
    DynamixelBus, FeetechBus, Motor, MotorCommError, MotorNormMode, MotorPortError, MotorTorqueOffError,
)
from lerobot_drivers.sim.servo_bus_simulator import ServoBusSimulator

DEG = MotorNormMode.DEGREES
SIM_TIMEOUT_MS = 200.0  # reply floor for a loaded CI machine (see test_motors_sdk.py)
NAMES = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
SO_MOTORS = {n: Motor(i + 1, "sts3215", DEG) for i, n in enumerate(NAMES)}
KOCH_MODELS = ["xl430-w250", "xl430-w250", "xl330-m288", "xl330-m288", "xl330-m288", "xl330-m288"]
KOCH_MOTORS = {n: Motor(i + 1, KOCH_MODELS[i], DEG) for i, n in enumerate(NAMES)}
BUSES = pytest.mark.parametrize("arm,bus_class,motors", [("so101_follower", FeetechBus, SO_MOTORS),
                                                         ("koch_follower", DynamixelBus, KOCH_MOTORS)],
                                ids=["feetech", "dynamixel"])


def torque(sim):
    return {name: sim.register(name, "Torque_Enable") for name in NAMES}


@BUSES
def test_disable_torque_reaches_every_motor_and_names_each_failure(arm, bus_class, motors):
    with ServoBusSimulator(arm) as sim:
        bus = bus_class(sim.port, motors, min_packet_timeout_ms=SIM_TIMEOUT_MS)
        bus.connect()
        bus.enable_torque()
        assert set(torque(sim).values()) == {1}
        sim.set_fault("elbow_flex", "no_reply")  # id 3: three motors come after it
        with pytest.raises(MotorTorqueOffError) as info:
            bus.disable_torque(num_retry=1)
        err = info.value
        assert torque(sim) == {**{n: 0 for n in NAMES}, "elbow_flex": 1}
        if bus_class is FeetechBus:  # the rest of the off sequence ran on the healthy motors too
            assert {n: sim.register(n, "Lock") for n in NAMES} == {**{n: 0 for n in NAMES}, "elbow_flex": 1}
        assert err.motors == ["elbow_flex"]
        assert (err.port, err.motor, err.motor_id, err.register) == (sim.port, "elbow_flex", 3, "Torque_Enable")
        assert isinstance(err.failures[0], MotorCommError) and "2 tries" in str(err) and not err.port_failed
        assert sim.port in str(err) and "'elbow_flex' (id 3)" in str(err) and "Torque_Enable" in str(err)

        # first and last motor silent: both named, everything in between switched off
        sim.clear_faults()
        bus.enable_torque()
        sim.set_fault("shoulder_pan", "no_reply")
        sim.set_fault("gripper", "no_reply")
        with pytest.raises(MotorTorqueOffError) as info:
            bus.disable_torque(num_retry=0)
        err = info.value
        assert err.motors == ["shoulder_pan", "gripper"] and err.motor is None
        assert "'shoulder_pan' (id 1) register Torque_Enable" in str(err)
        assert "'gripper' (id 6) register Torque_Enable" in str(err)
        assert torque(sim) == {**{n: 0 for n in NAMES}, "shoulder_pan": 1, "gripper": 1}
        sim.clear_faults()
        bus.disable_torque()
        assert set(torque(sim).values()) == {0}
        bus.disconnect(disable_torque=False)


@BUSES
def test_enable_torque_stops_at_the_first_failure_and_names_it(arm, bus_class, motors):
    with ServoBusSimulator(arm) as sim:
        bus = bus_class(sim.port, motors, min_packet_timeout_ms=SIM_TIMEOUT_MS)
        bus.connect()
        sim.set_fault("elbow_flex", "no_reply")
        with pytest.raises(MotorCommError) as info:
            bus.enable_torque()
        err = info.value
        assert (err.port, err.motor, err.motor_id, err.register) == (sim.port, "elbow_flex", 3, "Torque_Enable")
        assert torque(sim) == {"shoulder_pan": 1, "shoulder_lift": 1, "elbow_flex": 0, "wrist_flex": 0,
                               "wrist_roll": 0, "gripper": 0}
        assert any("['shoulder_pan', 'shoulder_lift']" in note and "['wrist_flex', 'wrist_roll', 'gripper']" in note
                   for note in err.__notes__)
        bus.disconnect(disable_torque=False)


def fail_next_write(bus):
    """Make the next serial write of this bus raise EIO (the adapter reset mid-packet), then behave again."""
    port = bus._port_handler
    real_write = port.writePort

    def write_once(packet):
        port.writePort = real_write
        raise OSError(errno.EIO, "Input/output error")

    port.writePort = write_once


@BUSES
def test_exception_inside_the_sdk_call_does_not_leave_the_port_busy(arm, bus_class, motors):
    with ServoBusSimulator(arm) as sim:
        bus = bus_class(sim.port, motors, min_packet_timeout_ms=SIM_TIMEOUT_MS)
        bus.connect()
        fail_next_write(bus)  # the SDK has marked the port busy when writePort raises
        with pytest.raises(MotorPortError) as info:
            bus.sync_write("Goal_Position", {"wrist_flex": 2222}, normalize=False)
        assert (info.value.port, info.value.register) == (sim.port, "Goal_Position")
        assert isinstance(info.value.__cause__, OSError)
        # same bus object, no reconnect: the next transactions go through
        bus.sync_write("Goal_Position", {"wrist_flex": 2345}, normalize=False)
        # sync_write has no reply: a read behind it proves the simulator processed it
        assert bus.read("Goal_Position", "wrist_flex", normalize=False) == 2345
        assert sim.register("wrist_flex", "Goal_Position") == 2345
        fail_next_write(bus)
        with pytest.raises(MotorPortError, match=r"'gripper' \(id 6\), register ID: read"):
            bus.read("ID", "gripper")
        assert bus.read("ID", "gripper") == 6
        bus.disconnect(disable_torque=False)


@BUSES
def test_vanished_device_raises_port_error_and_the_bus_reconnects(arm, bus_class, motors, tmp_path):
    # A stable device name (like /dev/serial/by-id/...) that follows the adapter when it comes back.
    link = tmp_path / "ttyARM"
    sim = ServoBusSimulator(arm).start()
    try:
        os.symlink(sim.port, link)
        bus = bus_class(str(link), motors, min_packet_timeout_ms=SIM_TIMEOUT_MS)
        bus.connect()
        bus.enable_torque()
        assert bus.read("ID", "gripper") == 6
        sim.stop()  # closes the pty master: the device is gone under the open port

        calls = [
            (lambda: bus.read("Present_Position", "wrist_roll", normalize=False), "wrist_roll", "Present_Position"),
            (lambda: bus.write("Goal_Position", "elbow_flex", 2000, normalize=False), "elbow_flex", "Goal_Position"),
            (lambda: bus.sync_read("Present_Position", normalize=False), None, "Present_Position"),
            (lambda: bus.sync_write("Goal_Position", 2048, normalize=False), None, "Goal_Position"),
            (lambda: bus.ping("shoulder_lift"), "shoulder_lift", "Model_Number"),
        ]
        for call, motor, register in calls:
            with pytest.raises(MotorPortError) as info:
                call()
            err = info.value
            assert (err.port, err.motor, err.register) == (str(link), motor, register)
            assert err.motor_id == (motors[motor].id if motor else None)
            assert "serial device failed" in str(err)
        with pytest.raises(MotorTorqueOffError) as info:  # every motor attempted, each failure named
            bus.disable_torque()
        assert info.value.motors == NAMES
        assert all(isinstance(f, MotorPortError) for f in info.value.failures) and info.value.port_failed
        bus.disconnect()  # torque-off failure is logged; the port is closed anyway
        assert not bus.is_connected

        sim.start()  # the adapter is back, on a new pty
        os.unlink(link)
        os.symlink(sim.port, link)
        bus.connect()
        assert bus.read("ID", "gripper") == 6
        bus.sync_write("Goal_Position", {"wrist_flex": 2100}, normalize=False)
        # sync_write has no reply: a read behind it proves the simulator processed it
        assert bus.read("Goal_Position", "wrist_flex", normalize=False) == 2100
        assert sim.register("wrist_flex", "Goal_Position") == 2100
        bus.disable_torque()
        assert set(torque(sim).values()) == {0}
        bus.disconnect()
    finally:
        sim.stop()
