"""The live recorder: topics of a robot interface -> episodes of a LeRobotDataset, with every rule of the recorder
node and none of its ROS (the node only translates parameters, messages, goals and services to calls here).

Threads and why:
- The **recording thread** (`recorder-loop`) owns the `RecordingSession` and the dataset writer. Every change of
  the session (begin, stop, discard, save, episode removal hand-over) runs on it, as a command queued by another
  thread. So no lock is ever held while the writer works: a save that takes seconds, or a writer that hangs on a
  dead disk, never blocks the services, the status or the message input. Callers wait for a command's answer with
  a timeout and get a clear "busy" reply instead of a deadlock; the status reports a writer that has not returned
  for `writer_timeout_s`.
- The **ingest thread(s)** call `on_message`: decode (never raises), then add to the frame assembler under the input
  lock, which only guards the assembler (microseconds). While the recorder is not active, messages are counted and
  dropped undecoded: nothing accumulates in memory before the first activation or between episodes' activations.
- **Episode removal** (a whole-dataset rewrite) runs on a thread of its own; meanwhile goals are refused and the
  recording loop keeps running.

Rules that live here: which goals are accepted (`goal_refusal`), the disk guard (`DiskGuard`), what a stop or a
discard means in each state, episode removal, warnings about streams that never published, health
(`stream_health`).
"""
from __future__ import annotations

import queue
import shutil
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from lerobot_drivers.control.health import Status
from lerobot_recorder.alignment import DropReason
from lerobot_recorder.interface import RobotInterface, TopicSubscription, find_interface, load_interface
from lerobot_recorder.recording_dataset import (
    open_dataset_writer, remove_saved_episode, validate_saved_episode,
)
from lerobot_recorder.recording_session import (
    EpisodeGoal, EpisodeReport, RecorderBusy, RecorderState, RecordingSession,
)
from lerobot_recorder.stream_health import (
    RecorderCondition, TopicHealth, assess_recorder, assess_topic, silent_topics,
)

LOOP_PERIOD_S = 0.01
DISK_CHECK_PERIOD_S = 1.0
SILENT_TOPIC_WARNING_S = 5.0  # a required topic silent this long after activation is named in a warning
MB = 1024 * 1024


class Logger(Protocol):
    def info(self, msg: str) -> None: ...

    def warning(self, msg: str) -> None: ...

    def error(self, msg: str) -> None: ...


class RecorderUnresponsive(RuntimeError):
    """The recording thread did not answer a command in time (it is saving, or the writer hangs)."""


@dataclass
class RecorderSettings:
    """What the recorder node's parameters configure (see the node's PARAMETERS table for each one's meaning)."""

    interface: str  # robot interface file, or a name found by interface.find_interface
    dataset_root: str
    repo_id: str = ""
    use_videos: bool = True
    vcodec: str = "libsvtav1"
    append: bool = False
    reset_time_s: float = 5.0
    episode_time_s: float = 0.0  # duration of goals that ask for 0 (0 = until stopped)
    latency_s: float = 0.2
    validate_episodes: bool = True
    warn_free_disk_mb: float = 2048.0
    min_free_disk_mb: float = 512.0
    # A writer call (a frame, a save) that has not returned after this long is reported as hung; commands that
    # wait for the recording thread give up after it.
    writer_timeout_s: float = 120.0
    append_hint: str = "append:=true"  # how the user asks for appending (the node's parameter)


@dataclass(frozen=True)
class DiskState:
    free_mb: float
    low: bool  # below warn_free_disk_mb
    full: bool  # below min_free_disk_mb: save the episode in progress, refuse new ones


class DiskGuard:
    """Free space of the dataset's disk against the warn / min thresholds."""

    def __init__(self, warn_mb: float, min_mb: float) -> None:
        self.warn_mb = warn_mb
        self.min_mb = min_mb
        self.state = DiskState(float("nan"), False, False)

    def measure(self, root: Path) -> DiskState:
        """Free space where `root` is (or will be: its nearest existing parent)."""
        where = root
        while not where.exists() and where != where.parent:
            where = where.parent
        try:
            free_mb = shutil.disk_usage(where).free / MB
        except OSError:
            return self.state
        self.state = DiskState(free_mb, free_mb < self.warn_mb, free_mb < self.min_mb)
        return self.state


