"""LeRobot-compatible calibration: file location, JSON format, and the homing/range procedure.

File: `<root>/<robots|teleoperators>/<device name>/<id>.json`, root = `$HF_LEROBOT_CALIBRATION`, else
`$HF_HOME/lerobot/calibration`, else `~/.cache/huggingface/lerobot/calibration`. Device names follow current
upstream (so_follower, so_leader, koch_follower, koch_leader); files under the pre-v0.4.3 names
(so100_follower, so101_follower, so100_leader, so101_leader) are found too. Content: indent-4 JSON
`{motor: {"id", "drive_mode", "homing_offset", "range_min", "range_max"}}`, byte-identical to LeRobot's.

The procedure (`CalibrationProcedure`) is LeRobot's: torque off and operating mode; the operator puts the arm
mid-range ("Enter") -> half-turn homing offsets; then min/max of every joint are recorded from a sync read
every 20 ms until "Enter"; full-turn joints get 0..4095; the result is written to the motors and saved.
The two "Enter" events are injected as callables, so tests run it non-interactively.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path

from lerobot_drivers.arms import Arm, ArmDefinition, get_arm_definition
from lerobot_drivers.motors.errors import MotorConfigError
from lerobot_drivers.motors.motor import MotorCalibration

__all__ = [
    "CalibrationError", "CalibrationProcedure", "MotorCalibration", "calibration_file_path",
    "calibration_root", "find_calibration_file", "load_calibration", "save_calibration",
]

CALIBRATION_FIELDS = ("id", "drive_mode", "homing_offset", "range_min", "range_max")


class CalibrationError(ValueError):
    """A calibration file or procedure result is invalid (names the file/motor/field)."""


# ---------------------------------------------------------------------- location
def calibration_root() -> Path:
    if os.environ.get("HF_LEROBOT_CALIBRATION"):
        return Path(os.environ["HF_LEROBOT_CALIBRATION"]).expanduser()
    hf_home = os.environ.get("HF_HOME")
    base = Path(hf_home).expanduser() if hf_home else Path("~/.cache/huggingface").expanduser()
    return base / "lerobot" / "calibration"


def _definition(arm: ArmDefinition | str) -> ArmDefinition:
    return get_arm_definition(arm) if isinstance(arm, str) else arm


def calibration_file_path(arm: ArmDefinition | str, arm_id: str, root: Path | str | None = None) -> Path:
    """Where LeRobot (current naming) keeps the file for this arm type and id."""
    definition = _definition(arm)
    base = Path(root) if root is not None else calibration_root()
    return base / definition.calibration_kind / definition.device_name / f"{arm_id}.json"


def find_calibration_file(arm: ArmDefinition | str, arm_id: str, root: Path | str | None = None) -> Path | None:
    """The existing file for this arm and id: current name first, then the legacy directory names."""
    definition = _definition(arm)
    base = Path(root) if root is not None else calibration_root()
    for device_name in (definition.device_name, *definition.legacy_device_names):
        path = base / definition.calibration_kind / device_name / f"{arm_id}.json"
        if path.is_file():
            return path
    return None


# ---------------------------------------------------------------------- file format
def load_calibration(path: Path | str, motor_names: list[str] | None = None) -> dict[str, MotorCalibration]:
    """Read a LeRobot calibration JSON. With `motor_names`, require exactly those motors."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CalibrationError(f"{path}: cannot read calibration JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CalibrationError(f"{path}: expected an object {{motor: {{...}}}}, got {type(data).__name__}")
    out = {}
    for motor, record in data.items():
        if not isinstance(record, dict):
            raise CalibrationError(f"{path}: motor '{motor}': expected an object, got {record!r}")
        missing = [f for f in CALIBRATION_FIELDS if f not in record]
        if missing:
            raise CalibrationError(f"{path}: motor '{motor}': missing fields {missing}")
        values = {}
        for f in CALIBRATION_FIELDS:
            value = record[f]
            if isinstance(value, bool) or not isinstance(value, int):
                raise CalibrationError(f"{path}: motor '{motor}' field '{f}': expected an integer, got {value!r}")
            values[f] = value
        out[motor] = MotorCalibration(**values)
    if motor_names is not None and set(out) != set(motor_names):
        raise CalibrationError(f"{path}: motors {sorted(out)} do not match the arm's motors {sorted(motor_names)}")
    return out


