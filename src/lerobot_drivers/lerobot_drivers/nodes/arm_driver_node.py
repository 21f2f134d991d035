"""`arm_driver`: lifecycle node for one SO-100/101 or Koch arm (follower or leader) on a Feetech/Dynamixel bus.

Thin ROS layer over `lerobot_drivers.control.ArmDriver`: parameters -> Arm + controller, messages -> commands,
bus samples -> sensor_msgs/JointState, driver health -> diagnostic_msgs/DiagnosticArray.

Topics (relative, so a namespace such as /follower applies):
  out  joint_states   sensor_msgs/JointState  every tick while active: position (rad; gripper 0..1), velocity
                      (rad/s; gripper 1/s), effort (servo load in % of rated torque, or current in mA on XL330s)
  out  joint_goals    sensor_msgs/JointState  follower, every tick while active: the goal written (after the clamp)
  in   joint_commands sensor_msgs/JointState  follower: direct goal for the named joints (best effort, depth 1)
  in   joint_trajectory trajectory_msgs/JointTrajectory  follower: executed at the control rate
  in   action_chunk   lerobot_msgs/ActionChunk  follower: rows from rtc_delay_steps, as a trajectory
  out  /diagnostics   diagnostic_msgs/DiagnosticArray  every diagnostics_period_s: driver + one status per motor
Services: the lifecycle services (~/change_state, ~/get_state, ...).

Lifecycle: configure opens and configures the bus (follower left limp); activate torques a follower on and starts
publishing `joint_states` at rate_hz and following commands; deactivate holds the current position, then torque
off; cleanup/shutdown/SIGINT/SIGTERM/errors: torque off and disconnect. `autostart:=true` configures and activates
at startup (no lifecycle manager needed; the default). Parameters: the PARAMETERS table below (`arm_driver --help`).
"""
from __future__ import annotations

import sys
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from lerobot_drivers.arms import ARM_DEFINITIONS, Arm, get_arm_definition
from lerobot_drivers.control import GoalController, RelativeTargetLimit, UnitMap, VelocityLimit
from lerobot_drivers.control.calibration_source import CalibrationMissing, resolve_calibration
from lerobot_drivers.control.commands import (
    CommandRejected, JointNameResolver, JointPositionCommand, JointTrajectoryCommand, trajectory_from_action_chunk,
)
from lerobot_drivers.control.driver import ArmDriver, DriverSettings, JointSample
from lerobot_drivers.control.health import HealthLimits, assess
from lerobot_drivers.nodes.lifecycle_main import run_lifecycle_node
from lerobot_drivers.nodes.log_throttle import LogThrottle
from lerobot_drivers.nodes.parameters import AUTOSTART, ParameterSpec, declare_parameters
from lerobot_drivers.qos import JOINT_STATE_PUBLISHER_QOS, LATEST_COMMAND_QOS, TRAJECTORY_QOS
from lerobot_msgs.msg import ActionChunk

