"""Frame clock and stamp-based alignment of topic streams into fixed-rate frames (ROS-free).

A dataset frame at tick time t holds, for every feature stream, the newest message *stamped* at or before t.
Arrival order never matters, only stamps, so the live recorder (messages fed as they arrive, ticks polled from a
timer on the node clock) and the bag converter (messages fed in stamp order, ticks evaluated as it goes) produce
the same frames from the same messages.

Rules, per stream and per tick:
- A message stamped after t waits for a later tick.
- A stream's stamps must strictly increase; a message stamped at or before the stream's previous stamp is dropped
  and counted as `non_monotonic` (a second publisher, a clock jump, a replayed bag).
- A message stamped implausibly far from when it arrived (`arrival_ns` given to `add`: the receive time live, the
  log time in a bag) is dropped and counted as `implausible_stamp`, and does not move the stream's last stamp:
  one glitched stamp an hour ahead must not make every later message non-monotonic.
- The chosen message is rejected as `stale` when `t - stamp > max_age_s`, as `missing` when the stream has no
  message at or before t, and as `invalid` when that newest message could not be converted (NaN, missing joint ...).
  An older valid message is never used instead: that would silently record stale data.
- A tick where a *required* stream is rejected produces no frame; the miss is counted per stream and per reason.
  Nothing is filled with zeros or held values.

When is a tick final? Because stamps of a stream strictly increase, once every stream has delivered a message
stamped after t, no later message can change the frame at t, so it is evaluated at once (this is what makes the
converter exact). Otherwise the live node waits until its clock passes `t + latency_s`; a message stamped at or
before t arriving after that is still accepted for later ticks but counted as `late` (a hint to raise latency_s).
The converter, feeding in stamp order, uses the stamp of the last message fed as its clock (a watermark).

Times are integer nanoseconds (ROS `Time.nanoseconds`, header stamps `sec * 1e9 + nanosec`), so comparisons are
exact and identical in both paths; ages are reported in seconds.
"""
from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Sequence, Union

NS_PER_S = 1_000_000_000


# Offsets this large between a stamp and the frame clock are rarely latency: say what is likely wrong.
CLOCK_MISMATCH_S = 60.0
CLOCK_HINT = ("publisher and recorder clocks differ? check use_sim_time on both, or declare `stamp: receive` "
              "for this topic")


def seconds_to_ns(seconds: float) -> int:
    return int(round(seconds * NS_PER_S))


class MissReason(str, Enum):
    """Why a stream had no usable value at a tick."""

    MISSING = "missing"  # no message stamped at or before the tick
    STALE = "stale"  # newest message at or before the tick is older than max_age_s
    INVALID = "invalid"  # newest message at or before the tick failed conversion


class DropReason(str, Enum):
    """Why an incoming message was not buffered (or was evicted)."""

    NON_MONOTONIC = "non_monotonic"  # stamped at or before the stream's previous stamp
    IMPLAUSIBLE_STAMP = "implausible_stamp"  # stamped too far from its arrival (see StampCheck)
    OVERFLOW = "overflow"  # buffer full; the oldest entry was evicted before any tick looked at it


@dataclass(frozen=True)
class StampCheck:
    """How far a message's stamp may be from its arrival time (receive time live, log time in a bag).

    `max_lead_s`: how far after its arrival a message may be stamped (clocks of two machines differ by
    milliseconds, a simulation's publishers run a /clock period ahead at most). `max_lag_s`: how long before its
    arrival (None = any age: an old stamp is rejected as stale at the ticks anyway, and cannot block later messages).
    """

    max_lead_s: float = 5.0
    max_lag_s: float | None = None

    def problem(self, stamp_ns: int, arrival_ns: int) -> str | None:
        """Why the stamp is implausible, or None."""
        lead_s = (stamp_ns - arrival_ns) / NS_PER_S
        if lead_s > self.max_lead_s:
            return f"stamped {lead_s:.3f} s after it arrived (limit {self.max_lead_s:g} s)"
        if self.max_lag_s is not None and -lead_s > self.max_lag_s:
            return f"stamped {-lead_s:.3f} s before it arrived (limit {self.max_lag_s:g} s)"
        return None


