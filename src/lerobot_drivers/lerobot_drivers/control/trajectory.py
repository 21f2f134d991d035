"""Sampling a JointTrajectoryCommand at control ticks.

Like ros2_control's JointTrajectoryController: when a trajectory starts, the goal it takes over from becomes an
implicit first point (at the activation time) if the trajectory's first point lies later, so the arm glides into the
trajectory instead of jumping. Between two points positions are interpolated linearly; when both points carry
velocities a cubic Hermite segment matches positions and velocities at both ends. After the last point the
trajectory holds that point.

Late trajectories (the rules of ros2_control's JTC, plus a bound on the start): a trajectory that ends in the past
is rejected, since executing it could only jump to its last point; one whose first point lies more than
`max_late_start_s` in the past is rejected too, since it was planned from a state that is gone. A start late by
less than that begins with the trajectory's value at "now" (interpolated between the points around now), never
at a later point. Rejected means the arm keeps doing what it did (hold or the running source).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lerobot_drivers.control.commands import CommandRejected, JointTrajectoryCommand

# Default bound on how late a trajectory's first point may be when it starts (seconds). Generous for jitter and
# DDS delivery; a chunk whose first executed row is later than this was computed from a stale observation.
DEFAULT_MAX_LATE_START_S = 0.2


def check_timing(command: JointTrajectoryCommand, now: float, max_late_start_s: float) -> None:
    """Raises CommandRejected (naming the topic and the times) if `command` is too late to execute at `now`:
    its last point lies in the past, or its first point more than max_late_start_s in the past."""
    if command.end_time < now:
        raise CommandRejected(
            f"{command.source}: ends {now - command.end_time:.3f} s in the past (last point at "
            f"{command.end_time:.3f} s, now {now:.3f} s on the node clock); rejected, holding")
    late = now - command.first_point_time
    if late > max_late_start_s:
        raise CommandRejected(
            f"{command.source}: first point is {late:.3f} s in the past, more than max_late_start_s = "
            f"{max_late_start_s:.3f} s (stamp {command.start_time:.3f} s, now {now:.3f} s); rejected, holding. "
            "A chunk should start at its first row still to come (rtc_delay_steps) and be stamped on the "
            "node clock")


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
