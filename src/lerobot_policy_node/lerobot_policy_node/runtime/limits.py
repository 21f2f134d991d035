"""Where the safety gates' bounds come from: URDF joint limits and the dataset's per-tick action deltas.

Position limits: a URDF's `<joint type="revolute|prismatic"><limit lower=".." upper=".."/>` in ROS units (rad, m),
mapped to dataset units through the robot interface's action transforms (the units the policy speaks).

Boundary-jump bound (upstream PR #4241 derived its checks from the dataset's action deltas and then flagged 100 of
100 clean chunks, so this is derived with care): per action dimension,

    max_step = factor * max(percentile_q(|a[t+1] - a[t]|) within episodes, floor_fraction * largest range)

i.e. `factor` times the largest per-tick motion the demonstrations contain (a high percentile, so one teleop
glitch does not widen it), with a floor for joints that barely moved in the data (their bound would otherwise be
~0 and a policy's sampling noise would trip it: measured, a wrist_roll held still in every demonstration got a
bound of 0.002 degrees and tripped on 0.016). The floor is a fraction of the largest joint range of the dataset,
the dataset's own motion scale (LeRobot's units are comparable across joints: degrees, gripper 0-100).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from lerobot_recorder.interface import RobotInterface
from lerobot_policy_node.runtime.errors import ConfigurationError


def urdf_joint_limits(urdf: str | Path) -> dict[str, tuple[float, float]]:
    """{joint name: (lower, upper)} of the revolute and prismatic joints with a <limit> (ROS units).
    `urdf` is a file path or the URDF text itself (a robot_description)."""
    text = str(urdf)
    if not text.lstrip().startswith("<"):
        try:
            text = Path(text).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigurationError(f"urdf {urdf}: cannot read the file: {error.strerror or error}") from None
    try:
        root = ET.fromstring(text)
    except ET.ParseError as error:
        raise ConfigurationError(f"urdf {urdf if len(str(urdf)) < 200 else '<text>'}: not valid XML: {error}") from None
    limits = {}
    for joint in root.iter("joint"):
        limit = joint.find("limit")
        if joint.get("type") not in ("revolute", "prismatic") or limit is None:
            continue
        try:
            lower, upper = float(limit.get("lower", "0")), float(limit.get("upper", "0"))
        except ValueError:
            raise ConfigurationError(f"urdf: joint {joint.get('name')!r}: <limit> lower/upper are not numbers") from None
        if lower > upper:
            raise ConfigurationError(f"urdf: joint {joint.get('name')!r}: lower limit {lower} > upper {upper}")
        limits[joint.get("name")] = (lower, upper)
    return limits


def action_limits(interface: RobotInterface, ros_limits: dict[str, tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Per action dimension (lower, upper) in dataset units; +-inf where a joint has no limit."""
    joints = list(interface.command.joints)
    transform = interface.action.transform
    lower = np.full(len(joints), -np.inf)
    upper = np.full(len(joints), np.inf)
    for i, joint in enumerate(joints):
        if joint in ros_limits:
            ends = sorted(transform.transforms[i].forward(v) for v in ros_limits[joint])  # a negative scale swaps
            lower[i], upper[i] = ends
    return lower, upper


@dataclass(frozen=True)
class StepBoundConfig:
    # Percentile of the per-tick |delta action| taken as "the largest motion the demonstrations contain".
    percentile: float = 99.9
    # The bound is this many times that motion.
    factor: float = 5.0
    # Floor, as a fraction of the largest joint range in the data, for joints that barely moved.
    floor_fraction: float = 0.01

    def __post_init__(self) -> None:
        if not 0 < self.percentile <= 100:
            raise ValueError(f"step bound percentile must be in (0, 100], got {self.percentile}")
        if not self.factor > 0 or self.floor_fraction < 0:
            raise ValueError(f"step bound factor must be > 0 and floor_fraction >= 0, got {self}")


def step_bound_from_episodes(episodes: Sequence[np.ndarray], config: StepBoundConfig = StepBoundConfig()) -> np.ndarray:
    """The per-dimension boundary-jump bound from episodes' action arrays ((T, A) each, dataset units)."""
    deltas = [np.abs(np.diff(np.asarray(e, dtype=np.float64), axis=0)) for e in episodes if len(e) > 1]
    if not deltas:
        raise ConfigurationError("the dataset has no episode with two frames or more: no action deltas to derive "
                                 "the boundary-jump bound from")
    every = np.concatenate(deltas)
    actions = np.concatenate([np.asarray(e, dtype=np.float64) for e in episodes])
    motion = np.percentile(every, config.percentile, axis=0)
    floor = config.floor_fraction * float((actions.max(axis=0) - actions.min(axis=0)).max())
    bound = config.factor * np.maximum(motion, floor)
    # A dataset where nothing moved at all still needs a positive bound.
    return np.where(bound > 0, bound, np.finfo(np.float64).eps)


def step_bound_from_dataset(root: str | Path, config: StepBoundConfig = StepBoundConfig()) -> np.ndarray:
    """Read every episode's `action` column (no video decoding) and derive the bound."""
    from lerobot_dataset.reader import LeRobotDatasetReader

    try:
        reader = LeRobotDatasetReader(root)
    except Exception as error:  # any unreadable dataset: one clear line naming it
        raise ConfigurationError(f"dataset {root}: cannot read it to derive the boundary-jump bound: {error}") from None
    try:
        if "action" not in reader.features:
            raise ConfigurationError(f"dataset {root} has no 'action' feature")
        episodes = [reader.episode_columns(e, ["action"])["action"] for e in reader.episode_indices]
    finally:
        reader.close()
    return step_bound_from_episodes(episodes, config)
