"""`recorder`: topics of a robot interface -> LeRobotDataset v3 episodes (lifecycle node).

ROS translation only: parameters, subscriptions, the RecordEpisode action, the services, status and diagnostics.
Every rule (which goals are accepted, the disk guard, what stop and discard mean, episode removal, stream health)
is `lerobot_recorder.live_recorder.LiveRecorder`; frame alignment and the episode state machine are
`lerobot_recorder.recording_session.RecordingSession` (the bag converter uses the same class); dataset writing is
`lerobot_dataset`.

Lifecycle: configure loads the interface, opens (append) or prepares the dataset and subscribes; activate starts
recording input and accepts goals; deactivate saves an episode in progress; cleanup closes the dataset. Shutdown
(Ctrl-C, SIGTERM) saves an episode in progress and closes the dataset. `autostart` (default true) does configure +
activate at start-up; a failed configure (no interface, a dataset folder that exists) ends the process with exit
code 1 and the reason in its log.

Episode control:
- action ~/record_episode (RecordEpisode): one goal at a time; a goal arriving during the reset period waits
  for its end. duration 0 = until ~/stop (or `episode_time_s` when that parameter is > 0). Cancel = discard
  (re-record semantics: nothing of the episode reaches the dataset). An episode without a single frame ends the
  goal aborted, with the streams that were missing in the reason.
- ~/stop (Trigger): finish the episode in progress now and save it; during the reset period: end it.
- ~/discard_episode (DiscardEpisode): episode_index -1 (the default) discards the episode in progress (the goal
  ends with saved=false, reason "re-record requested") or, with none in progress, removes the last saved episode;
  an index >= 0 removes that saved episode (later episodes are renumbered).

Parameters: the PARAMETERS table below (`recorder --help`).
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from lerobot_drivers.nodes.lifecycle_main import run_lifecycle_node
from lerobot_drivers.nodes.parameters import AUTOSTART, ParameterSpec, declare_parameters, parameter_values
from lerobot_msgs.action import RecordEpisode
from lerobot_msgs.msg import RecorderStatus
from lerobot_msgs.srv import DiscardEpisode
from std_srvs.srv import Trigger

from lerobot_recorder import ros_conversion as rc
from lerobot_recorder.live_recorder import LiveRecorder, RecorderSettings, RecorderUnresponsive

GOAL_POLL_S = 0.02
INGEST_RESTART_S = 1.0

PARAMETERS = (
    ParameterSpec("interface", "", "robot interface file, or a name in share/lerobot_bringup/config/robots "
                  "(sim_so101, so101, koch, ...) or $LEROBOT_ROBOTS_PATH", read_only=True),
    ParameterSpec("dataset_root", "", "dataset folder (created with the first saved episode)", read_only=True),
    ParameterSpec("repo_id", "", "stored with the dataset (informational)", read_only=True),
    ParameterSpec("append", False, "add episodes to an existing dataset (its features must match the interface; a "
                  "crash's half-written save is repaired first); without it a folder with saved episodes is refused",
                  read_only=True),
    ParameterSpec("use_videos", True, "cameras as video (true) or PNG images (false)", read_only=True),
    ParameterSpec("vcodec", "libsvtav1", "video codec: libsvtav1 (upstream's default), h264 (about twice as fast), "
                  "...", read_only=True),
    ParameterSpec("reset_time_s", 5.0, "reset period after each episode, from the end of its save (nothing is "
                  "written; a goal arriving meanwhile waits)", bounds=(0.0, 3600.0), read_only=True),
    ParameterSpec("episode_time_s", 0.0, "duration of goals that ask for 0 s (0 = until stopped)",
                  bounds=(0.0, 86400.0)),
    ParameterSpec("latency_s", 0.2, "how long a frame waits for late messages before it is assembled",
                  bounds=(0.0, 10.0), read_only=True),
    ParameterSpec("validate_episodes", True, "check each saved episode (meta row, data rows, video span)",
                  read_only=True),
    ParameterSpec("warn_free_disk_mb", 2048.0, "free disk space below which diagnostics warn (MB)",
                  bounds=(0.0, 1e12)),
    ParameterSpec("min_free_disk_mb", 512.0, "free disk space below which the episode in progress is saved and new "
                  "goals are refused until space is back (MB)", bounds=(0.0, 1e12)),
    ParameterSpec("writer_timeout_s", 120.0, "a dataset writer call (a frame, a save) that has not returned after "
                  "this long is reported as hung; service calls waiting for it give up", bounds=(1.0, 3600.0),
                  read_only=True),
    ParameterSpec("status_rate_hz", 2.0, "rate of ~/status", bounds=(0.1, 100.0), read_only=True),
    ParameterSpec("diagnostics_period_s", 1.0, "period of /diagnostics", bounds=(0.05, 60.0), read_only=True),
    AUTOSTART,
)
DYNAMIC = ("episode_time_s", "warn_free_disk_mb", "min_free_disk_mb")


class _RosLog:
    """The rclpy logger behind the `Logger` protocol of the core (one call site per severity, as rclpy needs)."""

    def __init__(self, node: LifecycleNode) -> None:
        self._logger = node.get_logger()

    def info(self, msg: str) -> None:
        self._logger.info(msg)

    def warning(self, msg: str) -> None:
        self._logger.warning(msg)

    def error(self, msg: str) -> None:
        self._logger.error(msg)


class RecorderNode(LifecycleNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("recorder", **kwargs)
        declare_parameters(self, PARAMETERS)
        self.add_post_set_parameters_callback(self._on_parameters_set)
        self.recorder: LiveRecorder | None = None
        self._callback_group = ReentrantCallbackGroup()
        self._ingest_node = None
        self._ingest_executor = None
        self._ingest_thread: threading.Thread | None = None
        self._ingest_stop = threading.Event()
        self._status_pub = None
        self._diag_pub = None
        # (not `_timers` / `_services`: rclpy's Node keeps its own lists under those names)
        self._recorder_timers = []
        self._action_server = None
        self._recorder_services = []

    # ------------------------------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = parameter_values(self, PARAMETERS)
        settings = RecorderSettings(
            interface=p["interface"], dataset_root=p["dataset_root"], repo_id=p["repo_id"],
            use_videos=p["use_videos"], vcodec=p["vcodec"], append=p["append"], reset_time_s=p["reset_time_s"],
            episode_time_s=p["episode_time_s"], latency_s=p["latency_s"], validate_episodes=p["validate_episodes"],
            warn_free_disk_mb=p["warn_free_disk_mb"], min_free_disk_mb=p["min_free_disk_mb"],
            writer_timeout_s=p["writer_timeout_s"])
        self.recorder = LiveRecorder(settings, self._now_ns, _RosLog(self))
        try:
            self.recorder.configure()
        except Exception as exc:  # noqa: BLE001 - a bad file or folder: say what is wrong, fail the transition
            self.get_logger().error(f"configure failed: {exc}")
            self._teardown()
            return TransitionCallbackReturn.FAILURE
        self._start_ingest()
        self._status_pub = self.create_publisher(RecorderStatus, "~/status", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._recorder_timers = [
            self.create_timer(1.0 / p["status_rate_hz"], self._publish_status, callback_group=self._callback_group),
            self.create_timer(p["diagnostics_period_s"], self._publish_diagnostics, callback_group=self._callback_group),
        ]
        self._action_server = ActionServer(
            self, RecordEpisode, "~/record_episode", execute_callback=self._execute_goal,
            goal_callback=self._on_goal, cancel_callback=lambda _goal: CancelResponse.ACCEPT,
            callback_group=self._callback_group)
        self._recorder_services = [
            self.create_service(Trigger, "~/stop", self._on_stop, callback_group=self._callback_group),
            self.create_service(DiscardEpisode, "~/discard_episode", self._on_discard, callback_group=self._callback_group),
        ]
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.recorder.activate()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.recorder.deactivate("recorder deactivated")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.shutdown_cleanly("shutdown")
        return TransitionCallbackReturn.SUCCESS

    def shutdown_cleanly(self, reason: str = "recorder shut down") -> None:
        """Save an episode in progress and close the dataset (Ctrl-C, SIGTERM, shutdown transition)."""
        self._teardown(reason)

    def _teardown(self, reason: str = "recorder cleaned up") -> None:
        self._stop_ingest()
        for timer in self._recorder_timers:
            self.destroy_timer(timer)
        self._recorder_timers = []
        for service in self._recorder_services:
            self.destroy_service(service)
        self._recorder_services = []
        if self._action_server is not None:
            self._action_server.destroy()
            self._action_server = None
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.close(reason)

    def _on_parameters_set(self, parameters) -> None:
        if self.recorder is not None and any(p.name in DYNAMIC for p in parameters):
            values = parameter_values(self, PARAMETERS)
            self.recorder.settings.episode_time_s = values["episode_time_s"]
            self.recorder.set_disk_limits(values["warn_free_disk_mb"], values["min_free_disk_mb"])

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    # ------------------------------------------------------------------------------------------- ingest
    def _start_ingest(self) -> None:
        """Subscriptions live on a hidden helper node spun by its own executor thread.

        Hundreds of messages per second (joint states at 100 Hz per arm, several cameras) go through them; rclpy's
        MultiThreadedExecutor is too slow for that on a small machine (DDS then overwrites unread samples), so
        they get a single-threaded executor of their own, while goals, services and timers stay on this
        lifecycle node. The thread restarts the executor if it ever ends with an error."""
        # use_global_arguments=False: the command line's `-r __node:=recorder` (every bringup renames its nodes)
        # must not rename this helper too; two nodes of one name collide on the graph and on /rosout.
        node = rclpy.create_node(f"_{self.get_name()}_ingest", namespace=self.get_namespace(), context=self.context,
                                 use_global_arguments=False, start_parameter_services=False)
        recorder = self.recorder
        for sub in recorder.subscriptions:
            events = SubscriptionEventCallbacks(
                incompatible_qos=lambda event, s=sub: self.get_logger().error(
                    f"{s.topic}: a publisher's QoS is incompatible with this subscription ({s.qos.describe()}; "
                    f"policy {getattr(event.last_policy_kind, 'name', event.last_policy_kind)}): no messages will "
                    f"arrive from it. Set the topic's qos in the interface file to match the publisher."))
            node.create_subscription(rc.message_class(sub.msg_type), sub.topic,
                                     lambda msg, topic=sub.topic: recorder.on_message(topic, msg), sub.qos.profile(),
                                     event_callbacks=events)
        executor = SingleThreadedExecutor(context=self.context)
        executor.add_node(node)
        self._ingest_node, self._ingest_executor = node, executor
        self._ingest_stop.clear()
        self._ingest_thread = threading.Thread(target=self._spin_ingest, name="recorder-ingest", daemon=True)
        self._ingest_thread.start()

    def _spin_ingest(self) -> None:
        while not self._ingest_stop.is_set() and self.context.ok():
            try:
                self._ingest_executor.spin()
                return  # shut down
            except Exception as exc:  # noqa: BLE001 - e.g. a callback that raised: restart, never stop the input
                if self._ingest_stop.is_set() or not self.context.ok():
                    return
                self.get_logger().error(f"message ingest stopped ({exc!r}); restarting it")
                time.sleep(INGEST_RESTART_S)

    def _stop_ingest(self) -> None:
        self._ingest_stop.set()
        executor, node = self._ingest_executor, self._ingest_node
        self._ingest_executor = self._ingest_node = None
        if executor is not None:
            executor.shutdown(timeout_sec=5.0)
        if self._ingest_thread is not None:
            self._ingest_thread.join(timeout=5.0)
            self._ingest_thread = None
        if node is not None:
            node.destroy_node()

    # -------------------------------------------------------------------------------------------- action
    def _on_goal(self, goal: RecordEpisode.Goal) -> GoalResponse:
        recorder = self.recorder
        refusal = "recorder is not configured" if recorder is None else recorder.goal_refusal(goal.task,
                                                                                             goal.duration)
        if refusal is None and not recorder.claim_goal():
            refusal = "another RecordEpisode goal is in progress"
        if refusal:
            self.get_logger().warning(f"RecordEpisode goal rejected: {refusal}")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _execute_goal(self, goal_handle) -> RecordEpisode.Result:
        recorder = self.recorder
        try:
            return self._run_goal(goal_handle, recorder)
        except RecorderUnresponsive as exc:
            goal_handle.abort()
            return RecordEpisode.Result(episode_index=-1, saved=False, reason=f"error: {exc}")
        finally:
            if recorder is not None:
                recorder.release_goal()

    def _run_goal(self, goal_handle, recorder: LiveRecorder) -> RecordEpisode.Result:
        request = goal_handle.request
        feedback = RecordEpisode.Feedback()
        while True:  # a reset period (or a save, or an episode removal) may have to end first
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
                return RecordEpisode.Result(episode_index=-1, saved=False, reason="canceled")
            outcome = recorder.try_begin(request.task, request.duration)
            if outcome.refused:
                goal_handle.abort()
                return RecordEpisode.Result(episode_index=-1, saved=False, reason=outcome.refused)
            if outcome.attempt:
                attempt = outcome.attempt
                break
            goal_handle.publish_feedback(feedback)
            time.sleep(0.05)
        last_feedback = 0.0
        while True:
            report = recorder.take_report(attempt)
            if report is not None:
                break
            if goal_handle.is_cancel_requested:
                report = recorder.cancel(attempt)
                if report is not None:
                    break
            if not recorder.active and recorder.snapshot.attempt != attempt:
                report = recorder.take_report(attempt)
                break
            now = time.monotonic()
            if now - last_feedback >= 0.1:
                last_feedback = now
                snapshot = recorder.elapsed_feedback(attempt)
                if snapshot is not None:
                    feedback.frames, feedback.dropped, feedback.elapsed = (snapshot.frames, snapshot.dropped,
                                                                           snapshot.elapsed_s)
                goal_handle.publish_feedback(feedback)
            time.sleep(GOAL_POLL_S)
        if report is None:
            goal_handle.abort()
            return RecordEpisode.Result(episode_index=-1, saved=False, reason="error: episode lost")
        reason = report.reason
        if report.saved and report.validation_ok is False:  # the episode is kept; say what the check found
            reason += f"; validation FAILED: {report.validation_message}"
        result = RecordEpisode.Result(episode_index=report.episode_index, frames=report.frames, saved=report.saved,
                                      reason=reason)
        if report.reason == "canceled" or (goal_handle.is_cancel_requested and not report.saved):
            goal_handle.canceled()
        elif report.reason.startswith("error"):
            goal_handle.abort()
        else:
            goal_handle.succeed()
        return result

    # ------------------------------------------------------------------------------------------ services
    def _on_stop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self.recorder is None:
            response.success, response.message = False, "nothing to stop (recorder not configured)"
            return response
        outcome = self.recorder.stop()
        response.success, response.message = outcome.success, outcome.message
        return response

    def _on_discard(self, request: DiscardEpisode.Request, response: DiscardEpisode.Response):
        if self.recorder is None:
            response.success, response.episode_index, response.message = False, -1, "recorder not configured"
            return response
        outcome = self.recorder.discard(int(request.episode_index))
        response.success, response.message = outcome.success, outcome.message
        response.episode_index, response.total_episodes = outcome.episode_index, outcome.total_episodes
        return response

    # ------------------------------------------------------------------------------------ status, diagnostics
    def _publish_status(self) -> None:
        recorder = self.recorder
        if recorder is None or self._status_pub is None:
            return
        snapshot = recorder.snapshot
        msg = RecorderStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.state = int(snapshot.state)
        msg.message = snapshot.message if snapshot.removing is None else f"removing episode {snapshot.removing}"
        msg.dataset_root = str(recorder.root)
        msg.episode_index = snapshot.next_episode_index
        msg.elapsed = snapshot.elapsed_s
        msg.frames_in_episode = snapshot.frames
        msg.dropped_frames = snapshot.dropped
        msg.task = snapshot.task
        msg.encoder_backlog = snapshot.encoder_backlog
        self._status_pub.publish(msg)

    def _publish_diagnostics(self) -> None:
        recorder = self.recorder
        if recorder is None or self._diag_pub is None:
            return
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        for status in recorder.health(self.get_fully_qualified_name()):
            array.status.append(DiagnosticStatus(
                level=bytes([status.level]), name=status.name, message=status.message, hardware_id="lerobot_recorder",
                values=[KeyValue(key=str(k), value=str(v)) for k, v in status.values.items()]))
        self._diag_pub.publish(array)


def main(args: list[str] | None = None) -> int:
    # SVT-AV1 prints a ~25-line banner (and a thread-priority warning) per encoder start by default: errors only.
    os.environ.setdefault("SVT_LOG", "1")
    return run_lifecycle_node(RecorderNode, "recorder", args, description=__doc__.split("\n\n")[0],
                              parameters=PARAMETERS, on_exit=RecorderNode.shutdown_cleanly, threads=4)


if __name__ == "__main__":
    sys.exit(main())
