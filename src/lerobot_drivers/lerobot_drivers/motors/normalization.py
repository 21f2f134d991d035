"""LeRobot's position normalization (SerialMotorsBus._normalize/_unnormalize), formula for formula.

Only Goal_Position and Present_Position are normalized. Casts to the raw side use int(), which truncates
toward zero, exactly as upstream does; nothing is rounded.

| mode           | raw -> normalized                                   | normalized -> raw                          |
| RANGE_M100_100 | clamp to [min,max]; (b-min)/(max-min)*200-100; neg if inverted | neg if inverted; clamp +-100; int(...) |
| RANGE_0_100    | clamp; (b-min)/(max-min)*100; 100-n if inverted     | 100-n if inverted; clamp 0..100; int(...)  |
| DEGREES        | (raw-mid)*360/(res-1), no clamp, no drive mode      | int(deg*(res-1)/360 + mid)                 |
"""
from __future__ import annotations

from lerobot_drivers.motors.motor import MotorCalibration, MotorNormMode


def _check_range(calibration: MotorCalibration, motor: str) -> tuple[int, int]:
    low, high = calibration.range_min, calibration.range_max
    if low == high:
        raise ValueError(f"motor '{motor}': invalid calibration, range_min == range_max == {low}")
    return low, high


def normalize_position(raw: int, calibration: MotorCalibration, mode: MotorNormMode, resolution: int,
                       apply_drive_mode: bool, motor: str = "?") -> float:
    """Raw ticks (already sign-decoded) -> LeRobot normalized value."""
    low, high = _check_range(calibration, motor)
    inverted = bool(apply_drive_mode and calibration.drive_mode)
    if mode is MotorNormMode.DEGREES:
        mid = (low + high) / 2
        return (raw - mid) * 360 / (resolution - 1)
    bounded = min(high, max(low, raw))
    if mode is MotorNormMode.RANGE_M100_100:
        value = (bounded - low) / (high - low) * 200 - 100
        return -value if inverted else value
    if mode is MotorNormMode.RANGE_0_100:
        value = (bounded - low) / (high - low) * 100
        return 100 - value if inverted else value
    raise ValueError(f"motor '{motor}': unknown norm mode {mode!r}")


def unnormalize_position(value: float, calibration: MotorCalibration, mode: MotorNormMode, resolution: int,
                         apply_drive_mode: bool, motor: str = "?") -> int:
    """LeRobot normalized value -> raw ticks (int() truncation, as upstream)."""
    low, high = _check_range(calibration, motor)
    inverted = bool(apply_drive_mode and calibration.drive_mode)
    if mode is MotorNormMode.DEGREES:
        mid = (low + high) / 2
        return int(value * (resolution - 1) / 360 + mid)
    if mode is MotorNormMode.RANGE_M100_100:
        v = -value if inverted else value
        v = min(100.0, max(-100.0, v))
        return int((v + 100) / 200 * (high - low) + low)
    if mode is MotorNormMode.RANGE_0_100:
        v = 100 - value if inverted else value
        v = min(100.0, max(0.0, v))
        return int(v / 100 * (high - low) + low)
    raise ValueError(f"motor '{motor}': unknown norm mode {mode!r}")


def ticks_per_unit(calibration: MotorCalibration, mode: MotorNormMode, resolution: int,
                   apply_drive_mode: bool) -> float:
    """Signed scale from normalized units to ticks, for rates (velocity): d(raw) = scale * d(normalized).

    For DEGREES it is (res-1)/360; for the range modes (max-min)/100 or /200, negative when drive-mode inverted.
    """
    if mode is MotorNormMode.DEGREES:
        return (resolution - 1) / 360
    span = calibration.range_max - calibration.range_min
    inverted = bool(apply_drive_mode and calibration.drive_mode)
    scale = span / (200 if mode is MotorNormMode.RANGE_M100_100 else 100)
    return -scale if inverted else scale


def normalized_range(calibration: MotorCalibration, mode: MotorNormMode, resolution: int,
                     motor: str = "?") -> tuple[float, float]:
    """(low, high) normalized values of the calibrated range [range_min, range_max].

    DEGREES: the range around its middle, +-(max-min)/2 * 360/(res-1) (nothing clamps to it: the normalisation
    does not, and in extended-position mode neither does the servo). The range modes clamp already: 0..100 or
    -100..100."""
    low, high = _check_range(calibration, motor)
    if mode is MotorNormMode.DEGREES:
        half = (high - low) / 2 * 360 / (resolution - 1)
        return -half, half
    if mode is MotorNormMode.RANGE_M100_100:
        return -100.0, 100.0
    if mode is MotorNormMode.RANGE_0_100:
        return 0.0, 100.0
    raise ValueError(f"motor '{motor}': unknown norm mode {mode!r}")
