"""Invertible per-joint unit transforms between ROS topic units and dataset units.

Every transform the robot interface file offers is affine, `dataset = ros * scale + offset`, so it is stored as
one `(scale, offset)` pair per joint. The recorder applies the forward direction (ROS message -> dataset value)
and the policy node the inverse (policy action -> ROS command), from the same numbers, so the two cannot drift.

Kinds accepted in the interface file:

    identity                      dataset = ros
    rad2deg                       dataset = ros * 180/pi        (REP-103 radians -> LeRobot degrees)
    deg2rad                       dataset = ros * pi/180
    {scale: k}                    dataset = ros * k             (k != 0; e.g. gripper fraction 0..1 -> 0..100)
    {linear: {scale: k, offset: b}}  dataset = ros * k + b      (k != 0)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

RAD_TO_DEG = 180.0 / math.pi
DEG_TO_RAD = math.pi / 180.0

NAMED_KINDS = ("identity", "rad2deg", "deg2rad")


class TransformError(ValueError):
    """A transform description that cannot be turned into an invertible transform."""


@dataclass(frozen=True)
class Transform:
    """One joint's affine map `dataset = ros * scale + offset`; `kind` keeps the name it was declared with."""

    kind: str
    scale: float = 1.0
    offset: float = 0.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.scale) or not math.isfinite(self.offset):
            raise TransformError(
                f"{self.kind} transform: scale and offset must be finite, got scale={self.scale} offset={self.offset}"
            )
        if self.scale == 0.0:
            raise TransformError(f"{self.kind} transform: scale 0 is not invertible")

    def forward(self, ros_value: float) -> float:
        return ros_value * self.scale + self.offset

    def inverse(self, dataset_value: float) -> float:
        return (dataset_value - self.offset) / self.scale

    def describe(self) -> str:
        if self.kind in NAMED_KINDS:
            return self.kind
        if self.kind == "scale":
            return f"scale {self.scale:g}"
        return f"linear scale {self.scale:g} offset {self.offset:g}"


IDENTITY = Transform("identity")
RAD2DEG = Transform("rad2deg", RAD_TO_DEG)
DEG2RAD = Transform("deg2rad", DEG_TO_RAD)


def named_transform(name: str) -> Transform:
    """`identity`, `rad2deg` or `deg2rad`."""
    table = {"identity": IDENTITY, "rad2deg": RAD2DEG, "deg2rad": DEG2RAD}
    if name not in table:
        raise TransformError(
            f"unknown transform {name!r}; expected one of {', '.join(NAMED_KINDS)}, "
            "{scale: k} or {linear: {scale: k, offset: b}}"
        )
    return table[name]


def scale_transform(scale: float) -> Transform:
    return Transform("scale", float(scale))


def linear_transform(scale: float, offset: float) -> Transform:
    return Transform("linear", float(scale), float(offset))


@dataclass(frozen=True)
class VectorTransform:
    """The transforms of a whole feature vector, applied element-wise over the last axis.

    Works on a single vector `(N,)` or a block `(..., N)` such as a policy's action chunk `(horizon, N)`.
    Arithmetic is done in float64 so that forward then inverse returns the input to within float64 rounding.
    """

    transforms: tuple[Transform, ...]

    @property
    def scales(self) -> np.ndarray:
        return np.array([t.scale for t in self.transforms], dtype=np.float64)

    @property
    def offsets(self) -> np.ndarray:
        return np.array([t.offset for t in self.transforms], dtype=np.float64)

    def __len__(self) -> int:
        return len(self.transforms)

    def _check(self, values: np.ndarray, what: str) -> np.ndarray:
        array = np.asarray(values, dtype=np.float64)
        if array.ndim == 0 or array.shape[-1] != len(self.transforms):
            raise ValueError(f"{what}: expected a last axis of {len(self.transforms)} values, got shape {array.shape}")
        return array

    def forward(self, ros_values: Sequence[float] | np.ndarray) -> np.ndarray:
        """ROS units -> dataset units (float64)."""
        return self._check(ros_values, "forward transform") * self.scales + self.offsets

    def inverse(self, dataset_values: Sequence[float] | np.ndarray) -> np.ndarray:
        """Dataset units -> ROS units (float64)."""
        return (self._check(dataset_values, "inverse transform") - self.offsets) / self.scales

    def concat(self, other: "VectorTransform") -> "VectorTransform":
        return VectorTransform(self.transforms + other.transforms)
