"""Recorder node: topics of a robot interface -> LeRobotDataset v3 episodes (lifecycle node).

ROS side only: parameters, subscriptions, the RecordEpisode action, services, status and diagnostics. Frame
alignment and the episode state machine live in `lerobot_recorder.recorder.RecordingSession` (the bag converter
uses the same class), dataset writing in `lerobot_dataset`.

Lifecycle: configure loads the interface, opens (append) or creates the dataset and subscribes; activate starts
the frame loop and accepts goals; deactivate saves an episode in progress and stops the loop; cleanup closes the
dataset. Shutdown (Ctrl-C) saves an episode in progress and closes the dataset.

Episode control:
- action ~/record_episode (RecordEpisode): one goal at a time; a goal arriving during the reset period waits
  for its end. duration 0 = until ~/stop (or `episode_time_s` when that parameter is > 0). Cancel = discard
  (re-record semantics: nothing of the episode reaches the dataset).
- ~/stop (Trigger): finish the episode in progress now and save it; during the reset period: end it.
- ~/discard_episode (DiscardEpisode): discard the episode in progress (the goal ends with saved=false, reason
  "re-record requested"); with no episode in progress, remove saved episode `episode_index` (-1 = the last)
  with the dataset tools (later episodes are renumbered).
"""
from __future__ import annotations

import shutil
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from lerobot_msgs.action import RecordEpisode
from lerobot_msgs.msg import RecorderStatus
from lerobot_msgs.srv import DiscardEpisode
from std_srvs.srv import Trigger

from lerobot_recorder import ros_conversion as rc
from lerobot_recorder.alignment import DropReason
from lerobot_recorder.interface import find_interface, load_interface
from lerobot_recorder.recorder import EpisodeGoal, EpisodeReport, RecorderBusy, RecorderState, RecordingSession
from lerobot_recorder.session_io import delete_saved_episode, open_dataset_writer, validate_saved_episode

LOOP_PERIOD_S = 0.01
DISK_CHECK_PERIOD_S = 1.0
MB = 1024 * 1024


class _TopicStats:
    """Receive-rate window and error counts of one subscribed topic (for diagnostics and logs)."""

    def __init__(self) -> None:
        self.arrivals: deque[float] = deque(maxlen=512)
        self.invalid = Counter()  # error text (first 120 chars) -> count
        self.non_monotonic = 0
        self.received = 0

    def rate_hz(self, now: float, window_s: float = 2.0) -> float:
        recent = [t for t in tuple(self.arrivals) if now - t <= window_s]  # tuple(): one atomic copy
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)


