"""Robot descriptions: parse a URDF (xml.etree, no ROS) and compute forward kinematics of every link.

Used to check the shipped SO-101 / Koch URDFs against the simulator and the driver's limits, and by whoever draws
in the robot's frame (the policy node's predicted end-effector path): `RobotDescription.link_poses` takes one
joint vector or a whole chunk of them at once.

Units. The URDF is in SI units (metres, radians). The suite's JointState topics are radians with zero at the
calibrated mid-range for body joints, which is what the URDFs here use too, but the gripper is an opening fraction
0 (closed) .. 1 (open) on the topics and a revolute joint in the URDF. `JointStateMapping` converts between the
two, linearly over the gripper joint's URDF limits: angle = lower + fraction * (upper - lower). Whoever publishes
joint states for robot_state_publisher (or rviz) converts with it; the arm driver itself keeps publishing the
fraction, as LeRobot's datasets expect.

Supported: fixed, revolute, continuous and prismatic joints (floating/planar are refused); `mimic` is ignored.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

MOVABLE_TYPES = ("revolute", "continuous", "prismatic")
SUPPORTED_TYPES = ("fixed",) + MOVABLE_TYPES


class UrdfError(ValueError):
    """The URDF cannot be used; the message names the file (or "<string>") and the element."""


@dataclass(frozen=True)
class UrdfLimits:
    """A joint's `<limit>`: lower/upper in rad (m for prismatic), velocity in rad/s (m/s), effort in N*m (N)."""

    lower: float
    upper: float
    velocity: float
    effort: float


@dataclass(frozen=True)
class UrdfJoint:
    name: str
    type: str
    parent: str
    child: str
    origin: np.ndarray             # 4x4: the child frame at q = 0, in the parent link's frame
    axis: np.ndarray               # unit vector in the joint (child) frame
    limits: UrdfLimits | None      # None for fixed joints and a continuous joint without <limit>


