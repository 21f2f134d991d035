"""A scripted human operator for the simulated SO-101: plans reaching demonstrations in joint space.

During an episode the operator moves the (torque-off) leader arm the way a person would: from where it is, over
the target, down onto it, then closes the gripper and holds. During the reset period it brings the arm back home.
Paths are minimum-jerk between inverse-kinematics waypoints, so the recorded actions are smooth and learnable.

Units are the suite's JointState units: body joints in radians (zero at the calibrated mid-range), the gripper as
an opening fraction 0..1. `to_lerobot_units` converts to the simulator's "normalized" frame (degrees, 0..100).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lerobot_drivers.sim.kinematics import JOINT_NAMES, inverse_kinematics

HOME = {"shoulder_pan": 0.0, "shoulder_lift": -0.35, "elbow_flex": 0.35, "wrist_flex": 0.9, "wrist_roll": 0.0,
        "gripper": 0.3}
GRIPPER_OPEN = 0.9
GRIPPER_CLOSED = 0.1


def minimum_jerk(s: float) -> float:
    """Normalised minimum-jerk profile: 0 -> 1 with zero velocity and acceleration at both ends."""
    s = min(max(s, 0.0), 1.0)
    return s * s * s * (10.0 - 15.0 * s + 6.0 * s * s)


@dataclass(frozen=True)
class Segment:
    start: np.ndarray
    end: np.ndarray
    duration: float


class JointPath:
    """Piecewise minimum-jerk path through joint-space waypoints; holds the last waypoint afterwards."""

    def __init__(self, waypoints: list[np.ndarray], durations: list[float]):
        if len(waypoints) != len(durations) + 1:
            raise ValueError(f"{len(waypoints)} waypoints need {len(waypoints) - 1} durations, got {len(durations)}")
        self.segments = [Segment(np.asarray(a, float), np.asarray(b, float), float(d))
                         for a, b, d in zip(waypoints[:-1], waypoints[1:], durations)]
        self.duration = sum(s.duration for s in self.segments)

    def at(self, t: float) -> np.ndarray:
        for segment in self.segments:
            if t <= segment.duration:
                blend = minimum_jerk(t / segment.duration) if segment.duration > 0 else 1.0
                return segment.start + blend * (segment.end - segment.start)
            t -= segment.duration
        return self.segments[-1].end.copy()


def _vector(joints: dict[str, float]) -> np.ndarray:
    return np.array([joints[name] for name in JOINT_NAMES], dtype=float)


def plan_reach(current: dict[str, float], target_xyz, approach_height: float = 0.06,
               speed_scale: float = 1.0) -> JointPath:
    """Current pose -> above the target (gripper open) -> down to it -> gripper closed."""
    target = np.asarray(target_xyz, dtype=float)
    above = inverse_kinematics(target + [0.0, 0.0, approach_height], seed=current).joints
    at = inverse_kinematics(target + [0.0, 0.0, 0.005], seed=above).joints
    start = _vector(current)
    above_open = _vector({**above, "gripper": GRIPPER_OPEN})
    at_open = _vector({**at, "gripper": GRIPPER_OPEN})
    at_closed = _vector({**at, "gripper": GRIPPER_CLOSED})
    travel = float(np.max(np.abs(above_open[:5] - start[:5])))
    # About 1 rad/s peak for the big move: a calm human demonstration.
    durations = [max(1.0, 1.2 * travel) * speed_scale, 1.0 * speed_scale, 0.6 * speed_scale]
    return JointPath([start, above_open, at_open, at_closed], durations)


def plan_home(current: dict[str, float], speed_scale: float = 1.0) -> JointPath:
    start, home = _vector(current), _vector(HOME)
    travel = float(np.max(np.abs(home[:5] - start[:5])))
    return JointPath([start, home], [max(0.8, 1.2 * travel) * speed_scale])


def to_lerobot_units(joints: np.ndarray) -> dict[str, float]:
    """Suite units -> LeRobot normalized units (degrees for body joints, 0..100 for the gripper)."""
    out = {name: math.degrees(float(value)) for name, value in zip(JOINT_NAMES[:5], joints[:5])}
    out["gripper"] = float(np.clip(joints[5], 0.0, 1.0)) * 100.0
    return out