def calibration_to_json(calibration: Mapping[str, MotorCalibration]) -> str:
    """LeRobot's serialization (draccus -> json.dump, indent 4, no trailing newline)."""
    return json.dumps({motor: asdict(cal) for motor, cal in calibration.items()}, indent=4)


def save_calibration(path: Path | str, calibration: Mapping[str, MotorCalibration]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(calibration_to_json(calibration))
    tmp.replace(path)  # atomic: a crash never leaves half a file
    return path


# ---------------------------------------------------------------------- procedure
class CalibrationProcedure:
    """LeRobot's interactive calibration, with the operator's two "Enter" presses injected.

    `arm` must be connected (configure=False is fine). Steps, usable one by one or via `run`:
    `prepare()` -> operator centers the arm -> `set_homing()` -> `record_ranges(should_stop)` -> `finish()`.
    """

    def __init__(self, arm: Arm, poll_interval_s: float = 0.02,
                 on_update: Callable[[dict[str, int], dict[str, int], dict[str, int]], None] | None = None) -> None:
        self.arm = arm
        self.bus = arm.bus
        self.definition = arm.definition
        self.poll_interval_s = poll_interval_s
        self.on_update = on_update
        self.homing_offsets: dict[str, int] = {}
        self.range_mins: dict[str, int] = {}
        self.range_maxes: dict[str, int] = {}

    def prepare(self) -> None:
        """Torque off, calibration operating mode on every motor, drive modes (Koch leader elbow inverted)."""
        self.bus.disable_torque()
        for name in self.bus.motors:
            self.bus.write("Operating_Mode", name, self.definition.calibration_operating_mode)
        if self.definition.bus_type == "dynamixel":
            for name in self.bus.motors:
                self.bus.write("Drive_Mode", name, self.definition.calibration_drive_modes.get(name, 0))

    def set_homing(self) -> dict[str, int]:
        """Call once the arm is at the middle of its range: half-turn homing offsets, written to the motors."""
        self.homing_offsets = self.bus.set_half_turn_homings()
        return dict(self.homing_offsets)

    def record_ranges(self, should_stop: Callable[[], bool]) -> tuple[dict[str, int], dict[str, int]]:
        """Record min/max of every non-full-turn joint until `should_stop()`; full-turn joints get 0..res-1."""
        moving = [n for n in self.bus.motors if n not in self.definition.full_turn_motors]
        try:
            mins, maxes = self.bus.record_ranges_of_motion(moving, should_stop, self.poll_interval_s, self.on_update)
        except MotorConfigError as exc:
            raise CalibrationError(str(exc)) from exc
        for name in self.definition.full_turn_motors:
            mins[name], maxes[name] = 0, self.bus.resolution(name) - 1
        self.range_mins, self.range_maxes = mins, maxes
        return dict(mins), dict(maxes)

    def finish(self) -> dict[str, MotorCalibration]:
        """Build the calibration (arm's motor order) and write it to the motors."""
        if not self.homing_offsets or not self.range_mins:
            raise CalibrationError("finish() called before set_homing() and record_ranges()")
        calibration = {
            name: MotorCalibration(
                id=motor.id, drive_mode=self.definition.calibration_drive_modes.get(name, 0),
                homing_offset=self.homing_offsets[name], range_min=self.range_mins[name],
                range_max=self.range_maxes[name],
            )
            for name, motor in self.bus.motors.items()
        }
        self.bus.write_calibration(calibration)
        return calibration

    def run(self, wait_for_middle: Callable[[], None], should_stop: Callable[[], bool],
            save_to: Path | str | None = None) -> dict[str, MotorCalibration]:
        """The whole procedure. `wait_for_middle()` returns when the arm is centered (first Enter);
        `should_stop()` turns True at the second Enter. Saves the JSON to `save_to` if given."""
        self.prepare()
        wait_for_middle()
        self.set_homing()
        self.record_ranges(should_stop)
        calibration = self.finish()
        if save_to is not None:
            save_calibration(save_to, calibration)
        return calibration
