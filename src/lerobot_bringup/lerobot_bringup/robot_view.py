"""What rviz shows of a policy at work, computed without ROS: the end-effector path of every predicted chunk
(forward kinematics of the robot's URDF), the path the arm actually took, and the scene's cube.

Units: joint values arrive in the suite's JointState units (radians; a gripper as its opening fraction 0..1, which
`JointStateMapping` turns into the URDF's gripper angle). Points are metres in the URDF's root frame.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from lerobot_drivers.urdf_kinematics import JointStateMapping, RobotDescription, UrdfError

# Colours (r, g, b, a): what the policy plans in blue, what the arm did in orange, the cube as the scene draws it.
PREDICTED_RGBA = (0.15, 0.45, 1.0, 1.0)
EXECUTED_RGBA = (1.0, 0.55, 0.0, 1.0)
CUBE_RGBA = (0.86, 0.12, 0.12, 1.0)
CUBE_REACHED_RGBA = (0.16, 0.78, 0.24, 1.0)


def share_urdf(robot: str) -> Path:
    """The installed share/lerobot_bringup/urdf/<robot>.urdf (so101, koch)."""
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("lerobot_bringup")) / "urdf" / f"{robot}.urdf"


@dataclass(frozen=True)
class PathMarker:
    """A line through `points` (K, 3) in `frame`, drawn `width` metres wide in `rgba`."""

    namespace: str
    points: np.ndarray
    rgba: tuple[float, float, float, float]
    width: float


@dataclass(frozen=True)
class CubeMarker:
    centre: np.ndarray  # (3,) metres: the cube's centre (the scene reports its top centre)
    size: float
    rgba: tuple[float, float, float, float]


class EndEffectorKinematics:
    """Joint rows in the suite's units -> positions of one link (default the fingertips' `gripper_tip`)."""

    def __init__(self, description: RobotDescription, tip_link: str = "gripper_tip",
                 fraction_joints: Sequence[str] = ("gripper",)):
        if tip_link not in description.links:
            raise UrdfError(f"{description.source}: no link {tip_link!r} (links: {sorted(description.links)})")
        self.description = description
        self.tip_link = tip_link
        self.mapping = JointStateMapping(description, [j for j in fraction_joints if j in description.joints])
        self.frame = description.root

    @classmethod
    def from_file(cls, urdf: str | Path, tip_link: str = "gripper_tip") -> "EndEffectorKinematics":
        return cls(RobotDescription.from_file(urdf), tip_link)

    def tip_positions(self, joint_names: Sequence[str], rows) -> np.ndarray:
        """(K, J) joint rows (suite units, columns named by `joint_names`) -> (K, 3) tip positions. Names the URDF
        does not have are refused (a chunk for another robot must not be drawn on this one)."""
        rows = np.atleast_2d(np.asarray(rows, dtype=float))
        if rows.shape[1] != len(joint_names):
            raise ValueError(f"{rows.shape[1]} values per row but {len(joint_names)} joint names {list(joint_names)}")
        urdf_rows = [self.mapping.to_urdf(joint_names, row) for row in rows]
        columns = {name: np.array([r[name] for r in urdf_rows]) for name in joint_names}
        return self.description.link_positions(columns)[self.tip_link].reshape(len(rows), 3)


class ExecutedPath:
    """The tip's recent positions: appended from joint states, kept for `history_s`, thinned to about `min_step_m`
    between points (a 100 Hz joint state stream standing still would otherwise fill the line with duplicates).
    The newest point is always the newest position: it replaces the last one while they are closer than that."""

    def __init__(self, history_s: float = 5.0, min_step_m: float = 0.002):
        if history_s <= 0 or min_step_m < 0:
            raise ValueError(f"history_s must be > 0 and min_step_m >= 0, got {history_s} and {min_step_m}")
        self.history_ns = int(history_s * 1e9)
        self.min_step_m = min_step_m
        self._points: deque[tuple[int, np.ndarray]] = deque()

    def add(self, stamp_ns: int, position: np.ndarray) -> None:
        position = np.asarray(position, dtype=float).reshape(3)
        if len(self._points) >= 2 and np.linalg.norm(position - self._points[-2][1]) < self.min_step_m:
            self._points[-1] = (stamp_ns, position)
        else:
            self._points.append((stamp_ns, position))
        while self._points and stamp_ns - self._points[0][0] > self.history_ns:
            self._points.popleft()

    def clear(self) -> None:
        self._points.clear()

    def points(self) -> np.ndarray:
        return np.array([p for _, p in self._points]).reshape(-1, 3)


def predicted_path_marker(points: np.ndarray) -> PathMarker:
    return PathMarker("predicted_end_effector_path", points, PREDICTED_RGBA, 0.004)


def executed_path_marker(points: np.ndarray) -> PathMarker:
    return PathMarker("executed_end_effector_path", points, EXECUTED_RGBA, 0.003)


def cube_marker(top_centre, size: float, reached: bool) -> CubeMarker:
    """The scene reports the cube's top centre; a CUBE marker is placed by its centre."""
    centre = np.asarray(top_centre, dtype=float).reshape(3) - [0.0, 0.0, size / 2]
    return CubeMarker(centre, size, CUBE_REACHED_RGBA if reached else CUBE_RGBA)
