"""PolicyRuntime: when to infer, what to infer from, and what to execute. Thread-safe, ROS-free.

Two threads use it, as in upstream's RTC loop (an inference thread and an actor thread):
- the inference thread calls `run_once()` in a loop; each call either says how long to wait, or takes the
  observation at the current control tick, runs the policy, and merges the chunk (returning what to publish);
- the control tick (the node's timer) calls `command_at(now)` for the per-tick command stream.
Subscriptions feed `add_message` (observations) and `add_executor_goal` (the driver's joint_goals).

When to infer (rows left = rows planned after the current tick):
- sync: when nothing is left (upstream's default; the robot holds while the policy thinks);
- async and rtc: when the rows left drop to `chunk_size_threshold` x the chunk's rows, so the next chunk arrives
  while the current one still runs.
A chunk is merged as described in action_queue.py, after the safety gates (gates.py). A chunk whose observation is
older than the last reset (epoch) is discarded. Inference errors are retried after `retry_delay_s`; after
`max_consecutive_errors` in a row the runtime fails (upstream's rollout engine: 0.5 s, 10).
"""
from __future__ import annotations

import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np

from lerobot_recorder.alignment import seconds_to_ns
from lerobot_policy_node.runtime.action_queue import ActionQueue, aggregate_old_weight
from lerobot_policy_node.runtime.execution import ExecutionMonitor, ExecutionMonitorConfig
from lerobot_policy_node.runtime.gates import GateTrip, SafetyGates, TripKind
from lerobot_policy_node.runtime.latency import LatencyTracker
from lerobot_policy_node.runtime.observation import MissedObservation, ObservationAssembler
from lerobot_policy_node.runtime.outputs import TimedChunk
from lerobot_policy_node.runtime.policy_runner import PolicyRunner, RtcRequest
from lerobot_policy_node.runtime.ticks import ControlTicks

MODES = ("sync", "async", "rtc")


@dataclass(frozen=True)
class RuntimeConfig:
    # sync: infer when the chunk is used up (the robot holds meanwhile); async: infer while the chunk runs and merge
    # with `aggregate_fn_name`; rtc: infer while the chunk runs, guided to agree with the rows it replaces.
    mode: str = "sync"
    # async only: upstream's aggregation of overlapping rows (weighted_average, latest_only = naive switching,
    # average, conservative).
    aggregate_fn_name: str = "weighted_average"
    # async/rtc: request the next chunk when the rows left are at most this fraction of a chunk (upstream async 0.5).
    chunk_size_threshold: float = 0.5
    # rtc: end row of the soft mask over the previous chunk's rows. 0: every row the old chunk has left from the
    # observation tick (the overlap, the paper's H - s), so the first rows executed from the new chunk, right after
    # the frozen delay, are still guided; a fixed value (upstream's RTCConfig default is 10) is padded by repeating
    # the old chunk's last row when the overlap is shorter.
    execution_horizon: int = 0
    # Inference latencies kept for the p50/p95 statistics (warm-up excluded).
    latency_window: int = 100
    # After an inference error, wait this long before the next try; fail after this many errors in a row.
    retry_delay_s: float = 0.5
    max_consecutive_errors: int = 10
    # How long the inference thread sleeps when there is nothing to do and no better wake-up time is known.
    idle_sleep_s: float = 0.01

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        aggregate_old_weight(self.aggregate_fn_name)  # raises for an unknown name
        if not 0.0 <= self.chunk_size_threshold <= 1.0:
            raise ValueError(f"chunk_size_threshold must be in [0, 1], got {self.chunk_size_threshold}")
        if self.execution_horizon < 0:
            raise ValueError(f"execution_horizon must be >= 0 (0 = the overlap), got {self.execution_horizon}")
        if self.retry_delay_s < 0 or self.max_consecutive_errors < 1 or self.idle_sleep_s <= 0:
            raise ValueError("retry_delay_s must be >= 0, max_consecutive_errors >= 1 and idle_sleep_s > 0")


# ------------------------------------------------------------------------------------------------ step results
@dataclass(frozen=True)
class Wait:
    """Nothing to do before `until_ns` (node clock)."""

    until_ns: int
    reason: str


@dataclass(frozen=True)
class ChunkReady:
    """A merged chunk to publish; `trips` lists gates that clamped it."""

    chunk: TimedChunk
    trips: list[GateTrip]


