"""Plain data types shared by buses, calibration and arms (same field names as LeRobot)."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class MotorNormMode(str, Enum):
    """How Goal/Present_Position are presented to callers (LeRobot's three modes)."""

    RANGE_0_100 = "range_0_100"
    RANGE_M100_100 = "range_m100_100"
    DEGREES = "degrees"


@dataclass(frozen=True)
class Motor:
    """One servo on a bus: its id, its model name (a key of the bus's model tables) and its norm mode."""

    id: int
    model: str
    norm_mode: MotorNormMode


@dataclass
class MotorCalibration:
    """LeRobot's per-motor calibration record, in raw encoder ticks. Field order = JSON key order."""

    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int