PARAMETERS = (
    ParameterSpec("arm", "so101_follower", "which arm is on the bus", choices=tuple(sorted(ARM_DEFINITIONS)), read_only=True),
    ParameterSpec("port", "", "serial port of the arm's bus, e.g. /dev/ttyACM0 or /dev/serial/by-id/... (find it with "
                  "lerobot-find-port), or the path lerobot-servo-sim printed", read_only=True),
    ParameterSpec("mode", "", "follower (torque on, follows commands) or leader (limp, publishes only); empty = from "
                  "the arm name", read_only=True),
    ParameterSpec("calibration_file", "", "LeRobot calibration JSON; empty = look up calibration_id", read_only=True),
    ParameterSpec("calibration_id", "", "LeRobot calibration id: <calibration_dir>/robots|teleoperators/<device>/"
                  "<id>.json", read_only=True),
    ParameterSpec("calibration_dir", "", "calibration root; empty = LeRobot's ($HF_LEROBOT_CALIBRATION, "
                  "$HF_HOME/lerobot/calibration)", read_only=True),
    ParameterSpec("sim_default_calibration", False, "servo simulator only: the identity calibration when no file "
                  "is found (never for hardware)", read_only=True),
    ParameterSpec("rate_hz", 100.0, "control loop and joint_states rate (Hz)", bounds=(1.0, 1000.0), read_only=True),
    ParameterSpec("max_relative_target", 0.0, "largest goal step relative to the measured position per tick (rad; "
                  "gripper: opening fraction); <= 0 = off", bounds=(-1.0, 10.0), read_only=True),
    ParameterSpec("max_relative_target_per_joint", [0.0], "one cap per joint in arm order, overriding "
                  "max_relative_target; [0.0] = unused", read_only=True),
    ParameterSpec("max_velocity", [0.0], "follower: how fast a goal may move, per joint in arm order (rad/s; gripper: "
                  "opening fraction/s), whatever the command; [0.0] = the arm's limits (SO: 4 rad/s, Koch: 5-9 rad/s, "
                  "as in its URDF), a value <= 0 = that joint unlimited, [-1.0] = off", read_only=True),
    ParameterSpec("max_late_start_s", 0.2, "follower: a joint_trajectory or action_chunk whose first point is more "
                  "than this in the past (or that ends in the past) is rejected; within it, it starts at its value "
                  "for now", bounds=(0.0, 10.0), read_only=True),
    ParameterSpec("command_timeout_s", 0.5, "joint_commands older than this: hold the measured position (watchdog)",
                  bounds=(0.01, 60.0), read_only=True),
    ParameterSpec("joint_prefix", "", "prefix of the published joint names (commands accept prefixed and bare names)",
                  read_only=True),
    ParameterSpec("frame_id", "", "header.frame_id of the published JointState", read_only=True),
    AUTOSTART,
    ParameterSpec("diagnostics_period_s", 1.0, "period of /diagnostics", bounds=(0.05, 60.0), read_only=True),
    ParameterSpec("temperature_warn_c", 60.0, "motor temperature that raises a WARN", bounds=(0.0, 150.0),
                  read_only=True),
    ParameterSpec("temperature_error_c", 70.0, "motor temperature that raises an ERROR", bounds=(0.0, 150.0),
                  read_only=True),
    ParameterSpec("min_voltage_v", -1.0, "bus voltage below which a WARN is raised; < 0 = arm default (follower "
                  "6.0 V, leader 4.5 V), 0 = off", bounds=(-1.0, 30.0), read_only=True),
    ParameterSpec("failures_before_reconnect", 3, "consecutive failed ticks before the bus is closed and re-opened",
                  bounds=(1, 1000), read_only=True),
    ParameterSpec("reconnect_max_s", 2.0, "reconnect backoff: 0.1 s doubling up to this", bounds=(0.1, 60.0),
                  read_only=True),
    ParameterSpec("connect_attempts", 5, "handshake attempts at configure (busy hosts, adapters that enumerate late)",
                  bounds=(1, 100), read_only=True),
    ParameterSpec("min_packet_timeout_ms", 0.0, "floor under the servo reply timeout (0 = the bus default, ~35-50 ms); "
                  "raise it on a heavily loaded host", bounds=(0.0, 1000.0), read_only=True),
)