class RecorderNode(LifecycleNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("recorder", **kwargs)
        self.declare_parameter("interface", "")
        self.declare_parameter("dataset_root", "")
        self.declare_parameter("repo_id", "")
        self.declare_parameter("use_videos", True)
        self.declare_parameter("vcodec", "libsvtav1")
        self.declare_parameter("reset_time_s", 5.0)
        self.declare_parameter("episode_time_s", 0.0)
        self.declare_parameter("append", False)
        self.declare_parameter("latency_s", 0.2)
        self.declare_parameter("status_rate_hz", 2.0)
        self.declare_parameter("diagnostics_period_s", 1.0)
        self.declare_parameter("warn_free_disk_mb", 2048.0)
        self.declare_parameter("min_free_disk_mb", 512.0)
        self.declare_parameter("validate_episodes", True)
        self.declare_parameter("autostart", False)

        # Two locks so that message callbacks never wait for the writer (a save can take seconds):
        # _input_lock guards the frame assembler (add/poll), _lock the session state and the writer.
        self._input_lock = threading.Lock()
        self._lock = threading.RLock()
        self._session: RecordingSession | None = None
        self._writer = None
        self._interface = None
        self._topic_subs = []
        self._ingest_node = None
        self._ingest_executor = None
        self._ingest_thread: threading.Thread | None = None
        self._topic_stats: dict[str, _TopicStats] = {}
        self._reports: dict[int, EpisodeReport] = {}
        self._goal_busy = False
        self._active = False
        self._loop_thread: threading.Thread | None = None
        self._loop_stop = threading.Event()
        self._free_disk_mb = float("nan")
        self._disk_full = False
        self._last_disk_check = 0.0
        self._last_log: dict[str, float] = {}
        self._cb = ReentrantCallbackGroup()
        self._status_pub = None
        self._diag_pub = None
        self._rec_timers = []
        self._action_server = None
        self._rec_services = []

    # ------------------------------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except Exception as exc:  # a bad file or folder must not kill the node; say what is wrong
            self.get_logger().error(f"configure failed: {exc}")
            self._teardown()
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        p = self._params()
        if not p["interface"]:
            raise ValueError("parameter 'interface' is empty: give a robot interface file (or a name in config/robots)")
        if not p["dataset_root"]:
            raise ValueError("parameter 'dataset_root' is empty: give the dataset folder")
        self._interface = load_interface(find_interface(p["interface"]))
        root = Path(p["dataset_root"]).expanduser().resolve()
        self._writer, first_index = open_dataset_writer(
            self._interface, root, repo_id=p["repo_id"] or None, use_videos=p["use_videos"], vcodec=p["vcodec"],
            append=p["append"])
        self._root = root
        validator = (lambda index: validate_saved_episode(root, index)) if p["validate_episodes"] else None
        self._session = RecordingSession(
            self._interface.stream_specs(), self._interface.fps, self._writer, self._interface.frame_values,
            latency_s=p["latency_s"], reset_time_s=p["reset_time_s"], validate_episode=validator,
            first_episode_index=first_index, clock=self._now_ns)
        self._start_ingest()
        self._status_pub = self.create_publisher(RecorderStatus, "~/status", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._rec_timers.append(self.create_timer(1.0 / max(p["status_rate_hz"], 0.1), self._publish_status,
                                              callback_group=self._cb))
        self._rec_timers.append(self.create_timer(p["diagnostics_period_s"], self._publish_diagnostics,
                                              callback_group=self._cb))
        self._action_server = ActionServer(
            self, RecordEpisode, "~/record_episode", execute_callback=self._execute_goal,
            goal_callback=self._on_goal, cancel_callback=lambda _goal: CancelResponse.ACCEPT,
            callback_group=self._cb)
        self._rec_services = [
            self.create_service(Trigger, "~/stop", self._on_stop, callback_group=self._cb),
            self.create_service(DiscardEpisode, "~/discard_episode", self._on_discard, callback_group=self._cb),
        ]
        self.get_logger().info(
            f"configured: interface {self._interface.path} ({self._interface.fps} fps, "
            f"{len(self._topic_subs)} topics), dataset {root} "
            f"({'appending after episode ' + str(first_index - 1) if first_index else 'new'})")

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._loop_stop.clear()
        self._loop_thread = threading.Thread(target=self._frame_loop, name="recorder-frames", daemon=True)
        self._loop_thread.start()
        self._active = True
        self.get_logger().info("active: accepting RecordEpisode goals")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._finish_in_progress("recorder deactivated")
        self._stop_loop()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.shutdown_cleanly("shutdown")
        return TransitionCallbackReturn.SUCCESS

    def shutdown_cleanly(self, reason: str) -> None:
        """Save an episode in progress and close the dataset (Ctrl-C, shutdown transition)."""
        self._active = False
        self._finish_in_progress(reason)
        self._stop_loop()
        self._teardown()

    def _finish_in_progress(self, reason: str) -> None:
        with self._lock:
            session = self._session
            if session is None or session.state != RecorderState.RECORDING:
                return
            now = self._now_ns()
            session.stop(now, reason)
            # Ticks up to now that are not final yet are evaluated with what has arrived.
            with self._input_lock:
                assembler = session.assembler
                results = assembler.flush(now) if assembler is not None else []
            self._handle_reports(session.process(results, now))
            if session.state == RecorderState.RECORDING:  # no tick reached the end: save what there is
                self._handle_reports([session.save(now, reason)])

    def _stop_loop(self) -> None:
        self._loop_stop.set()
        if self._loop_thread is not None and self._loop_thread is not threading.current_thread():
            self._loop_thread.join(timeout=30)
        self._loop_thread = None

    def _start_ingest(self) -> None:
        """Subscriptions live on a hidden helper node spun by its own executor thread.

        Hundreds of messages per second (joint states at 100 Hz per arm, several cameras) go through them; rclpy's
        MultiThreadedExecutor is too slow for that on a small machine (DDS then overwrites unread samples), so
        they get a single-threaded executor of their own, while goals, services and timers stay on this
        lifecycle node. (rclpy's experimental EventsExecutor received nothing when spun in a second thread.)"""
        from rclpy.executors import SingleThreadedExecutor

        executor = SingleThreadedExecutor(context=self.context)
        node = rclpy.create_node(f"_{self.get_name()}_ingest", namespace=self.get_namespace(), context=self.context)
        for sub in self._interface.subscriptions():
            self._topic_stats[sub.topic] = _TopicStats()
            events = SubscriptionEventCallbacks(
                incompatible_qos=lambda event, s=sub: self.get_logger().error(
                    f"{s.topic}: a publisher's QoS is incompatible with this subscription ({s.qos.describe()}; "
                    f"policy {getattr(event.last_policy_kind, 'name', event.last_policy_kind)}): no messages will arrive from it. Set the topic's qos "
                    f"in the interface file to match the publisher."))
            self._topic_subs.append(node.create_subscription(
                rc.message_class(sub.msg_type), sub.topic,
                lambda msg, topic=sub.topic: self._on_message(topic, msg), sub.qos.to_rclpy(),
                event_callbacks=events))
        executor.add_node(node)
        self._ingest_node, self._ingest_executor = node, executor
        self._ingest_thread = threading.Thread(target=self._spin_ingest, name="recorder-ingest", daemon=True)
        self._ingest_thread.start()

    def _spin_ingest(self) -> None:
        try:
            self._ingest_executor.spin()
        except Exception as exc:  # context shut down (Ctrl-C) or executor shutdown: nothing more to read
            if self.context.ok():
                self.get_logger().error(f"message ingest stopped: {exc!r}")

    def _stop_ingest(self) -> None:
        executor, node = self._ingest_executor, self._ingest_node
        self._ingest_executor = self._ingest_node = None
        if executor is not None:
            executor.shutdown(timeout_sec=5.0)
        if self._ingest_thread is not None:
            self._ingest_thread.join(timeout=5.0)
            self._ingest_thread = None
        if node is not None:
            node.destroy_node()
        self._topic_subs = []

    def _teardown(self) -> None:
        self._stop_ingest()
        for timer in self._rec_timers:
            self.destroy_timer(timer)
        self._rec_timers = []
        for srv in self._rec_services:
            self.destroy_service(srv)
        self._rec_services = []
        if self._action_server is not None:
            self._action_server.destroy()
            self._action_server = None
        with self._lock:
            if self._writer is not None:
                try:
                    self._writer.close()
                except Exception as exc:
                    self.get_logger().error(f"closing the dataset failed: {exc}")
                self._writer = None
            self._session = None

    def _params(self) -> dict[str, Any]:
        names = ["interface", "dataset_root", "repo_id", "use_videos", "vcodec", "reset_time_s", "episode_time_s",
                 "append", "latency_s", "status_rate_hz", "diagnostics_period_s", "warn_free_disk_mb",
                 "min_free_disk_mb", "validate_episodes"]
        return {n: self.get_parameter(n).value for n in names}

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _log_throttled(self, key: str, text: str, period_s: float = 2.0) -> None:
        now = time.monotonic()
        if now - self._last_log.get(key, 0.0) >= period_s:
            self._last_log[key] = now
            self.get_logger().warning(text)

    # ------------------------------------------------------------------------------------------- input
    def _on_message(self, topic: str, msg: Any) -> None:
        receive_ns = self._now_ns()
        stats = self._topic_stats[topic]
        stats.received += 1
        stats.arrivals.append(time.monotonic())
        samples = self._interface.decode(topic, msg, receive_ns)
        with self._input_lock:
            session = self._session
            if session is None:
                return
            for sample in samples:
                if sample.error:
                    stats.invalid[sample.error[:120]] += 1
                    self._log_throttled(
                        f"invalid:{sample.key}:{sample.error[:80]}",
                        f"rejected message on {topic} ({sample.key}): {sample.error}; "
                        "frames that would use it are skipped")
                if session.add_sample(sample) == DropReason.NON_MONOTONIC:
                    stats.non_monotonic += 1
                    self._log_throttled(f"nonmono:{topic}", f"{topic} ({sample.key}): header.stamp {sample.stamp_ns} "
                                        "ns is not after the previous message's stamp; message dropped")

    # ------------------------------------------------------------------------------------------- frames
    def _frame_loop(self) -> None:
        while not self._loop_stop.wait(LOOP_PERIOD_S):
            now = self._now_ns()
            if now <= 0:
                continue  # use_sim_time without /clock yet
            self._check_disk(now)
            session = self._session
            if session is None:
                return
            with self._input_lock:
                results = session.poll(now)
            with self._lock:
                try:
                    reports = session.process(results, now)
                except Exception as exc:  # writer/encoder/disk failure: stop recording, keep the node alive
                    self.get_logger().error(f"recording failed: {exc!r}")
                    report = session.fail(f"recording failed: {exc}")
                    reports = [report] if report else []
                self._handle_reports(reports)

    def _handle_reports(self, reports: list[EpisodeReport]) -> None:
        for report in reports:
            self._reports[report.attempt] = report
            text = report.summary()
            if report.saved and report.validation_ok is False:
                self.get_logger().error(text)
            else:
                self.get_logger().info(text)
        if reports and self._session is not None:
            # Where frames go missing: messages received / arriving after their tick was decided, since start.
            streams = self._session.stream_summary().get("streams", {})
            self.get_logger().info("streams since start: " + "; ".join(
                f"{key} received {c['received']} late {c['late']} dropped {dict(c['dropped']) or 0}"
                for key, c in streams.items()))

    def _check_disk(self, now_ns: int) -> None:
        now = time.monotonic()
        if now - self._last_disk_check < DISK_CHECK_PERIOD_S:
            return
        self._last_disk_check = now
        try:
            self._free_disk_mb = shutil.disk_usage(self._root).free / MB
        except OSError:
            return
        p_min = self.get_parameter("min_free_disk_mb").value
        self._disk_full = self._free_disk_mb < p_min
        if self._disk_full:
            with self._lock:
                session = self._session
                if session is not None and session.state == RecorderState.RECORDING:
                    self.get_logger().error(
                        f"free disk space {self._free_disk_mb:.0f} MB < min_free_disk_mb {p_min:.0f}: "
                        "saving the episode and refusing new ones")
                    session.stop(now_ns, "disk nearly full")

    # ------------------------------------------------------------------------------------------- action
    def _on_goal(self, goal: RecordEpisode.Goal) -> GoalResponse:
        reason = None
        if not self._active:
            reason = "recorder is not active (configure and activate it, or set autostart)"
        elif self._goal_busy:
            reason = "another RecordEpisode goal is in progress"
        elif self._disk_full:
            reason = f"free disk space {self._free_disk_mb:.0f} MB is below min_free_disk_mb"
        elif self._session is None or self._session.state == RecorderState.ERROR:
            reason = f"recorder in ERROR: {self._session.message if self._session else 'no dataset'}"
        elif goal.duration < 0:
            reason = f"duration must be >= 0, got {goal.duration}"
        elif not goal.task.strip() and self._interface.task.text is None and self._interface.task.topic is None:
            reason = "task is empty and the interface declares no task"
        if reason:
            self.get_logger().warning(f"RecordEpisode goal rejected: {reason}")
            return GoalResponse.REJECT
        self._goal_busy = True
        return GoalResponse.ACCEPT

    def _execute_goal(self, goal_handle) -> RecordEpisode.Result:
        try:
            return self._run_goal(goal_handle)
        finally:
            self._goal_busy = False

    def _run_goal(self, goal_handle) -> RecordEpisode.Result:
        request = goal_handle.request
        duration = request.duration if request.duration > 0 else self.get_parameter("episode_time_s").value
        feedback = RecordEpisode.Feedback()
        # Wait for the reset period (or a save) to finish.
        while True:
            with self._lock:
                session = self._session
                if session is None or session.state == RecorderState.ERROR or not self._active:
                    goal_handle.abort()
                    return RecordEpisode.Result(episode_index=-1, saved=False,
                                                reason="error: recorder stopped or failed before the episode began")
                if goal_handle.is_cancel_requested:
                    goal_handle.canceled()
                    return RecordEpisode.Result(episode_index=-1, saved=False, reason="canceled")
                if session.can_begin:
                    try:
                        attempt = session.begin(EpisodeGoal(request.task, duration), self._now_ns())
                    except (RecorderBusy, ValueError) as exc:
                        goal_handle.abort()
                        return RecordEpisode.Result(episode_index=-1, saved=False, reason=f"error: {exc}")
                    break
            goal_handle.publish_feedback(feedback)
            time.sleep(0.05)
        self.get_logger().info(f"episode started: task {request.task!r}, "
                               f"duration {'until stopped' if duration <= 0 else f'{duration:g} s'}")
        last_feedback = 0.0
        while True:
            report = self._reports.pop(attempt, None)
            if report is not None:
                break
            if goal_handle.is_cancel_requested:
                with self._lock:
                    report = self._session.discard(self._now_ns(), "canceled") if self._session else None
                    if report is not None:
                        self._handle_reports([report])
                        self._reports.pop(attempt, None)
                        break
                continue
            if not self._active and self._session is not None and self._session.state != RecorderState.RECORDING:
                report = self._reports.pop(attempt, None)
                break
            now = time.monotonic()
            if now - last_feedback >= 0.1:
                last_feedback = now
                with self._lock:
                    episode = self._session.episode if self._session else None
                    if episode is not None and episode.attempt == attempt:
                        feedback.frames = episode.frames
                        feedback.dropped = episode.dropped
                        feedback.elapsed = self._session.elapsed_s(self._now_ns())
                goal_handle.publish_feedback(feedback)
            time.sleep(0.02)
        if report is None:
            goal_handle.abort()
            return RecordEpisode.Result(episode_index=-1, saved=False, reason="error: episode lost")
        reason = report.reason
        if report.saved and report.validation_ok is False:  # the episode is kept; say what the check found
            reason += f"; validation FAILED: {report.validation_message}"
        result = RecordEpisode.Result(
            episode_index=report.episode_index, frames=report.frames, saved=report.saved, reason=reason)
        if report.reason == "canceled" or (goal_handle.is_cancel_requested and not report.saved):
            goal_handle.canceled()
        elif report.reason.startswith("error"):
            goal_handle.abort()
        else:
            goal_handle.succeed()
        return result

    # ------------------------------------------------------------------------------------------ services
    def _wait_report(self, attempt: int, timeout_s: float = 120.0) -> EpisodeReport | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                session = self._session
                if session is not None and session.last_report is not None and session.last_report.attempt == attempt:
                    return session.last_report
                if session is None:
                    return None
            time.sleep(0.02)
        return None

    def _on_stop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            session = self._session
            state = session.state if session else None
            attempt = session.episode.attempt if session and session.episode else None
            if session is None or not session.stop(self._now_ns(), "stopped"):
                response.success = False
                response.message = f"nothing to stop (state {state.name if state is not None else 'UNCONFIGURED'})"
                return response
        if state == RecorderState.RESETTING:
            response.success, response.message = True, "reset period ended"
            return response
        report = self._wait_report(attempt)
        response.success = report is not None
        response.message = report.summary() if report else "the episode did not finish within 120 s"
        return response

    def _on_discard(self, request: DiscardEpisode.Request, response: DiscardEpisode.Response):
        with self._lock:
            session = self._session
            if session is not None and session.state == RecorderState.RECORDING:
                report = session.discard(self._now_ns(), "re-record requested")
                self._handle_reports([report])
                response.success = True
                response.episode_index = -1
                response.total_episodes = session.next_episode_index
                response.message = "episode in progress discarded (re-record: send the goal again)"
                return response
            if session is None or session.state not in (RecorderState.IDLE, RecorderState.RESETTING):
                response.success = False
                response.episode_index = -1
                response.total_episodes = session.next_episode_index if session else 0
                state_name = session.state.name if session else "UNCONFIGURED"
                response.message = f"cannot remove a saved episode while {state_name}"
                return response
            # No episode in progress: remove a saved one (the dataset is rebuilt without it, then reopened).
            try:
                writer, removed = delete_saved_episode(self._writer, self._root, request.episode_index)
            except Exception as exc:
                response.success = False
                response.episode_index = -1
                response.message = f"episode {request.episode_index} not removed: {exc}"
                try:  # keep recording possible: reopen the dataset as it is
                    self._writer.total_episodes  # still open?
                    if getattr(self._writer, "_closed", False):
                        self._writer, _ = open_dataset_writer(self._interface, self._root, append=True)
                        session.writer = self._writer
                except Exception as reopen_exc:
                    session.fail(f"dataset could not be reopened after a failed removal: {reopen_exc}")
                response.total_episodes = session.next_episode_index
                self.get_logger().error(response.message)
                return response
            self._writer = writer
            session.writer = writer
            session.next_episode_index = int(writer.total_episodes)
            response.success = True
            response.episode_index = removed
            response.total_episodes = int(writer.total_episodes)
            response.message = f"episode {removed} removed; {writer.total_episodes} episodes left"
            self.get_logger().info(response.message)
            return response

    # ------------------------------------------------------------------------------------ status, diagnostics
    def _publish_status(self) -> None:
        msg = RecorderStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        with self._lock:
            session = self._session
            if session is None:
                return
            now = self._now_ns()
            msg.state = int(session.state)
            msg.message = session.message
            msg.dataset_root = str(self._root)
            msg.episode_index = session.next_episode_index
            msg.elapsed = session.elapsed_s(now)
            if session.episode is not None:
                msg.frames_in_episode = session.episode.frames
                msg.dropped_frames = session.episode.dropped
                msg.task = session.episode.task
            msg.encoder_backlog = int(getattr(self._writer, "encoder_backlog", 0) or 0)
        self._status_pub.publish(msg)

    def _publish_diagnostics(self) -> None:
        try:
            self._publish_diagnostics_unguarded()
        except Exception as exc:  # diagnostics must never take the recorder down
            self._log_throttled("diagnostics", f"publishing diagnostics failed: {exc!r}", 10.0)

    def _publish_diagnostics_unguarded(self) -> None:
        with self._lock:
            session = self._session
            if session is None:
                return
            summary = session.stream_summary()
            state = session.state
            message = session.message
            backlog = int(getattr(self._writer, "encoder_backlog", 0) or 0)
            episodes = session.next_episode_index
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        name = self.get_fully_qualified_name()
        warn_mb = self.get_parameter("warn_free_disk_mb").value
        level = DiagnosticStatus.OK
        text = state.name.lower()
        if state == RecorderState.ERROR:
            level, text = DiagnosticStatus.ERROR, f"error: {message}"
        elif self._disk_full:
            level, text = DiagnosticStatus.ERROR, f"disk nearly full ({self._free_disk_mb:.0f} MB free)"
        elif self._free_disk_mb < warn_mb:
            level, text = DiagnosticStatus.WARN, f"low disk space ({self._free_disk_mb:.0f} MB free)"
        array.status.append(_status(level, f"{name}: recorder", text, {
            "state": state.name, "dataset_root": str(self._root), "episodes": episodes,
            "encoder_backlog": backlog, "free_disk_mb": f"{self._free_disk_mb:.0f}",
            "frames_produced": summary.get("frames_produced", 0), "ticks_skipped": summary.get("ticks_skipped", 0)}))
        fps = self._interface.fps
        now = time.monotonic()
        streams = summary.get("streams", {})
        for sub in self._interface.subscriptions():
            stats = self._topic_stats[sub.topic]
            rate = stats.rate_hz(now)
            values: dict[str, Any] = {"rate_hz": f"{rate:.1f}", "expected_hz": fps, "received": stats.received,
                                      "non_monotonic": stats.non_monotonic,
                                      "invalid": sum(stats.invalid.values())}
            for key in sub.stream_keys:
                counters = streams.get(key, {})
                for reason, count in counters.get("misses", {}).items():
                    values[f"{key} ticks {reason}"] = count
                for reason, count in counters.get("dropped", {}).items():
                    values[f"{key} messages {reason}"] = count
                values[f"{key} late"] = counters.get("late", 0)
            if stats.invalid:
                values["last error"] = next(reversed(stats.invalid))
            level, text = DiagnosticStatus.OK, f"{rate:.1f} Hz"
            if stats.received == 0:
                level, text = DiagnosticStatus.WARN, "no messages received"
            elif rate < 0.9 * fps and sub.msg_type != rc.STRING:
                level, text = DiagnosticStatus.WARN, f"{rate:.1f} Hz < interface fps {fps}"
            if stats.invalid or stats.non_monotonic:
                level = DiagnosticStatus.WARN
                text += f"; {sum(stats.invalid.values())} invalid, {stats.non_monotonic} non-monotonic messages"
            array.status.append(_status(level, f"{name}: topic {sub.topic}", text, values))
        self._diag_pub.publish(array)


def _status(level: int, name: str, message: str, values: dict[str, Any]) -> DiagnosticStatus:
    status = DiagnosticStatus(level=level, name=name, message=message, hardware_id="lerobot_recorder")
    status.values = [KeyValue(key=str(k), value=str(v)) for k, v in values.items()]
    return status


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = RecorderNode()
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    if node.get_parameter("autostart").value:
        if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            node.get_logger().error("autostart: configure failed")
        elif node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            node.get_logger().error("autostart: activate failed")
    print("recorder ready", flush=True)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.shutdown_cleanly("recorder shut down")
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
