"""Forward and inverse kinematics of an SO-101-like 5-DoF arm with a parallel gripper (simulation only).

`SO101` is the geometry the simulator renders; `KOCH` the Koch v1.1's in the same model. The URDFs in
lerobot_bringup/urdf follow these (a test compares their forward kinematics).

Conventions (the suite's JointState units): body joints in radians with zero at the calibrated mid-range, the
gripper as an opening fraction 0 (closed) .. 1 (open). Base frame: x forward, y left, z up, origin on the table under
the pan axis, metres.

Zero pose (the SO-101 mid-range calibration pose): upper arm vertical, forearm and gripper pointing forward
horizontally. Signs, all chosen so that positive values reach forward/down:
- shoulder_pan: rotation about +z (positive turns the arm to the left, towards +y);
- shoulder_lift: positive tilts the upper arm forward, towards the table;
- elbow_flex: positive folds the forearm down;
- wrist_flex: positive pitches the gripper down;
- wrist_roll: rotation about the gripper's pointing axis (changes only the jaw plane, not the tip position).
The link lengths approximate the SO-101 (upper arm 113 mm, forearm 135 mm, wrist-to-fingertip 100 mm).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

JOINT_NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
ARM_JOINTS = JOINT_NAMES[:4]  # the joints that move the fingertip (IK solves these)


@dataclass(frozen=True)
class ArmGeometry:
    shoulder_height: float = 0.117  # table to shoulder_lift axis
    shoulder_forward: float = 0.030  # pan axis to shoulder_lift axis, horizontally
    upper_arm: float = 0.1126
    forearm: float = 0.1349
    wrist_to_tip: float = 0.100  # wrist_flex axis to the fingertips' midpoint
    palm: float = 0.045  # wrist_flex axis to where the jaws start
    jaw_max_gap: float = 0.035  # half distance between open fingertips
    base_radius: float = 0.045
    # (low, high) per joint in the suite's units
    limits: dict = field(default_factory=lambda: {
        "shoulder_pan": (-1.92, 1.92), "shoulder_lift": (-1.75, 1.75), "elbow_flex": (-1.6, 1.75),
        "wrist_flex": (-1.75, 1.75), "wrist_roll": (-2.8, 2.8), "gripper": (0.0, 1.0)})


SO101 = ArmGeometry()

# Koch v1.1 (no simulator renders it; its URDF follows this model): link lengths from the public Koch v1.1
# description (jess-moss/koch-v1-1, as packaged by ManiSkill), projected onto the arm's plane; the real arm's
# lateral offsets along the shoulder and wrist axes (up to 38 mm) are left out. Zero pose and signs as the SO-101's
# (nominal: the real zero is wherever the calibration put mid-range). Position limits: the arm definition's.
KOCH = ArmGeometry(
    shoulder_height=0.054, shoulder_forward=0.0207, upper_arm=0.1094, forearm=0.1005, wrist_to_tip=0.110,
    palm=0.045, jaw_max_gap=0.025, base_radius=0.035,
    limits={"shoulder_pan": (-np.pi, np.pi), "shoulder_lift": (-1.25, 1.25), "elbow_flex": (-1.52, 1.52),
            "wrist_flex": (-1.57, 1.57), "wrist_roll": (-np.pi, np.pi), "gripper": (0.0, 1.0)})


@dataclass(frozen=True)
class ArmPose:
    """Points of the arm in the base frame (metres), enough to draw it and to know where the fingertips are."""

    base: np.ndarray  # on the table, under the pan axis
    shoulder: np.ndarray
    elbow: np.ndarray
    wrist: np.ndarray
    palm: np.ndarray
    tip: np.ndarray  # midpoint between the fingertips: the point that "reaches"
    jaw_left: np.ndarray  # fingertip positions
    jaw_right: np.ndarray
    tip_pitch: float  # angle of the gripper axis above horizontal (radians; -pi/2 = pointing straight down)


def joint_vector(joints: dict[str, float] | np.ndarray | list[float]) -> np.ndarray:
    """6 values in JOINT_NAMES order from a name->value dict (missing names = 0, gripper 0.5) or a sequence."""
    if isinstance(joints, dict):
        unknown = set(joints) - set(JOINT_NAMES)
        if unknown:
            raise KeyError(f"unknown joint names {sorted(unknown)}; expected some of {list(JOINT_NAMES)}")
        defaults = {"gripper": 0.5}
        return np.array([float(joints.get(n, defaults.get(n, 0.0))) for n in JOINT_NAMES])
    values = np.asarray(joints, dtype=float).reshape(-1)
    if values.size == 4:
        values = np.concatenate([values, [0.0, 0.5]])
    if values.size != 6:
        raise ValueError(f"expected 4 or 6 joint values ({list(JOINT_NAMES)}), got {values.size}")
    return values


def forward_kinematics(joints, geometry: ArmGeometry = SO101) -> ArmPose:
    pan, lift, elbow, wrist, roll, grip = joint_vector(joints)
    g = geometry
    heading = np.array([np.cos(pan), np.sin(pan), 0.0])  # horizontal direction of the arm's vertical plane
    up = np.array([0.0, 0.0, 1.0])

    def in_plane(angle: float) -> np.ndarray:
        return np.cos(angle) * heading + np.sin(angle) * up

    a_upper = np.pi / 2 - lift  # upper arm: vertical at zero
    a_fore = a_upper - np.pi / 2 - elbow  # forearm: horizontal at zero
    a_grip = a_fore - wrist
    base = np.zeros(3)
    shoulder = g.shoulder_forward * heading + g.shoulder_height * up
    elbow_p = shoulder + g.upper_arm * in_plane(a_upper)
    wrist_p = elbow_p + g.forearm * in_plane(a_fore)
    axis = in_plane(a_grip)
    palm = wrist_p + g.palm * axis
    tip = wrist_p + g.wrist_to_tip * axis
    # jaw plane: the horizontal normal of the arm plane, rolled about the gripper axis
    side0 = np.array([-np.sin(pan), np.cos(pan), 0.0])
    side1 = np.cross(axis, side0)
    side = np.cos(roll) * side0 + np.sin(roll) * side1
    gap = g.jaw_max_gap * float(np.clip(grip, 0.0, 1.0))
    return ArmPose(base=base, shoulder=shoulder, elbow=elbow_p, wrist=wrist_p, palm=palm, tip=tip,
                   jaw_left=tip + gap * side, jaw_right=tip - gap * side, tip_pitch=float(a_grip))


@dataclass(frozen=True)
class IKSolution:
    joints: dict[str, float]  # all six joints (wrist_roll and gripper copied from the seed)
    position_error: float  # metres between the fingertip and the goal
    pitch_error: float  # radians, 0 when no pitch was asked for
    converged: bool
    iterations: int


def inverse_kinematics(target, seed=None, pitch: float | None = -np.pi / 2, geometry: ArmGeometry = SO101,
                       tolerance: float = 1e-3, pitch_weight: float = 0.05, max_iterations: int = 200) -> IKSolution:
    """Fingertip to `target` (x, y, z in metres) by damped least squares on pan/lift/elbow/wrist.

    `pitch` asks for the gripper's angle above horizontal (default straight down, the way to reach an object on the
    table); it is a soft goal weighted by `pitch_weight` metres per radian, so an unreachable pitch bends rather
    than failing. Joint limits are enforced by clipping every step. Several starting poses are tried.
    """
    goal = np.asarray(target, dtype=float).reshape(3)
    start = joint_vector(seed if seed is not None else {})
    lows = np.array([geometry.limits[n][0] for n in ARM_JOINTS])
    highs = np.array([geometry.limits[n][1] for n in ARM_JOINTS])

    def residual(q: np.ndarray) -> np.ndarray:
        pose = forward_kinematics(np.concatenate([q, start[4:]]), geometry)
        r = pose.tip - goal
        if pitch is None:
            return r
        return np.append(r, pitch_weight * (pose.tip_pitch - pitch))

    pan_guess = float(np.arctan2(goal[1], goal[0])) if np.hypot(goal[0], goal[1]) > 1e-6 else 0.0
    starts = [start[:4].copy(), np.array([pan_guess, 0.3, 0.3, 1.0]), np.array([pan_guess, -0.3, 0.9, 0.9]),
              np.array([pan_guess, 0.8, -0.3, 1.2])]
    best = None
    for q0 in starts:
        q = np.clip(q0, lows, highs)
        damping = 1e-3
        for iteration in range(1, max_iterations + 1):
            r = residual(q)
            jac = np.empty((r.size, 4))
            for j in range(4):
                dq = np.zeros(4)
                dq[j] = 1e-6
                jac[:, j] = (residual(q + dq) - r) / 1e-6
            step = np.linalg.solve(jac.T @ jac + damping * np.eye(4), -jac.T @ r)
            q_new = np.clip(q + step, lows, highs)
            if np.linalg.norm(residual(q_new)) < np.linalg.norm(r):
                q, damping = q_new, max(damping * 0.5, 1e-6)
            else:
                damping *= 4.0
            if np.linalg.norm(residual(q)[:3]) < tolerance * 0.1 or damping > 1e3:
                break
        pose = forward_kinematics(np.concatenate([q, start[4:]]), geometry)
        pos_err = float(np.linalg.norm(pose.tip - goal))
        pitch_err = 0.0 if pitch is None else float(abs(pose.tip_pitch - pitch))
        candidate = IKSolution(joints=dict(zip(JOINT_NAMES, map(float, np.concatenate([q, start[4:]])))),
                               position_error=pos_err, pitch_error=pitch_err, converged=pos_err < tolerance,
                               iterations=iteration)
        if best is None or (candidate.position_error, candidate.pitch_error) < (best.position_error, best.pitch_error):
            best = candidate
        if candidate.converged and candidate.pitch_error < 0.05:
            break
    return best
