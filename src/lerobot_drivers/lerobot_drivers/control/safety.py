"""The arm driver's goal limits, in ROS units (radians for body joints, opening fraction for the gripper).

- `RelativeTargetLimit`: LeRobot's `max_relative_target`, a per-step clamp relative to the measured position.
- `VelocityLimit`: how fast the goal itself may move (rad/s), independent of the control rate.
- `PositionLimit`: the calibrated range (plus a margin) no goal may leave.

The controller applies them in the order velocity -> relative target -> position, so the written goal always
satisfies the last two and, away from the range's edges, the first.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class RelativeTargetLimit:
    """Per joint: safe = present + clamp(goal - present, -cap, +cap), where present is the position measured in
    the same control tick (LeRobot's `ensure_safe_goal_position`). Caps are radians for body joints and a fraction
    for the gripper. A cap of +inf (or a non-positive parameter value) means that joint is not limited."""

    caps: np.ndarray  # one per joint, in arm order; inf = unlimited

    @classmethod
    def from_parameters(cls, joint_names: Sequence[str], global_cap: float,
                        per_joint: Sequence[float] = ()) -> "RelativeTargetLimit | None":
        """global_cap <= 0 and an empty per_joint list: no limit (None). per_joint, when given, has one value per
        joint in arm order and overrides the global cap (values <= 0 leave that joint unlimited)."""
        n = len(joint_names)
        if len(per_joint) > 0:
            if len(per_joint) != n:
                raise ValueError(f"max_relative_target_per_joint has {len(per_joint)} values, expected {n} "
                                 f"(one per joint: {list(joint_names)})")
            caps = np.array([float(c) if c > 0 else np.inf for c in per_joint])
        elif global_cap > 0:
            caps = np.full(n, float(global_cap))
        else:
            return None
        if np.isnan(caps).any():
            raise ValueError("max_relative_target: NaN is not a valid cap")
        return cls(caps)

    def apply(self, goal: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Returns (safe goal, boolean mask of joints whose goal was changed by more than 1e-9)."""
        delta = np.clip(goal - present, -self.caps, self.caps)
        safe = present + delta
        return safe, np.abs(safe - goal) > 1e-9


@dataclass(frozen=True)
class VelocityLimit:
    """How fast the written goal may move, per joint, whatever the command asks.

    goal_k = previous_goal + clamp(wanted - previous_goal, -v * dt, +v * dt), dt = the node-clock time since the
    previous tick, so the limit means the same at any `rate_hz`. Units per second: rad/s for body joints, opening
    fraction per second for the gripper. A jump in a command (a late chunk, a teleop glitch, a far direct goal)
    becomes a ramp at v. Unlike `RelativeTargetLimit` (a step relative to the *measured* position, LeRobot's
    `max_relative_target`) this limits the goal's own speed.

    dt is capped at `max_dt_s`: after a stalled tick (bus retry, reconnect) the goal moves at most v * max_dt_s,
    never the whole distance the stall would allow; a clock that went backwards (sim time reset) moves nothing.
    """

    velocities: np.ndarray  # one per joint, arm order; inf = unlimited
    max_dt_s: float = 0.1

    def __post_init__(self) -> None:
        velocities = np.asarray(self.velocities, dtype=float)
        if velocities.ndim != 1 or np.isnan(velocities).any() or (velocities <= 0).any():
            raise ValueError(f"velocity limits {velocities.tolist()}: expected one value > 0 per joint "
                             "(inf = unlimited)")
        if not (np.isfinite(self.max_dt_s) and self.max_dt_s > 0):
            raise ValueError(f"max_dt_s = {self.max_dt_s}, expected a finite value > 0")
        object.__setattr__(self, "velocities", velocities)

    @classmethod
    def from_parameters(cls, joint_names: Sequence[str], defaults: Sequence[float],
                        per_joint: Sequence[float] = ()) -> "VelocityLimit | None":
        """The node's `max_velocity` parameter: `defaults` are the arm definition's limits (ROS units per second,
        arm order). `per_joint` empty or [0.0]: those defaults; [v < 0]: no limit at all; one value per joint:
        replaces them, a value <= 0 leaving that joint unlimited. None when no joint is limited."""
        n = len(joint_names)
        per_joint = [float(v) for v in per_joint]
        if per_joint == [0.0]:
            per_joint = []
        if len(per_joint) == 1 and per_joint[0] < 0:
            return None
        values = per_joint if per_joint else list(defaults)
        if len(values) != n:
            which = "max_velocity" if len(per_joint) > 0 else "the arm's default velocity limits"
            raise ValueError(f"{which} has {len(values)} values, expected {n} (one per joint: {list(joint_names)})")
        if any(math.isnan(float(v)) for v in values):
            raise ValueError(f"max_velocity {values}: NaN is not a valid limit")
        velocities = np.array([float(v) if v > 0 else np.inf for v in values])
        if np.isinf(velocities).all():
            return None
        return cls(velocities)

    def apply(self, goal: np.ndarray, previous_goal: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """Returns (limited goal, boolean mask of joints the limit slowed by more than 1e-9)."""
        dt = min(max(float(dt), 0.0), self.max_dt_s)
        step = self.velocities * dt
        limited = previous_goal + np.clip(goal - previous_goal, -step, step)
        return limited, np.abs(limited - goal) > 1e-9


@dataclass(frozen=True)
class PositionLimit:
    """Every goal stays inside [lower, upper] per joint (ROS units), the arm's calibrated range plus a margin.

    The range is where the calibration saw the joint go; in Koch's extended-position mode the servos ignore their
    own limit registers, and LeRobot's DEGREES normalisation does not clamp, so without this a command could
    drive a joint into its hard stop or wind a full-turn joint round. If the arm already stands outside the
    range (moved by hand while limp), holding it there is allowed and goals may only bring it back in:
    goal = clamp(goal, min(lower, present), max(upper, present)).
    """

    lower: np.ndarray
    upper: np.ndarray

    def __post_init__(self) -> None:
        lower, upper = np.asarray(self.lower, dtype=float), np.asarray(self.upper, dtype=float)
        if lower.shape != upper.shape or lower.ndim != 1:
            raise ValueError(f"position limits: lower {lower.tolist()} and upper {upper.tolist()} must be two "
                             "vectors of one value per joint")
        if np.isnan(lower).any() or np.isnan(upper).any() or (lower > upper).any():
            raise ValueError(f"position limits: expected lower <= upper per joint, got lower {lower.tolist()}, "
                             f"upper {upper.tolist()}")
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)

    def apply(self, goal: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Returns (goal inside the range, boolean mask of joints whose goal was moved by more than 1e-9)."""
        safe = np.clip(goal, np.minimum(self.lower, present), np.maximum(self.upper, present))
        return safe, np.abs(safe - goal) > 1e-9
