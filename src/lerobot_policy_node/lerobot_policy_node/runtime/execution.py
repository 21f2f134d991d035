"""Which control ticks the executor actually executed.

The runtime only skips rows of a new chunk that the robot really executed from the old one (upstream's fix for
lerobot issue #4223), so it must know how far the executor got:
- by time (any executor that runs chunks by their stamps: the arm driver, a joint_trajectory_controller, the
  node's own command stream): every tick whose time has passed was executed;
- from the executor's goal stream when it has one (the arm driver's `joint_goals`: the goal it wrote each control
  tick, stamped with the time it was computed for): ticks count only while the executor is seen following the
  plan, i.e. its newest goal is fresh and within `tolerance` of the planned action at the goal's stamp. A driver
  that was deactivated, rejected a chunk or stopped publishing is not following, so ticks after the last goal it
  confirmed do not count as executed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lerobot_recorder.alignment import seconds_to_ns
from lerobot_policy_node.runtime.ticks import ControlTicks


@dataclass(frozen=True)
class ExecutionMonitorConfig:
    # Count executed ticks from the executor's reported goals (True) or from time alone (False).
    use_goals: bool = False
    # Largest |goal - planned action| (dataset units, any joint) still counted as following the plan.
    tolerance: float = 5.0
    # A goal stream silent for longer than this means the executor is not running.
    goal_timeout_s: float = 0.2

    def __post_init__(self) -> None:
        if not self.tolerance > 0:
            raise ValueError(f"executor goal tolerance must be > 0, got {self.tolerance}")
        if not self.goal_timeout_s > 0:
            raise ValueError(f"executor goal timeout must be > 0 s, got {self.goal_timeout_s}")


class ExecutionMonitor:
    def __init__(self, config: ExecutionMonitorConfig) -> None:
        self.config = config
        self._timeout_ns = seconds_to_ns(config.goal_timeout_s)
        self.last_goal_ns: int | None = None
        self.confirmed_until_ns: int | None = None  # newest goal stamp that matched the plan
        self.following = False
        self.goals_matched = 0
        self.goals_mismatched = 0

    def reset(self) -> None:
        self.last_goal_ns = self.confirmed_until_ns = None
        self.following = False

    def observe_goal(self, stamp_ns: int, goal: np.ndarray, planned: np.ndarray | None) -> None:
        """One goal the executor wrote (dataset units) and the plan's action for the same time (None = nothing
        planned then: the executor is holding, which neither confirms nor contradicts the plan)."""
        if self.last_goal_ns is not None and stamp_ns <= self.last_goal_ns:
            return  # out of order or repeated: the newest goal decides
        self.last_goal_ns = stamp_ns
        if planned is None:
            return
        if float(np.max(np.abs(np.asarray(goal, dtype=np.float64) - planned))) <= self.config.tolerance:
            self.following = True
            self.confirmed_until_ns = stamp_ns
            self.goals_matched += 1
        else:
            self.following = False
            self.goals_mismatched += 1

    def executed_until_tick(self, now_ns: int, ticks: ControlTicks) -> int:
        """The last tick the executor has executed, as far as the runtime can tell."""
        by_time = ticks.tick_at_or_before(now_ns)
        if not self.config.use_goals:
            return by_time
        fresh = self.last_goal_ns is not None and now_ns - self.last_goal_ns <= self._timeout_ns
        if fresh and self.following:
            return by_time
        if self.confirmed_until_ns is None:
            return ticks.tick_at_or_before(ticks.anchor_ns) - 1  # nothing confirmed since the start
        return min(by_time, ticks.tick_at_or_before(self.confirmed_until_ns))
