"""Servo buses (ROS-free): Feetech STS/SMS/SCS via scservo_sdk and Dynamixel Protocol 2.0 via dynamixel_sdk.

Public API:
- `Motor(id, model, norm_mode)`, `MotorNormMode`, `MotorCalibration(id, drive_mode, homing_offset, range_min,
  range_max)` (LeRobot's records).
- `FeetechBus(port, motors, calibration=None, baudrate=None, protocol_version=0, min_packet_timeout_ms=0)` and
  `DynamixelBus(port, motors, calibration=None, baudrate=None, min_packet_timeout_ms=0)`, both `MotorBus`:
  connect(handshake=True), disconnect(disable_torque=True), ping, read, write, sync_read, sync_write,
  sync_read_registers, enable_torque, disable_torque, torque_disabled(), read_calibration,
  write_calibration, is_calibrated, set_half_turn_homings, record_ranges_of_motion, configure_motors.
- Errors: `MotorBusError` and subclasses `MotorCommError`, `MotorStatusError`, `MotorHandshakeError`,
  `MotorPortError` (also: serial device failed mid-transaction), `MotorNotConnectedError`,
  `MotorTorqueOffError` (disable_torque tried every motor; `.failures`/`.motors` list those still on);
  bad caller input raises `MotorConfigError` (a ValueError).
"""
from lerobot_drivers.motors.bus import MotorBus
from lerobot_drivers.motors.dynamixel import DynamixelBus
from lerobot_drivers.motors.errors import (
    MotorBusError, MotorCommError, MotorConfigError, MotorHandshakeError, MotorNotConnectedError, MotorPortError,
    MotorStatusError, MotorTorqueOffError,
)
from lerobot_drivers.motors.feetech import FeetechBus
from lerobot_drivers.motors.motor import Motor, MotorCalibration, MotorNormMode
from lerobot_drivers.motors.normalization import normalize_position, unnormalize_position

__all__ = [
    "DynamixelBus", "FeetechBus", "Motor", "MotorBus", "MotorBusError", "MotorCalibration", "MotorCommError",
    "MotorConfigError", "MotorHandshakeError", "MotorNormMode", "MotorNotConnectedError", "MotorPortError",
    "MotorStatusError", "MotorTorqueOffError", "normalize_position", "unnormalize_position",
]
