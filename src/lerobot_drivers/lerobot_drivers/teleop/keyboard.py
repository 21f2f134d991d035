"""Keyboard jog teleop: keys -> joint steps (ROS-free). Keys come from `teleop.terminal.TerminalKeys` (the suite's
one terminal key reader) or from the line protocol below; the node wires them up.

Key map (default, SO-100/101 joints):
    q / a   shoulder_pan   + / -        w / s   shoulder_lift  + / -
    e / d   elbow_flex     + / -        r / f   wrist_flex     + / -
    t / g   wrist_roll     + / -        y / h   gripper open / close
    ] / [   double / halve the step size (body joints and gripper together)
    space   hold: the target snaps to the measured state
    esc     quit
Body steps are radians (default 0.05 rad = 2.9 deg), the gripper step is an opening fraction (default 0.1).

Line protocol (stdin when it is not a terminal, and the node's ~/keys topic): a line is whitespace-separated tokens;
a token is a key name (q, ], space, esc, up, ...) or a run of one-character keys ("qqq" = three q presses).
"""
from __future__ import annotations

from dataclasses import dataclass

from lerobot_drivers.teleop.jog import GRIPPER, JogTarget, JointCommand

DEFAULT_KEYMAP: dict[str, tuple[str, int]] = {
    "q": ("shoulder_pan", +1), "a": ("shoulder_pan", -1),
    "w": ("shoulder_lift", +1), "s": ("shoulder_lift", -1),
    "e": ("elbow_flex", +1), "d": ("elbow_flex", -1),
    "r": ("wrist_flex", +1), "f": ("wrist_flex", -1),
    "t": ("wrist_roll", +1), "g": ("wrist_roll", -1),
    "y": (GRIPPER, +1), "h": (GRIPPER, -1),
}
NAMED_KEYS = {"space", "esc", "up", "down", "left", "right", "enter", "tab", "backspace"}
HOLD_KEY, QUIT_KEY, FASTER_KEY, SLOWER_KEY = "space", "esc", "]", "["


def parse_key_line(line: str) -> list[str]:
    keys: list[str] = []
    for token in line.split():
        lowered = token.lower()
        if lowered in NAMED_KEYS:
            keys.append(lowered)
        else:
            keys.extend(lowered)
    return keys


def help_text(keymap: dict[str, tuple[str, int]] = DEFAULT_KEYMAP) -> str:
    rows = []
    for joint in dict.fromkeys(j for j, _ in keymap.values()):
        plus = [k for k, (j, s) in keymap.items() if j == joint and s > 0]
        minus = [k for k, (j, s) in keymap.items() if j == joint and s < 0]
        rows.append(f"  {'/'.join(plus)} / {'/'.join(minus)}  {joint} + / -")
    rows += [f"  {FASTER_KEY} / {SLOWER_KEY}  step x2 / x0.5", "  space  hold (target = measured state)", "  esc  quit"]
    return "keyboard jog keys:\n" + "\n".join(rows)


@dataclass
class KeyOutcome:
    command: JointCommand | None = None  # publish this
    message: str = ""  # tell the operator
    quit: bool = False


class KeyboardJog:
    def __init__(self, jog: JogTarget, step: float = 0.05, gripper_step: float = 0.1,
                 keymap: dict[str, tuple[str, int]] | None = None, max_step: float = 0.5):
        if step <= 0 or gripper_step <= 0:
            raise ValueError(f"jog steps must be > 0, got step={step} gripper_step={gripper_step}")
        self.jog = jog
        self.step = step
        self.gripper_step = gripper_step
        self.max_step = max_step
        self.keymap = dict(keymap or DEFAULT_KEYMAP)
        unknown = {j for j, _ in self.keymap.values()} - set(jog.joint_names)
        if unknown:  # e.g. a 5-joint arm without a gripper: drop those keys rather than fail on every press
            self.keymap = {k: (j, s) for k, (j, s) in self.keymap.items() if j in jog.joint_names}

    def handle(self, key: str, now: float) -> KeyOutcome:
        if key == QUIT_KEY:
            return KeyOutcome(message="quit", quit=True)
        if key in (FASTER_KEY, SLOWER_KEY):
            factor = 2.0 if key == FASTER_KEY else 0.5
            new_step = min(self.step * factor, self.max_step)
            factor = new_step / self.step
            self.step, self.gripper_step = new_step, min(self.gripper_step * factor, 1.0)
            return KeyOutcome(message=f"step {self.step:.4f} rad, gripper step {self.gripper_step:.3f}")
        if key == HOLD_KEY:
            if not self.jog.has_state:
                return KeyOutcome(message="no joint state yet: nothing to hold")
            self.jog.resync()
            return KeyOutcome(command=self.jog.command(), message="hold")
        if key not in self.keymap:
            return KeyOutcome(message=f"key {key!r} is not mapped (see the key map)")
        joint, sign = self.keymap[key]
        if not self.jog.has_state:
            return KeyOutcome(message="no joint state yet: waiting for the arm's joint_states before jogging")
        size = self.gripper_step if joint == GRIPPER else self.step
        return KeyOutcome(command=self.jog.nudge({joint: sign * size}, now))
