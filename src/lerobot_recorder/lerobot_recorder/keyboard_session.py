"""Keyboard control of a recording session, as `lerobot-record` does it, without ROS and without a terminal.

Keys (the same as lerobot-record's keyboard listener):
- right arrow: finish the current episode early and save it (or end the reset period early);
- left arrow: re-record: discard the episode in progress and record the same task again;
- Esc: stop: save the episode in progress, send no further goals, exit.

Terminal bytes become key names in the suite's one terminal reader (`lerobot_drivers.teleop.terminal`);
`key_from_name` picks the three keys used here, and `KeyboardSession` turns keys and episode results into commands
for the recorder (send a RecordEpisode goal, call ~/stop, cancel the goal, exit). The node executes the commands.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Key(str, Enum):
    RIGHT = "right"
    LEFT = "left"
    ESCAPE = "escape"


def key_from_name(name: str) -> Key | None:
    """The session key of a key name from the terminal reader (lerobot_drivers.teleop.terminal); None = ignored."""
    return {"right": Key.RIGHT, "left": Key.LEFT, "esc": Key.ESCAPE}.get(name)


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
    failure: str = ""  # why the session ended early (an episode failed); "" = it did not
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

    def on_result(self, saved: bool, error: str = "") -> list[Command]:
        """The current goal ended (saved or not). An `error` (e.g. an episode without a single frame because a
        camera never published) ends the session: recording the same failure again and again helps nobody."""
        self.goal_active = False
        if saved:
            self.saved_episodes += 1
        self._rerecord = False
        if error:
            self.stopping = True
            self.failure = error
            return [Command(CommandKind.EXIT)]
        if self.stopping or (self.num_episodes and self.saved_episodes >= self.num_episodes):
            self.stopping = True
            return [Command(CommandKind.EXIT)]
        return self._next_goal()

    def on_goal_rejected(self, reason: str = "the recorder rejected the goal") -> list[Command]:
        self.goal_active = False
        self.stopping = True
        self.failure = reason
        return [Command(CommandKind.EXIT)]

    def _next_goal(self) -> list[Command]:
        self.goal_active = True
        return [Command(CommandKind.SEND_GOAL, task=self.task, duration=self.episode_time_s)]