@dataclass(frozen=True)
class StreamSpec:
    """One aligned stream: its key, its staleness limit (None = no limit) and whether a frame needs it."""

    key: str
    max_age_s: float | None
    required: bool = True

    def __post_init__(self) -> None:
        if self.max_age_s is not None and not self.max_age_s > 0:
            raise ValueError(f"stream {self.key!r}: max_age_s must be > 0 or None, got {self.max_age_s}")


@dataclass(frozen=True)
class Sample:
    """A converted message: `value`, or `error` when conversion failed (it still occupies its stamp)."""

    key: str
    stamp_ns: int
    value: Any = None
    error: str | None = None

    @property
    def is_valid(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class AlignedValue:
    """The value a frame uses for one stream, with its own stamp and its age at the tick."""

    value: Any
    stamp_ns: int
    age_s: float


@dataclass(frozen=True)
class Frame:
    """A produced frame: every required stream present; absent optional streams listed in `missing`."""

    tick_index: int
    time_ns: int
    values: dict[str, AlignedValue]
    missing: dict[str, MissReason] = field(default_factory=dict)

    def value(self, key: str) -> Any:
        return self.values[key].value


@dataclass(frozen=True)
class SkippedTick:
    """A tick that produced no frame because required streams were rejected (`reasons` covers all rejected streams)."""

    tick_index: int
    time_ns: int
    reasons: dict[str, MissReason]
    details: dict[str, str]


TickResult = Union[Frame, SkippedTick]


class FrameClock:
    """Tick times `start_ns + round(i * 1e9 / fps)` on the node clock (or the bag's stamps).

    Tick i is computed from i, never by adding periods, so there is no drift and the live recorder and the bag
    converter agree on every tick time given the same start.
    """

    def __init__(self, fps: int, start_ns: int) -> None:
        if isinstance(fps, bool) or not isinstance(fps, int) or fps <= 0:
            raise ValueError(f"fps must be a positive integer, got {fps!r}")
        self.fps = fps
        self.start_ns = int(start_ns)
        self.next_index = 0

    def time_ns(self, index: int) -> int:
        # Integer rounding of index * 1e9 / fps (half up), exact for any index.
        return self.start_ns + (2 * index * NS_PER_S + self.fps) // (2 * self.fps)

    @property
    def next_time_ns(self) -> int:
        return self.time_ns(self.next_index)

    def advance(self) -> tuple[int, int]:
        """Return (index, time_ns) of the next tick and move past it."""
        index = self.next_index
        self.next_index += 1
        return index, self.time_ns(index)

    def ticks_until(self, end_ns: int) -> int:
        """How many ticks from the next one have time <= end_ns."""
        count = 0
        while self.time_ns(self.next_index + count) <= end_ns:
            count += 1
        return count


@dataclass
class StreamCounters:
    """Per-stream bookkeeping: every message and every tick outcome is counted once."""

    received: int = 0
    accepted: int = 0
    invalid_messages: int = 0
    late: int = 0
    dropped: Counter = field(default_factory=Counter)  # DropReason value -> count
    misses: Counter = field(default_factory=Counter)  # MissReason value -> count
    used: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "accepted": self.accepted,
            "invalid_messages": self.invalid_messages,
            "late": self.late,
            "dropped": dict(self.dropped),
            "misses": dict(self.misses),
            "used": self.used,
        }


class _StreamBuffer:
    """Time-ordered samples of one stream (stamps strictly increasing by construction)."""

    def __init__(self, spec: StreamSpec, capacity: int) -> None:
        self.spec = spec
        self.capacity = capacity
        self.stamps: list[int] = []
        self.samples: list[Sample] = []
        self.last_stamp_ns: int | None = None
        self.counters = StreamCounters()

    def add(self, sample: Sample) -> DropReason | None:
        if self.last_stamp_ns is not None and sample.stamp_ns <= self.last_stamp_ns:
            return DropReason.NON_MONOTONIC
        self.last_stamp_ns = sample.stamp_ns
        self.stamps.append(sample.stamp_ns)
        self.samples.append(sample)
        if len(self.samples) > self.capacity:
            del self.stamps[0], self.samples[0]
            self.counters.dropped[DropReason.OVERFLOW.value] += 1
        return None

    def newest_at_or_before(self, t_ns: int) -> Sample | None:
        i = bisect.bisect_right(self.stamps, t_ns)
        return self.samples[i - 1] if i else None

    def prune_before(self, t_ns: int) -> None:
        """Forget samples that no tick at or after t can use (keep the newest at or before t)."""
        i = bisect.bisect_right(self.stamps, t_ns) - 1
        if i > 0:
            del self.stamps[:i], self.samples[:i]


