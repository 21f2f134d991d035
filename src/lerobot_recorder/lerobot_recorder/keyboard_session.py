"""Keyboard control of a recording session, as `lerobot-record` does it, without ROS and without a terminal.

Keys (the same as lerobot-record's keyboard listener):
- right arrow: finish the current episode early and save it (or end the reset period early);
- left arrow: re-record: discard the episode in progress and record the same task again;
- Esc: stop: save the episode in progress, send no further goals, exit.

`KeyDecoder` turns raw terminal bytes into keys; `KeyboardSession` turns keys and episode results into commands
for the recorder (send a RecordEpisode goal, call ~/stop, cancel the goal, exit). The node executes the commands.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Key(str, Enum):
    RIGHT = "right"
    LEFT = "left"
    ESCAPE = "escape"


# Cursor keys arrive as CSI (ESC [ C) or, in application cursor mode, SS3 (ESC O C) sequences.
_SEQUENCES = {b"\x1b[C": Key.RIGHT, b"\x1b[D": Key.LEFT, b"\x1bOC": Key.RIGHT, b"\x1bOD": Key.LEFT}


class KeyDecoder:
    """Incremental decoder of terminal input bytes.

    A lone ESC byte is ambiguous (Esc key or the start of an arrow sequence) until more bytes arrive or the
    caller decides that none will (`flush()` after a short read timeout).
    """

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[Key]:
        keys: list[Key] = []
        buffer = self._pending + data
        i = 0
        while i < len(buffer):
            if buffer[i:i + 1] != b"\x1b":
                i += 1  # other keys are ignored
                continue
            if i + 1 >= len(buffer):
                break  # lone ESC at the end: wait for more bytes or flush()
            if buffer[i + 1:i + 2] not in (b"[", b"O"):
                keys.append(Key.ESCAPE)  # ESC followed by an unrelated byte: a real Esc press
                i += 1
                continue
            if i + 2 >= len(buffer):
                break  # incomplete sequence
            sequence = buffer[i:i + 3]
            if sequence in _SEQUENCES:
                keys.append(_SEQUENCES[sequence])
            i += 3
        self._pending = buffer[i:]
        return keys

    def flush(self) -> list[Key]:
        """No more bytes came after a pending ESC: it was the Esc key."""
        pending, self._pending = self._pending, b""
        return [Key.ESCAPE] if pending == b"\x1b" else []


class CommandKind(str, Enum):
    SEND_GOAL = "send_goal"  # RecordEpisode goal with `task` and `duration`
    STOP = "stop"  # call ~/stop: save the episode in progress (or end the reset period)
    CANCEL_GOAL = "cancel_goal"  # cancel the goal: the recorder discards the episode in progress
    EXIT = "exit"  # nothing left to do


@dataclass(frozen=True)
class Command:
    kind: CommandKind
    task: str = ""
    duration: float = 0.0


@dataclass
class KeyboardSession:
    """Episode bookkeeping of one keyboard-driven session.

    `num_episodes` saved episodes are recorded (0 = until Esc). A goal is sent at start and after each result;
    the recorder holds a goal that arrives during its reset period until the period ends.
    """

    task: str
    episode_time_s: float = 0.0
    num_episodes: int = 0
    saved_episodes: int = 0
    goal_active: bool = False
    stopping: bool = False
    _rerecord: bool = False

    def start(self) -> list[Command]:
        return self._next_goal()

    def on_key(self, key: Key) -> list[Command]:
        if self.stopping:
            return []
        if key is Key.ESCAPE:
            self.stopping = True
            # Like lerobot-record: Esc ends the session; the episode in progress is saved.
            return [Command(CommandKind.STOP)] if self.goal_active else [Command(CommandKind.EXIT)]
        if key is Key.RIGHT:
            return [Command(CommandKind.STOP)]
        if key is Key.LEFT and self.goal_active:
            self._rerecord = True
            return [Command(CommandKind.CANCEL_GOAL)]
        return []

    def on_result(self, saved: bool) -> list[Command]:
        """The current goal ended (saved or not)."""
        self.goal_active = False
        if saved:
            self.saved_episodes += 1
        self._rerecord = False
        if self.stopping or (self.num_episodes and self.saved_episodes >= self.num_episodes):
            self.stopping = True
            return [Command(CommandKind.EXIT)]
        return self._next_goal()

    def on_goal_rejected(self) -> list[Command]:
        self.goal_active = False
        self.stopping = True
        return [Command(CommandKind.EXIT)]

    def _next_goal(self) -> list[Command]:
        self.goal_active = True
        return [Command(CommandKind.SEND_GOAL, task=self.task, duration=self.episode_time_s)]
