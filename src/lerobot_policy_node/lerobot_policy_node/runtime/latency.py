"""Inference latency statistics for RTC's delay estimate, diagnostics and the RunPolicy feedback.

Upstream's fix (lerobot PR #4454): the delay estimate uses a high percentile (p95) of RECENT latencies and leaves
cold-start inferences (warm-up, torch.compile) out; an all-time maximum lets one slow first call inflate every
later delay estimate.
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np


class LatencyTracker:
    def __init__(self, window: int = 100) -> None:
        if window < 1:
            raise ValueError(f"latency window must be >= 1, got {window}")
        self._recent: deque[float] = deque(maxlen=window)
        self.total = 0  # every inference counted, warm-up included
        self.warmup = 0

    def add(self, latency_s: float, warmup: bool = False) -> None:
        """Record one inference; warm-up ones are counted but never enter the statistics."""
        if not math.isfinite(latency_s) or latency_s < 0:
            raise ValueError(f"latency must be a finite number >= 0 s, got {latency_s}")
        self.total += 1
        if warmup:
            self.warmup += 1
        else:
            self._recent.append(float(latency_s))

    def clear(self) -> None:
        self._recent.clear()

    def __len__(self) -> int:
        return len(self._recent)

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0..100) of recent latencies in seconds; None before the first measured one."""
        if not self._recent:
            return None
        return float(np.percentile(np.fromiter(self._recent, dtype=np.float64), q))

    @property
    def p50(self) -> float | None:
        return self.percentile(50)

    @property
    def p95(self) -> float | None:
        return self.percentile(95)

    def delay_ticks(self, period_s: float) -> int:
        """Expected rows executed from the old chunk while a new one is computed: the ticks from the observation
        tick (included) to the first tick after the merge (excluded), floor(p95 / period) + 1; 0 before any
        measured inference."""
        p95 = self.p95
        return 0 if p95 is None else int(math.floor(p95 / period_s + 1e-9)) + 1
