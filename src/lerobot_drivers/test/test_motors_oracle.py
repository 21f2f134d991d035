"""Compatibility oracle: upstream LeRobot 0.4.4's own FeetechMotorsBus / DynamixelMotorsBus (in .venv-oracle, driving
the real SDKs) against our simulator, compared with our buses.

Checks that (1) upstream's buses accept the simulator (handshake incl. Feetech firmware check, reads, writes,
sign encodings, calibration registers), and (2) our normalization gives bit-identical numbers to upstream's
_normalize/_unnormalize over a grid of raw values, modes and drive modes.
The oracle venv lacks the SDKs and deepdiff; the SDKs are linked in from our venv (pure Python), and deepdiff
(only used by upstream to diff two control tables) is replaced by an equality check.
"""
import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from lerobot_drivers.motors import DynamixelBus, FeetechBus, Motor, MotorCalibration, MotorNormMode
from lerobot_drivers.motors.normalization import normalize_position, unnormalize_position
from lerobot_drivers.sim.servo_bus_simulator import ServoBusSimulator

pytestmark = pytest.mark.oracle

WS = Path(__file__).resolve().parents[3]
ORACLE_PYTHON = WS / ".venv-oracle" / "bin" / "python"
OUR_SITE = WS / ".venv" / "lib" / "python3.11" / "site-packages"
NAMES = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
RAWS = [0, 17, 999, 1000, 1001, 1500, 2047, 2048, 2500, 2999, 3000, 3001, 4095]
VALUES = [-250.0, -100.0, -33.3, -10.0, -0.1, 0.0, 0.1, 12.34, 42.42, 50.0, 99.99, 100.0, 180.0]

ORACLE_SCRIPT = textwrap.dedent('''
    import json, sys
    from lerobot.motors import Motor, MotorCalibration, MotorNormMode
    from lerobot.motors.feetech import FeetechMotorsBus
    from lerobot.motors.dynamixel import DynamixelMotorsBus

    args = json.loads(sys.argv[1])
    out = {}
    def motors(models):
        return {n: Motor(i + 1, m, MotorNormMode.RANGE_0_100 if n == "gripper" else MotorNormMode.DEGREES)
                for i, (n, m) in enumerate(zip(args["names"], models))}
    for kind, cls, models in (("feetech", FeetechMotorsBus, ["sts3215"] * 6),
                              ("dynamixel", DynamixelMotorsBus, ["xl430-w250"] * 2 + ["xl330-m288"] * 4)):
        cal = {n: MotorCalibration(**c) for n, c in args[kind]["calibration"].items()}
        bus = cls(args[kind]["port"], motors(models), calibration=cal)
        # Only timing is adjusted: a 200 ms floor on the reply timeout, as the simulator shares a loaded CI machine.
        original = bus.port_handler.setPacketTimeout
        def floored(packet_length, original=original, handler=bus.port_handler):
            original(packet_length)
            handler.packet_timeout = max(handler.packet_timeout, 200.0)
        bus.port_handler.setPacketTimeout = floored
        bus.connect()
        bus.disable_torque(num_retry=3)
        bus.write_calibration(cal)
        res = {"raw": bus.sync_read("Present_Position", normalize=False, num_retry=3),
               "norm": bus.sync_read("Present_Position", num_retry=3),
               "read_cal": {n: vars(c) for n, c in bus.read_calibration().items()},
               "is_calibrated": bus.is_calibrated}
        bus.enable_torque(num_retry=3)
        bus.sync_write("Goal_Position", args["goals"])
        bus.port_handler.closePort()
        # normalization grid, no bus traffic
        grid = []
        for mode in (MotorNormMode.DEGREES, MotorNormMode.RANGE_M100_100, MotorNormMode.RANGE_0_100):
            for drive_mode in (0, 1):
                g = cls("/dev/null", {"m": Motor(1, models[-1], mode)},
                        calibration={"m": MotorCalibration(1, drive_mode, 0, 1000, 3000)})
                grid.append([g._normalize({1: r})[1] for r in args["raws"]]
                            + [g._unnormalize({1: v})[1] for v in args["values"]])
        res["grid"] = grid
        out[kind] = res
    print(json.dumps(out))
''')