@dataclass(frozen=True)
class ChunkHeld:
    """A computed chunk that was not merged (a gate held it, it came too late, or a reset happened meanwhile)."""

    kind: TripKind
    message: str


@dataclass(frozen=True)
class NoObservation:
    missed: MissedObservation


@dataclass(frozen=True)
class InferenceFailed:
    message: str
    fatal: bool


StepResult = Union[Wait, ChunkReady, ChunkHeld, NoObservation, InferenceFailed]


@dataclass(frozen=True)
class RuntimeStats:
    running: bool
    failed: str | None
    mode: str
    chunks: int
    latency_p50_s: float | None
    latency_p95_s: float | None
    last_forward_s: float
    queue_depth: int
    observations: int
    stale_observations: int  # ticks without an observation (any reason)
    misses: dict[str, dict[str, int]]  # stream key -> reason -> ticks
    trips: dict[str, int]  # TripKind value -> count
    consecutive_errors: int


class PolicyRuntime:
    def __init__(self, runner: PolicyRunner, observations: ObservationAssembler, config: RuntimeConfig,
                 gates: SafetyGates, clock_ns: Callable[[], int],
                 monitor: ExecutionMonitor | None = None) -> None:
        self.runner = runner
        self.observations = observations
        self.config = config
        self.gates = gates
        self.monitor = monitor or ExecutionMonitor(ExecutionMonitorConfig())
        self._now = clock_ns
        self.fps = observations.interface.fps
        self.queue = ActionQueue(runner.action_dim, history_ticks=10 * self.fps)
        self.latency = LatencyTracker(config.latency_window)
        self._old_weight = aggregate_old_weight(config.aggregate_fn_name) if config.mode == "async" else 0.0
        self._lock = threading.RLock()
        self.ticks: ControlTicks | None = None
        self.running = False
        self.failed: str | None = None
        self.epoch = 0
        self.chunks = 0
        self.consecutive_errors = 0
        self.trips: Counter = Counter()
        self.task_override: str | None = None
        self._retry_at_ns: int | None = None
        self._last_observation_tick: int | None = None

    # ------------------------------------------------------------------------------------------ control
    def start(self) -> None:
        """Start inferring: a fresh tick grid anchored now, an empty queue, chunk ids from 0, statistics (chunks,
        latency, gate trips) counted from here, so a run's result describes that run."""
        with self._lock:
            self.ticks = ControlTicks(self.fps, self._now())
            self._clear()
            self.running, self.failed = True, None
            self.consecutive_errors, self.chunks = 0, 0
            self.trips.clear()
            self.observations.clear_counts()
            self.latency.clear()
            self.runner.reset()

    def stop(self) -> np.ndarray | None:
        """Stop inferring and executing. Returns the action planned for now (dataset units), for the caller to
        send as a hold so executors stop following the old chunk; None when nothing was being executed."""
        with self._lock:
            hold = self.command_at(self._now())
            self.running = False
            self._clear()
            return hold

    def reset(self) -> np.ndarray | None:
        """Upstream's reset: clear the queue, drop buffered observations (a chunk computed from one would jerk the
        robot toward an old pose), discard any chunk still being computed. Keeps running. Returns the hold action."""
        with self._lock:
            hold = self.command_at(self._now())
            self._clear()
            self.observations.forget()
            self.runner.reset()
            return hold

    def _clear(self) -> None:
        self.epoch += 1
        self.queue.clear()
        self.monitor.reset()
        self._retry_at_ns = None
        self._last_observation_tick = None

    def set_task(self, task: str | None) -> None:
        """A task for the next chunks (None: the interface's task topic or text). Does not flush the queue."""
        self.task_override = task or None

    # ------------------------------------------------------------------------------------------- inputs
    def add_message(self, topic: str, msg: Any, receive_ns: int) -> None:
        self.observations.add_message(topic, msg, receive_ns)

    def add_executor_goal(self, stamp_ns: int, goal: np.ndarray) -> None:
        """A goal the executor wrote (dataset units, action order), compared with the plan for its time."""
        with self._lock:
            planned = self.queue.sample(stamp_ns, self.ticks) if self.ticks is not None else None
            self.monitor.observe_goal(stamp_ns, goal, planned)

    def command_at(self, now_ns: int) -> np.ndarray | None:
        """The action for now (dataset units, interpolated between ticks); None when nothing is planned."""
        with self._lock:
            if self.ticks is None:
                return None
            return self.queue.sample(now_ns, self.ticks)

    # ---------------------------------------------------------------------------------------- inference
    def _threshold_rows(self) -> int:
        if self.config.mode == "sync" or self.runner.chunk_rows is None:
            return 0
        return int(self.config.chunk_size_threshold * self.runner.chunk_rows)

    def run_once(self) -> StepResult:
        """One step of the inference thread (see the module docstring)."""
        with self._lock:
            prepared = self._prepare(self._now())
            if not isinstance(prepared, _Prepared):
                return prepared
        try:
            chunk = self.runner.predict(prepared.values, prepared.task, prepared.rtc)
        except Exception as error:  # noqa: BLE001 - any failure of the policy is retried, then fatal
            return self._failed(error)
        merged_at = self._now()
        with self._lock:
            return self._merge(prepared, chunk, merged_at)

    def _prepare(self, now_ns: int) -> "StepResult | _Prepared":
        if not self.running or self.failed is not None:
            return Wait(now_ns + seconds_to_ns(self.config.idle_sleep_s), "not running")
        if self._retry_at_ns is not None and now_ns < self._retry_at_ns:
            return Wait(self._retry_at_ns, "waiting to retry after an inference error")
        ticks = self.ticks
        tick = ticks.tick_at_or_before(now_ns)
        if self._last_observation_tick is not None and tick <= self._last_observation_tick:
            return Wait(ticks.time_ns(self._last_observation_tick + 1), "next control tick")
        threshold = self._threshold_rows()
        if self.queue.remaining_after(tick) > threshold:
            return Wait(ticks.time_ns(self.queue.last_tick - threshold), "chunk still running")
        self._last_observation_tick = tick
        observation = self.observations.observe(ticks.time_ns(tick))
        if isinstance(observation, MissedObservation):
            self.trips[TripKind.STALE_OBSERVATION.value] += 1
            return NoObservation(observation)
        rtc = self._rtc_request(tick) if self.config.mode == "rtc" else None
        task = self.task_override or observation.task
        return _Prepared(self.epoch, tick, observation.values, observation.state, task, rtc)

    def _rtc_request(self, observation_tick: int) -> RtcRequest | None:
        """The old plan's rows from the observation tick on; the delay is the p95 latency in rows (capped at the
        rows the old plan really has). None without a previous chunk: the first chunk is unguided."""
        chunk_rows = self.runner.chunk_rows or max(self.config.execution_horizon, 1)
        prefix = self.queue.rows_from(observation_tick, chunk_rows)
        if len(prefix) == 0:
            return None
        delay = min(self.latency.delay_ticks(self.ticks.period_s), len(prefix))
        horizon = min(self.config.execution_horizon or len(prefix), chunk_rows)
        return RtcRequest(prefix, delay, horizon)

    def _failed(self, error: Exception) -> InferenceFailed:
        with self._lock:
            self.consecutive_errors += 1
            self.trips[TripKind.INFERENCE_ERROR.value] += 1
            summary = "".join(traceback.format_exception_only(type(error), error)).strip()
            fatal = self.consecutive_errors >= self.config.max_consecutive_errors
            if fatal:
                self.failed = f"{self.consecutive_errors} inference errors in a row, the last: {summary}"
                self.running = False
                return InferenceFailed(self.failed, True)
            self._retry_at_ns = self._now() + seconds_to_ns(self.config.retry_delay_s)
            return InferenceFailed(f"inference error {self.consecutive_errors} of at most "
                                   f"{self.config.max_consecutive_errors} in a row, retrying in "
                                   f"{self.config.retry_delay_s:g} s: {summary}", False)

    def _merge(self, prepared: "_Prepared", chunk: np.ndarray, merged_at: int) -> StepResult:
        self.consecutive_errors = 0
        ticks = self.ticks
        latency_s = (merged_at - ticks.time_ns(prepared.tick)) / 1e9 if ticks is not None else 0.0
        self.latency.add(max(latency_s, 0.0))
        if prepared.epoch != self.epoch or not self.running:
            self.trips[TripKind.DISCARDED_AFTER_RESET.value] += 1
            return ChunkHeld(TripKind.DISCARDED_AFTER_RESET, "the chunk's observation is older than the last reset "
                             "or stop; discarded")
        switch = ticks.first_tick_after(merged_at)
        executed_until = self.monitor.executed_until_tick(merged_at, ticks)
        proposal = self.queue.propose(chunk, prepared.tick, switch, executed_until, self._old_weight)
        if proposal.is_empty:
            self.trips[TripKind.LATE_CHUNK.value] += 1
            return ChunkHeld(TripKind.LATE_CHUNK, f"every row of the chunk is in the past (latency {latency_s:.3f} s, "
                             f"{len(chunk)} rows)")
        report = self.gates.check(proposal, prepared.state)
        for trip in report.trips:
            self.trips[trip.kind.value] += 1
        if report.hold:
            held = next(t for t in report.trips if not t.clamped)
            return ChunkHeld(held.kind, held.message)
        self.queue.commit(proposal)
        timed = TimedChunk(
            chunk_id=self.chunks, rows=proposal.rows, start_row=proposal.skip,
            row_times_ns=np.array([ticks.time_ns(proposal.row0_tick + k) for k in range(len(proposal.rows))],
                                  dtype=np.int64),
            period_s=ticks.period_s, observation_stamp_ns=ticks.time_ns(prepared.tick), latency_s=latency_s,
            delay_rows=proposal.delay_rows, executed_during_inference=proposal.executed_rows,
            inference_delay=prepared.rtc.inference_delay if prepared.rtc is not None else 0, epoch=self.epoch)
        self.chunks += 1
        return ChunkReady(timed, report.trips)

    def is_current(self, chunk: TimedChunk) -> bool:
        """Whether `chunk` may still be published: no stop or reset came between its merge and now. A chunk is
        merged under the lock but published after it; without this check a chunk merged just before a stop would
        reach the executor after the stop's hold and move the arm again."""
        with self._lock:
            return self.running and chunk.epoch == self.epoch

    # ------------------------------------------------------------------------------------------ reporting
    def note_trip(self, kind: TripKind) -> None:
        """Count a gate the caller applied (e.g. a chunk found wholly in the past when it was to be published)."""
        with self._lock:
            self.trips[kind.value] += 1

    def stats(self) -> RuntimeStats:
        with self._lock:
            now = self._now()
            depth = self.queue.remaining_after(self.ticks.tick_at_or_before(now)) if self.ticks is not None else 0
            misses = self.observations.miss_counts()
            return RuntimeStats(
                running=self.running, failed=self.failed, mode=self.config.mode, chunks=self.chunks,
                latency_p50_s=self.latency.p50, latency_p95_s=self.latency.p95,
                last_forward_s=self.runner.last_forward_s, queue_depth=depth,
                observations=self.observations.observations,
                stale_observations=self.trips[TripKind.STALE_OBSERVATION.value],
                misses=misses, trips=dict(self.trips), consecutive_errors=self.consecutive_errors)

    def warm_up(self, count: int) -> list[float]:
        """Warm-up inferences before starting (latencies returned, never entering the statistics)."""
        horizon = self.config.execution_horizon if self.config.mode == "rtc" else None
        latencies = self.runner.warm_up(count, horizon)
        for latency in latencies:
            self.latency.add(latency, warmup=True)
        return latencies


@dataclass(frozen=True)
class _Prepared:
    """What the inference thread takes out of the lock to run the policy on."""

    epoch: int
    tick: int
    values: dict[str, Any]
    state: np.ndarray
    task: str | None
    rtc: RtcRequest | None


def run_inference_loop(runtime: PolicyRuntime, stop: threading.Event, on_result: Callable[[StepResult], None],
                       clock_ns: Callable[[], int], max_sleep_s: float = 0.05) -> None:
    """The inference thread's body: step the runtime, hand every result but Wait to `on_result`, sleep as told
    (at most max_sleep_s at a time, so stop() and clock jumps are noticed quickly)."""
    while not stop.is_set():
        result = runtime.run_once()
        if isinstance(result, Wait):
            sleep_s = min(max((result.until_ns - clock_ns()) / 1e9, 0.0), max_sleep_s)
            if sleep_s > 0:
                stop.wait(sleep_s)
            else:
                time.sleep(0)  # let the other threads run
            continue
        on_result(result)
