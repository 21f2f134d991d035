"""The action queue: which action applies at which control tick, and how a new chunk is merged into it.

A chunk computed from the observation at tick `n_o` has row k meant for the k-th step from that observation.
While it is computed the executor keeps running the old plan. When it arrives (merge time), the first tick it can
drive is the switch tick `n*` (the first tick after now). Then, following upstream's fix (lerobot PR #4454, issue
#4223), the new chunk skips

    skip = min(measured delay d = n* - n_o, rows of the old plan actually executed in [n_o, n*))

rows, and its row `skip` applies at `n*`. When the old plan ran out during inference (sync mode, the first chunk,
a warm-up that took longer than the queue lasted) nothing was executed, so nothing is skipped and the robot
continues from where it stands instead of jumping ahead to where the chunk expected it to be.

Merge modes:
- replace (sync, RTC, async `latest_only` = naive switching): rows from `n*` on are the new chunk's;
- aggregate (async, upstream's aggregation functions): where the old plan still has a row at the same tick, the
  executed row is `w_old * old + (1 - w_old) * new`; beyond the old plan's end, the new row.
Merging is two steps, `propose` then `commit`, so the safety gates can inspect (and clamp) what would be executed
before anything changes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lerobot_policy_node.runtime.ticks import ControlTicks

# Upstream's async aggregation functions (lerobot async_inference/configs.py), as the weight of the OLD action:
# merged = w_old * old + (1 - w_old) * new.
AGGREGATE_OLD_WEIGHTS = {
    "weighted_average": 0.3,
    "latest_only": 0.0,
    "average": 0.5,
    "conservative": 0.7,
}


def aggregate_old_weight(name: str) -> float:
    if name not in AGGREGATE_OLD_WEIGHTS:
        raise ValueError(f"unknown aggregate_fn_name {name!r}; expected one of {', '.join(AGGREGATE_OLD_WEIGHTS)}")
    return AGGREGATE_OLD_WEIGHTS[name]


@dataclass
class MergeProposal:
    """What merging one chunk would execute; the gates may clamp `rows[skip:]` before `ActionQueue.commit`."""

    chunk: np.ndarray  # (H, A) the policy's rows, dataset units
    rows: np.ndarray  # (H, A) rows[skip:] will be executed (aggregated/clamped); rows[:skip] are chunk[:skip]
    observation_tick: int
    switch_tick: int  # the tick of row `skip`, the first row executed
    delay_rows: int  # measured delay d = switch_tick - observation_tick
    executed_rows: int  # rows of the old plan executed at ticks in [observation_tick, switch_tick)
    skip: int  # min(delay_rows, executed_rows)
    overlap: np.ndarray  # (k, A) the old plan's rows at ticks switch_tick.. (the rows the new ones replace)
    previous_row: np.ndarray | None  # the old plan's row at switch_tick - 1 (where the executor is coming from)

    @property
    def row0_tick(self) -> int:
        """The tick row 0 corresponds to: row k applies at row0_tick + k."""
        return self.switch_tick - self.skip

    @property
    def executed(self) -> np.ndarray:
        return self.rows[self.skip:]

    @property
    def is_empty(self) -> bool:
        return self.skip >= len(self.rows)


class ActionQueue:
    """One action row per control tick (dataset units); past rows are kept for `history_ticks` so the executor's
    reported goals can be compared with what was planned for their time."""

    def __init__(self, action_dim: int, history_ticks: int = 300) -> None:
        self.action_dim = action_dim
        self.history_ticks = history_ticks
        self._rows: dict[int, np.ndarray] = {}

    def clear(self) -> None:
        self._rows.clear()

    def row(self, tick: int) -> np.ndarray | None:
        return self._rows.get(tick)

    @property
    def last_tick(self) -> int | None:
        return max(self._rows) if self._rows else None

    def remaining_after(self, tick: int) -> int:
        """Rows planned for ticks after `tick` (what is left to execute once `tick` has been executed)."""
        return sum(1 for t in self._rows if t > tick)

    def rows_from(self, tick: int, max_rows: int) -> np.ndarray:
        """The planned rows at ticks tick, tick+1, ... up to the first unplanned tick (at most max_rows)."""
        rows = []
        while len(rows) < max_rows and (tick + len(rows)) in self._rows:
            rows.append(self._rows[tick + len(rows)])
        return np.array(rows, dtype=np.float64).reshape(len(rows), self.action_dim)

    def sample(self, t_ns: int, ticks: ControlTicks) -> np.ndarray | None:
        """The planned action at time t: linear between the rows of the ticks around it; the last row holds until
        the next tick; None where nothing is planned (the executor holds its last goal)."""
        tick = ticks.tick_at_or_before(t_ns)
        current = self._rows.get(tick)
        if current is None:
            return None
        following = self._rows.get(tick + 1)
        if following is None:
            return current.copy()
        t0, t1 = ticks.time_ns(tick), ticks.time_ns(tick + 1)
        fraction = (t_ns - t0) / (t1 - t0)
        return current + fraction * (following - current)

    def propose(self, chunk: np.ndarray, observation_tick: int, switch_tick: int, executed_until_tick: int,
                old_weight: float = 0.0) -> MergeProposal:
        """Place `chunk` (computed from the observation at `observation_tick`) so its first executed row applies
        at `switch_tick`. `executed_until_tick`: the last tick the executor is known to have executed (from time,
        or from its reported goals); `old_weight`: 0 replaces, > 0 aggregates with the old plan (see module doc)."""
        chunk = np.asarray(chunk, dtype=np.float64)
        if chunk.ndim != 2 or chunk.shape[1] != self.action_dim or len(chunk) == 0:
            raise ValueError(f"chunk must have shape (rows > 0, {self.action_dim}), got {chunk.shape}")
        if switch_tick <= observation_tick:
            raise ValueError(f"switch tick {switch_tick} is not after the observation tick {observation_tick}")
        delay = switch_tick - observation_tick
        last_counted = min(switch_tick - 1, executed_until_tick)
        executed = sum(1 for t in range(observation_tick, last_counted + 1) if t in self._rows)
        skip = min(delay, executed)
        rows = chunk.copy()
        overlap = self.rows_from(switch_tick, max(0, len(chunk) - skip))
        if old_weight > 0 and len(overlap):
            span = slice(skip, skip + len(overlap))
            rows[span] = old_weight * overlap + (1.0 - old_weight) * chunk[span]
        return MergeProposal(chunk=chunk, rows=rows, observation_tick=observation_tick, switch_tick=switch_tick,
                             delay_rows=delay, executed_rows=executed, skip=skip, overlap=overlap,
                             previous_row=self._rows.get(switch_tick - 1))

    def commit(self, proposal: MergeProposal) -> None:
        """Rows from the switch tick on become the proposal's executed rows; older history is pruned."""
        switch = proposal.switch_tick
        for tick in [t for t in self._rows if t >= switch or t < switch - self.history_ticks]:
            del self._rows[tick]
        for k, row in enumerate(proposal.executed):
            self._rows[switch + k] = np.array(row, dtype=np.float64)
