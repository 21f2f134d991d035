"""Jogging joints of an arm: a commanded target that starts from the measured state and moves in steps.

Why a target and not "measured + step" each time: holding a key sends many steps before the arm catches up; adding
to the measured position would lose most of them and the arm would crawl. Why re-sync: after the operator lets go
for `resync_after` seconds the target snaps back to the measured state, so the next jog starts from where the arm
really is (it may have been pushed, or another node may have moved it).
"""
from __future__ import annotations

from dataclasses import dataclass

SO_ARM_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
GRIPPER = "gripper"


@dataclass(frozen=True)
class JointCommand:
    names: tuple[str, ...]
    positions: tuple[float, ...]

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.names, self.positions))


class NoJointStateYet(RuntimeError):
    """A jog was asked for before any joint state arrived: there is nothing to jog from."""


class JogTarget:
    def __init__(self, joint_names=SO_ARM_JOINTS, limits: dict[str, tuple[float, float]] | None = None,
                 resync_after: float = 1.0):
        self.joint_names = tuple(joint_names)
        self.limits = dict(limits or {})
        if GRIPPER in self.joint_names:
            self.limits.setdefault(GRIPPER, (0.0, 1.0))  # opening fraction
        self.resync_after = resync_after
        self.measured: dict[str, float] = {}
        self.target: dict[str, float] | None = None
        self._last_jog = float("-inf")

    def update_state(self, names, positions) -> None:
        for name, value in zip(names, positions):
            if name in self.joint_names:
                self.measured[name] = float(value)

    @property
    def has_state(self) -> bool:
        return all(name in self.measured for name in self.joint_names)

    def resync(self) -> None:
        """Target := measured state (also what the 'hold' key does)."""
        if not self.has_state:
            missing = [n for n in self.joint_names if n not in self.measured]
            raise NoJointStateYet(f"no joint state yet for {missing}: waiting for the arm's joint_states")
        self.target = {name: self.measured[name] for name in self.joint_names}

    def nudge(self, deltas: dict[str, float], now: float) -> JointCommand:
        """Move the target by `deltas` (joint -> change, radians or gripper fraction) and return the full command."""
        unknown = set(deltas) - set(self.joint_names)
        if unknown:
            raise KeyError(f"cannot jog {sorted(unknown)}: this arm has joints {list(self.joint_names)}")
        if self.target is None or now - self._last_jog > self.resync_after:
            self.resync()
        self._last_jog = now
        for name, delta in deltas.items():
            value = self.target[name] + delta
            low, high = self.limits.get(name, (float("-inf"), float("inf")))
            self.target[name] = min(max(value, low), high)
        return self.command()

    def command(self) -> JointCommand:
        if self.target is None:
            self.resync()
        return JointCommand(self.joint_names, tuple(self.target[n] for n in self.joint_names))