class FrameAssembler:
    """Buffers samples per stream and turns tick times into frames (or counted skips).

    Two ways to drive it, one set of rules:
    - bag converter: `add()` samples in stamp order, then `evaluate(t)` at each frame time once every sample
      stamped <= t is in, or `poll(stamp of the last sample fed)` after each sample and `flush(end)` at the end;
    - live node: `add()` on arrival, `poll(now_ns)` from a timer; a tick at t is evaluated as soon as every stream
      has passed t, and at the latest when `now_ns > t + latency_s`.
    Not thread-safe: with a multi-threaded executor put the subscriptions and the timer in one mutually exclusive
    callback group (or hold a lock around add/poll).
    """

    def __init__(
        self,
        streams: Sequence[StreamSpec],
        clock: FrameClock | None = None,
        latency_s: float = 0.0,
        buffer_capacity: int = 256,
        stamp_check: StampCheck | None = StampCheck(),
    ) -> None:
        if not streams:
            raise ValueError("FrameAssembler needs at least one stream")
        keys = [s.key for s in streams]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"duplicate stream keys: {duplicates}")
        if latency_s < 0:
            raise ValueError(f"latency_s must be >= 0, got {latency_s}")
        if buffer_capacity < 1:
            raise ValueError(f"buffer_capacity must be >= 1, got {buffer_capacity}")
        self.clock = clock
        self.stamp_check = stamp_check
        self.last_implausible: dict[str, str] = {}  # stream key -> why its last implausible stamp was dropped
        self.latency_ns = seconds_to_ns(latency_s)
        self._buffers = {s.key: _StreamBuffer(s, buffer_capacity) for s in streams}
        self._last_tick_ns: int | None = None
        self.frames_produced = 0
        self.ticks_skipped = 0

    # ----------------------------------------------------------------------------------------------- input
    @property
    def streams(self) -> list[StreamSpec]:
        return [b.spec for b in self._buffers.values()]

    def add(self, sample: Sample, arrival_ns: int | None = None) -> DropReason | None:
        """Buffer one converted message; returns why it was dropped, or None when it was accepted.

        `arrival_ns` (receive time live, log time in a bag, on the stamps' clock) enables the stamp check."""
        buffer = self._buffers.get(sample.key)
        if buffer is None:
            raise KeyError(f"unknown stream {sample.key!r}; known: {sorted(self._buffers)}")
        counters = buffer.counters
        counters.received += 1
        if arrival_ns is not None and self.stamp_check is not None:
            problem = self.stamp_check.problem(sample.stamp_ns, arrival_ns)
            if problem is not None:
                counters.dropped[DropReason.IMPLAUSIBLE_STAMP.value] += 1
                self.last_implausible[sample.key] = problem
                return DropReason.IMPLAUSIBLE_STAMP
        reason = buffer.add(sample)
        if reason is not None:
            counters.dropped[reason.value] += 1
            return reason
        counters.accepted += 1
        if not sample.is_valid:
            counters.invalid_messages += 1
        if self._last_tick_ns is not None and sample.stamp_ns <= self._last_tick_ns:
            counters.late += 1
        return None

    # ---------------------------------------------------------------------------------------------- output
    def covered_until(self, keys: Sequence[str]) -> int | None:
        """The newest instant every stream in `keys` has delivered data for (min of their last stamps), or None
        when one of them has delivered nothing."""
        stamps = [self._buffers[k].last_stamp_ns for k in keys]
        return None if any(s is None for s in stamps) else min(stamps)

    def is_final(self, t_ns: int) -> bool:
        """True when no message that could still arrive may change the frame at t (every stream is past t)."""
        return all(b.last_stamp_ns is not None and b.last_stamp_ns > t_ns for b in self._buffers.values())

    def evaluate(self, t_ns: int, tick_index: int = -1) -> TickResult:
        """Build the frame at t from what is buffered now. Ticks must be evaluated in increasing time order."""
        if self._last_tick_ns is not None and t_ns <= self._last_tick_ns:
            raise ValueError(f"tick at {t_ns} ns is not after the previous tick at {self._last_tick_ns} ns")
        values: dict[str, AlignedValue] = {}
        rejected: dict[str, MissReason] = {}
        details: dict[str, str] = {}
        for key, buffer in self._buffers.items():
            sample = buffer.newest_at_or_before(t_ns)
            max_age = buffer.spec.max_age_s
            if sample is None:
                rejected[key] = MissReason.MISSING
                details[key] = "no message stamped at or before the tick"
                if buffer.stamps:  # only future messages: often a publisher on another clock
                    ahead_s = (buffer.stamps[0] - t_ns) / NS_PER_S
                    details[key] += f"; the oldest buffered one is stamped {ahead_s:.3f} s after it"
                    if ahead_s > CLOCK_MISMATCH_S:
                        details[key] += f" ({CLOCK_HINT})"
            else:
                age_s = (t_ns - sample.stamp_ns) / NS_PER_S
                if not sample.is_valid:
                    rejected[key] = MissReason.INVALID
                    details[key] = sample.error or "invalid"
                elif max_age is not None and t_ns - sample.stamp_ns > seconds_to_ns(max_age):
                    rejected[key] = MissReason.STALE
                    details[key] = f"newest message is {age_s:.3f} s old, limit {max_age:.3f} s"
                    if age_s > CLOCK_MISMATCH_S and buffer.last_stamp_ns == sample.stamp_ns:
                        details[key] += f" ({CLOCK_HINT})"
                else:
                    values[key] = AlignedValue(sample.value, sample.stamp_ns, age_s)
            buffer.prune_before(t_ns)
        self._last_tick_ns = t_ns

        for key, reason in rejected.items():
            self._buffers[key].counters.misses[reason.value] += 1
        required_missing = any(self._buffers[k].spec.required for k in rejected)
        if required_missing:
            self.ticks_skipped += 1
            return SkippedTick(tick_index, t_ns, rejected, details)
        for key in values:
            self._buffers[key].counters.used += 1
        self.frames_produced += 1
        return Frame(tick_index, t_ns, values, rejected)

    def poll(self, now_ns: int | None) -> list[TickResult]:
        """Evaluate, in order, every clock tick t that is final or for which `now_ns > t + latency_s`.

        Live node: now_ns = node clock now. Bag converter (samples fed in stamp order, latency_s=0): now_ns = the
        stamp of the last sample fed, the input's watermark; every tick strictly before it is then exact even for
        streams that publish rarely (a task topic). `now_ns=None` evaluates only final ticks."""
        clock = self._require_clock()
        results: list[TickResult] = []
        while True:
            t_ns = clock.next_time_ns
            due = now_ns is not None and now_ns > t_ns + self.latency_ns
            if not (due or self.is_final(t_ns)):
                return results
            index, t_ns = clock.advance()
            results.append(self.evaluate(t_ns, index))

    def flush(self, end_ns: int) -> list[TickResult]:
        """Evaluate every remaining clock tick with time <= end_ns (end of a bag or of an episode)."""
        clock = self._require_clock()
        results: list[TickResult] = []
        while clock.next_time_ns <= end_ns:
            index, t_ns = clock.advance()
            results.append(self.evaluate(t_ns, index))
        return results

    def _require_clock(self) -> FrameClock:
        if self.clock is None:
            raise RuntimeError("this FrameAssembler has no FrameClock; pass clock= or call evaluate(t) yourself")
        return self.clock

    # ------------------------------------------------------------------------------------------ statistics
    def counters(self, key: str) -> StreamCounters:
        return self._buffers[key].counters

    @property
    def buffered_samples(self) -> int:
        return sum(len(b.samples) for b in self._buffers.values())

    def summary(self) -> dict[str, Any]:
        """Counts for logs, diagnostics and the episode report."""
        return {
            "frames_produced": self.frames_produced,
            "ticks_skipped": self.ticks_skipped,
            "streams": {key: b.counters.as_dict() for key, b in self._buffers.items()},
        }
