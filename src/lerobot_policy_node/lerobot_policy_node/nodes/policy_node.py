"""`policy_node`: serves a policy checkpoint on a robot: observations in, timed action chunks out.

Thin ROS layer over `lerobot_policy_node.runtime` (observation assembly through the robot interface, the action
queue, RTC, latency tracking, safety gates): parameters -> ServingConfig, messages -> runtime inputs, runtime
results -> messages.

Topics (relative names take the node's namespace):
  in   the interface's observation topics (state, cameras, task) with the QoS and stamps the interface declares
  in   <executor_goals_topic>  sensor_msgs/JointState  the goal the executor wrote each tick (e.g. the arm driver's
       /follower/joint_goals): executed rows are counted from it instead of from time (optional)
  out  action_chunk       lerobot_msgs/ActionChunk   every merged chunk: row k at header.stamp + k * period
  out  joint_trajectory   trajectory_msgs/JointTrajectory  the same chunk's rows still to execute (positions and
       finite-difference velocities), for a joint_trajectory_controller or the arm driver
  out  the interface's command topic at fps x interpolation_multiplier (command_stream:=true), for set-point robots
  out  ~/chunk_markers    visualization_msgs/MarkerArray  the joint-space chunk for rviz
  out  /diagnostics       diagnostic_msgs/DiagnosticArray
Remap the output your executor takes (e.g. action_chunk:=/follower/action_chunk); publishing the same chunk to
two executors of one arm makes them fight.
Services and actions: ~/reset (std_srvs/Trigger: clear the queue, drop buffered observations, discard the chunk in
flight), ~/run_policy (lerobot_msgs/RunPolicy: task, duration; feedback; cancel), the lifecycle services.

Lifecycle: configure loads the checkpoint and the interface, refuses a checkpoint that does not match the
interface (every difference logged), derives the safety gates and runs the warm-up inferences; activate starts
inference (run_on_activate) or waits for a RunPolicy goal; deactivate stops inferring and sends a one-row hold so
the arm stops where it is (the driver's watchdog keeps it there); a fatal inference failure deactivates the node.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import rclpy
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import JointState
from std_msgs.msg import ColorRGBA
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from visualization_msgs.msg import Marker, MarkerArray

from lerobot_drivers.nodes.lifecycle_main import run_lifecycle_node
from lerobot_drivers.nodes.log_throttle import LogThrottle
from lerobot_drivers.nodes.parameters import AUTOSTART, ParameterSpec, check_choice, declare_parameters, table_by_name
from lerobot_drivers.qos import JOINT_STATE_PUBLISHER_QOS, LATEST_JOINT_STATE_QOS, TRAJECTORY_QOS
from lerobot_msgs.action import RunPolicy
from lerobot_msgs.msg import ActionChunk
from lerobot_recorder import ros_conversion as rc
from lerobot_recorder.alignment import NS_PER_S
from lerobot_policy_node.runtime.action_queue import AGGREGATE_OLD_WEIGHTS
from lerobot_policy_node.runtime.engine import (
    MODES, ChunkHeld, ChunkReady, InferenceFailed, NoObservation, StepResult, run_inference_loop,
)
from lerobot_policy_node.runtime.errors import ConfigurationError
from lerobot_policy_node.runtime.gates import GATE_ACTIONS, TripKind
from lerobot_policy_node.runtime.outputs import (
    TimedChunk, TrajectoryContent, chunk_marker_lines, chunk_rows_ros, trajectory_content,
)
from lerobot_policy_node.runtime.report import health_report
from lerobot_policy_node.runtime.serving import ServedPolicy, ServingConfig, build_served_policy

PARAMETERS = (
    ParameterSpec("policy_path", "", "checkpoint: a pretrained_model/ folder or a Hugging Face Hub repo id",
                  read_only=True),
    ParameterSpec("policy_revision", "", "Hub revision (branch, tag or commit) of policy_path; empty = main",
                  read_only=True),
    ParameterSpec("interface", "", "robot interface: a YAML file or a name in config/robots (e.g. sim_so101)",
                  read_only=True),
    ParameterSpec("device", "cpu", "torch device: cpu, cuda, cuda:1, mps", read_only=True),
    ParameterSpec("mode", "sync", "sync: infer when the chunk is used up (the arm holds meanwhile); async: infer "
                  "while it runs and blend overlapping rows (aggregate_fn_name); rtc: infer while it runs, guided to "
                  "agree with the rows it replaces (flow policies)", choices=MODES, read_only=True),
    ParameterSpec("aggregate_fn_name", "weighted_average", "async: upstream's aggregation of overlapping rows "
                  "(latest_only = naive switching)", choices=tuple(AGGREGATE_OLD_WEIGHTS), read_only=True),
    ParameterSpec("chunk_size_threshold", 0.5, "async/rtc: request the next chunk when the rows left are at most this "
                  "fraction of a chunk", bounds=(0.0, 1.0), read_only=True),
    ParameterSpec("actions_per_chunk", 0, "rows of each chunk to execute; 0 = sync: the policy's n_action_steps, "
                  "async/rtc: the whole chunk", bounds=(0, 100000), read_only=True),
    ParameterSpec("execution_horizon", 0, "rtc: end row of the soft mask over the previous chunk; 0 = every row it "
                  "has left from the observation tick (the overlap, the paper's H - s)", bounds=(0, 100000),
                  read_only=True),
    ParameterSpec("interpolation_multiplier", 1, "command_stream: set-points per control tick (linear between rows)",
                  bounds=(1, 100), read_only=True),
    ParameterSpec("warmup_inferences", 2, "inferences at configure on a neutral observation (not in the latency "
                  "statistics)", bounds=(0, 100), read_only=True),
    ParameterSpec("use_torch_compile", False, "torch.compile the policy's submodules at configure", read_only=True),
    ParameterSpec("retry_delay_s", 0.5, "after an inference error, wait this long before trying again",
                  bounds=(0.0, 60.0), read_only=True),
    ParameterSpec("max_consecutive_errors", 10, "inference errors in a row that fail the node (it deactivates)",
                  bounds=(1, 1000), read_only=True),
    ParameterSpec("run_on_activate", True, "activate starts inference with the interface's task; false: wait for a "
                  "~/run_policy goal", read_only=True),
    ParameterSpec("action_chunk_topic", "action_chunk", "ActionChunk output; empty = off", read_only=True),
    ParameterSpec("trajectory_topic", "joint_trajectory", "JointTrajectory output; empty = off", read_only=True),
    ParameterSpec("command_stream", False, "publish set-points on the interface's command topic at fps x "
                  "interpolation_multiplier", read_only=True),
    ParameterSpec("markers", True, "publish ~/chunk_markers (one line per joint, value against time)",
                  read_only=True),
    ParameterSpec("marker_frame_id", "world", "frame of the chunk markers", read_only=True),
    ParameterSpec("executor_goals_topic", "", "the executor's written goals (JointState, e.g. /follower/joint_goals); "
                  "empty = count executed rows from time", read_only=True),
    ParameterSpec("executor_goal_tolerance", 5.0, "largest |goal - plan| (dataset units) still counted as following",
                  bounds=(1e-6, 1e6), read_only=True),
    ParameterSpec("executor_goal_timeout_s", 0.2, "a goal stream silent this long means the executor stopped",
                  bounds=(0.001, 10.0), read_only=True),
    ParameterSpec("urdf", "", "URDF file for joint position limits (in dataset units through the interface); empty = "
                  "no position gate", read_only=True),
    ParameterSpec("limit_action", "clamp", "actions beyond the joint limits: clamp, or hold (drop the chunk)",
                  choices=GATE_ACTIONS, read_only=True),
    ParameterSpec("max_first_row_deviation", 30.0, "hold a chunk whose first executed row is farther than this from "
                  "the measured state (dataset units); 0 = off", bounds=(0.0, 1e9), read_only=True),
    ParameterSpec("max_boundary_jump", [0.0], "per action dimension, the largest jump at a chunk boundary (dataset "
                  "units per tick); [0.0] = derive it from jump_reference_dataset", read_only=True),
    ParameterSpec("jump_reference_dataset", "", "dataset whose action deltas bound boundary jumps; empty = the "
                  "checkpoint's training dataset when it is on this machine (else the gate is off)", read_only=True),
    ParameterSpec("jump_factor", 5.0, "bound = jump_factor x the dataset's 99.9th-percentile per-tick action delta",
                  bounds=(0.1, 1000.0), read_only=True),
    ParameterSpec("jump_action", "clamp", "a boundary jump beyond the bound: clamp, or hold (drop the chunk)",
                  choices=GATE_ACTIONS, read_only=True),
    ParameterSpec("diagnostics_period_s", 1.0, "period of the /diagnostics status", bounds=(0.05, 60.0),
                  read_only=True),
    AUTOSTART,
)
_SPECS = table_by_name(PARAMETERS)
FEEDBACK_PERIOD_S = 0.2


def _time_msg(stamp_ns: int) -> Time:
    return Time(sec=int(stamp_ns // NS_PER_S), nanosec=int(stamp_ns % NS_PER_S))


# ------------------------------------------------------------------------------ messages from one timed chunk
def action_chunk_msg(chunk: TimedChunk, first_row: int, interface, policy_id: str) -> ActionChunk:
    """Every row of the chunk (ROS units, command joint names); executors start at `first_row`."""
    rows = chunk_rows_ros(interface, chunk)
    msg = ActionChunk(policy_id=policy_id, chunk_id=chunk.chunk_id,
                      observation_stamp=_time_msg(chunk.observation_stamp_ns), names=list(interface.command.joints),
                      horizon=chunk.horizon, action_dim=rows.shape[1], period=chunk.period_s,
                      actions=rows.astype(np.float32).ravel().tolist(), inference_latency=chunk.latency_s,
                      rtc_delay_steps=first_row)
    msg.header.stamp = _time_msg(int(chunk.row_times_ns[0]))
    return msg


def trajectory_msg(content: TrajectoryContent) -> JointTrajectory:
    msg = JointTrajectory(joint_names=content.joint_names)
    msg.header.stamp = _time_msg(content.start_ns)
    for t, positions, velocities in zip(content.times_from_start_s, content.positions, content.velocities):
        ns = int(round(t * NS_PER_S))
        msg.points.append(JointTrajectoryPoint(positions=positions.tolist(), velocities=velocities.tolist(),
                                               time_from_start=Duration(sec=ns // NS_PER_S, nanosec=ns % NS_PER_S)))
    return msg


def marker_array_msg(chunk: TimedChunk, interface, frame_id: str) -> MarkerArray:
    """One LINE_STRIP per joint (ns policy_chunk, id = joint index), replaced by every chunk."""
    markers = MarkerArray()
    stamp = _time_msg(int(chunk.row_times_ns[chunk.start_row]))
    lines = chunk_marker_lines(interface, chunk)
    for j, line in enumerate(lines):
        marker = Marker(ns="policy_chunk", id=j, type=Marker.LINE_STRIP, action=Marker.ADD)
        marker.header.frame_id, marker.header.stamp = frame_id, stamp
        marker.scale.x = 0.005
        marker.pose.orientation.w = 1.0
        hue = j / max(len(lines), 1)
        marker.color = ColorRGBA(r=float(1 - hue), g=float(hue), b=0.5, a=1.0)
        marker.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in line.points]
        markers.markers.append(marker)
    return markers


class PolicyNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("policy_node", **kwargs)
        declare_parameters(self, PARAMETERS)
        for name in ("mode", "aggregate_fn_name", "limit_action", "jump_action"):
            check_choice(_SPECS[name], self._param(name))
        self.served: ServedPolicy | None = None
        self._subscriptions_made: list = []
        self._publishers_made: dict[str, object] = {}
        self._command_timer = None
        self._inference_thread: threading.Thread | None = None
        self._stop_inference = threading.Event()
        self._run_lock = threading.Lock()
        # Chunks (inference thread) and holds (stop, reset) are published under one lock, and a chunk only while
        # it is current, so a hold is never followed by a chunk computed before it.
        self._output_lock = threading.Lock()
        self._run_generation = 0
        self._run_end_reason = ""
        self._previous_stats = None
        self._throttled = LogThrottle(self.get_logger())  # warnings raised on every tick of a lasting condition
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diagnostics_timer = self.create_timer(float(self._param("diagnostics_period_s")),
                                                    self._publish_diagnostics)
        self._failure_timer = self.create_timer(0.1, self._deactivate_if_failed)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self._start_action_server()

    def _start_action_server(self) -> None:
        """~/run_policy on a hidden helper node spun by an executor of its own.

        The goal's execute callback runs as long as the run (it reports feedback), which needs a multi-threaded
        executor; rclpy's MultiThreadedExecutor re-yields a ready entity until a worker thread has taken it, so
        with the 100 Hz joint states and the camera on it its loop took a whole core (py-spy: 32 k joint-state
        handlers in 14 s instead of 1.4 k), held the GIL the callbacks needed, and observations went stale on a
        quiet machine. The node itself therefore spins single-threaded, and only the action server is here.
        """
        self._actions_node = rclpy.create_node("_policy_node_run_policy", context=self.context,
                                               namespace=self.get_namespace(), start_parameter_services=False)
        self._action_server = ActionServer(
            self._actions_node, RunPolicy, f"{self.get_fully_qualified_name()}/run_policy",
            execute_callback=self._execute_run, goal_callback=self._accept_goal,
            cancel_callback=lambda _: CancelResponse.ACCEPT)
        self._actions_executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self._actions_executor.add_node(self._actions_node)
        threading.Thread(target=self._spin_actions, name="run-policy-actions", daemon=True).start()

    def _spin_actions(self) -> None:
        try:
            self._actions_executor.spin()
        except Exception:  # noqa: BLE001 - the context ends under it at shutdown
            if self.context.ok():
                raise

    def destroy_node(self) -> None:
        self._actions_executor.shutdown(timeout_sec=2.0)
        self._action_server.destroy()
        self._actions_node.destroy_node()
        super().destroy_node()

    def _param(self, name: str):
        return self.get_parameter(name).value

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _serving_config(self) -> ServingConfig:
        p = self._param
        jump = tuple(float(v) for v in p("max_boundary_jump"))
        return ServingConfig(
            policy_path=p("policy_path"), interface=p("interface"), policy_revision=p("policy_revision"),
            device=p("device"), mode=p("mode"), aggregate_fn_name=p("aggregate_fn_name"),
            chunk_size_threshold=p("chunk_size_threshold"), actions_per_chunk=p("actions_per_chunk"),
            execution_horizon=p("execution_horizon"), warmup_inferences=p("warmup_inferences"),
            use_torch_compile=p("use_torch_compile"), retry_delay_s=p("retry_delay_s"),
            max_consecutive_errors=p("max_consecutive_errors"), urdf=p("urdf"), limit_action=p("limit_action"),
            max_first_row_deviation=p("max_first_row_deviation"),
            max_boundary_jump=() if jump == (0.0,) else jump, jump_reference_dataset=p("jump_reference_dataset"),
            jump_factor=p("jump_factor"), jump_action=p("jump_action"),
            executor_goals=bool(p("executor_goals_topic")), executor_goal_tolerance=p("executor_goal_tolerance"),
            executor_goal_timeout_s=p("executor_goal_timeout_s"))

    # ------------------------------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            served = build_served_policy(self._serving_config(), self._now_ns)
        except ConfigurationError as error:
            self.get_logger().error(f"configure failed: {error}")
            return TransitionCallbackReturn.FAILURE
        self.served = served
        for note in served.notes:
            self.get_logger().info(note)
        self._make_subscriptions(served)
        self._make_publishers(served)
        runtime = served.runtime
        self.get_logger().info(
            f"configured: {served.policy_id} on {served.interface.path} ({runtime.config.mode}, "
            f"{runtime.runner.chunk_rows or '?'} rows per chunk at {served.interface.fps} fps)")
        return TransitionCallbackReturn.SUCCESS

    def _make_subscriptions(self, served: ServedPolicy) -> None:
        runtime = served.runtime
        for subscription in runtime.observations.subscriptions():
            def on_message(msg, topic=subscription.topic):
                runtime.add_message(topic, msg, self._now_ns())

            self._subscriptions_made.append(self.create_subscription(
                rc.message_class(subscription.msg_type), subscription.topic, on_message, subscription.qos.profile()))
        goals_topic = self._param("executor_goals_topic")
        if goals_topic:
            self._subscriptions_made.append(self.create_subscription(
                JointState, goals_topic, self._on_executor_goal, LATEST_JOINT_STATE_QOS.profile()))

    def _make_publishers(self, served: ServedPolicy) -> None:
        made = self._publishers_made
        if self._param("action_chunk_topic"):
            made["chunk"] = self.create_lifecycle_publisher(ActionChunk, self._param("action_chunk_topic"),
                                                            TRAJECTORY_QOS.profile())
        if self._param("trajectory_topic"):
            made["trajectory"] = self.create_lifecycle_publisher(JointTrajectory, self._param("trajectory_topic"),
                                                                 TRAJECTORY_QOS.profile())
        if self._param("command_stream"):
            command = served.interface.command
            made["command"] = self.create_lifecycle_publisher(rc.message_class(command.msg_type), command.topic,
                                                              command.qos.profile())
        if self._param("markers"):
            made["markers"] = self.create_lifecycle_publisher(MarkerArray, "~/chunk_markers",
                                                              JOINT_STATE_PUBLISHER_QOS.profile())

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        self._stop_inference.clear()
        self._inference_thread = threading.Thread(
            target=run_inference_loop, name="policy-inference", daemon=True,
            args=(self.served.runtime, self._stop_inference, self._on_result, self._now_ns))
        self._inference_thread.start()
        if "command" in self._publishers_made:
            period = 1.0 / (self.served.interface.fps * int(self._param("interpolation_multiplier")))
            self._command_timer = self.create_timer(period, self._publish_command)
        if self._param("run_on_activate"):
            self._start_run(None)
        self.get_logger().info("active: " + ("inferring" if self._param("run_on_activate") else
                                             "waiting for a ~/run_policy goal"))
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._end_run("deactivated")
        self._stop_thread()
        if self._command_timer is not None:
            self.destroy_timer(self._command_timer)
            self._command_timer = None
        self.get_logger().info("inactive: not inferring; the arm holds")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        """Stop inferring and drop everything configure made (also the process's exit path)."""
        if self.served is not None:
            self.served.runtime.stop()
        self._stop_thread()
        for subscription in self._subscriptions_made:
            self.destroy_subscription(subscription)
        for publisher in self._publishers_made.values():
            self.destroy_lifecycle_publisher(publisher)
        self._subscriptions_made, self._publishers_made = [], {}
        self.served = None

    def _stop_thread(self) -> None:
        self._stop_inference.set()
        if self._inference_thread is not None:
            self._inference_thread.join(timeout=30.0)  # at most one inference in flight
            self._inference_thread = None

    # ---------------------------------------------------------------------------------------------- runs
    def _start_run(self, task: str | None) -> int:
        """(Re)start inferring with `task` (None: the interface's); a run in progress ends as superseded."""
        with self._run_lock:
            self._run_generation += 1
            self._run_end_reason = "superseded"
            runtime = self.served.runtime
            runtime.set_task(task)
            runtime.start()
            return self._run_generation

    def _end_run(self, reason: str) -> None:
        with self._run_lock:
            self._run_generation += 1
            self._run_end_reason = reason
            if self.served is not None:
                with self._output_lock:
                    self._publish_hold(self.served.runtime.stop())

    def _accept_goal(self, goal) -> GoalResponse:
        if self.served is None or self._inference_thread is None:
            self.get_logger().warn("run_policy goal rejected: the node is not active")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _execute_run(self, goal_handle) -> RunPolicy.Result:
        goal = goal_handle.request
        generation = self._start_run(goal.task or None)
        started = self._now_ns()  # the node clock: durations hold under use_sim_time too
        reason = ""
        while not reason:
            stats = self.served.runtime.stats() if self.served is not None else None
            elapsed = (self._now_ns() - started) / 1e9
            if goal_handle.is_cancel_requested:
                reason = "canceled"
            elif stats is not None and stats.failed:  # before the generation: a failure also deactivates
                reason = f"failed: {stats.failed}"
            elif generation != self._run_generation or stats is None:
                reason = self._run_end_reason
            elif goal.duration > 0 and elapsed >= goal.duration:
                reason = "duration reached"
            else:
                goal_handle.publish_feedback(RunPolicy.Feedback(
                    chunks=stats.chunks, latency_p50=stats.latency_p50_s or 0.0,
                    latency_p95=stats.latency_p95_s or 0.0, queue_depth=stats.queue_depth,
                    stale_observations=stats.stale_observations, elapsed=elapsed))
                time.sleep(FEEDBACK_PERIOD_S)
        if generation == self._run_generation:
            self._end_run(reason)
        stats = stats or self._previous_stats
        result = RunPolicy.Result(reason=reason)
        if stats is not None:
            result.chunks, result.stale_observations = stats.chunks, stats.stale_observations
            result.latency_p50, result.latency_p95 = stats.latency_p50_s or 0.0, stats.latency_p95_s or 0.0
            result.gate_trips = sum(v for k, v in stats.trips.items() if k != TripKind.STALE_OBSERVATION.value)
        if reason == "canceled":
            goal_handle.canceled()
        elif reason == "duration reached":
            goal_handle.succeed()
        else:
            goal_handle.abort()
        self.get_logger().info(f"run ended: {reason} ({result.chunks} chunks)")
        return result

    def _on_reset(self, request, response):
        if self.served is None:
            response.success, response.message = False, "not configured"
            return response
        with self._output_lock:
            self._publish_hold(self.served.runtime.reset())
        response.success, response.message = True, "queue cleared, buffered observations dropped"
        return response

    def _deactivate_if_failed(self) -> None:
        served = self.served
        if served is not None and served.runtime.failed and self._inference_thread is not None:
            self.get_logger().error(f"policy failed, deactivating: {served.runtime.failed}")
            self.trigger_deactivate()

    # ------------------------------------------------------------------------------------------- inputs
    def _on_executor_goal(self, msg: JointState) -> None:
        served = self.served
        if served is None:
            return
        interface = served.interface
        try:
            ros = rc.joint_state_values(msg, interface.command.joints, "position", self._param("executor_goals_topic"))
        except rc.ConversionError as error:
            self._throttled.warning("executor_goals", 5.0, f"executor goals ignored: {error}")
            return
        served.runtime.add_executor_goal(rc.sample_stamp_ns(msg, "header", self._now_ns()),
                                         interface.action.transform.forward(ros))

    # ------------------------------------------------------------------------------------------ outputs
    def _on_result(self, result: StepResult) -> None:
        """Called from the inference thread for every step that did something."""
        log = self._throttled
        if isinstance(result, ChunkReady):
            self._publish_chunk(result.chunk)
            for trip in result.trips:
                log.warning(f"clamped {trip.kind.value}", 2.0, f"chunk {result.chunk.chunk_id} clamped: {trip.message}")
        elif isinstance(result, ChunkHeld):
            log.warning(f"held {result.kind.value}", 2.0, f"chunk held ({result.kind.value}): {result.message}")
        elif isinstance(result, NoObservation):
            log.warning("no observation", 2.0,
                        lambda: f"no inference, observation rejected: {result.missed.describe()}")
        elif isinstance(result, InferenceFailed):
            log.error("inference failed", 1.0, result.message)

    def _publish_chunk(self, chunk: TimedChunk) -> None:
        served = self.served
        if served is None:
            return
        with self._output_lock:
            if not served.runtime.is_current(chunk):  # a stop or reset came after its merge: its hold went out
                served.runtime.note_trip(TripKind.DISCARDED_AFTER_RESET)
                return
            self._publish_current_chunk(served, chunk)

    def _publish_current_chunk(self, served: ServedPolicy, chunk: TimedChunk) -> None:
        now = self._now_ns()
        first = chunk.first_row_not_before(now)
        if first is None:  # never publish a trajectory that is already over
            served.runtime.note_trip(TripKind.LATE_CHUNK)
            self._throttled.warning("late chunk", 2.0, f"chunk {chunk.chunk_id} dropped: all its rows are in the past")
            return
        interface, publishers = served.interface, self._publishers_made
        if "chunk" in publishers:
            publishers["chunk"].publish(action_chunk_msg(chunk, first, interface, served.policy_id))
        if "trajectory" in publishers:
            publishers["trajectory"].publish(trajectory_msg(trajectory_content(interface, chunk, now)))
        # Markers are for a person watching rviz: built only when someone subscribes (about 1 ms per chunk).
        if "markers" in publishers and publishers["markers"].get_subscription_count() > 0:
            publishers["markers"].publish(marker_array_msg(chunk, interface, self._param("marker_frame_id")))

    def _publish_hold(self, hold: np.ndarray | None) -> None:
        """A one-row chunk/trajectory at the planned action for now, one period ahead, so trajectory executors
        stop following the old chunk and hold there."""
        served = self.served
        if hold is None or served is None:
            return
        interface = served.interface
        period = 1.0 / interface.fps
        row_time = self._now_ns() + int(period * NS_PER_S)
        ros = interface.action_to_ros(hold[None])
        if "chunk" in self._publishers_made and self._publishers_made["chunk"].is_activated:
            msg = ActionChunk(policy_id=served.policy_id, chunk_id=served.runtime.chunks,
                              observation_stamp=_time_msg(row_time), names=list(interface.command.joints), horizon=1,
                              action_dim=ros.shape[1], period=period, actions=ros.astype(np.float32).ravel().tolist())
            msg.header.stamp = _time_msg(row_time)
            self._publishers_made["chunk"].publish(msg)
        if "trajectory" in self._publishers_made and self._publishers_made["trajectory"].is_activated:
            msg = JointTrajectory(joint_names=list(interface.command.joints),
                                  points=[JointTrajectoryPoint(positions=ros[0].tolist())])
            msg.header.stamp = _time_msg(row_time)
            self._publishers_made["trajectory"].publish(msg)

    def _publish_command(self) -> None:
        served = self.served
        if served is None:
            return
        now = self._now_ns()
        values = served.runtime.command_at(now)
        if values is not None:  # nothing planned: publish nothing, the executor's watchdog holds
            self._publishers_made["command"].publish(served.interface.action_to_msg(values, now))

    def _publish_diagnostics(self) -> None:
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        name = f"{self.get_fully_qualified_name()}: policy"
        if self.served is None:
            array.status = [DiagnosticStatus(level=DiagnosticStatus.STALE, name=name, message="not configured")]
        else:
            stats = self.served.runtime.stats()
            report = health_report(stats, self._previous_stats, float(self._param("diagnostics_period_s")))
            self._previous_stats = stats
            array.status = [DiagnosticStatus(level=bytes([report.level]), name=name, message=report.message,
                                             hardware_id=self.served.policy_id,
                                             values=[KeyValue(key=k, value=v) for k, v in report.values.items()])]
        self._diagnostics_pub.publish(array)


def main(args: list[str] | None = None) -> int:
    return run_lifecycle_node(PolicyNode, "policy_node", args, description=__doc__.split("\n\n")[0],
                              parameters=PARAMETERS, on_exit=PolicyNode.release)


if __name__ == "__main__":
    import sys

    sys.exit(main())