def _oracle_env(tmp_path: Path) -> dict:
    shim = tmp_path / "oracle_shim"
    (shim / "deepdiff").mkdir(parents=True)
    (shim / "deepdiff" / "__init__.py").write_text(
        "def DeepDiff(a, b):\n    return {} if a == b else {'values_changed': True}\n")
    for package in ("serial", "scservo_sdk", "dynamixel_sdk"):
        (shim / package).symlink_to(OUR_SITE / package)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(shim)
    return env


def _calibration(sim) -> dict[str, MotorCalibration]:
    out = {}
    for name, motor in sim.motors.items():
        actual = round(motor.actual)
        offset = actual - 2047 if sim.protocol == "feetech" else 2047 - actual
        out[name] = MotorCalibration(motor.spec.id, 0, offset, 1047, 3047)
    return out


def test_upstream_buses_against_our_simulator_and_normalization(tmp_path):
    if not ORACLE_PYTHON.exists():
        pytest.skip("no .venv-oracle (scripts/setup_oracle.sh)")
    probe = subprocess.run([str(ORACLE_PYTHON), "-c", "import lerobot.motors.feetech"], env=_oracle_env(tmp_path),
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"upstream lerobot.motors not importable in the oracle venv: {probe.stderr[-300:]}")
    goals = {"shoulder_pan": 12.5, "shoulder_lift": -20.0, "elbow_flex": 33.3, "wrist_flex": -0.7,
             "wrist_roll": 90.0, "gripper": 42.42}
    with ServoBusSimulator("so101_follower") as fsim, ServoBusSimulator("koch_follower") as dsim:
        cals = {"feetech": _calibration(fsim), "dynamixel": _calibration(dsim)}
        args = {"names": NAMES, "raws": RAWS, "values": VALUES, "goals": goals,
                "feetech": {"port": fsim.port, "calibration": {n: vars(c) for n, c in cals["feetech"].items()}},
                "dynamixel": {"port": dsim.port, "calibration": {n: vars(c) for n, c in cals["dynamixel"].items()}}}
        run = subprocess.run([str(ORACLE_PYTHON), "-c", ORACLE_SCRIPT, json.dumps(args)],
                             env=_oracle_env(tmp_path / "run"), capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        upstream = json.loads(run.stdout.strip().splitlines()[-1])

        for kind, sim, bus_class in (("feetech", fsim, FeetechBus), ("dynamixel", dsim, DynamixelBus)):
            theirs = upstream[kind]
            cal = cals[kind]
            ours = bus_class(sim.port, {n: m for n, m in _motor_defs(kind).items()}, cal,
                             min_packet_timeout_ms=200.0)
            ours.connect()
            # upstream wrote the calibration through the simulator; we read back the same numbers
            assert ours.read_calibration() == {n: MotorCalibration(**c) for n, c in theirs["read_cal"].items()}
            assert theirs["is_calibrated"] and ours.is_calibrated
            assert all(sim.register(n, "Homing_Offset") == cal[n].homing_offset for n in NAMES)
            # same raw positions, bit-identical normalized values
            # (the calibration puts the resting pose at mid-turn; upstream read it before its goals moved the arm)
            assert theirs["raw"] == {n: 2047 for n in NAMES}
            assert theirs["norm"] == {n: ours.normalize(n, theirs["raw"][n]) for n in NAMES}
            # the goals upstream sync-wrote are the raw goals our unnormalize computes
            assert {n: sim.register(n, "Goal_Position") for n in NAMES} == {
                n: ours.unnormalize(n, goals[n]) for n in NAMES}
            ours.disconnect(disable_torque=False)
            # normalization grid
            i = 0
            for mode in (MotorNormMode.DEGREES, MotorNormMode.RANGE_M100_100, MotorNormMode.RANGE_0_100):
                for drive_mode in (0, 1):
                    c = MotorCalibration(1, drive_mode, 0, 1000, 3000)
                    apply = bus_class.apply_drive_mode
                    mine = ([normalize_position(r, c, mode, 4096, apply) for r in RAWS]
                            + [unnormalize_position(v, c, mode, 4096, apply) for v in VALUES])
                    assert mine == theirs["grid"][i], f"{kind} {mode} drive_mode={drive_mode}"
                    i += 1


def _motor_defs(kind: str) -> dict[str, Motor]:
    models = ["sts3215"] * 6 if kind == "feetech" else ["xl430-w250"] * 2 + ["xl330-m288"] * 4
    return {n: Motor(i + 1, m, MotorNormMode.RANGE_0_100 if n == "gripper" else MotorNormMode.DEGREES)
            for i, (n, m) in enumerate(zip(NAMES, models))}
