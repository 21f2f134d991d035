"""The servo-bus simulator: wire formats, motor model, control channel, CLI."""
import os
import subprocess
import sys
import time
from pathlib import Path

import dynamixel_sdk as dxl
import pytest
import scservo_sdk as scs

from lerobot_drivers.motors.dynamixel import DynamixelPortHandler
from lerobot_drivers.motors.feetech import FeetechPortHandler
from lerobot_drivers.sim import servo_protocols as wire
from lerobot_drivers.sim.servo_bus_simulator import (
    MODEL_MAX_SPEED, ServoBusSimulator, SimMotorSpec, SimulatedMotor, send_command,
)


def test_feetech_wire_format_known_packets():
    assert wire.feetech_instruction(1, wire.INST_PING) == bytes.fromhex("FFFF010201FB")
    parser = wire.FeetechParser()
    bad = bytearray(wire.feetech_instruction(2, wire.INST_READ, bytes([56, 2])))
    bad[-1] ^= 0x55
    stream = b"\x00\x13" + bytes(bad) + wire.feetech_instruction(3, wire.INST_READ, bytes([56, 2]))
    out = parser.feed(stream[:7]) + parser.feed(stream[7:])  # split across reads
    assert out == [wire.Instruction(3, wire.INST_READ, bytes([56, 2]))]
    assert parser.bad_packets == 1
    assert wire.feetech_status(1, 0, b"\x00\x08") == bytes([0xFF, 0xFF, 1, 4, 0, 0, 8, 0xF2])


def test_dynamixel_wire_format_crc_and_stuffing():
    # ROBOTIS e-manual example: ping to ID 1 = FF FF FD 00 01 03 00 01 19 4E
    assert wire.dynamixel_instruction(1, wire.INST_PING) == bytes.fromhex("FFFFFD0001030001194E")
    params = bytes([0x74, 0x00, 0xFF, 0xFF, 0xFD, 0x01])
    packet = wire.dynamixel_instruction(1, wire.INST_WRITE, params)
    assert b"\xff\xff\xfd\xfd" in packet[7:]  # stuffed
    assert wire.DynamixelParser().feed(b"\xff" + packet) == [wire.Instruction(1, wire.INST_WRITE, params)]
    assert wire.unstuff(wire.stuff(params)) == params
    # the SDK's own CRC agrees with ours on a status packet we build
    status = wire.dynamixel_status(7, 0, bytes([0xFF, 0xFF, 0xFD, 0x10]))
    ph = dxl.PacketHandler(2.0)
    assert ph.updateCRC(0, list(status), len(status) - 2) == status[-2] | (status[-1] << 8)


def test_malformed_instruction_gets_no_reply_and_sim_keeps_serving():
    with ServoBusSimulator("so101_follower") as sim:
        port = FeetechPortHandler(sim.port)
        port.min_packet_timeout_ms = 200.0
        assert port.openPort()
        port.writePort(wire.feetech_instruction(1, wire.INST_READ, b""))  # READ without address/length
        model, comm, _ = scs.PacketHandler(0).ping(port, 1)
        assert (model, comm) == (777, scs.COMM_SUCCESS)
        port.closePort()


def _motor(protocol="feetech", model="sts3215"):
    return SimulatedMotor(SimMotorSpec("m", 1, model, initial_actual=1000), protocol, 12.0, now=0.0)


def test_motor_dynamics_respect_speed_limit_and_settle():
    motor = _motor()
    motor.set_reg("Phase", 0)
    motor.write_bytes(40, b"\x01")  # torque on holds position
    assert motor.get_reg("Goal_Position") == 1000
    motor.set_reg("Goal_Position", 3000)
    motor.advance(0.1)
    travelled = motor.actual - 1000
    assert 0 < travelled <= MODEL_MAX_SPEED["sts3215"] * 0.1 + 1
    motor.advance(2.0)
    assert motor.present_position() == 3000 and motor.velocity == 0.0


def test_feetech_homing_and_limits_semantics():
    motor = _motor()
    motor.set_reg("Phase", 0)
    motor.set_reg("Homing_Offset", -500)
    assert motor.present_position() == 1500  # Present = Actual - Offset
    motor.set_reg("Homing_Offset", 1500)
    assert motor.present_position() == (1000 - 1500) % 4096  # wraps within one turn
    motor.set_reg("Homing_Offset", 0)
    motor.set_reg("Min_Position_Limit", 900)
    motor.set_reg("Max_Position_Limit", 1200)
    motor.write_bytes(40, b"\x01")
    motor.set_reg("Goal_Position", 4000)
    motor.advance(3.0)
    assert motor.present_position() == 1200  # goal clamped by EEPROM limit


