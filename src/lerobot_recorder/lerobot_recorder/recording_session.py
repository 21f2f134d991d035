"""The recording session: episode state machine over the frame assembler and the dataset writer (ROS-free).

One `FrameAssembler` runs for the whole session on a frame grid anchored at a whole second, so tick times are
the same absolute instants `k / fps` whatever the moment recording started. An episode is a time window over
those ticks: ticks in `[start, end)` are written, others are ignored. Frames therefore depend only on message
stamps, never on arrival times or on when a goal came in, which is what makes a live recording identical to
the conversion of a bag of the same messages (`bag_convert.py` uses this same class).

States (values match lerobot_msgs/msg/RecorderStatus):

    IDLE --begin()--> RECORDING --(duration reached | stop)--> SAVING --> RESETTING --(reset_time_s)--> IDLE
                       |  discard()/cancel: episode dropped ---------------^
    any --fault--> ERROR (writer failure, disk full); a new dataset session is needed to leave it

A frame is written once every required stream with a staleness limit has delivered a message stamped at or after
its tick (the tick is *covered*); until then it is held. When an episode ends, held frames are dropped: an episode
ends at the last tick its streams actually cover, never with frames that only repeat the last values after the
data stopped (live and in a bag alike, so both paths still give the same frames). While data flows, coverage
arrives with the next message (a few ms); only a stream that stalls holds frames back.

Only required streams explain a skipped tick (an optional stream that is missing as well is not counted against
the episode). An episode that ends without a single frame is an error (nothing can be saved) whose reason names
the streams that were missing, stale or invalid. A frame the writer rejects (e.g. a value that overflows float32)
skips that tick; only a writer fault (encoder, disk) fails the episode.

The reset period follows every finished episode, as in lerobot-record (the operator puts the scene back);
`stop()` during the reset period ends it early. Time is always given by the caller (integer ns on the node
clock, or bag stamps), so the class is deterministic and unit-testable.
"""
from __future__ import annotations

import logging
from collections import Counter, deque
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from lerobot_recorder.alignment import (
    NS_PER_S, Frame, FrameAssembler, FrameClock, Sample, SkippedTick, StampCheck, StreamSpec, TickResult,
    seconds_to_ns,
)

log = logging.getLogger(__name__)

# A clock going back by more than this (a restarted simulation) starts a new frame grid.
CLOCK_JUMP_NS = NS_PER_S
# A clock (or a bag's watermark) jumping forward by more than this also starts a new grid instead of evaluating
# every tick in between: a stamp from 2038, or a simulation fast-forwarded by hours, would otherwise mean
# billions of ticks.
CLOCK_LEAP_NS = 60 * NS_PER_S


class RecorderState(IntEnum):
    IDLE = 0
    RECORDING = 1
    RESETTING = 2
    SAVING = 3
    ERROR = 4


class RecorderBusy(RuntimeError):
    """An episode cannot start now (another is in progress, a reset period runs, or the recorder is in ERROR)."""


class EpisodeWriter(Protocol):
    """What the session needs from the dataset writer (lerobot_dataset.LeRobotDatasetWriter)."""

    def add_frame(self, frame: dict, task: str) -> None: ...

    def save_episode(self) -> Any: ...

    def discard_episode(self) -> None: ...


# A frame builder turns the assembler's aligned values into the writer's frame dict (interface features).
FrameBuilder = Callable[[Frame], dict]
# A validator checks one saved episode: (ok, message).
EpisodeValidator = Callable[[int], "tuple[bool, str]"]


def _frame_rejections() -> tuple[type[Exception], ...]:
    try:
        from lerobot_dataset import FrameValidationError
    except ImportError:  # the session also runs over other EpisodeWriters (tests); they raise ValueError
        return (ValueError,)
    return (FrameValidationError,)


FRAME_REJECTIONS = _frame_rejections()


def _no_frame_causes(episode: "EpisodeProgress") -> str:
    """Which streams kept every tick of an episode from producing a frame, e.g. "observation.images.front missing
    on 90 ticks"."""
    if not episode.drops:
        return "no tick of the episode was evaluated (is the clock running?)"
    parts = []
    for key, reasons in sorted(episode.drops.items(), key=lambda item: -sum(item[1].values())):
        parts.append(f"{key} " + ", ".join(f"{reason} on {count} ticks" for reason, count in reasons.most_common()))
    return "; ".join(parts)


