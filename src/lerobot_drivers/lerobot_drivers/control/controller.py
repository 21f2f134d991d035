"""GoalController: turns the latest command into one safe goal per control tick.

Rules (all in ROS units, times in node-clock seconds):
- The most recent command source wins. A direct JointPositionCommand cancels any trajectory; a trajectory takes
  over when its start time is reached (an earlier source keeps running until then, like ros2_control's JTC).
- Late trajectories and action chunks (see `trajectory.check_timing`): one that ends in the past, or whose first
  point is more than `max_late_start_s` in the past, is rejected when it arrives (CommandRejected); a slightly
  late one starts from its value at "now".
- Watchdog: a direct command older than command_timeout_s is stale; the controller then holds the position
  measured when staleness was detected (not the last goal, which may be far away). A trajectory is never stale
  while it executes; after its last point it holds that point.
- Without any command (after reset) it holds the measured position.
- Every goal then passes three limits (`safety.py`): the velocity limit against the previous goal, LeRobot's
  max_relative_target clamp against the position measured in the same tick, and the calibrated position range.
  The stored target stays unlimited, so the arm keeps approaching a far target step by step, as LeRobot's
  send_action does.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from lerobot_drivers.control.commands import JointPositionCommand, JointTrajectoryCommand
from lerobot_drivers.control.safety import PositionLimit, RelativeTargetLimit, VelocityLimit
from lerobot_drivers.control.trajectory import DEFAULT_MAX_LATE_START_S, ActiveTrajectory, check_timing


class GoalSource(str, Enum):
    HOLD = "hold"                    # no command yet (or after reset)
    STALE_HOLD = "stale_hold"        # watchdog: direct commands stopped arriving
    DIRECT = "joint_commands"
    TRAJECTORY = "trajectory"
    TRAJECTORY_DONE = "trajectory_done"


@dataclass(frozen=True)
class Tick:
    goal: np.ndarray           # what to write to the motors (limited), ROS units, arm order
    target: np.ndarray         # what the command asked for (unlimited)
    source: GoalSource
    clamped: np.ndarray        # bool per joint: max_relative_target changed the goal
    became_stale: bool         # this tick the watchdog fired
    velocity_limited: np.ndarray   # bool per joint: the velocity limit slowed the goal
    position_limited: np.ndarray   # bool per joint: the goal was kept inside the calibrated range


class GoalController:
    def __init__(self, n_joints: int, command_timeout_s: float, limit: RelativeTargetLimit | None = None,
                 velocity_limit: VelocityLimit | None = None, position_limit: PositionLimit | None = None,
                 max_late_start_s: float = DEFAULT_MAX_LATE_START_S):
        if command_timeout_s <= 0:
            raise ValueError(f"command_timeout_s = {command_timeout_s}, expected > 0")
        if not max_late_start_s >= 0:
            raise ValueError(f"max_late_start_s = {max_late_start_s}, expected >= 0")
        self.n_joints = n_joints
        self.command_timeout_s = command_timeout_s
        self.limit = limit
        self.velocity_limit = velocity_limit
        self.position_limit = position_limit  # set by the driver from the calibration once the arm is connected
        self.max_late_start_s = max_late_start_s
        self._target: np.ndarray | None = None
        self._source = GoalSource.HOLD
        self._last_direct_at: float | None = None
        self._active: ActiveTrajectory | None = None
        self._pending: JointTrajectoryCommand | None = None
        self._last_goal: np.ndarray | None = None   # the goal of the previous tick (velocity limit reference)
        self._last_tick_at: float | None = None

    @property
    def source(self) -> GoalSource:
        return self._source

    @property
    def target(self) -> np.ndarray | None:
        return None if self._target is None else self._target.copy()

    def reset(self, present: np.ndarray | None = None) -> None:
        """Drop every command and hold `present` (or, if None, the first position measured in the next tick).
        Called on activation and after a reconnect, so the arm never resumes an old command."""
        self._target = None if present is None else np.array(present, dtype=float)
        self._source = GoalSource.HOLD
        self._last_direct_at = None
        self._active = None
        self._pending = None
        self._last_goal = None
        self._last_tick_at = None

    def accept_positions(self, command: JointPositionCommand) -> None:
        self._active = None
        self._pending = None
        if self._target is None:
            # Not a single tick ran yet: remember the command; joints it does not name are filled in by the tick.
            self._target = np.full(self.n_joints, np.nan)
        self._target[command.indices] = command.positions
        self._last_direct_at = command.received_at
        self._source = GoalSource.DIRECT

    def accept_trajectory(self, command: JointTrajectoryCommand, now: float) -> None:
        """Queue a trajectory (it replaces one that has not started yet; the running source continues until its
        start time). Raises CommandRejected if it is already too late (see `trajectory.check_timing`)."""
        check_timing(command, now, self.max_late_start_s)
        self._pending = command

    def step(self, now: float, present: np.ndarray) -> Tick:
        present = np.asarray(present, dtype=float)
        if self._target is None:
            self._target = present.copy()
        unset = np.isnan(self._target)
        if unset.any():
            self._target[unset] = present[unset]

        self._start_pending(now)

        became_stale = False
        if self._active is not None:
            self._target[self._active.indices] = self._active.sample(now)
            if self._active.finished(now):
                self._active = None
                self._source = GoalSource.TRAJECTORY_DONE
        elif self._source is GoalSource.DIRECT and self._last_direct_at is not None \
                and now - self._last_direct_at > self.command_timeout_s:
            self._target = present.copy()
            self._source = GoalSource.STALE_HOLD
            became_stale = True

        return self._limited_tick(now, present, became_stale)

    def _start_pending(self, now: float) -> None:
        """Start the pending trajectory once its start time is reached. It was on time when it arrived (it is
        checked then); if the loop stalled meanwhile it starts from its value at `now`, like JTC does."""
        if self._pending is None or now < self._pending.start_time:
            return
        command, self._pending = self._pending, None
        if self._active is not None:
            # Take over from where the running trajectory is right now.
            self._target[self._active.indices] = self._active.sample(now)
        self._active = ActiveTrajectory(command, now, self._target[command.indices])
        self._source = GoalSource.TRAJECTORY
        self._last_direct_at = None

    def _limited_tick(self, now: float, present: np.ndarray, became_stale: bool) -> Tick:
        """The target through the limits: velocity (vs the previous goal) -> max_relative_target (vs present) ->
        position range, with a mask per limit of the joints it changed."""
        goal = self._target.copy()
        none = np.zeros(self.n_joints, dtype=bool)
        velocity_limited = clamped = position_limited = none
        if self.velocity_limit is not None:
            # First tick after a reset: no previous goal, so the goal stays at the measured position (dt = 0).
            previous = present if self._last_goal is None else self._last_goal
            dt = 0.0 if self._last_tick_at is None else now - self._last_tick_at
            goal, velocity_limited = self.velocity_limit.apply(goal, previous, dt)
        if self.limit is not None:
            goal, clamped = self.limit.apply(goal, present)
        if self.position_limit is not None:
            goal, position_limited = self.position_limit.apply(goal, present)
        self._last_goal, self._last_tick_at = goal.copy(), now
        return Tick(goal=goal, target=self._target.copy(), source=self._source, clamped=clamped,
                    became_stale=became_stale, velocity_limited=velocity_limited, position_limited=position_limited)
