"""Throttled logging that costs nothing while a message is throttled.

rclpy's `logger.warning(msg, throttle_duration_sec=T)` decides to drop a message only after it has identified the
caller (`inspect.getframeinfo` and `os.path.realpath`: about a millisecond of Python holding the GIL per call). A
warning raised on every control tick of a condition that lasts (a stale camera, a driver that is not active) then
takes a large share of a core: in the policy node, py-spy showed 29 % of a core in that lookup, which starved the
executor threads that deliver observations, which made more observations stale. `LogThrottle` looks at a monotonic
clock first and calls the logger only when a message is due.
"""
from __future__ import annotations

import time
from typing import Callable


class LogThrottle:
    """One logger, a period per message key: `throttle.warning("stale", 2.0, text)` logs at most every 2 s."""

    def __init__(self, logger, clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._clock = clock
        self._next_s: dict[str, float] = {}

    def due(self, key: str, period_s: float) -> bool:
        """True (and the key's next slot moves `period_s` on) when a message under `key` may be logged now."""
        now = self._clock()
        if now < self._next_s.get(key, float("-inf")):
            return False
        self._next_s[key] = now + period_s
        return True

    def warning(self, key: str, period_s: float, message: str | Callable[[], str]) -> None:
        if self.due(key, period_s):
            self._logger.warning(message() if callable(message) else message)

    def error(self, key: str, period_s: float, message: str | Callable[[], str]) -> None:
        if self.due(key, period_s):
            self._logger.error(message() if callable(message) else message)
