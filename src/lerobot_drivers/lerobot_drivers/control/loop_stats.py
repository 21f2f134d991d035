"""Measurements of the control loop that the diagnostics report: achieved rate and tick duration."""
from __future__ import annotations

from collections import deque

import numpy as np


class LoopStats:
    """Tick start times and durations over a sliding window (seconds, monotonic clock)."""

    def __init__(self, window_s: float = 2.0, max_samples: int = 4000):
        self.window_s = window_s
        self._starts: deque[float] = deque(maxlen=max_samples)
        self._durations: deque[float] = deque(maxlen=max_samples)
        self.ticks_total = 0

    def record(self, start: float, duration: float) -> None:
        self._starts.append(start)
        self._durations.append(duration)
        self.ticks_total += 1
        while self._starts and start - self._starts[0] > self.window_s:
            self._starts.popleft()
            self._durations.popleft()

    def rate_hz(self, now: float) -> float:
        """Ticks per second over the window ending now (0 when the loop stopped)."""
        recent = [t for t in self._starts if now - t <= self.window_s]
        if len(recent) < 2:
            return 0.0
        span = now - recent[0]
        return (len(recent) - 1) / span if span > 0 else 0.0

    def duration_percentile_ms(self, q: float) -> float:
        if not self._durations:
            return 0.0
        return float(np.percentile(np.array(self._durations), q) * 1000.0)


class Backoff:
    """Reconnect delays: initial, doubling up to maximum; reset() after a success."""

    def __init__(self, initial_s: float = 0.1, maximum_s: float = 2.0):
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self._next = initial_s
        self.attempts = 0

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2.0, self.maximum_s)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        self._next = self.initial_s
        self.attempts = 0
