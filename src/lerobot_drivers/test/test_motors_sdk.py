"""FeetechBus / DynamixelBus through the real SDKs against the pty servo-bus simulator."""
import time

import pytest
import scservo_sdk as scs

from lerobot_drivers.motors import (
    DynamixelBus, FeetechBus, Motor, MotorCalibration, MotorCommError, MotorConfigError, MotorHandshakeError,
    MotorNormMode, MotorNotConnectedError, MotorPortError, MotorStatusError,
)
from lerobot_drivers.motors.encoding import encode_sign_magnitude
from lerobot_drivers.motors.feetech import FeetechPortHandler
from lerobot_drivers.sim.servo_bus_simulator import ServoBusSimulator, SimMotorSpec

DEG = MotorNormMode.DEGREES
SIM_TIMEOUT_MS = 200.0  # in-process simulator on a loaded machine: see test_arms.py; timeout tests use defaults
SO_MOTORS = {n: Motor(i + 1, "sts3215", DEG) for i, n in enumerate(
    ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"])}
KOCH_MODELS = ["xl430-w250", "xl430-w250", "xl330-m288", "xl330-m288", "xl330-m288", "xl330-m288"]
KOCH_MOTORS = {n: Motor(i + 1, KOCH_MODELS[i], DEG) for i, n in enumerate(SO_MOTORS)}


@pytest.fixture
def feetech():
    with ServoBusSimulator("so101_follower") as sim:
        bus = FeetechBus(sim.port, SO_MOTORS, min_packet_timeout_ms=SIM_TIMEOUT_MS)
        bus.connect()
        yield sim, bus
        bus.disconnect(disable_torque=False)


@pytest.fixture
def dynamixel():
    with ServoBusSimulator("koch_follower") as sim:
        bus = DynamixelBus(sim.port, KOCH_MOTORS, min_packet_timeout_ms=SIM_TIMEOUT_MS)
        bus.connect()
        yield sim, bus
        bus.disconnect(disable_torque=False)


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_feetech_ping_and_register_widths(feetech):
    sim, bus = feetech
    assert all(bus.ping(name) == 777 for name in SO_MOTORS)
    bus.write("Return_Delay_Time", "elbow_flex", 7)  # 1 byte
    bus.write("Max_Torque_Limit", "elbow_flex", 777)  # 2 bytes
    assert sim.register("elbow_flex", "Return_Delay_Time") == 7
    assert sim.register("elbow_flex", "Max_Torque_Limit") == 777
    assert bus.read("Return_Delay_Time", "elbow_flex") == 7
    assert bus.read("Max_Torque_Limit", "elbow_flex") == 777
    assert bus.read("Firmware_Major_Version", "gripper") == 3


def test_feetech_sign_magnitude_on_the_wire(feetech):
    sim, bus = feetech
    bus.write("Homing_Offset", "wrist_flex", -1234)
    address, length = 31, 2
    raw = sim.motors["wrist_flex"].mem[address:address + length]
    assert int.from_bytes(raw, "little") == encode_sign_magnitude(-1234, 11) == 0x800 | 1234
    assert bus.read("Homing_Offset", "wrist_flex") == -1234
    with pytest.raises(MotorConfigError, match="wrist_flex.*Homing_Offset"):
        bus.write("Homing_Offset", "wrist_flex", 5000)  # does not fit in 11 bits
    with pytest.raises(MotorConfigError, match="wrist_flex.*Goal_Velocity.*nan"):
        bus.write("Goal_Velocity", "wrist_flex", float("nan"))


def test_feetech_ignores_sdk_global_byte_order(feetech):
    sim, bus = feetech
    scs.PacketHandler(1)  # flips scservo_sdk's module-global byte order to big-endian (SCS)
    try:
        bus.write("Max_Torque_Limit", "gripper", 0x0102)
        assert sim.register("gripper", "Max_Torque_Limit") == 0x0102
        assert bus.read("Model_Number", "gripper") == 777
        assert bus.sync_read("Model_Number") == {n: 777 for n in SO_MOTORS}
    finally:
        scs.PacketHandler(0)


def test_feetech_sync_read_write_moves_motors(feetech):
    sim, bus = feetech
    bus.enable_torque()
    goals = {"shoulder_pan": 2300, "elbow_flex": 2700}
    bus.sync_write("Goal_Position", goals, normalize=False)
    assert wait_for(lambda: all(abs(sim.state()[n]["present"] - g) <= 1 for n, g in goals.items()))
    present = bus.sync_read("Present_Position", normalize=False)
    assert present["shoulder_pan"] == sim.state()["shoulder_pan"]["present"]
    assert abs(present["elbow_flex"] - 2700) <= 1
    assert sim.register("shoulder_pan", "Lock") == 1


def test_normalized_read_write_uses_calibration(feetech):
    sim, bus = feetech
    bus.calibration = {n: MotorCalibration(m.id, 0, 0, 1000, 3000) for n, m in SO_MOTORS.items()}
    bus.write("Goal_Position", "shoulder_pan", 10.0)  # -> int(10*4095/360 + 2000) = 2113
    assert sim.register("shoulder_pan", "Goal_Position") == 2113
    assert bus.read("Goal_Position", "shoulder_pan") == pytest.approx(113 * 360 / 4095)
    bus.calibration = {}
    with pytest.raises(MotorConfigError, match="no calibration"):
        bus.read("Present_Position", "shoulder_pan")


def test_sync_read_registers_single_transaction(feetech):
    sim, bus = feetech
    before = sim.packets_received
    state = bus.sync_read_registers(["Present_Position", "Present_Velocity", "Present_Load",
                                     "Present_Voltage", "Present_Temperature"])
    assert sim.packets_received == before + 1
    assert state["gripper"]["Present_Voltage"] == 120
    assert state["gripper"]["Present_Temperature"] == 28
    assert state["shoulder_lift"]["Present_Position"] == sim.state()["shoulder_lift"]["present"]


def test_dynamixel_register_widths_and_twos_complement(dynamixel):
    sim, bus = dynamixel
    assert bus.ping("shoulder_pan") == 1060 and bus.ping("gripper") == 1200
    bus.write("Return_Delay_Time", "gripper", 3)  # 1 byte (EEPROM, torque is off)
    bus.write("Position_P_Gain", "gripper", 1234)  # 2 bytes
    bus.write("Profile_Velocity", "gripper", 70000)  # 4 bytes
    bus.write("Homing_Offset", "gripper", -12345)  # 4 bytes, signed
    raw = sim.motors["gripper"].mem[20:24]
    assert int.from_bytes(raw, "little") == (-12345) & 0xFFFFFFFF
    assert bus.read("Return_Delay_Time", "gripper") == 3
    assert bus.read("Position_P_Gain", "gripper") == 1234
    assert bus.read("Profile_Velocity", "gripper") == 70000
    assert bus.read("Homing_Offset", "gripper") == -12345
    assert sim.register("gripper", "Homing_Offset") == -12345


def test_dynamixel_sync_and_eeprom_access_error(dynamixel):
    sim, bus = dynamixel
    bus.enable_torque()
    with pytest.raises(MotorStatusError, match=r"wrist_roll.*id 5.*Drive_Mode.*access_error"):
        bus.write("Drive_Mode", "wrist_roll", 1)  # EEPROM with torque on
    goals = {name: 2100 for name in KOCH_MOTORS}
    bus.sync_write("Goal_Position", goals, normalize=False)
    assert wait_for(lambda: all(abs(s["present"] - 2100) <= 1 for s in sim.state().values()))
    assert all(abs(v - 2100) <= 1 for v in bus.sync_read("Present_Position", normalize=False).values())


def test_absent_motor_fails_handshake_and_times_out():
    motors = dict(SO_MOTORS)
    motors["extra"] = Motor(9, "sts3215", DEG)
    with ServoBusSimulator("so101_follower") as sim:
        bus = FeetechBus(sim.port, motors, min_packet_timeout_ms=SIM_TIMEOUT_MS)
        with pytest.raises(MotorHandshakeError, match=r"'extra' \(id 9\) did not answer ping"):
            bus.connect()
        assert not bus.is_connected
        bus.connect(handshake=False)
        with pytest.raises(MotorCommError, match=r"extra.*id 9.*Present_Position.*no status packet"):
            bus.read("Present_Position", "extra", normalize=False, num_retry=1)
        with pytest.raises(MotorCommError, match=r"'extra'.*sync_read.*no status packet"):
            bus.sync_read("Present_Position", normalize=False)
        # the bus recovers: stale replies of the motors after the silent one were dropped
        assert bus.read("Model_Number", "gripper") == 777
        bus.disconnect(disable_torque=False)


def test_wrong_model_number_fails_handshake():
    wrong = dict(KOCH_MOTORS)
    wrong["gripper"] = Motor(6, "xl330-m077", DEG)
    with ServoBusSimulator("koch_follower") as sim:
        with pytest.raises(MotorHandshakeError, match=r"gripper.*xl330-m077.*1190.*found model number 1200"):
            DynamixelBus(sim.port, wrong, min_packet_timeout_ms=SIM_TIMEOUT_MS).connect()


@pytest.mark.parametrize("arm,bus_class,motors", [("so101_follower", FeetechBus, SO_MOTORS),
                                                  ("koch_follower", DynamixelBus, KOCH_MOTORS)])
def test_corrupted_reply_error_names_port_motor_register(arm, bus_class, motors):
    with ServoBusSimulator(arm) as sim:
        bus = bus_class(sim.port, motors, min_packet_timeout_ms=SIM_TIMEOUT_MS)
        bus.connect()
        sim.set_fault("elbow_flex", "corrupt_reply")
        with pytest.raises(MotorCommError) as info:
            bus.read("Present_Position", "elbow_flex", normalize=False, num_retry=2)
        err = info.value
        assert (err.port, err.motor, err.motor_id, err.register) == (sim.port, "elbow_flex", 3, "Present_Position")
        assert sim.port in str(err) and "Incorrect status packet" in str(err) and "3 tries" in str(err)
        with pytest.raises(MotorCommError, match="elbow_flex.*Incorrect status packet"):
            bus.sync_read("Present_Position", normalize=False)
        sim.clear_faults()
        assert bus.read("ID", "elbow_flex") == 3
        bus.disconnect(disable_torque=False)


def test_status_error_byte_raises_on_read_but_not_sync_read(feetech):
    sim, bus = feetech
    sim.set_fault("gripper", "low_voltage")
    with pytest.raises(MotorStatusError, match=r"gripper.*Present_Voltage.*input_voltage") as info:
        bus.read("Present_Voltage", "gripper")
    assert info.value.flags == ("input_voltage",)
    values = bus.sync_read("Present_Voltage")
    assert values["gripper"] < 40 and bus.last_status_error["gripper"] == 0x01


def test_port_and_connection_errors():
    with pytest.raises(MotorPortError, match="/dev/does-not-exist"):
        FeetechBus("/dev/does-not-exist", SO_MOTORS).connect()
    with pytest.raises(MotorNotConnectedError, match="not connected"):
        FeetechBus("/dev/null", SO_MOTORS).read("ID", "gripper")
    with pytest.raises(MotorConfigError, match="unknown Feetech model 'xl330-m288'"):
        FeetechBus("/dev/null", {"a": Motor(1, "xl330-m288", DEG)})
    with pytest.raises(MotorConfigError, match="no register 'Drive_Mode'"):
        FeetechBus("/dev/null", SO_MOTORS).register_address("gripper", "Drive_Mode")


def test_feetech_protocol_1_scs_big_endian_without_sync_read():
    specs = [SimMotorSpec("a", 1, "scs0009", initial_actual=300), SimMotorSpec("b", 2, "scs0009", initial_actual=700)]
    with ServoBusSimulator(motors=specs, protocol="feetech") as sim:
        bus = FeetechBus(sim.port, {"a": Motor(1, "scs0009", DEG), "b": Motor(2, "scs0009", DEG)},
                         protocol_version=1, min_packet_timeout_ms=SIM_TIMEOUT_MS)
        bus.connect()
        assert bus.ping("a") == 1284
        bus.write("Max_Torque_Limit", "b", 0x0203)
        assert bytes(sim.motors["b"].mem[16:18]) == b"\x02\x03"  # big-endian on the wire
        assert bus.sync_read("Present_Position", normalize=False) == {"a": 300, "b": 700}
        bus.disconnect(disable_torque=False)


@pytest.mark.parametrize("arm,bus_class,motors,model", [("so101_follower", FeetechBus, SO_MOTORS, 777),
                                                        ("koch_follower", DynamixelBus, KOCH_MOTORS, 1200)])
def test_late_replies_of_another_length_are_skipped(arm, bus_class, motors, model):
    with ServoBusSimulator(arm) as sim:
        bus = bus_class(sim.port, motors, min_packet_timeout_ms=SIM_TIMEOUT_MS)
        bus.connect()
        sim.set_fault("gripper", "stale_reply")
        if bus_class is FeetechBus:
            # the bare SDK takes the stale packet for the answer (its readRx only checks the id)
            port = FeetechPortHandler(sim.port)  # SDK port I/O, with a generous timeout for the loaded CI
            port.min_packet_timeout_ms = SIM_TIMEOUT_MS
            assert port.openPort()
            value, comm, _ = scs.PacketHandler(0).read2ByteTxRx(port, 6, 3)
            assert comm == scs.COMM_SUCCESS and value == 0x2211
            port.closePort()
        assert bus.ping("gripper") == model
        assert bus.read("ID", "gripper") == 6
        assert bus.read("Model_Number", "gripper") == model
        present = bus.sync_read("Present_Position", normalize=False)
        assert present["gripper"] == sim.state()["gripper"]["present"]
        bus.disconnect(disable_torque=False)