def _stamp_seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class ArmDriverNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("arm_driver", **kwargs)
        self._throttled = LogThrottle(self.get_logger())  # commands arrive at the control rate
        declare_parameters(self, PARAMETERS)
        self.driver: ArmDriver | None = None
        self.resolver: JointNameResolver | None = None
        self.units: UnitMap | None = None
        self._joint_state_pub = None
        self._joint_goal_pub = None
        self._command_subscriptions = []  # (rclpy's Node keeps its own list in `_subscriptions`)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diagnostics_timer = self.create_timer(float(self._param("diagnostics_period_s")),
                                                    self._publish_diagnostics)
        self._limits = HealthLimits()
        self._last_rejection = ("", 0.0)

    def _param(self, name: str):
        return self.get_parameter(name).value

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._build_driver()
        except (CalibrationMissing, ValueError) as exc:
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        try:
            self.driver.configure()
        except Exception as exc:  # noqa: BLE001 - any bus failure is reported, never a crash
            self.get_logger().error(f"configure failed: cannot open {self.driver.arm.name} on port "
                                    f"{self.driver.arm.port!r}: {exc}. Check the cable and power, and the port "
                                    f"(lerobot-find-port).")
            self.driver.close()
            self.driver = None
            return TransitionCallbackReturn.FAILURE
        self._joint_state_pub = self.create_lifecycle_publisher(JointState, "joint_states",
                                                                JOINT_STATE_PUBLISHER_QOS.profile())
        if self.driver.settings.follower:
            # What was actually sent to the motors each tick (after the clamp), stamped with the time it was
            # computed for: the executed command, for debugging, timing checks and recording.
            self._joint_goal_pub = self.create_lifecycle_publisher(JointState, "joint_goals",
                                                                   JOINT_STATE_PUBLISHER_QOS.profile())
            self._command_subscriptions = [
                self.create_subscription(JointState, "joint_commands", self._on_joint_commands,
                                         LATEST_COMMAND_QOS.profile()),
                self.create_subscription(JointTrajectory, "joint_trajectory", self._on_trajectory,
                                         TRAJECTORY_QOS.profile()),
                self.create_subscription(ActionChunk, "action_chunk", self._on_action_chunk,
                                         TRAJECTORY_QOS.profile()),
            ]
        self.get_logger().info(
            f"configured {self.driver.arm.name} ({self.driver.health.mode}) on {self.driver.arm.port}, "
            f"calibration: {self._calibration_origin}, rate {self.driver.settings.rate_hz} Hz")
        return TransitionCallbackReturn.SUCCESS

    def _build_driver(self) -> None:
        definition = get_arm_definition(str(self._param("arm")))
        port = str(self._param("port"))
        if not port:
            raise ValueError("parameter 'port' is empty: set the serial port of the arm (e.g. /dev/ttyACM0 or the "
                             "path lerobot-servo-sim printed)")
        mode = str(self._param("mode")) or definition.role
        if mode not in ("follower", "leader"):
            raise ValueError(f"parameter 'mode' = {mode!r}: expected 'follower' or 'leader'")
        choice = resolve_calibration(definition, port, str(self._param("calibration_file")),
                                     str(self._param("calibration_id")), str(self._param("calibration_dir")),
                                     bool(self._param("sim_default_calibration")))
        self._calibration_origin = choice.origin
        self._frame_id = str(self._param("frame_id"))
        # The controller applies max_relative_target in ROS units; the Arm itself does not clamp again.
        min_packet_timeout_ms = float(self._param("min_packet_timeout_ms"))

        def make_arm() -> Arm:
            return Arm(definition, port, choice.calibration, max_relative_target=None,
                       min_packet_timeout_ms=min_packet_timeout_ms)

        self.units = UnitMap.from_modes(definition.norm_modes)
        self.resolver = JointNameResolver(self.units.names, str(self._param("joint_prefix")))
        per_joint = [float(v) for v in self._param("max_relative_target_per_joint")]
        if per_joint == [0.0]:
            per_joint = []
        limit = RelativeTargetLimit.from_parameters(self.units.names, float(self._param("max_relative_target")),
                                                    per_joint)
        velocity_limit = VelocityLimit.from_parameters(self.units.names, definition.ros_velocity_limits(),
                                                       list(self._param("max_velocity")))
        follower = mode == "follower"
        controller = GoalController(len(self.units.names), float(self._param("command_timeout_s")), limit,
                                    velocity_limit=velocity_limit,
                                    max_late_start_s=float(self._param("max_late_start_s")))
        settings = DriverSettings(
            rate_hz=float(self._param("rate_hz")), follower=follower,
            failures_before_reconnect=int(self._param("failures_before_reconnect")),
            reconnect_max_s=float(self._param("reconnect_max_s")),
            connect_attempts=max(1, int(self._param("connect_attempts"))),
            release_torque_after_configure=follower or definition.role == "follower")
        min_voltage = float(self._param("min_voltage_v"))
        if min_voltage < 0:
            min_voltage = 6.0 if definition.role == "follower" else 4.5
        self._limits = HealthLimits(float(self._param("temperature_warn_c")),
                                    float(self._param("temperature_error_c")), min_voltage)
        self.driver = ArmDriver(make_arm, self.units, settings, controller if follower else None, self.now_s,
                                self._publish_sample, _RosLogger(self))

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.driver.activate()
        except Exception as exc:  # noqa: BLE001
            self.get_logger().error(f"activate failed: could not enable torque: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info("active: publishing joint_states" +
                               (", following commands (torque on)" if self.driver.settings.follower else ""))
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.driver.deactivate()
        self.get_logger().info("inactive" + (": holding, torque off" if self.driver.settings.follower else ""))
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        """Torque off and disconnect, then drop the ROS entities of the configured state."""
        self.close_driver()
        for sub in list(self._command_subscriptions):
            self.destroy_subscription(sub)
        self._command_subscriptions = []
        for publisher in (self._joint_state_pub, self._joint_goal_pub):
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        self._joint_state_pub = self._joint_goal_pub = None

    def close_driver(self) -> None:
        if self.driver is not None:
            torque_off = self.driver.close()
            self.driver = None
            message = ("torque off, bus disconnected" if torque_off else
                       "bus released, but torque off was NOT confirmed by every motor (bus unreachable)")
            if self.context.ok():  # after SIGINT the context is gone and /rosout with it
                (self.get_logger().info if torque_off else self.get_logger().error)(message)
            else:
                print(f"arm_driver: {message}", flush=True)

    # ------------------------------------------------------------------ topics in
    def _accepting(self, topic: str) -> bool:
        driver = self.driver
        if driver is None or not driver.active:
            self._throttled.warning(topic, 5.0, f"{topic}: ignored, the driver is not active")
            return False
        return True

    def _reject(self, exc: CommandRejected) -> None:
        if self.driver is not None:
            self.driver.health.rejected_commands += 1
        # A bad publisher may repeat the same mistake at 100 Hz: log each distinct reason, repeats once a second.
        text, now = str(exc), time.monotonic()
        if text != self._last_rejection[0] or now - self._last_rejection[1] > 1.0:
            self._last_rejection = (text, now)
            self.get_logger().error(f"command rejected, not moving: {text}")

    def _on_joint_commands(self, msg: JointState) -> None:
        if not self._accepting("joint_commands"):
            return
        try:
            command = JointPositionCommand.parse(self.resolver, list(msg.name), list(msg.position), self.now_s())
        except CommandRejected as exc:
            self._reject(exc)
            return
        stamp = _stamp_seconds(msg.header.stamp)
        self.driver.submit_positions(command, source_stamp=stamp if stamp > 0 else None)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        if not self._accepting("joint_trajectory"):
            return
        start = _stamp_seconds(msg.header.stamp)
        points = [(p.time_from_start.sec + p.time_from_start.nanosec * 1e-9, list(p.positions), list(p.velocities))
                  for p in msg.points]
        try:
            command = JointTrajectoryCommand.parse(self.resolver, list(msg.joint_names), start if start > 0 else None,
                                                   self.now_s(), points)
            self.driver.submit_trajectory(command)  # rejects one that is already too late
        except CommandRejected as exc:
            self._reject(exc)

    def _on_action_chunk(self, msg: ActionChunk) -> None:
        if not self._accepting("action_chunk"):
            return
        stamp = _stamp_seconds(msg.header.stamp)
        try:
            command = trajectory_from_action_chunk(
                self.resolver, list(msg.names), list(msg.actions), int(msg.horizon), int(msg.action_dim),
                float(msg.period), stamp if stamp > 0 else None, int(msg.rtc_delay_steps), self.now_s())
            self.driver.submit_trajectory(command)  # rejects one that is already too late
        except CommandRejected as exc:
            self._reject(exc)

    # ------------------------------------------------------------------ topics out
    def _publish_sample(self, sample: JointSample) -> None:
        publisher = self._joint_state_pub
        if publisher is None or self.driver is None or not self.driver.active or not self.context.ok():
            return
        msg = JointState()
        seconds = int(sample.stamp)
        msg.header.stamp.sec, msg.header.stamp.nanosec = seconds, int(round((sample.stamp - seconds) * 1e9)) % 10**9
        msg.header.frame_id = self._frame_id
        msg.name = list(self.resolver.ros_names)
        msg.position = sample.positions.tolist()
        msg.velocity = sample.velocities.tolist()
        msg.effort = sample.efforts.tolist()
        publisher.publish(msg)
        goal_publisher = self._joint_goal_pub
        if sample.goal is not None and goal_publisher is not None:
            goal = JointState(header=msg.header, name=msg.name, position=sample.goal.tolist())
            goal_publisher.publish(goal)

    def _publish_diagnostics(self) -> None:
        driver = self.driver
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        prefix = self.get_fully_qualified_name()
        if driver is None:
            array.status = [DiagnosticStatus(level=DiagnosticStatus.STALE, name=prefix, message="not configured",
                                             hardware_id=str(self._param("port")))]
        else:
            for status in assess(driver.snapshot(), self._limits, prefix):
                array.status.append(DiagnosticStatus(
                    level=bytes([status.level]), name=status.name, message=status.message,
                    hardware_id=driver.arm.port,
                    values=[KeyValue(key=k, value=v) for k, v in status.values.items()]))
        self._diagnostics_pub.publish(array)


