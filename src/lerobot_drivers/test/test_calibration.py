"""LeRobot-compatible calibration files and the calibration procedure against the simulator."""
import json
import threading
import time

import pytest

from lerobot_drivers.arms import Arm
from lerobot_drivers.calibration import (
    CalibrationError, CalibrationProcedure, MotorCalibration, calibration_file_path, calibration_root,
    calibration_to_json, find_calibration_file, load_calibration, save_calibration,
)
from lerobot_drivers.sim.servo_bus_simulator import ServoBusSimulator

SIM_TIMEOUT_MS = 200.0  # in-process simulator on a loaded machine: see test_arms.py

# A file as LeRobot writes it (draccus JSON dump, indent 4, no trailing newline).
LEROBOT_FILE = """{
    "shoulder_pan": {
        "id": 1,
        "drive_mode": 0,
        "homing_offset": -1470,
        "range_min": 758,
        "range_max": 3292
    },
    "shoulder_lift": {
        "id": 2,
        "drive_mode": 0,
        "homing_offset": 157,
        "range_min": 737,
        "range_max": 3281
    },
    "elbow_flex": {
        "id": 3,
        "drive_mode": 0,
        "homing_offset": 1105,
        "range_min": 862,
        "range_max": 3098
    },
    "wrist_flex": {
        "id": 4,
        "drive_mode": 0,
        "homing_offset": -2024,
        "range_min": 891,
        "range_max": 3240
    },
    "wrist_roll": {
        "id": 5,
        "drive_mode": 0,
        "homing_offset": -1452,
        "range_min": 0,
        "range_max": 4095
    },
    "gripper": {
        "id": 6,
        "drive_mode": 0,
        "homing_offset": -1337,
        "range_min": 2011,
        "range_max": 3520
    }
}"""


def test_lerobot_file_round_trips_byte_identical(tmp_path):
    src = tmp_path / "in.json"
    src.write_text(LEROBOT_FILE)
    calibration = load_calibration(src, ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex",
                                         "wrist_roll", "gripper"])
    assert calibration["shoulder_pan"] == MotorCalibration(1, 0, -1470, 758, 3292)
    assert list(calibration) == list(json.loads(LEROBOT_FILE))
    out = save_calibration(tmp_path / "robots" / "so_follower" / "x.json", calibration)
    assert out.read_text() == LEROBOT_FILE
    assert calibration_to_json(calibration) == LEROBOT_FILE


@pytest.mark.parametrize("content,match", [
    ("[1, 2]", "expected an object"),
    ('{"gripper": {"id": 6, "drive_mode": 0, "homing_offset": 1, "range_min": 2}}', "missing fields.*range_max"),
    ('{"gripper": {"id": 6, "drive_mode": 0, "homing_offset": 1.5, "range_min": 2, "range_max": 3}}',
     "homing_offset.*integer"),
    ("{not json", "cannot read"),
])
def test_bad_files_are_rejected_with_field_names(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CalibrationError, match=match):
        load_calibration(path)


