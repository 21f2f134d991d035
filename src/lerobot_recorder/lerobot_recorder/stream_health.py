"""Recorder and stream health -> diagnostic statuses (ROS-free; the node turns them into diagnostic_msgs).

Like the arm driver's `control.health.assess`: one status for the recorder (state, disk, writer) and one per
subscribed topic (rate against the interface's fps, messages that were invalid, non-monotonic or implausibly
stamped, ticks each of its streams cost). Levels follow diagnostic_msgs (OK, WARN, ERROR, STALE); the statuses use
the suite's `Status` type from `lerobot_drivers.control.health`.
"""
from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from lerobot_drivers.control.health import ERROR, OK, WARN, Status

# Topics carrying text (the task) publish when the task changes, not at the frame rate.
RATELESS_TYPES = ("std_msgs/msg/String",)


class TopicHealth:
    """Arrivals and rejected messages of one subscribed topic (updated by the ingest thread, read by diagnostics).

    Counts are plain integers and a bounded deque: a reader may see a value one message old, never a torn one."""

    def __init__(self, topic: str, msg_type: str, stream_keys: Sequence[str]) -> None:
        self.topic = topic
        self.msg_type = msg_type
        self.stream_keys = tuple(stream_keys)
        self.arrivals: deque[float] = deque(maxlen=512)  # monotonic seconds
        self.received = 0
        self.ignored_inactive = 0  # arrived while the recorder was not active: not decoded, not buffered
        self.invalid: Counter = Counter()  # error text (first 120 chars) -> count
        self.non_monotonic = 0
        self.implausible_stamps = 0
        self._lock = threading.Lock()

    def arrived(self, now_s: float) -> None:
        self.received += 1
        self.arrivals.append(now_s)

    def rejected(self, error: str) -> None:
        with self._lock:
            self.invalid[error[:120]] += 1

    def invalid_total(self) -> int:
        with self._lock:
            return sum(self.invalid.values())

    def last_error(self) -> str:
        with self._lock:
            return next(reversed(self.invalid)) if self.invalid else ""

    def rate_hz(self, now_s: float, window_s: float = 2.0) -> float:
        recent = [t for t in tuple(self.arrivals) if now_s - t <= window_s]  # tuple(): one atomic copy
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)


@dataclass(frozen=True)
class RecorderCondition:
    """What the recorder's own status is built from (a snapshot taken by the recording loop)."""

    state_name: str  # RecorderState name
    message: str
    dataset_root: str
    episodes: int
    encoder_backlog: int
    free_disk_mb: float
    warn_free_disk_mb: float
    min_free_disk_mb: float
    frames_produced: int
    ticks_skipped: int
    writer_busy_with: str = ""  # what the writer is doing when it has not returned for a long time
    writer_busy_s: float = 0.0


def assess_recorder(condition: RecorderCondition, name: str, writer_timeout_s: float) -> Status:
    values = {
        "state": condition.state_name, "dataset_root": condition.dataset_root, "episodes": str(condition.episodes),
        "encoder_backlog": str(condition.encoder_backlog), "free_disk_mb": f"{condition.free_disk_mb:.0f}",
        "frames_produced": str(condition.frames_produced), "ticks_skipped": str(condition.ticks_skipped),
    }
    if condition.writer_busy_with and condition.writer_busy_s > writer_timeout_s:
        values["writer busy with"] = condition.writer_busy_with
        return Status(name, ERROR, f"the dataset writer has not returned for {condition.writer_busy_s:.0f} s "
                                   f"({condition.writer_busy_with}): hung encoder or disk?", values)
    if condition.state_name == "ERROR":
        return Status(name, ERROR, f"error: {condition.message}", values)
    if condition.free_disk_mb < condition.min_free_disk_mb:
        return Status(name, ERROR, f"disk nearly full ({condition.free_disk_mb:.0f} MB free)", values)
    if condition.free_disk_mb < condition.warn_free_disk_mb:
        return Status(name, WARN, f"low disk space ({condition.free_disk_mb:.0f} MB free)", values)
    return Status(name, OK, condition.state_name.lower(), values)


def assess_topic(health: TopicHealth, streams: Mapping[str, Mapping[str, Any]], fps: int, now_s: float,
                 name: str, active: bool) -> Status:
    """One topic's status. `streams` is FrameAssembler.summary()["streams"] (per stream key counters)."""
    rate = health.rate_hz(now_s)
    invalid = health.invalid_total()
    values: dict[str, str] = {"rate_hz": f"{rate:.1f}", "expected_hz": str(fps), "received": str(health.received),
                              "non_monotonic": str(health.non_monotonic), "invalid": str(invalid),
                              "implausible_stamps": str(health.implausible_stamps),
                              "ignored_while_inactive": str(health.ignored_inactive)}
    for key in health.stream_keys:
        counters = streams.get(key, {})
        for reason, count in counters.get("misses", {}).items():
            values[f"{key} ticks {reason}"] = str(count)
        for reason, count in counters.get("dropped", {}).items():
            values[f"{key} messages {reason}"] = str(count)
        values[f"{key} late"] = str(counters.get("late", 0))
    if invalid:
        values["last error"] = health.last_error()
    level, text = OK, f"{rate:.1f} Hz"
    if health.received == 0:
        level, text = WARN, "no messages received"
    elif active and rate < 0.9 * fps and health.msg_type not in RATELESS_TYPES:
        level, text = WARN, f"{rate:.1f} Hz < interface fps {fps}"
    rejected = invalid + health.non_monotonic + health.implausible_stamps
    if rejected:
        level = WARN
        text += (f"; {invalid} invalid, {health.non_monotonic} non-monotonic, {health.implausible_stamps} "
                 f"implausibly stamped messages")
    return Status(name, level, text, values)


def silent_topics(topics: Sequence[TopicHealth], required_keys: set[str]) -> list[TopicHealth]:
    """Topics feeding a required stream that have not delivered a single message."""
    return [t for t in topics if t.received == 0 and any(k in required_keys for k in t.stream_keys)]