@dataclass(frozen=True)
class RecorderSnapshot:
    """The recorder as the recording loop last saw it (status topic, goal feedback, diagnostics)."""

    state: RecorderState
    message: str
    next_episode_index: int
    elapsed_s: float
    attempt: int = 0  # attempt of the episode in progress (0 = none)
    frames: int = 0
    dropped: int = 0
    task: str = ""
    encoder_backlog: int = 0
    removing: int | None = None  # index of the episode being removed


@dataclass(frozen=True)
class BeginOutcome:
    attempt: int = 0  # > 0: the episode started
    wait: bool = False  # not yet (a reset period or a save runs): ask again
    refused: str = ""  # why it cannot start at all


@dataclass(frozen=True)
class CommandOutcome:
    """Answer of ~/stop and ~/discard_episode."""

    success: bool
    message: str
    episode_index: int = -1
    total_episodes: int = 0


@dataclass
class _Command:
    run: Callable[[], Any]
    what: str
    done: Future = field(default_factory=Future)


class LiveRecorder:
    """See the module docstring. Lifecycle: `configure()` -> `activate()` / `deactivate()` -> `close()`."""

    def __init__(self, settings: RecorderSettings, clock: Callable[[], int], log: Logger) -> None:
        self.settings = settings
        self.clock = clock  # node clock, integer ns (sim time when use_sim_time)
        self.log = log
        self.interface: RobotInterface | None = None
        self.root = Path(settings.dataset_root).expanduser().resolve() if settings.dataset_root else Path()
        self.session: RecordingSession | None = None
        self.writer = None
        self.disk = DiskGuard(settings.warn_free_disk_mb, settings.min_free_disk_mb)
        self.topics: dict[str, TopicHealth] = {}
        self.snapshot = RecorderSnapshot(RecorderState.IDLE, "not configured", -1, 0.0)
        self.active = False
        self._input_lock = threading.Lock()  # guards the frame assembler only (add / poll / flush)
        self._commands: "queue.Queue[_Command]" = queue.Queue()
        self._reports: dict[int, EpisodeReport] = {}
        self._reports_lock = threading.Lock()
        self._goal_claimed = False
        self._goal_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop_loop = threading.Event()
        self._busy_with = ""  # what the recording thread does in the writer, while it does it
        self._busy_since = 0.0
        self._removal: threading.Thread | None = None
        self._removing: int | None = None
        self._last_disk_check = 0.0
        self._activated_at = 0.0
        self._silent_warned: set[str] = set()
        self._last_log: dict[str, float] = {}

    # =================================================================================== configure / close
    def configure(self) -> None:
        """Load the interface, open (append) or prepare the dataset, start the recording thread.

        Raises ValueError / FileNotFoundError / FileExistsError / InterfaceError with what is wrong."""
        s = self.settings
        if not s.interface:
            raise ValueError("parameter 'interface' is empty: give a robot interface file (or a name such as so101)")
        if not s.dataset_root:
            raise ValueError("parameter 'dataset_root' is empty: give the dataset folder")
        self.interface = load_interface(find_interface(s.interface))
        opened = open_dataset_writer(self.interface, self.root, repo_id=s.repo_id or None, use_videos=s.use_videos,
                                     vcodec=s.vcodec, append=s.append, append_hint=s.append_hint)
        self.writer, first_index = opened.writer, opened.next_episode_index
        validator = (lambda index: validate_saved_episode(self.root, index)) if s.validate_episodes else None
        self.session = RecordingSession(
            self.interface.stream_specs(), self.interface.fps, self.writer, self.interface.frame_values,
            latency_s=s.latency_s, reset_time_s=s.reset_time_s, validate_episode=validator,
            first_episode_index=first_index, clock=self.clock)
        self.topics = {sub.topic: TopicHealth(sub.topic, sub.msg_type, sub.stream_keys)
                       for sub in self.interface.subscriptions()}
        self.snapshot = RecorderSnapshot(RecorderState.IDLE, "", first_index, 0.0)
        self._stop_loop.clear()
        self._thread = threading.Thread(target=self._loop, name="recorder-loop", daemon=True)
        self._thread.start()
        self.log.info(f"configured: interface {self.interface.path} ({self.interface.fps} fps, {len(self.topics)} "
                      f"topics), dataset {self.root} "
                      f"({'appending after episode ' + str(first_index - 1) if first_index else 'new'})")

    @property
    def subscriptions(self) -> list[TopicSubscription]:
        return self.interface.subscriptions() if self.interface is not None else []

    def activate(self) -> None:
        self.active = True
        self._activated_at = time.monotonic()
        self._silent_warned.clear()
        self.log.info("active: accepting RecordEpisode goals")

    def deactivate(self, reason: str) -> None:
        """Stop accepting goals; an episode in progress is finished and saved (waits for it, bounded)."""
        self.active = False
        self.finish_in_progress(reason)

    def finish_in_progress(self, reason: str) -> None:
        """Save the episode in progress now (Ctrl-C, deactivate, shutdown), waiting at most writer_timeout_s."""
        if self._thread is None:
            return
        try:
            self._call(lambda: self._finish(reason), f"finishing the episode ({reason})")
        except RecorderUnresponsive as exc:
            self.log.error(f"{exc}; the episode in progress may be lost (the next append repairs the dataset)")

    def close(self, reason: str = "recorder closed") -> None:
        """Finish the episode in progress, stop the recording thread and close the dataset (bounded waits)."""
        self.active = False
        if self._thread is None:
            return
        self.finish_in_progress(reason)
        removal = self._removal
        if removal is not None:  # it holds the writer: let it finish (bounded), then close what it installed
            removal.join(timeout=self.settings.writer_timeout_s)
        try:
            self._call(self._close_writer, "closing the dataset")
        except RecorderUnresponsive as exc:
            self.log.error(f"{exc}; exiting without closing the dataset (the next append repairs it)")
        self._stop_loop.set()
        self._thread.join(timeout=5.0)
        self._thread = None
        self.session = None

    def _close_writer(self) -> None:
        writer, self.writer = self.writer, None
        if self.session is not None:
            self.session.writer = None
        if writer is None:
            return
        try:
            writer.close()
        except Exception as exc:  # noqa: BLE001 - report, keep closing
            self.log.error(f"closing the dataset failed: {exc}")

    # ============================================================================================= input
    def on_message(self, topic: str, msg: Any) -> None:
        """One message from a subscription (any thread). Never raises: a message that cannot be converted is an
        invalid sample, and an unexpected failure is counted as an invalid message of that topic."""
        health = self.topics.get(topic)
        session = self.session
        if health is None or session is None:
            return
        health.arrived(time.monotonic())
        if not self.active:
            health.ignored_inactive += 1  # nothing is buffered before (or between) activations
            return
        receive_ns = self.clock()
        try:
            samples = self.interface.decode(topic, msg, receive_ns)
        except Exception as exc:  # noqa: BLE001 - a malformed message must never stop the input
            health.rejected(f"{type(exc).__name__}: {exc}")
            self._warn_throttled(f"decode:{topic}", f"message on {topic} could not be converted: {exc!r}")
            return
        for sample in samples:
            if sample.error:
                health.rejected(sample.error)
                self._warn_throttled(f"invalid:{sample.key}:{sample.error[:80]}",
                                     f"rejected message on {topic} ({sample.key}): {sample.error}; frames that would "
                                     "use it are skipped")
            with self._input_lock:
                dropped = session.add_sample(sample, arrival_ns=receive_ns)
            if dropped == DropReason.NON_MONOTONIC:
                health.non_monotonic += 1
                self._warn_throttled(f"nonmono:{topic}", f"{topic} ({sample.key}): header.stamp {sample.stamp_ns} ns "
                                                         "is not after the previous message's stamp; message dropped")
            elif dropped == DropReason.IMPLAUSIBLE_STAMP:
                health.implausible_stamps += 1
                why = session.assembler.last_implausible.get(sample.key, "") if session.assembler else ""
                self._warn_throttled(f"implausible:{topic}", f"{topic} ({sample.key}): message {why}; dropped "
                                                             "(clock mismatch? check use_sim_time on both sides)")

    # ====================================================================================== goals (rules)
    def claim_goal(self) -> bool:
        """One RecordEpisode goal at a time: True when this caller may run the goal (release with release_goal)."""
        with self._goal_lock:
            if self._goal_claimed:
                return False
            self._goal_claimed = True
            return True

    def release_goal(self) -> None:
        with self._goal_lock:
            self._goal_claimed = False

    def goal_refusal(self, task: str, duration_s: float) -> str | None:
        """Why a RecordEpisode goal must be rejected now, or None to accept it."""
        snapshot = self.snapshot
        if self.session is None or self.interface is None:
            return "recorder is not configured (its configure failed: see its log)"
        if not self.active:
            return "recorder is not active (activate it, or start it with autostart:=true)"
        if self._goal_claimed:
            return "another RecordEpisode goal is in progress"
        if self.disk.state.full:
            return f"free disk space {self.disk.state.free_mb:.0f} MB is below min_free_disk_mb"
        if snapshot.state == RecorderState.ERROR:
            return f"recorder in ERROR: {snapshot.message}"
        if self._removing is not None:
            return f"episode {self._removing} is being removed from the dataset; send the goal when it is done"
        if duration_s < 0:
            return f"duration must be >= 0, got {duration_s}"
        task_source = self.interface.task
        if not task.strip() and task_source.text is None and task_source.topic is None:
            return "task is empty and the interface declares no task"
        return None

    def try_begin(self, task: str, duration_s: float) -> BeginOutcome:
        """Start an episode if the session is idle (a goal arriving during the reset period waits)."""
        duration = duration_s if duration_s > 0 else self.settings.episode_time_s
        return self._call(lambda: self._begin(task, duration), "starting an episode")

    def _begin(self, task: str, duration_s: float) -> BeginOutcome:
        session = self.session
        if session is None or session.state == RecorderState.ERROR or not self.active:
            return BeginOutcome(refused="error: recorder stopped or failed before the episode began")
        if self._removing is not None:
            return BeginOutcome(wait=True)
        if not session.can_begin:
            return BeginOutcome(wait=True)
        try:
            attempt = session.begin(EpisodeGoal(task, duration_s), self.clock())
        except (RecorderBusy, ValueError) as exc:
            return BeginOutcome(refused=f"error: {exc}")
        self._warn_silent_topics(at_episode_start=True)
        self.log.info(f"episode started: task {task!r}, "
                      f"duration {'until stopped' if duration_s <= 0 else f'{duration_s:g} s'}")
        self._publish_snapshot()
        return BeginOutcome(attempt=attempt)

    def take_report(self, attempt: int) -> EpisodeReport | None:
        """The report of episode `attempt` once it has ended (kept: ~/stop and the goal both read it)."""
        with self._reports_lock:
            return self._reports.get(attempt)

    def cancel(self, attempt: int) -> EpisodeReport | None:
        """Discard the episode `attempt` if it is the one in progress (cancel = discard)."""
        def run() -> EpisodeReport | None:
            session = self.session
            if session is None or session.episode is None or session.episode.attempt != attempt:
                return None
            report = session.discard(self.clock(), "canceled")
            self._handle_reports([report])
            return self.take_report(attempt)

        return self._call(run, "canceling the episode")

    # ========================================================================================= services
    def stop(self) -> CommandOutcome:
        """~/stop: finish and save the episode in progress (its report is the answer), or end the reset period."""
        def run() -> tuple[RecorderState | None, int]:
            session = self.session
            if session is None:
                return None, 0
            state = session.state
            attempt = session.episode.attempt if session.episode is not None else 0
            return (state if session.stop(self.clock(), "stopped") else None), attempt

        try:
            state, attempt = self._call(run, "stopping")
        except RecorderUnresponsive as exc:
            return CommandOutcome(False, str(exc))
        if state is None:
            return CommandOutcome(False, f"nothing to stop (state {self.snapshot.state.name})")
        if state == RecorderState.RESETTING:
            return CommandOutcome(True, "reset period ended")
        report = self._wait_for_report(attempt)
        if report is None:
            return CommandOutcome(False, f"the episode did not finish within {self.settings.writer_timeout_s:g} s")
        return CommandOutcome(report.saved, report.summary(), report.episode_index)

    def discard(self, episode_index: int = -1) -> CommandOutcome:
        """~/discard_episode. During an episode, -1 (the default) discards it (re-record). Otherwise it removes a
        saved episode: -1 = the last one, or the index given; later episodes are renumbered."""
        try:
            decision = self._call(lambda: self._discard_or_start_removal(episode_index), "discarding")
        except RecorderUnresponsive as exc:
            return CommandOutcome(False, str(exc))
        if isinstance(decision, CommandOutcome):
            return decision
        # A removal runs on its own thread; wait for it without holding anything.
        try:
            return decision.result(timeout=max(self.settings.writer_timeout_s, 600.0))
        except FutureTimeout:
            return CommandOutcome(False, f"removal of episode {self._removing} is still running; the status shows "
                                         "when it is done")

    def _discard_or_start_removal(self, episode_index: int) -> CommandOutcome | Future:
        session = self.session
        if session is None:
            return CommandOutcome(False, "the recorder is not configured")
        total = session.next_episode_index
        if session.state == RecorderState.RECORDING:
            if episode_index != -1:
                return CommandOutcome(False, f"an episode is being recorded: episode_index -1 (the default) discards "
                                             f"it; saved episode {episode_index} can be removed once it is over",
                                      total_episodes=total)
            report = session.discard(self.clock(), "re-record requested")
            self._handle_reports([report])
            return CommandOutcome(True, "episode in progress discarded (re-record: send the goal again)",
                                  total_episodes=session.next_episode_index)
        if session.state not in (RecorderState.IDLE, RecorderState.RESETTING):
            return CommandOutcome(False, f"cannot remove a saved episode while {session.state.name}",
                                  total_episodes=total)
        if self._removing is not None:
            return CommandOutcome(False, f"episode {self._removing} is already being removed", total_episodes=total)
        index = total - 1 if episode_index < 0 else episode_index
        if total == 0:
            return CommandOutcome(False, "the dataset has no saved episode to remove", total_episodes=0)
        if not 0 <= index < total:
            return CommandOutcome(False, f"episode {index} does not exist; the dataset has episodes 0..{total - 1}",
                                  total_episodes=total)
        # Hand the writer to a removal thread; the loop installs the new writer when it is done.
        writer, self.writer, session.writer = self.writer, None, None
        self._removing = index
        done: Future = Future()
        self._removal = threading.Thread(target=self._remove, args=(writer, index, done), name="recorder-removal",
                                         daemon=True)
        self._removal.start()
        self._publish_snapshot()
        return done

    def _remove(self, writer, index: int, done: Future) -> None:
        try:
            new_writer, removed = remove_saved_episode(writer, self.root, index)
            outcome = CommandOutcome(True, f"episode {removed} removed; {new_writer.total_episodes} episodes left",
                                     removed, int(new_writer.total_episodes))
        except Exception as exc:  # noqa: BLE001 - reported in the answer; the dataset is reopened as it is
            new_writer, outcome = None, CommandOutcome(False, f"episode {index} not removed: {exc}")
        self._commands.put(_Command(lambda: self._install_after_removal(new_writer, outcome, done),
                                    "installing the dataset after a removal"))

    def _install_after_removal(self, writer, outcome: CommandOutcome, done: Future) -> None:
        session = self.session
        self._removing = None
        if writer is None:
            try:
                writer = open_dataset_writer(self.interface, self.root, append=True, vcodec=self.settings.vcodec,
                                             use_videos=self.settings.use_videos).writer
            except Exception as exc:  # noqa: BLE001
                if session is not None:
                    session.fail(f"dataset could not be reopened after a failed removal: {exc}")
                self.log.error(outcome.message)
                done.set_result(outcome)
                return
        self.writer = writer
        if session is not None:
            session.writer = writer
            session.next_episode_index = int(writer.total_episodes)
            outcome = CommandOutcome(outcome.success, outcome.message, outcome.episode_index,
                                     session.next_episode_index)
        (self.log.info if outcome.success else self.log.error)(outcome.message)
        self._publish_snapshot()
        done.set_result(outcome)

    def set_disk_limits(self, warn_mb: float, min_mb: float) -> None:
        self.disk.warn_mb, self.disk.min_mb = warn_mb, min_mb
        self._last_disk_check = 0.0  # measure again at the next loop

    # ====================================================================================== recording loop
    def _loop(self) -> None:
        while not self._stop_loop.wait(LOOP_PERIOD_S):
            self._run_commands()
            now_ns = self.clock()
            if now_ns <= 0:
                continue  # use_sim_time without /clock yet
            self._check_disk(now_ns)
            if self.active:
                self._advance(now_ns)
                self._warn_silent_topics()
            self._publish_snapshot()
        self._run_commands()  # answer what is left (close)

    def _run_commands(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            if not command.done.set_running_or_notify_cancel():
                continue
            self._busy(command.what)
            try:
                command.done.set_result(command.run())
            except BaseException as exc:  # noqa: BLE001 - the caller gets it
                command.done.set_exception(exc)
            finally:
                self._busy("")

    def _advance(self, now_ns: int) -> None:
        session = self.session
        if session is None:
            return
        with self._input_lock:
            results = session.poll(now_ns)
        self._busy("writing frames" if session.state == RecorderState.RECORDING else "")
        try:
            reports = session.process(results, now_ns)
        except Exception as exc:  # noqa: BLE001 - writer/encoder/disk failure: stop recording, keep the node alive
            self.log.error(f"recording failed: {exc!r}")
            report = session.fail(f"recording failed: {exc}")
            reports = [report] if report else []
        finally:
            self._busy("")
        self._handle_reports(reports)

    def _finish(self, reason: str) -> None:
        session = self.session
        if session is None or session.state != RecorderState.RECORDING:
            return
        now = self.clock()
        session.stop(now, reason)
        # Ticks up to now that are not final yet are evaluated with what has arrived.
        with self._input_lock:
            results = session.assembler.flush(now) if session.assembler is not None else []
        self._busy(f"saving the episode ({reason})")
        try:
            reports = session.process(results, now)
            if session.state == RecorderState.RECORDING:  # no tick reached the end: save what there is
                reports.append(session.save(now, reason))
        finally:
            self._busy("")
        self._handle_reports(reports)

    def _handle_reports(self, reports: list[EpisodeReport]) -> None:
        for report in reports:
            with self._reports_lock:
                self._reports[report.attempt] = report
            text = report.summary()
            if report.reason.startswith("error") or (report.saved and report.validation_ok is False):
                self.log.error(text)
            else:
                self.log.info(text)
        if reports and self.session is not None:
            # Where frames go missing: messages received / arriving after their tick was decided, since start.
            streams = self.session.stream_summary().get("streams", {})
            self.log.info("streams since start: " + "; ".join(
                f"{key} received {c['received']} late {c['late']} dropped {dict(c['dropped']) or 0}"
                for key, c in streams.items()))

    def _check_disk(self, now_ns: int) -> None:
        now = time.monotonic()
        if now - self._last_disk_check < DISK_CHECK_PERIOD_S:
            return
        self._last_disk_check = now
        state = self.disk.measure(self.root)
        session = self.session
        if state.full and session is not None and session.state == RecorderState.RECORDING:
            self.log.error(f"free disk space {state.free_mb:.0f} MB < min_free_disk_mb {self.disk.min_mb:.0f}: "
                           "saving the episode and refusing new ones")
            session.stop(now_ns, "disk nearly full")

    def _warn_silent_topics(self, at_episode_start: bool = False) -> None:
        """Name each required topic that has not delivered one message (a camera that is not running, a wrong
        topic name): at the start of an episode, and once SILENT_TOPIC_WARNING_S after activation."""
        if not at_episode_start and time.monotonic() - self._activated_at < SILENT_TOPIC_WARNING_S:
            return
        required = {spec.key for spec in self.session.streams if spec.required} if self.session else set()
        for health in silent_topics(list(self.topics.values()), required):
            if health.topic in self._silent_warned and not at_episode_start:
                continue
            self._silent_warned.add(health.topic)
            since = time.monotonic() - self._activated_at
            self.log.warning(f"no message on {health.topic} ({', '.join(health.stream_keys)}) in the {since:.0f} s "
                             f"since the recorder became active: is its publisher running? Every frame needs it, so "
                             f"no frame can be recorded until it publishes")

    def _busy(self, what: str) -> None:
        if what and not self._busy_with:
            self._busy_since = time.monotonic()
        self._busy_with = what

    # ============================================================================================ queries
    def _publish_snapshot(self) -> None:
        session = self.session
        if session is None:
            return
        now = self.clock()
        episode = session.episode
        writer = self.writer
        self.snapshot = RecorderSnapshot(
            state=session.state, message=session.message, next_episode_index=session.next_episode_index,
            elapsed_s=session.elapsed_s(now), attempt=episode.attempt if episode else 0,
            frames=episode.frames if episode else 0, dropped=episode.dropped if episode else 0,
            task=episode.task if episode else "",
            encoder_backlog=int(getattr(writer, "encoder_backlog", 0) or 0) if writer is not None else 0,
            removing=self._removing)

    def health(self, name: str) -> list[Status]:
        """The recorder's status and one per topic (for /diagnostics)."""
        snapshot = self.snapshot
        session = self.session
        summary = session.stream_summary() if session is not None else {"streams": {}}
        busy_for = time.monotonic() - self._busy_since if self._busy_with else 0.0
        condition = RecorderCondition(
            state_name=snapshot.state.name, message=snapshot.message, dataset_root=str(self.root),
            episodes=snapshot.next_episode_index, encoder_backlog=snapshot.encoder_backlog,
            free_disk_mb=self.disk.state.free_mb, warn_free_disk_mb=self.disk.warn_mb,
            min_free_disk_mb=self.disk.min_mb, frames_produced=summary.get("frames_produced", 0),
            ticks_skipped=summary.get("ticks_skipped", 0), writer_busy_with=self._busy_with,
            writer_busy_s=busy_for)
        statuses = [assess_recorder(condition, f"{name}: recorder", self.settings.writer_timeout_s)]
        fps = self.interface.fps if self.interface is not None else 0
        now_s = time.monotonic()
        for health in self.topics.values():
            statuses.append(assess_topic(health, summary.get("streams", {}), fps, now_s,
                                         f"{name}: topic {health.topic}", self.active))
        return statuses

    def elapsed_feedback(self, attempt: int) -> RecorderSnapshot | None:
        """The snapshot when `attempt` is the episode in progress (goal feedback)."""
        snapshot = self.snapshot
        return snapshot if snapshot.attempt == attempt else None

    # ============================================================================================ helpers
    def _call(self, run: Callable[[], Any], what: str) -> Any:
        """Run `run` on the recording thread and return its result (its exception is raised here)."""
        if self._thread is None or threading.current_thread() is self._thread:
            return run()
        command = _Command(run, what)
        self._commands.put(command)
        try:
            return command.done.result(timeout=self.settings.writer_timeout_s)
        except FutureTimeout:
            command.done.cancel()
            busy = f" (it is {self._busy_with} since {time.monotonic() - self._busy_since:.0f} s)" if self._busy_with \
                else ""
            raise RecorderUnresponsive(f"the recorder did not get to {what} within "
                                       f"{self.settings.writer_timeout_s:g} s{busy}") from None

    def _wait_for_report(self, attempt: int) -> EpisodeReport | None:
        deadline = time.monotonic() + self.settings.writer_timeout_s
        while time.monotonic() < deadline:
            with self._reports_lock:
                report = self._reports.get(attempt)
            if report is not None:
                return report
            if self.session is None:
                return None
            time.sleep(0.02)
        return None

    def _warn_throttled(self, key: str, text: str, period_s: float = 2.0) -> None:
        now = time.monotonic()
        if now - self._last_log.get(key, 0.0) >= period_s:
            self._last_log[key] = now
            self.log.warning(text)

