"""Gamepad jog teleop: stick deflection -> joint velocity, integrated into a jog target (ROS-free, no pygame here).

Default mapping (SDL numbering of an Xbox-style pad, which pygame reports):
    left stick  x (axis 0)  shoulder_pan   (stick right turns the arm right: negative pan)
    left stick  y (axis 1)  shoulder_lift  (stick up, which SDL reports as negative y, tilts the arm forward)
    right stick y (axis 4)  elbow_flex
    right stick x (axis 3)  wrist_flex
    LB / RB (buttons 4 / 5) wrist_roll - / +
    A / B   (buttons 0 / 1) gripper close / open
Full deflection moves a body joint at `max_speed` rad/s; a button moves the gripper at `gripper_speed` (fraction/s)
and the wrist roll at `max_speed`. Deflections inside `deadzone` count as zero; the rest is rescaled so motion
starts smoothly at the deadzone's edge.
"""
from __future__ import annotations

from dataclasses import dataclass

from lerobot_drivers.teleop.jog import GRIPPER, JogTarget, JointCommand


@dataclass(frozen=True)
class AxisBinding:
    axis: int
    joint: str
    sign: float  # multiplies the SDL axis value (+1 = stick right/down)


@dataclass(frozen=True)
class ButtonBinding:
    button: int
    joint: str
    direction: float  # +1 / -1


DEFAULT_AXES = (AxisBinding(0, "shoulder_pan", -1.0), AxisBinding(1, "shoulder_lift", -1.0),
                AxisBinding(4, "elbow_flex", 1.0), AxisBinding(3, "wrist_flex", 1.0))
DEFAULT_BUTTONS = (ButtonBinding(4, "wrist_roll", -1.0), ButtonBinding(5, "wrist_roll", +1.0),
                   ButtonBinding(0, GRIPPER, -1.0), ButtonBinding(1, GRIPPER, +1.0))


def apply_deadzone(value: float, deadzone: float) -> float:
    magnitude = abs(value)
    if magnitude <= deadzone:
        return 0.0
    scaled = (min(magnitude, 1.0) - deadzone) / (1.0 - deadzone)
    return scaled if value > 0 else -scaled


class GamepadJog:
    def __init__(self, jog: JogTarget, max_speed: float = 1.0, gripper_speed: float = 1.0, deadzone: float = 0.1,
                 axes=DEFAULT_AXES, buttons=DEFAULT_BUTTONS):
        if not 0.0 <= deadzone < 1.0:
            raise ValueError(f"deadzone must be in [0, 1), got {deadzone}")
        self.jog = jog
        self.max_speed, self.gripper_speed, self.deadzone = max_speed, gripper_speed, deadzone
        present = set(jog.joint_names)
        self.axes = tuple(b for b in axes if b.joint in present)
        self.buttons = tuple(b for b in buttons if b.joint in present)

    def velocities(self, axes: list[float], buttons: list[int]) -> dict[str, float]:
        """Joint velocities for one reading of the pad (missing axes/buttons read as released)."""
        speeds: dict[str, float] = {}
        for b in self.axes:
            if b.axis < len(axes):
                value = apply_deadzone(float(axes[b.axis]), self.deadzone)
                if value:
                    speeds[b.joint] = speeds.get(b.joint, 0.0) + b.sign * value * self.max_speed
        for b in self.buttons:
            if b.button < len(buttons) and buttons[b.button]:
                rate = self.gripper_speed if b.joint == GRIPPER else self.max_speed
                speeds[b.joint] = speeds.get(b.joint, 0.0) + b.direction * rate
        return speeds

    def update(self, axes: list[float], buttons: list[int], dt: float, now: float) -> JointCommand | None:
        """Integrate one period of `dt` seconds; None when the pad is idle (nothing to send) or no state yet."""
        speeds = self.velocities(axes, buttons)
        if not speeds or not self.jog.has_state:
            return None
        return self.jog.nudge({joint: speed * dt for joint, speed in speeds.items()}, now)
