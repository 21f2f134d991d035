"""Sampling a JointTrajectoryCommand at control ticks.

Like ros2_control's JointTrajectoryController: when a trajectory starts, the goal it takes over from becomes an
implicit first point (at the activation time) if the trajectory's first point lies later, so the arm glides into the
trajectory instead of jumping. Between two points positions are interpolated linearly; when both points carry
velocities a cubic Hermite segment matches positions and velocities at both ends. After the last point the
trajectory holds that point.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lerobot_drivers.control.commands import JointTrajectoryCommand


@dataclass(frozen=True)
class _Knot:
    time: float
    positions: np.ndarray
    velocities: np.ndarray | None


class ActiveTrajectory:
    def __init__(self, command: JointTrajectoryCommand, activated_at: float, current_goal: np.ndarray):
        """current_goal: the goal of the trajectory's joints (in command order) at the moment it takes over."""
        self.command = command
        self.indices = command.indices
        knots = [_Knot(command.start_time + p.time_from_start, p.positions, p.velocities) for p in command.points]
        anchor_time = max(activated_at, command.start_time)
        if knots[0].time > anchor_time:
            # Start from rest (zero velocity) if the trajectory is velocity-parameterised, else linearly.
            anchor_velocity = np.zeros_like(current_goal) if knots[0].velocities is not None else None
            knots.insert(0, _Knot(anchor_time, np.array(current_goal, dtype=float), anchor_velocity))
        self._knots = knots
        self._times = np.array([k.time for k in knots])

    @property
    def end_time(self) -> float:
        return float(self._times[-1])

    def finished(self, now: float) -> bool:
        return now >= self._times[-1]

    def sample(self, now: float) -> np.ndarray:
        knots = self._knots
        if now <= self._times[0]:
            return knots[0].positions.copy()
        if now >= self._times[-1]:
            return knots[-1].positions.copy()
        i = int(np.searchsorted(self._times, now, side="right")) - 1
        a, b = knots[i], knots[i + 1]
        duration = b.time - a.time
        s = (now - a.time) / duration
        if a.velocities is not None and b.velocities is not None:
            return _hermite(a.positions, a.velocities, b.positions, b.velocities, s, duration)
        return a.positions + s * (b.positions - a.positions)


def _hermite(p0: np.ndarray, v0: np.ndarray, p1: np.ndarray, v1: np.ndarray, s: float, duration: float) -> np.ndarray:
    """Cubic Hermite interpolation at normalized time s in [0, 1] over a segment of `duration` seconds."""
    s2, s3 = s * s, s * s * s
    h00 = 2 * s3 - 3 * s2 + 1
    h10 = s3 - 2 * s2 + s
    h01 = -2 * s3 + 3 * s2
    h11 = s3 - s2
    return h00 * p0 + h10 * duration * v0 + h01 * p1 + h11 * duration * v1
