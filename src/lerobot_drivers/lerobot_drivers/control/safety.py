"""LeRobot's `max_relative_target` clamp, in ROS units.

Per joint: safe = present + clamp(goal - present, -cap, +cap), where present is the position measured in the same
control tick (LeRobot's `ensure_safe_goal_position`). Caps are radians for body joints and a fraction for the
gripper. A cap of +inf (or a non-positive parameter value) means that joint is not limited.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class RelativeTargetLimit:
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