class _RosLogger:
    """Adapts the rclpy logger to the `logging.Logger` calls the ROS-free driver makes. After the context shut
    down (SIGINT) /rosout is gone, so the last messages of the shutdown path go to stderr instead."""

    def __init__(self, node: LifecycleNode) -> None:
        self._node = node
        self._logger = node.get_logger()

    # One rclpy call site per severity: rclpy refuses a call site whose severity changes between calls.
    def _ros_ok(self, level: str, msg: str) -> bool:
        if self._node.context.ok():
            return True
        print(f"[{level}] [{self._node.get_name()}]: {msg}", file=sys.stderr, flush=True)
        return False

    def info(self, msg: str) -> None:
        if self._ros_ok("INFO", msg):
            self._logger.info(msg)

    def warning(self, msg: str) -> None:
        if self._ros_ok("WARN", msg):
            self._logger.warn(msg)

    def error(self, msg: str) -> None:
        if self._ros_ok("ERROR", msg):
            self._logger.error(msg)


def main(args: list[str] | None = None) -> int:
    # SIGINT/SIGTERM end the spin; close_driver then switches torque off and disconnects, whatever happened.
    return run_lifecycle_node(ArmDriverNode, "arm_driver", args, description=__doc__.split("\n\n")[0],
                              parameters=PARAMETERS, on_exit=ArmDriverNode.close_driver)


if __name__ == "__main__":
    sys.exit(main())
