"""Validated command types of the arm driver, built from plain values (the node unpacks the ROS messages).

Three command sources exist, all in ROS units (radians for body joints, fraction for the gripper):
- JointPositionCommand: a direct goal for the named joints (partial commands leave the other joints alone);
- JointTrajectoryCommand: time-parameterised points executed by interpolation at the control rate;
- an ActionChunk, which becomes a JointTrajectoryCommand (row k at stamp + k * period, starting at row
  rtc_delay_steps).
Anything malformed raises CommandRejected with a message naming the field; the driver logs it and does not move.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np


class CommandRejected(ValueError):
    """A command the driver refuses (unknown joint, NaN/inf, inconsistent sizes...). The arm does not move."""


class JointNameResolver:
    """Maps the joint names found in commands to indices in the arm's joint order.

    Accepted spellings of a joint: its published ROS name (possibly with the node's joint prefix), the bare LeRobot
    motor name, and LeRobot's feature name `<motor>.pos` (what ActionChunks from a LeRobot policy carry).
    """

    def __init__(self, motor_names: Sequence[str], prefix: str = ""):
        self.motor_names = tuple(motor_names)
        self.ros_names = tuple(prefix + name for name in motor_names)
        self._index: dict[str, int] = {}
        for i, (motor, ros) in enumerate(zip(self.motor_names, self.ros_names)):
            for alias in (ros, motor, f"{motor}.pos"):
                self._index.setdefault(alias, i)

    def indices(self, names: Sequence[str], source: str) -> np.ndarray:
        if len(names) == 0:
            raise CommandRejected(f"{source}: empty joint name list")
        unknown = [n for n in names if n not in self._index]
        if unknown:
            raise CommandRejected(f"{source}: unknown joint name(s) {unknown}; this arm's joints are "
                                  f"{list(self.ros_names)}")
        indices = np.array([self._index[n] for n in names], dtype=int)
        if len(set(indices.tolist())) != len(indices):
            raise CommandRejected(f"{source}: a joint is named twice in {list(names)}")
        return indices


def _finite_vector(values: Sequence[float], expected: int, source: str, field: str,
                   names: Sequence[str]) -> np.ndarray:
    array = np.asarray(values, dtype=float).reshape(-1)
    if array.size != expected:
        raise CommandRejected(f"{source}: {field} has {array.size} values, expected {expected} (one per name)")
    bad = ~np.isfinite(array)
    if bad.any():
        offenders = {names[i]: float(array[i]) for i in np.flatnonzero(bad)}
        raise CommandRejected(f"{source}: non-finite {field} {offenders}; command ignored, holding")
    return array


@dataclass(frozen=True)
class JointPositionCommand:
    indices: np.ndarray
    positions: np.ndarray
    received_at: float

    @classmethod
    def parse(cls, resolver: JointNameResolver, names: Sequence[str], positions: Sequence[float],
              received_at: float, source: str = "joint_commands") -> "JointPositionCommand":
        indices = resolver.indices(list(names), source)
        values = _finite_vector(positions, len(indices), source, "position", list(names))
        return cls(indices, values, received_at)


@dataclass(frozen=True)
class TrajectoryPoint:
    time_from_start: float
    positions: np.ndarray
    velocities: np.ndarray | None = None


@dataclass(frozen=True)
class JointTrajectoryCommand:
    """Points at absolute times start_time + time_from_start (seconds on the node clock)."""

    indices: np.ndarray
    start_time: float
    points: tuple[TrajectoryPoint, ...]
    source: str = "joint_trajectory"  # the topic it came from, for diagnostics

    @property
    def first_point_time(self) -> float:
        return self.start_time + self.points[0].time_from_start

    @property
    def end_time(self) -> float:
        return self.start_time + self.points[-1].time_from_start

    @classmethod
    def parse(cls, resolver: JointNameResolver, names: Sequence[str], start_time: float | None, now: float,
              points: Sequence[tuple[float, Sequence[float], Sequence[float]]],
              source: str = "joint_trajectory") -> "JointTrajectoryCommand":
        """points: (time_from_start, positions, velocities-or-empty). start_time None = the header stamp was 0."""
        indices = resolver.indices(list(names), source)
        if not points:
            raise CommandRejected(f"{source}: trajectory has no points")
        parsed: list[TrajectoryPoint] = []
        previous = -math.inf
        for k, (tfs, positions, velocities) in enumerate(points):
            where = f"{source}: points[{k}]"
            if not math.isfinite(tfs) or tfs < 0:
                raise CommandRejected(f"{where}.time_from_start = {tfs}: expected a finite value >= 0")
            if tfs <= previous:
                raise CommandRejected(f"{where}.time_from_start = {tfs} s is not after the previous point "
                                      f"({previous} s); times must increase strictly")
            previous = tfs
            pos = _finite_vector(positions, len(indices), where, "positions", list(names))
            vel = None
            if len(velocities) > 0:
                vel = _finite_vector(velocities, len(indices), where, "velocities", list(names))
            parsed.append(TrajectoryPoint(float(tfs), pos, vel))
        start = now if start_time is None else float(start_time)
        if not math.isfinite(start):
            raise CommandRejected(f"{source}: header.stamp is not finite")
        return cls(indices, start, tuple(parsed), source)


def trajectory_from_action_chunk(resolver: JointNameResolver, names: Sequence[str], actions: Sequence[float],
                                 horizon: int, action_dim: int, period: float, stamp: float | None,
                                 rtc_delay_steps: int, now: float,
                                 source: str = "action_chunk") -> JointTrajectoryCommand:
    """An ActionChunk as a trajectory: row k applies at stamp + k * period; rows before rtc_delay_steps were
    already covered by the previous chunk, so execution starts at row rtc_delay_steps. A zero stamp means
    "row rtc_delay_steps applies now"."""
    if action_dim != len(names):
        raise CommandRejected(f"{source}: action_dim = {action_dim} but {len(names)} names")
    if horizon <= 0:
        raise CommandRejected(f"{source}: horizon = {horizon}, expected > 0")
    if len(actions) != horizon * action_dim:
        raise CommandRejected(f"{source}: actions has {len(actions)} values, expected horizon x action_dim = "
                              f"{horizon} x {action_dim} = {horizon * action_dim}")
    if not (math.isfinite(period) and period > 0):
        raise CommandRejected(f"{source}: period = {period} s, expected a finite value > 0")
    if not 0 <= rtc_delay_steps < horizon:
        raise CommandRejected(f"{source}: rtc_delay_steps = {rtc_delay_steps} leaves no row to execute "
                              f"(horizon {horizon})")
    rows = np.asarray(actions, dtype=float).reshape(horizon, action_dim)
    start = now - rtc_delay_steps * period if stamp is None else float(stamp)
    points = [(k * period, rows[k], ()) for k in range(rtc_delay_steps, horizon)]
    return JointTrajectoryCommand.parse(resolver, names, start, now, points, source=source)
