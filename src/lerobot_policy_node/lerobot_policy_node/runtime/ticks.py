"""The control-tick grid: every row of every chunk applies at one tick `t_n = anchor + n / fps`.

Placing chunks on one grid (anchored when the runtime starts) makes "which rows were executed during inference"
a count of ticks, lets an old and a new chunk be compared row by row at the same tick (aggregation, RTC prefix,
jump gate), and keeps the per-tick command stream in step with the chunks. Tick times use the recorder's
FrameClock rounding, so the grid has no drift.
"""
from __future__ import annotations

from lerobot_recorder.alignment import NS_PER_S, FrameClock


class ControlTicks:
    def __init__(self, fps: int, anchor_ns: int) -> None:
        self._clock = FrameClock(fps, anchor_ns)
        self.fps = fps
        self.anchor_ns = int(anchor_ns)
        self.period_s = 1.0 / fps

    def time_ns(self, tick: int) -> int:
        return self._clock.time_ns(tick)

    def tick_at_or_before(self, t_ns: int) -> int:
        """The last tick whose time is <= t (may be negative before the anchor)."""
        tick = ((int(t_ns) - self.anchor_ns) * self.fps) // NS_PER_S
        # Integer rounding in time_ns can put a tick a nanosecond after the floor estimate: step to be exact.
        while self.time_ns(tick) > t_ns:
            tick -= 1
        while self.time_ns(tick + 1) <= t_ns:
            tick += 1
        return tick

    def first_tick_after(self, t_ns: int) -> int:
        """The first tick whose time is strictly after t."""
        return self.tick_at_or_before(t_ns) + 1