def test_dynamixel_homing_drive_mode_semantics():
    motor = _motor("dynamixel", "xl330-m288")
    motor.set_reg("Homing_Offset", 100)
    assert motor.present_position() == 1100  # Present = Actual + Offset
    motor.set_reg("Drive_Mode", 1)
    assert motor.present_position() == -900  # reversed direction
    assert motor.write_bytes(64, b"\x01") == 0
    assert motor.write_bytes(10, b"\x00") & 0x7F == 7  # EEPROM write with torque on: access error


def test_overheat_unloads_torque_and_sets_flags():
    motor = _motor()
    motor.write_bytes(40, b"\x01")
    motor.faults.add("overheat")
    motor.advance(0.01)
    motor.refresh_live_registers()
    assert motor.get_reg("Torque_Enable") == 0
    assert motor.status_error() == 0x04 and motor.get_reg("Present_Temperature") >= 70
    motor.write_bytes(40, b"\x01")
    assert motor.get_reg("Torque_Enable") == 0  # refused while the fault lasts


def test_hand_moves_limp_motor_in_normalized_frame(tmp_path):
    sock = str(tmp_path / "ctl.sock")
    with ServoBusSimulator("so101_leader", control_socket=sock) as sim:
        reply = send_command(sock, {"cmd": "move", "positions": {"shoulder_pan": 20.0, "gripper": 75.0},
                                    "frame": "normalized", "speed": 5000})
        assert reply == {"ok": True}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            state = send_command(sock, {"cmd": "state"})["motors"]
            if abs(state["shoulder_pan"]["normalized"] - 20.0) < 0.1 and abs(state["gripper"]["normalized"] - 75) < 0.1:
                break
            time.sleep(0.05)
        assert state["shoulder_pan"]["normalized"] == pytest.approx(20.0, abs=0.1)
        assert state["gripper"]["normalized"] == pytest.approx(75.0, abs=0.1)
        assert send_command(sock, {"cmd": "release"})["ok"]
        err = send_command(sock, {"cmd": "fault", "motor": "gripper", "fault": "melted"})
        assert not err["ok"] and "melted" in err["error"]
        assert not send_command(sock, {"cmd": "bogus"})["ok"]
        assert send_command(sock, {"cmd": "register", "motor": "gripper", "register": "ID"})["value"] == 6


def test_silence_and_resume_over_control_socket(tmp_path):
    sock = str(tmp_path / "ctl.sock")
    with ServoBusSimulator("koch_leader", control_socket=sock) as sim:
        port = DynamixelPortHandler(sim.port)  # the SDK's port I/O with a timeout floor for the loaded CI
        port.min_packet_timeout_ms = 200.0
        ph = dxl.PacketHandler(2.0)
        assert port.openPort()
        assert ph.ping(port, 3)[1] == dxl.COMM_SUCCESS
        send_command(sock, {"cmd": "silence", "active": True})
        assert ph.ping(port, 3)[1] == dxl.COMM_RX_TIMEOUT
        send_command(sock, {"cmd": "silence", "active": False})
        assert ph.ping(port, 3) == (1190, dxl.COMM_SUCCESS, 0)
        send_command(sock, {"cmd": "fault", "motor": 3, "fault": "missing"})
        found, comm = ph.broadcastPing(port)
        assert sorted(found) == [1, 2, 4, 5, 6] and found[1] == [1190, 52]
        port.closePort()


def _installed_script(name: str) -> list[str]:
    script = Path(__file__).resolve().parents[3] / "install" / "lerobot_drivers" / "lib" / "lerobot_drivers" / name
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "lerobot_drivers.sim.servo_bus_simulator"]


def test_cli_first_line_is_a_pingable_port(tmp_path):
    sock = str(tmp_path / "cli.sock")
    proc = subprocess.Popen(_installed_script("lerobot-servo-sim") + ["--arm", "so101_follower",
                                                                      "--control-socket", sock],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        port_path = proc.stdout.readline().strip()
        assert port_path.startswith("/dev/pts/")
        assert proc.stdout.readline().strip() == f"control_socket={sock}"
        port = FeetechPortHandler(port_path)  # the SDK's port I/O with a timeout floor for the loaded CI
        port.min_packet_timeout_ms = 200.0
        assert port.openPort()
        model, comm, error = scs.PacketHandler(0).ping(port, 6)
        assert (model, comm, error) == (777, scs.COMM_SUCCESS, 0)
        port.closePort()
        assert send_command(sock, {"cmd": "ping"})["motors"][0] == "shoulder_pan"
    finally:
        proc.terminate()  # SIGTERM: the simulator stops cleanly
        assert proc.wait(timeout=10) == 0
    assert not os.path.exists(sock)