def test_wrong_motor_set_is_rejected(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(LEROBOT_FILE)
    with pytest.raises(CalibrationError, match="do not match"):
        load_calibration(path, ["a", "b"])


def test_default_locations_and_legacy_names(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_LEROBOT_CALIBRATION", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert calibration_root() == tmp_path / "hf" / "lerobot" / "calibration"
    monkeypatch.delenv("HF_HOME")
    assert str(calibration_root()).endswith(".cache/huggingface/lerobot/calibration")
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(tmp_path / "cal"))
    root = tmp_path / "cal"
    assert calibration_file_path("so101_follower", "a1") == root / "robots" / "so_follower" / "a1.json"
    assert calibration_file_path("so100_leader", "l") == root / "teleoperators" / "so_leader" / "l.json"
    assert calibration_file_path("koch_leader", "k") == root / "teleoperators" / "koch_leader" / "k.json"
    assert find_calibration_file("so101_follower", "a1") is None
    legacy = root / "robots" / "so100_follower" / "a1.json"
    legacy.parent.mkdir(parents=True)
    legacy.write_text(LEROBOT_FILE)
    assert find_calibration_file("so101_follower", "a1") == legacy
    current = root / "robots" / "so_follower" / "a1.json"
    current.parent.mkdir(parents=True)
    current.write_text(LEROBOT_FILE)
    assert find_calibration_file("so101_follower", "a1") == current


def _wait_settled(sim, targets, frame_key="present", timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = sim.state()
        if all(abs(state[n][frame_key] - v) < 0.5 for n, v in targets.items()):
            return
        time.sleep(0.01)
    raise AssertionError(f"motors did not reach {targets}: {sim.state()}")


def _operator_sweeps(sim, sweeps, stop: threading.Event):
    """Test operator: moves each joint to its low then high end, then presses 'Enter'."""
    for name, (low, high) in sweeps.items():
        for target in (low, high):
            sim.move({name: target}, frame="present", speed=20000)
            _wait_settled(sim, {name: target})
            time.sleep(0.1)  # dwell at the end stop for a few 20 ms recording polls, as a hand would
    stop.set()


def _second_enter(operator: threading.Thread, stop: threading.Event):
    """The 'Enter' that ends range recording; the operator starts sweeping once recording has begun."""
    def pressed() -> bool:
        if not operator.is_alive() and not stop.is_set():
            operator.start()
        return stop.is_set()
    return pressed


def test_so101_calibration_procedure_against_simulator(tmp_path):
    middle_actual = {"shoulder_pan": 2100, "shoulder_lift": 1900, "elbow_flex": 2200, "wrist_flex": 2000,
                     "wrist_roll": 3000, "gripper": 1800}
    with ServoBusSimulator("so101_follower", initial_positions=middle_actual) as sim:
        arm = Arm("so101_follower", sim.port, min_packet_timeout_ms=SIM_TIMEOUT_MS)
        arm.connect(configure=False)
        procedure = CalibrationProcedure(arm)
        sweeps = {"shoulder_pan": (1000, 3100), "shoulder_lift": (900, 3000), "elbow_flex": (1100, 2900),
                  "wrist_flex": (1200, 2800), "gripper": (2000, 3300)}
        stop = threading.Event()
        operator = threading.Thread(target=_operator_sweeps, args=(sim, sweeps, stop))
        second_enter = _second_enter(operator, stop)

        calibration = procedure.run(wait_for_middle=lambda: None, should_stop=second_enter,
                                    save_to=tmp_path / "robots" / "so_follower" / "sim.json")
        operator.join()
        for name, actual in middle_actual.items():
            # Feetech half-turn homing: offset = position (read with offset 0) - 2047
            assert calibration[name].homing_offset == actual - 2047
            assert sim.register(name, "Homing_Offset") == actual - 2047
        for name, (low, high) in sweeps.items():
            assert (calibration[name].range_min, calibration[name].range_max) == (low, high)
            assert (sim.register(name, "Min_Position_Limit"), sim.register(name, "Max_Position_Limit")) == (low, high)
        assert (calibration["wrist_roll"].range_min, calibration["wrist_roll"].range_max) == (0, 4095)
        assert all(c.drive_mode == 0 for c in calibration.values())
        assert sim.register("gripper", "Torque_Enable") == 0 and sim.register("gripper", "Operating_Mode") == 0
        saved = load_calibration(tmp_path / "robots" / "so_follower" / "sim.json")
        assert saved == calibration
        arm.bus.calibration = saved
        assert arm.is_calibrated
        arm.disconnect()


def test_koch_leader_procedure_inverts_elbow_and_uses_dynamixel_homing():
    with ServoBusSimulator("koch_leader") as sim:
        arm = Arm("koch_leader", sim.port, min_packet_timeout_ms=SIM_TIMEOUT_MS)
        arm.connect(configure=False)
        procedure = CalibrationProcedure(arm)
        procedure.prepare()
        assert sim.register("elbow_flex", "Drive_Mode") == 1
        assert all(sim.register(n, "Operating_Mode") == 4 for n in arm.motor_names)
        actual = {n: s["actual"] for n, s in sim.state().items()}
        offsets = procedure.set_homing()
        assert offsets["shoulder_pan"] == 2047 - round(actual["shoulder_pan"])  # Present = Actual + Offset
        assert offsets["elbow_flex"] == 2047 + round(actual["elbow_flex"])  # reversed: Present = -Actual + Offset
        assert all(abs(sim.state()[n]["present"] - 2047) <= 1 for n in arm.motor_names)
        sweeps = {n: (1500, 2600) for n in arm.motor_names if n not in ("shoulder_pan", "wrist_roll")}
        stop = threading.Event()
        operator = threading.Thread(target=_operator_sweeps, args=(sim, sweeps, stop))
        second_enter = _second_enter(operator, stop)

        procedure.record_ranges(second_enter)
        operator.join()
        calibration = procedure.finish()
        assert calibration["elbow_flex"].drive_mode == 1 and calibration["gripper"].drive_mode == 0
        assert (calibration["elbow_flex"].range_min, calibration["elbow_flex"].range_max) == (1500, 2600)
        assert (calibration["shoulder_pan"].range_min, calibration["shoulder_pan"].range_max) == (0, 4095)
        assert arm.bus.is_calibrated
        arm.disconnect()


def test_joint_that_never_moved_is_an_error():
    with ServoBusSimulator("so101_leader") as sim:
        arm = Arm("so101_leader", sim.port, min_packet_timeout_ms=SIM_TIMEOUT_MS)
        arm.connect(configure=False)
        procedure = CalibrationProcedure(arm)
        procedure.prepare()
        procedure.set_homing()
        with pytest.raises(CalibrationError, match=r"shoulder_pan.*did not move"):
            procedure.record_ranges(lambda: True)
        arm.disconnect()