def origin_transform(xyz: Sequence[float], rpy: Sequence[float]) -> np.ndarray:
    """URDF `<origin>`: translation xyz, then fixed-axis roll, pitch, yaw (R = Rz(yaw) Ry(pitch) Rx(roll))."""
    roll, pitch, yaw = rpy
    cr, sr, cp, sp, cy, sy = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch), math.cos(yaw), \
        math.sin(yaw)
    transform = np.eye(4)
    transform[:3, :3] = [[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                         [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                         [-sp, cp * sr, cp * cr]]
    transform[:3, 3] = xyz
    return transform


def _rotations(axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(N, 4, 4) rotations by `angles` about the unit `axis` (Rodrigues)."""
    x, y, z = axis
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    s, c = np.sin(angles)[:, None, None], np.cos(angles)[:, None, None]
    out = np.tile(np.eye(4), (len(angles), 1, 1))
    out[:, :3, :3] = np.eye(3) + s * k + (1.0 - c) * (k @ k)
    return out


class RobotDescription:
    """A parsed URDF: links, joints (in file order), the root link, and forward kinematics."""

    def __init__(self, name: str, links: Sequence[str], joints: Sequence[UrdfJoint], source: str = "<string>"):
        self.name = name
        self.source = source
        self.links = tuple(links)
        self.joints = {joint.name: joint for joint in joints}
        children = {joint.child for joint in joints}
        roots = [link for link in self.links if link not in children]
        if len(roots) != 1:
            raise UrdfError(f"{source}: expected exactly one root link (a link that is no joint's child), found "
                            f"{roots}")
        self.root = roots[0]
        self._order = self._topological_order(source)

    @classmethod
    def from_file(cls, path: str | Path) -> "RobotDescription":
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise UrdfError(f"{path}: cannot read the URDF: {exc}") from None
        return cls.from_string(text, str(path))

    @classmethod
    def from_string(cls, xml: str, source: str = "<string>") -> "RobotDescription":
        try:
            robot = ET.fromstring(xml)
        except ET.ParseError as exc:
            raise UrdfError(f"{source}: not valid XML: {exc}") from None
        if robot.tag != "robot":
            raise UrdfError(f"{source}: the root element is <{robot.tag}>, expected <robot>")
        links = [_required(link, "name", source, "<link>") for link in robot.findall("link")]
        duplicates = sorted({name for name in links if links.count(name) > 1})
        if duplicates:
            raise UrdfError(f"{source}: link(s) {duplicates} defined twice")
        joints = [_parse_joint(element, set(links), source) for element in robot.findall("joint")]
        names = [joint.name for joint in joints]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise UrdfError(f"{source}: joint(s) {duplicates} defined twice")
        return cls(robot.get("name", ""), links, joints, source)

    def _topological_order(self, source: str) -> list[UrdfJoint]:
        """Joints ordered so that every joint comes after the one that places its parent link."""
        by_parent: dict[str, list[UrdfJoint]] = {}
        for joint in self.joints.values():
            by_parent.setdefault(joint.parent, []).append(joint)
        order, frontier, seen = [], [self.root], {self.root}
        while frontier:
            link = frontier.pop()
            for joint in by_parent.get(link, []):
                if joint.child in seen:
                    raise UrdfError(f"{source}: joint {joint.name!r} closes a loop at link {joint.child!r}")
                seen.add(joint.child)
                order.append(joint)
                frontier.append(joint.child)
        unreachable = sorted(set(self.links) - seen)
        if unreachable:
            raise UrdfError(f"{source}: link(s) {unreachable} are not connected to the root {self.root!r}")
        return order

    @property
    def movable_joints(self) -> list[str]:
        return [joint.name for joint in self.joints.values() if joint.type in MOVABLE_TYPES]

    def link_poses(self, positions: Mapping[str, float] | Mapping[str, Sequence[float]] | np.ndarray,
                   joint_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Pose of every link in the root frame (URDF units) for a joint vector, or for N of them at once.

        `positions`: a {joint: value} mapping (values or length-N arrays), or an array of shape (J,) or (N, J)
        with `joint_names` naming its columns. Joints not given are at 0. Returns {link: 4x4} for one vector,
        {link: (N, 4, 4)} for N. Positions are not clamped to the limits (a description draws what it is told).
        """
        values, batched = self._columns(positions, joint_names)
        n = len(next(iter(values.values()))) if values else 1
        poses = {self.root: np.tile(np.eye(4), (n, 1, 1))}
        for joint in self._order:
            transform = poses[joint.parent] @ joint.origin
            if joint.type in MOVABLE_TYPES:
                q = values.get(joint.name, np.zeros(n))
                if joint.type == "prismatic":
                    motion = np.tile(np.eye(4), (n, 1, 1))
                    motion[:, :3, 3] = q[:, None] * joint.axis
                else:
                    motion = _rotations(joint.axis, q)
                transform = transform @ motion
            poses[joint.child] = transform
        return poses if batched else {link: pose[0] for link, pose in poses.items()}

    def link_positions(self, positions, joint_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Like `link_poses`, only the origins: {link: (3,)} or {link: (N, 3)}."""
        return {link: pose[..., :3, 3] for link, pose in self.link_poses(positions, joint_names).items()}

    def _columns(self, positions, joint_names) -> tuple[dict[str, np.ndarray], bool]:
        if isinstance(positions, Mapping):
            names = list(positions)
            arrays = [np.atleast_1d(np.asarray(positions[name], dtype=float)) for name in names]
            batched = any(np.ndim(positions[name]) > 0 for name in names)
            lengths = {len(a) for a in arrays}
            if len(lengths) > 1:
                raise ValueError(f"joint position arrays of different lengths {sorted(lengths)}")
        else:
            matrix = np.asarray(positions, dtype=float)
            batched = matrix.ndim == 2
            matrix = np.atleast_2d(matrix)
            if joint_names is None or matrix.shape[1] != len(joint_names):
                raise ValueError(f"positions of shape {np.shape(positions)} need joint_names with one name per "
                                 f"column, got {None if joint_names is None else list(joint_names)}")
            names, arrays = list(joint_names), list(matrix.T)
        unknown = [name for name in names if name not in self.joints]
        if unknown:
            raise ValueError(f"{self.source}: unknown joint(s) {unknown}; movable joints are {self.movable_joints}")
        fixed = [name for name in names if self.joints[name].type == "fixed"]
        if fixed:
            raise ValueError(f"{self.source}: joint(s) {fixed} are fixed; they take no position")
        return {name: array for name, array in zip(names, arrays)}, batched


class JointStateMapping:
    """JointState positions (the suite's units) <-> URDF joint positions.

    Body joints are equal (radians, zero at mid-range). A fraction joint (the gripper: 0 closed .. 1 open) maps
    linearly onto its URDF limits: angle = lower + fraction * (upper - lower); velocities scale by (upper - lower).
    """

    def __init__(self, description: RobotDescription, fraction_joints: Sequence[str] = ("gripper",)):
        self._spans: dict[str, tuple[float, float]] = {}
        for name in fraction_joints:
            joint = description.joints.get(name)
            if joint is None or joint.limits is None:
                raise UrdfError(f"{description.source}: fraction joint {name!r} needs a joint with <limit> in the "
                                "URDF")
            self._spans[name] = (joint.limits.lower, joint.limits.upper)

    def to_urdf(self, names: Sequence[str], positions: Sequence[float]) -> dict[str, float]:
        """One JointState's (names, positions) -> {URDF joint: position}."""
        out = {}
        for name, value in zip(names, positions):
            if name in self._spans:
                lower, upper = self._spans[name]
                value = lower + float(value) * (upper - lower)
            out[name] = float(value)
        return out

    def from_urdf(self, positions: Mapping[str, float]) -> dict[str, float]:
        out = {}
        for name, value in positions.items():
            if name in self._spans:
                lower, upper = self._spans[name]
                value = (float(value) - lower) / (upper - lower)
            out[name] = float(value)
        return out

    def velocity_to_urdf(self, name: str, velocity: float) -> float:
        """A JointState velocity (rad/s; gripper fraction/s) -> URDF units (rad/s)."""
        if name in self._spans:
            lower, upper = self._spans[name]
            return float(velocity) * (upper - lower)
        return float(velocity)


# ---------------------------------------------------------------------- parsing helpers
def _required(element: ET.Element, attribute: str, source: str, where: str) -> str:
    value = element.get(attribute)
    if value is None or value == "":
        raise UrdfError(f"{source}: {where} has no {attribute!r} attribute")
    return value


def _floats(text: str | None, count: int, source: str, where: str, default: Sequence[float]) -> list[float]:
    if text is None:
        return list(default)
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        raise UrdfError(f"{source}: {where} = {text!r} is not {count} numbers") from None
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise UrdfError(f"{source}: {where} = {text!r}: expected {count} finite numbers")
    return values


def _parse_joint(element: ET.Element, links: set[str], source: str) -> UrdfJoint:
    name = _required(element, "name", source, "<joint>")
    where = f"joint {name!r}"
    joint_type = _required(element, "type", source, where)
    if joint_type not in SUPPORTED_TYPES:
        raise UrdfError(f"{source}: {where} has type {joint_type!r}; supported: {list(SUPPORTED_TYPES)}")
    ends = {}
    for end in ("parent", "child"):
        tag = element.find(end)
        if tag is None:
            raise UrdfError(f"{source}: {where} has no <{end}>")
        ends[end] = _required(tag, "link", source, f"{where} <{end}>")
        if ends[end] not in links:
            raise UrdfError(f"{source}: {where} <{end} link={ends[end]!r}> names no <link>")
    origin = element.find("origin")
    xyz = _floats(None if origin is None else origin.get("xyz"), 3, source, f"{where} origin xyz", (0, 0, 0))
    rpy = _floats(None if origin is None else origin.get("rpy"), 3, source, f"{where} origin rpy", (0, 0, 0))
    axis_tag = element.find("axis")
    axis = np.array(_floats(None if axis_tag is None else axis_tag.get("xyz"), 3, source, f"{where} axis",
                            (1, 0, 0)))
    limits = None
    if joint_type in MOVABLE_TYPES:
        norm = float(np.linalg.norm(axis))
        if norm < 1e-9:
            raise UrdfError(f"{source}: {where} has a zero axis")
        axis = axis / norm
        limits = _parse_limits(element.find("limit"), joint_type, source, where)
    return UrdfJoint(name, joint_type, ends["parent"], ends["child"], origin_transform(xyz, rpy), axis, limits)


def _parse_limits(limit: ET.Element | None, joint_type: str, source: str, where: str) -> UrdfLimits | None:
    """URDF requires <limit> with effort and velocity for revolute and prismatic joints (urdfdom rejects it
    otherwise); lower/upper default to 0 there. A continuous joint's <limit> is optional."""
    if limit is None:
        if joint_type == "continuous":
            return None
        raise UrdfError(f"{source}: {where} ({joint_type}) has no <limit>")
    values = {}
    for key, default in (("lower", 0.0), ("upper", 0.0), ("velocity", None), ("effort", None)):
        text = limit.get(key)
        if text is None:
            if default is None:
                raise UrdfError(f"{source}: {where} <limit> has no {key!r} (URDF requires effort and velocity)")
            values[key] = default
            continue
        try:
            values[key] = float(text)
        except ValueError:
            raise UrdfError(f"{source}: {where} <limit {key}={text!r}> is not a number") from None
    if joint_type == "continuous":
        values["lower"], values["upper"] = -math.inf, math.inf
    elif values["lower"] > values["upper"]:
        raise UrdfError(f"{source}: {where} <limit> lower {values['lower']} > upper {values['upper']}")
    return UrdfLimits(**values)