def whole_second_floor(t_ns: int) -> int:
    return (int(t_ns) // NS_PER_S) * NS_PER_S


def grid_clock(fps: int, t_ns: int) -> FrameClock:
    """A frame clock whose ticks are the absolute instants k/fps (k integer), starting at the first one >= t."""
    clock = FrameClock(fps, whole_second_floor(t_ns))
    while clock.next_time_ns < t_ns:
        clock.next_index += 1
    return clock


@dataclass
class EpisodeGoal:
    task: str  # "" = the task the interface gives each frame (its task topic or fixed text)
    duration_s: float = 0.0  # 0 = until stopped


@dataclass(frozen=True)
class EpisodeWindow:
    """A planned episode (bag conversion): ticks in [start_ns, end_ns) with this task."""

    start_ns: int
    end_ns: int
    task: str


@dataclass
class EpisodeProgress:
    task: str
    start_ns: int
    end_ns: int | None
    frames: int = 0
    dropped: int = 0  # ticks after the first frame that produced no frame
    waiting: int = 0  # ticks before the first frame (streams not there yet) or, once ended, after the last one
    first_frame_ns: int | None = None
    last_frame_ns: int | None = None
    # stream key -> miss reason -> ticks of this episode lost to it (a skipped tick counts once per rejected stream)
    drops: dict[str, Counter] = field(default_factory=dict)
    # runs of consecutive skipped ticks after the first frame: [first tick time ns, number of ticks]
    gaps: list[list[int]] = field(default_factory=list)
    stop_reason: str = ""
    attempt: int = 0
    delay_sum_ns: int = 0
    delay_max_ns: int = 0
    trailing_uncovered: int = 0  # frames evaluated after the data ended (not covered): not written
    _in_gap: bool = False


@dataclass
class EpisodeReport:
    """How an episode ended; `episode_index` is -1 when nothing was saved."""

    episode_index: int
    frames: int
    saved: bool
    reason: str
    task: str
    dropped: int
    drops: dict[str, dict[str, int]]  # every skipped tick of the window, per stream and reason
    waiting: int = 0
    first_frame_ns: int | None = None
    last_frame_ns: int | None = None
    gaps: list[list[int]] = field(default_factory=list)
    attempt: int = 0
    frame_delay_mean_s: float = 0.0  # tick instant -> frame written, on the session's clock
    frame_delay_max_s: float = 0.0
    validation_ok: bool | None = None
    validation_message: str = ""

    def summary(self) -> str:
        if not self.saved and self.frames == 0:
            return f"episode not saved ({self.reason}): no frame in {self.waiting + self.dropped} ticks, task {self.task!r}"
        what = f"episode {self.episode_index} saved" if self.saved else "episode discarded"
        text = (f"{what} ({self.reason}): {self.frames} frames, {self.dropped} ticks dropped "
                f"(+{self.waiting} before the first or after the last frame), task {self.task!r}")
        if self.first_frame_ns is not None:
            text += f", frames stamped {self.first_frame_ns}..{self.last_frame_ns} ns"
            text += (f", frame delay mean {self.frame_delay_mean_s * 1000:.0f} ms "
                     f"max {self.frame_delay_max_s * 1000:.0f} ms")
        if self.drops:
            details = "; ".join(f"{k}: {dict(v)}" for k, v in sorted(self.drops.items()))
            text += f" [{details}]"
        if self.validation_ok is not None:
            text += f"; validation {'ok' if self.validation_ok else 'FAILED'}"
            if self.validation_message:
                text += f": {self.validation_message}"
        return text


class RecordingSession:
    """Aligns streams into frames and writes the frames of the current episode.

    Feed samples with `add_sample` (any thread holding no other lock of the caller), call `advance(now_ns)`
    regularly from one thread: it evaluates due ticks, writes frames, ends episodes and reset periods, and
    returns the reports of episodes that ended. Commands (`begin`, `stop`, `discard`) take effect at the next
    `advance` (except `discard`, which is immediate).
    """

    def __init__(
        self,
        streams: Sequence[StreamSpec],
        fps: int,
        writer: EpisodeWriter,
        build_frame: FrameBuilder,
        latency_s: float = 0.1,
        reset_time_s: float = 0.0,
        validate_episode: EpisodeValidator | None = None,
        buffer_capacity: int = 256,
        first_episode_index: int = 0,
        clock: Callable[[], int] | None = None,
        stamp_check: StampCheck | None = StampCheck(),
    ) -> None:
        self.streams = list(streams)
        self.fps = int(fps)
        self.writer = writer
        self.build_frame = build_frame
        self.latency_s = float(latency_s)
        self.reset_ns = seconds_to_ns(reset_time_s)
        self.validate_episode = validate_episode
        self.buffer_capacity = buffer_capacity
        self.stamp_check = stamp_check  # how far a stamp may be from its arrival (alignment.StampCheck)
        # The live node's clock: the reset period starts when a (possibly slow) save has finished.
        self.clock = clock
        self.assembler: FrameAssembler | None = None
        self.state = RecorderState.IDLE
        self.message = ""
        self.episode: EpisodeProgress | None = None
        self.next_episode_index = first_episode_index
        self.reset_until_ns: int | None = None
        self.reset_started_ns: int | None = None
        self.last_report: EpisodeReport | None = None
        # Samples that arrive before the first advance() (no grid yet), the newest `buffer_capacity` per stream.
        self._pending_samples: dict[str, deque[Sample]] = {}
        self._required = {spec.key for spec in self.streams if spec.required}
        # Streams whose data ends an episode's coverage: required, with a staleness limit (a task holds by design).
        self._coverage_keys = [spec.key for spec in self.streams if spec.required and spec.max_age_s is not None]
        self._held: deque[TickResult] = deque()  # evaluated ticks of the episode, in order, not covered yet
        self._plan: list[EpisodeWindow] = []
        self._attempts = 0
        self._last_now_ns: int | None = None
        self._clock_jumped = ""  # "back" or "forward" when the last advance started a new grid
        self.frame_errors = 0

    # ---------------------------------------------------------------------------------------------- input
    def _ensure_assembler(self, now_ns: int) -> FrameAssembler:
        jumped_back = self._last_now_ns is not None and now_ns < self._last_now_ns - CLOCK_JUMP_NS
        leaped = (self.assembler is not None and self.assembler.clock is not None
                  and now_ns > self.assembler.clock.next_time_ns + CLOCK_LEAP_NS)
        if self.assembler is None or jumped_back or leaped:
            # First use, or the clock jumped (a simulation restarted, a bag replayed from its start, a stamp far
            # in the future): buffered messages belong to the old timeline, so a new grid starts here.
            self.assembler = FrameAssembler(
                self.streams, grid_clock(self.fps, now_ns), self.latency_s, self.buffer_capacity, self.stamp_check)
            self._clock_jumped = "back" if jumped_back else ("forward" if leaped else "")
        self._last_now_ns = now_ns
        return self.assembler

    def add_sample(self, sample: Sample, arrival_ns: int | None = None):
        """Buffer one converted message; returns the DropReason when it was not buffered (e.g. non-monotonic, or
        stamped implausibly far from its `arrival_ns`: see FrameAssembler.add)."""
        if self.assembler is None:
            # Before the first advance() there is no grid yet: keep the newest samples for it.
            pending = self._pending_samples.setdefault(sample.key, deque(maxlen=self.buffer_capacity))
            pending.append((sample, arrival_ns))
            return None
        return self.assembler.add(sample, arrival_ns)

    # ------------------------------------------------------------------------------------------- commands
    @property
    def can_begin(self) -> bool:
        return self.state == RecorderState.IDLE

    def begin(self, goal: EpisodeGoal, now_ns: int) -> int:
        """Start an episode at `now_ns` (its first tick is the first grid tick at or after it).

        Returns the attempt number that the episode's report will carry."""
        if self.state != RecorderState.IDLE:
            raise RecorderBusy(f"cannot start an episode while {self.state.name}" +
                               (f": {self.message}" if self.message else ""))
        if goal.duration_s < 0:
            raise ValueError(f"episode duration must be >= 0 (0 = until stopped), got {goal.duration_s}")
        end = now_ns + seconds_to_ns(goal.duration_s) if goal.duration_s > 0 else None
        self._attempts += 1
        self.episode = EpisodeProgress(task=goal.task.strip(), start_ns=int(now_ns), end_ns=end,
                                       attempt=self._attempts)
        self.state = RecorderState.RECORDING
        self.message = ""
        return self._attempts

    def plan(self, windows: Sequence[EpisodeWindow]) -> None:
        """Episodes to begin and end by tick time (bag conversion): each starts when the first tick at or
        after its start is evaluated while the session is idle."""
        self._plan = sorted(windows, key=lambda w: w.start_ns)

    def stop(self, now_ns: int, reason: str = "stopped") -> bool:
        """Finish the episode in progress at `now_ns` (frames up to then are written, then it is saved), or
        end the reset period early. Returns False when there was nothing to stop."""
        if self.state == RecorderState.RECORDING and self.episode is not None:
            if self.episode.end_ns is None or now_ns < self.episode.end_ns:
                self.episode.end_ns = int(now_ns)
                self.episode.stop_reason = reason
            return True
        if self.state == RecorderState.RESETTING:
            self.reset_until_ns = int(now_ns)
            return True
        return False

    def discard(self, now_ns: int, reason: str = "re-record requested") -> EpisodeReport | None:
        """Drop the episode in progress (nothing of it reaches the dataset), then run the reset period."""
        if self.state != RecorderState.RECORDING or self.episode is None:
            return None
        self._held.clear()
        self.writer.discard_episode()
        report = self._report(self.episode, episode_index=-1, saved=False, reason=reason)
        self.episode = None
        self._enter_reset(now_ns)
        self.last_report = report
        return report

    def fail(self, message: str) -> EpisodeReport | None:
        """A fault: discard what is in progress and refuse new episodes."""
        report = None
        self._held.clear()
        if self.state == RecorderState.RECORDING and self.episode is not None:
            try:
                self.writer.discard_episode()
            except Exception as exc:  # the writer may be the fault; keep the first message
                log.error("discarding the episode after a fault failed too: %s", exc)
            report = self._report(self.episode, -1, False, f"error: {message}")
            self.episode = None
        self.state = RecorderState.ERROR
        self.message = message
        return report

    # ------------------------------------------------------------------------------------------- the loop
    def advance(self, now_ns: int) -> list[EpisodeReport]:
        """Evaluate due ticks, write the current episode's frames, and move the state machine."""
        return self.process(self.poll(now_ns), now_ns)

    def poll(self, now_ns: int) -> list[TickResult]:
        """The ticks due at `now_ns` (the input side: guard it with the same lock as `add_sample`)."""
        assembler = self._ensure_assembler(now_ns)
        if self._pending_samples:
            pending, self._pending_samples = self._pending_samples, {}
            for sample, arrival_ns in sorted((entry for queue in pending.values() for entry in queue),
                                             key=lambda entry: entry[0].stamp_ns):
                assembler.add(sample, arrival_ns)
        return assembler.poll(now_ns)

    def process(self, results: Iterable[TickResult], now_ns: int) -> list[EpisodeReport]:
        """Route evaluated ticks to the current episode and move the state machine (also used by bag_convert)."""
        reports: list[EpisodeReport] = []
        if self._clock_jumped:
            direction, self._clock_jumped = self._clock_jumped, ""
            if self.state == RecorderState.RECORDING and self.episode is not None:
                # Its remaining ticks would be on the old timeline: keep what was recorded.
                log.warning("the clock jumped %s; ending the episode in progress", direction)
                reports.append(self.save(now_ns, f"clock jumped {direction}"))
        for result in results:
            reports.extend(self._finish_if_ended(result.time_ns, now_ns))
            self._begin_planned(result.time_ns)
            if self.state == RecorderState.RECORDING:
                self._held.append(result)
                self._release_covered(now_ns)
        if self.state == RecorderState.RECORDING:
            self._release_covered(now_ns)
        next_tick = self.assembler.clock.next_time_ns if self.assembler and self.assembler.clock else now_ns
        reports.extend(self._finish_if_ended(next_tick, now_ns))
        if self.state == RecorderState.RESETTING and self.reset_until_ns is not None and now_ns >= self.reset_until_ns:
            self.state = RecorderState.IDLE
            self.reset_until_ns = None
            self.reset_started_ns = None
        return reports

    def _begin_planned(self, tick_ns: int) -> None:
        while self._plan and self._plan[0].end_ns <= tick_ns:
            self._plan.pop(0)  # a window no tick fell into
        if self.state == RecorderState.IDLE and self._plan and self._plan[0].start_ns <= tick_ns:
            window = self._plan.pop(0)
            self.begin(EpisodeGoal(window.task), window.start_ns)
            self.episode.end_ns = window.end_ns
            self.episode.stop_reason = "end of episode window"

    def _coverage_ns(self) -> int | None:
        """Ticks at or before this instant are covered by every coverage stream (None: some stream has no data)."""
        if not self._coverage_keys:
            return None if self.assembler is None else 2**63 - 1
        return self.assembler.covered_until(self._coverage_keys) if self.assembler is not None else None

    def _release_covered(self, now_ns: int) -> None:
        """Write held ticks, in order, up to the first one that is not covered yet."""
        coverage = self._coverage_ns()
        while self._held and (isinstance(self._held[0], SkippedTick) or
                              (coverage is not None and self._held[0].time_ns <= coverage)):
            self._write(self._held.popleft(), now_ns)

    def _drop_held(self) -> None:
        """The episode ends: frames still held are past the data (not covered); they are not written."""
        episode = self.episode
        while self._held:
            result = self._held.popleft()
            if episode is None:
                continue
            if isinstance(result, SkippedTick):
                self._write(result, 0)
            elif episode.start_ns <= result.time_ns and (episode.end_ns is None or result.time_ns < episode.end_ns):
                episode.trailing_uncovered += 1

    def _finish_if_ended(self, next_tick_ns: int, now_ns: int) -> list[EpisodeReport]:
        """Save the episode once every tick before its end has been evaluated."""
        episode = self.episode
        if self.state != RecorderState.RECORDING or episode is None or episode.end_ns is None:
            return []
        if next_tick_ns < episode.end_ns:
            return []
        reason = episode.stop_reason or "duration reached"
        return [self.save(now_ns, reason)]

    def _write(self, result: TickResult, now_ns: int) -> None:
        episode = self.episode
        assert episode is not None
        if result.time_ns < episode.start_ns or (episode.end_ns is not None and result.time_ns >= episode.end_ns):
            return
        if isinstance(result, SkippedTick):
            # Only required streams explain the skip; an optional stream missing as well is not a cause.
            reasons = {k: r.value for k, r in result.reasons.items() if k in self._required}
            self._count_skip(episode, result.time_ns, reasons or {k: r.value for k, r in result.reasons.items()})
            return
        try:
            frame = dict(self.build_frame(result))
        except ValueError as exc:
            # A frame the interface cannot assemble (e.g. inconsistent joint vectors) is skipped, never written.
            self.frame_errors += 1
            self._count_skip(episode, result.time_ns, {"frame": "invalid"})
            log.warning("tick at %d ns skipped: %s", result.time_ns, exc)
            return
        frame_task = frame.pop("task", None)
        task = episode.task or frame_task
        if not task:
            self._count_skip(episode, result.time_ns, {"task": "missing"})
            return
        try:
            self.writer.add_frame(frame, task)
        except FRAME_REJECTIONS as exc:
            # The writer checked the frame before taking any of it (e.g. a finite value that overflows float32):
            # that tick has no frame; the episode goes on. Writer faults (encoder, disk) are not caught here.
            self.frame_errors += 1
            self._count_skip(episode, result.time_ns, {"frame": "invalid"})
            log.warning("tick at %d ns skipped: the writer rejected the frame: %s", result.time_ns, exc)
            return
        episode._in_gap = False
        episode.frames += 1
        # Frame delay: from the tick instant to the frame handed to the writer (node clock).
        delay = max(0, now_ns - result.time_ns)
        episode.delay_sum_ns += delay
        episode.delay_max_ns = max(episode.delay_max_ns, delay)
        if episode.first_frame_ns is None:
            episode.first_frame_ns = result.time_ns
        episode.last_frame_ns = result.time_ns

    @staticmethod
    def _count_skip(episode: EpisodeProgress, t_ns: int, reasons: Mapping[str, str]) -> None:
        for key, reason in reasons.items():
            episode.drops.setdefault(key, Counter())[reason] += 1
        if not episode.frames:
            # Ticks before the first frame (streams not there yet) are waiting, not frames lost.
            episode.waiting += 1
            return
        episode.dropped += 1
        if episode._in_gap:
            episode.gaps[-1][1] += 1
        else:
            episode.gaps.append([t_ns, 1])
            episode._in_gap = True

    def save(self, now_ns: int, reason: str) -> EpisodeReport:
        """Save the episode in progress (an episode without frames is discarded: LeRobot cannot store it)."""
        episode = self.episode
        assert episode is not None
        self._release_covered(now_ns)
        self._drop_held()
        self.episode = None
        if episode.frames == 0:
            self.writer.discard_episode()
            report = self._report(episode, -1, False, f"error: no frames were recorded ({reason}): "
                                                      f"{_no_frame_causes(episode)}")
        else:
            self.state = RecorderState.SAVING
            try:
                summary = self.writer.save_episode()
            except Exception as exc:  # the writer abandoned the episode and kept the dataset as it was
                report = self._report(episode, -1, False, f"error: saving failed: {exc}")
                self.state = RecorderState.ERROR
                self.message = f"saving an episode failed: {exc}"
                self.last_report = report
                return report
            index = int(getattr(summary, "episode_index", self.next_episode_index))
            self.next_episode_index = index + 1
            report = self._report(episode, index, True, reason)
            if self.validate_episode is not None:
                try:
                    report.validation_ok, report.validation_message = self.validate_episode(index)
                except Exception as exc:  # a validator bug must not lose the recording
                    report.validation_ok, report.validation_message = False, f"validator raised {exc!r}"
        self._enter_reset(now_ns)
        self.last_report = report
        return report

    def _enter_reset(self, now_ns: int) -> None:
        if self.state == RecorderState.ERROR:
            return
        if self.clock is not None:
            now_ns = max(now_ns, self.clock())
        if self.reset_ns > 0:
            self.state = RecorderState.RESETTING
            self.reset_started_ns = int(now_ns)
            self.reset_until_ns = int(now_ns) + self.reset_ns
        else:
            self.state = RecorderState.IDLE

    @staticmethod
    def _report(episode: EpisodeProgress, episode_index: int, saved: bool, reason: str) -> EpisodeReport:
        if episode._in_gap and episode.gaps:
            # Skipped ticks after the last frame (streams stopped) are not a gap in the recording.
            _, trailing = episode.gaps.pop()
            episode.dropped -= trailing
            episode.waiting += trailing
            episode._in_gap = False
        episode.waiting += episode.trailing_uncovered
        episode.trailing_uncovered = 0
        return EpisodeReport(
            episode_index=episode_index, frames=episode.frames, saved=saved, reason=reason, task=episode.task,
            dropped=episode.dropped, drops={k: dict(v) for k, v in episode.drops.items()}, waiting=episode.waiting,
            first_frame_ns=episode.first_frame_ns, last_frame_ns=episode.last_frame_ns,
            gaps=[list(g) for g in episode.gaps], attempt=episode.attempt,
            frame_delay_mean_s=episode.delay_sum_ns / max(episode.frames, 1) / NS_PER_S,
            frame_delay_max_s=episode.delay_max_ns / NS_PER_S)

    # ------------------------------------------------------------------------------------------- queries
    def elapsed_s(self, now_ns: int) -> float:
        if self.state == RecorderState.RECORDING and self.episode is not None:
            return max(0.0, (now_ns - self.episode.start_ns) / NS_PER_S)
        if self.state == RecorderState.RESETTING and self.reset_started_ns is not None:
            return max(0.0, (now_ns - self.reset_started_ns) / NS_PER_S)
        return 0.0

    @property
    def buffered_samples(self) -> int:
        """Samples held in memory: waiting for the first tick, and in the assembler's stream buffers."""
        pending = sum(len(queue) for queue in self._pending_samples.values())
        return pending + (self.assembler.buffered_samples if self.assembler is not None else 0)

    def stream_summary(self) -> Mapping[str, Any]:
        return self.assembler.summary() if self.assembler is not None else {"streams": {}}
