"""LeRobot normalized motor values <-> ROS topic units.

The Arm speaks LeRobot's normalized units (DEGREES for body joints, RANGE_0_100 for the gripper, RANGE_M100_100 for
arms configured without degrees). ROS topics follow REP-103 and the suite's convention:
- DEGREES       -> radians (deg * pi / 180; zero stays at the calibrated mid-range)
- RANGE_0_100   -> fraction 0..1 (value / 100; gripper 0 = closed, 1 = open)
- RANGE_M100_100 -> fraction -1..1 (value / 100)
Every mapping is a pure scale, so it is exact and trivially invertible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Mapping, Sequence

import numpy as np


class JointUnit(str, Enum):
    DEGREES = "degrees"
    RANGE_0_100 = "range_0_100"
    RANGE_M100_100 = "range_m100_100"

    @property
    def ros_per_lerobot(self) -> float:
        return math.pi / 180.0 if self is JointUnit.DEGREES else 0.01


@dataclass(frozen=True)
class UnitMap:
    """Per-joint scale between the Arm's normalized values and ROS values, in the arm's joint order."""

    names: tuple[str, ...]
    units: tuple[JointUnit, ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.units):
            raise ValueError(f"UnitMap: {len(self.names)} joint names but {len(self.units)} units")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"UnitMap: duplicate joint names in {self.names}")

    @classmethod
    def from_modes(cls, modes: Mapping[str, str | JointUnit]) -> "UnitMap":
        """`{"shoulder_pan": "degrees", ..., "gripper": "range_0_100"}` (dict order = joint order)."""
        units = []
        for name, mode in modes.items():
            value = mode.value if isinstance(mode, Enum) else str(mode)
            try:
                units.append(JointUnit(value.lower()))
            except ValueError:
                raise ValueError(f"joint {name!r}: unknown normalization mode {mode!r}; "
                                 f"expected one of {[u.value for u in JointUnit]}") from None
        return cls(tuple(modes), tuple(units))

    @property
    def scale(self) -> np.ndarray:
        return np.array([u.ros_per_lerobot for u in self.units], dtype=float)

    def to_ros(self, lerobot_values: Sequence[float] | np.ndarray) -> np.ndarray:
        return np.asarray(lerobot_values, dtype=float) * self.scale

    def to_lerobot(self, ros_values: Sequence[float] | np.ndarray) -> np.ndarray:
        return np.asarray(ros_values, dtype=float) / self.scale

    def dict_to_ros(self, lerobot_values: Mapping[str, float]) -> np.ndarray:
        """Arm dict (keyed by motor name or `<motor>.pos`) -> ROS vector in joint order."""
        return self.to_ros([_lookup(lerobot_values, name) for name in self.names])

    def ros_to_dict(self, ros_values: Sequence[float] | np.ndarray) -> dict[str, float]:
        return {name: float(v) for name, v in zip(self.names, self.to_lerobot(ros_values))}


def _lookup(values: Mapping[str, float], name: str) -> float:
    if name in values:
        return float(values[name])
    if f"{name}.pos" in values:
        return float(values[f"{name}.pos"])
    raise KeyError(f"arm reading has no value for joint {name!r}; got keys {sorted(values)}")
