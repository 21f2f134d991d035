"""What gets published, computed from one timed chunk (plain values; the node only wraps them in messages).

Row k of a chunk applies at `row_times_ns[k]` = the control tick of row 0 plus k periods; rows before `start_row`
ran from the previous chunk (ActionChunk.rtc_delay_steps). All outputs come from the same rows and times:
- ActionChunk: every row, in ROS units, stamped with row 0's time;
- JointTrajectory: the rows still to execute (those not already in the past), stamped with the first one's time,
  positions plus velocities from finite differences;
- the per-tick command stream samples the action queue (engine.command_at);
- markers: one line per joint, value against time, for rviz.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lerobot_recorder.interface import RobotInterface


@dataclass(frozen=True)
class TimedChunk:
    chunk_id: int
    rows: np.ndarray  # (H, A) dataset units; rows[start_row:] are executed (aggregated/clamped where gated)
    start_row: int
    row_times_ns: np.ndarray  # (H,) int64: when each row applies
    period_s: float
    observation_stamp_ns: int
    latency_s: float  # observation tick -> chunk merged
    delay_rows: int  # measured delay in rows (switch tick - observation tick)
    executed_during_inference: int  # rows of the old plan executed while this chunk was computed
    inference_delay: int  # the RTC delay the policy was given (0 without RTC)
    epoch: int = 0  # the runtime's epoch when merged: a stop or reset after it makes the chunk obsolete

    @property
    def horizon(self) -> int:
        return len(self.rows)

    @property
    def end_ns(self) -> int:
        return int(self.row_times_ns[-1])

    def first_row_not_before(self, now_ns: int) -> int | None:
        """The first executed row whose time is >= now (None when the whole chunk is in the past)."""
        for k in range(self.start_row, self.horizon):
            if self.row_times_ns[k] >= now_ns:
                return k
        return None


@dataclass(frozen=True)
class TrajectoryContent:
    joint_names: list[str]
    start_ns: int  # header.stamp: the time of the first point
    times_from_start_s: np.ndarray  # (K,)
    positions: np.ndarray  # (K, A) ROS units
    velocities: np.ndarray  # (K, A) ROS units per second


def finite_difference_velocities(positions: np.ndarray, period_s: float) -> np.ndarray:
    """Velocities of equally spaced points: central differences inside, one-sided at both ends; zero for one point."""
    positions = np.asarray(positions, dtype=np.float64)
    if len(positions) < 2:
        return np.zeros_like(positions)
    return np.gradient(positions, period_s, axis=0)


def chunk_rows_ros(interface: RobotInterface, chunk: TimedChunk) -> np.ndarray:
    """Every row of the chunk in the command topic's units (the interface's inverse transforms)."""
    return interface.action_to_ros(chunk.rows)


def trajectory_content(interface: RobotInterface, chunk: TimedChunk, now_ns: int) -> TrajectoryContent | None:
    """The rows still to execute as a trajectory; None when every row is already in the past (never published)."""
    first = chunk.first_row_not_before(now_ns)
    if first is None:
        return None
    positions = chunk_rows_ros(interface, chunk)[first:]
    times = (chunk.row_times_ns[first:] - chunk.row_times_ns[first]) / 1e9
    return TrajectoryContent(list(interface.command.joints), int(chunk.row_times_ns[first]), times, positions,
                             finite_difference_velocities(positions, chunk.period_s))


@dataclass(frozen=True)
class MarkerLine:
    name: str  # the joint
    points: np.ndarray  # (K, 3): x = seconds from the first executed row * time_scale, y = lane, z = value * scale


def chunk_marker_lines(interface: RobotInterface, chunk: TimedChunk, time_scale: float = 0.5, lane_spacing: float = 0.1,
                       value_scale: float = 0.005) -> list[MarkerLine]:
    """The executed rows as one line per joint (joint-space chunk for rviz): time runs along x, joints are lanes
    along y, the value (dataset units) is the height."""
    rows = chunk.rows[chunk.start_row:]
    times = (chunk.row_times_ns[chunk.start_row:] - chunk.row_times_ns[chunk.start_row]) / 1e9
    lines = []
    for j, name in enumerate(interface.action.names):
        points = np.stack([times * time_scale, np.full(len(rows), j * lane_spacing), rows[:, j] * value_scale], axis=1)
        lines.append(MarkerLine(name, points))
    return lines
