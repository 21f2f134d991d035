"""Where the driver's calibration comes from: an explicit file, LeRobot's location (id + dir), or the simulator default.

The simulator's motors leave the factory with homing offset 0 and position limits 0..resolution-1, so the default
calibration for a simulated arm is exactly that: every raw reading is used as is, zero degrees is mid-turn (2047.5
ticks) and the gripper's 0..100 spans the full turn. On real hardware a missing file is an error that says how to
create one with `lerobot-calibrate`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lerobot_drivers.arms import ArmDefinition
from lerobot_drivers.calibration import (
    calibration_file_path, calibration_root, find_calibration_file, load_calibration,
)
from lerobot_drivers.motors.dynamixel import DynamixelBus
from lerobot_drivers.motors.feetech import FeetechBus
from lerobot_drivers.motors.motor import MotorCalibration


class CalibrationMissing(FileNotFoundError):
    """No calibration could be found; the message tells the user how to create one."""


@dataclass(frozen=True)
class CalibrationChoice:
    calibration: dict[str, MotorCalibration]
    origin: str  # human-readable: the file path or "simulator default"


def simulator_default_calibration(definition: ArmDefinition) -> dict[str, MotorCalibration]:
    bus_class = FeetechBus if definition.bus_type == "feetech" else DynamixelBus
    calibration = {}
    for name, motor in definition.motors.items():
        resolution = bus_class.model_resolution[motor.model]
        calibration[name] = MotorCalibration(id=motor.id, drive_mode=0, homing_offset=0, range_min=0,
                                             range_max=resolution - 1)
    return calibration


def resolve_calibration(definition: ArmDefinition, port: str, calibration_file: str = "", calibration_id: str = "",
                        calibration_dir: str = "", simulator_default: bool = False) -> CalibrationChoice:
    """Priority: calibration_file, then <calibration_dir or LeRobot root>/.../<calibration_id>.json, then the
    simulator default (only when `simulator_default`)."""
    if calibration_file:
        path = Path(calibration_file).expanduser()
        if not path.is_file():
            raise CalibrationMissing(f"calibration_file {path} does not exist; run `lerobot-calibrate --arm "
                                     f"{definition.name} --port {port} --id <id>` or fix the parameter")
        return CalibrationChoice(load_calibration(path, definition.motor_names), str(path))
    root = Path(calibration_dir).expanduser() if calibration_dir else calibration_root()
    if calibration_id:
        path = find_calibration_file(definition, calibration_id, root)
        if path is not None:
            return CalibrationChoice(load_calibration(path, definition.motor_names), str(path))
    if simulator_default:
        return CalibrationChoice(simulator_default_calibration(definition), "simulator default")
    where = (str(calibration_file_path(definition, calibration_id, root))
             if calibration_id else "(no calibration_id or calibration_file given)")
    raise CalibrationMissing(
        f"no calibration for {definition.name}: {where}. Calibrate the arm first: `lerobot-calibrate --arm "
        f"{definition.name} --port {port} --id {calibration_id or '<id>'}"
        + (f" --calibration-dir {root}" if calibration_dir else "")
        + "`, then set calibration_id (and calibration_dir) or calibration_file; for the servo simulator set "
          "sim_default_calibration:=true")
