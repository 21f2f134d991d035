"""Scripted operator: moves the simulated leader arm to demonstrate the scene's reaching task.

It plays the human of a teleoperation session on the simulated SO-101. It watches the recorder's status: when an
episode starts recording it reaches for the current target (from /scene/target) with the leader arm; when the
episode ends it asks the scene for a new target and brings the arm home during the reset period. The leader is
moved through the servo-bus simulator's control socket, as a hand moves a torque-off arm; the leader driver,
teleop and follower do the rest exactly as with hardware.

Subscribes: /leader/joint_states (sensor_msgs/JointState), /scene/target (geometry_msgs/PointStamped),
            status_topic (lerobot_msgs/RecorderStatus, default /recorder/status).
Publishes:  /scene/randomize_target (std_msgs/Empty) when an episode ends.
Parameters: the PARAMETERS table below (`scripted_operator --help`).
"""
from __future__ import annotations

import sys

import numpy as np
from geometry_msgs.msg import PointStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Empty

from lerobot_msgs.msg import RecorderStatus
from lerobot_drivers.sim.kinematics import JOINT_NAMES
from lerobot_drivers.sim.scripted_operator import JointPath, plan_home, plan_reach, to_lerobot_units
from lerobot_drivers.sim.servo_bus_simulator import send_command
from lerobot_drivers.nodes.parameters import ParameterSpec, declare_parameters, parameter_values
from lerobot_drivers.nodes.runner import run_node
from lerobot_drivers.qos import LATEST_JOINT_STATE_QOS

HAND_SPEED_TICKS_S = 6000.0  # fast enough that the hand tracks the planned path at 30 Hz waypoints

PARAMETERS = (
    ParameterSpec("control_socket", "", "the leader simulator's control socket (required)", read_only=True),
    ParameterSpec("rate_hz", 30.0, "waypoint rate (Hz)", bounds=(1.0, 200.0), read_only=True),
    ParameterSpec("speed_scale", 1.0, "factor on the hand's planned speed", bounds=(0.05, 10.0), read_only=True),
    ParameterSpec("status_topic", "/recorder/status", "the recorder's status (episodes start the reach)",
                  read_only=True),
    ParameterSpec("start_immediately", False, "reach once at start, without a recorder", read_only=True),
)


class ScriptedOperatorNode(Node):
    def __init__(self):
        super().__init__("scripted_operator")
        declare_parameters(self, PARAMETERS)
        p = parameter_values(self, PARAMETERS)
        self.control_socket = str(p["control_socket"])
        rate_hz = float(p["rate_hz"])
        self.speed_scale = float(p["speed_scale"])
        status_topic = str(p["status_topic"])
        start_immediately = bool(p["start_immediately"])
        if not self.control_socket:
            raise ValueError("parameter control_socket is required (the leader simulator's control socket path)")

        self.leader_joints: dict[str, float] | None = None
        self.target: np.ndarray | None = None
        self.path: JointPath | None = None
        self.path_start = None
        self.recorder_state: int | None = None
        self.pending_reach = start_immediately
        self.randomize_pub = self.create_publisher(Empty, "/scene/randomize_target", 10)
        self.create_subscription(JointState, "/leader/joint_states", self._on_leader, LATEST_JOINT_STATE_QOS.profile())
        self.create_subscription(PointStamped, "/scene/target", self._on_target, 10)
        self.create_subscription(RecorderStatus, status_topic, self._on_status, 10)
        self.create_timer(1.0 / rate_hz, self._tick)
        self.get_logger().info(f"scripted operator moving the leader through {self.control_socket}")

    def _on_leader(self, msg: JointState) -> None:
        joints = dict(zip(msg.name, msg.position))
        if all(name in joints for name in JOINT_NAMES):
            self.leader_joints = {name: float(joints[name]) for name in JOINT_NAMES}

    def _on_target(self, msg: PointStamped) -> None:
        self.target = np.array([msg.point.x, msg.point.y, msg.point.z])

    def _on_status(self, msg: RecorderStatus) -> None:
        previous, self.recorder_state = self.recorder_state, msg.state
        if msg.state == previous:
            return
        if msg.state == RecorderStatus.STATE_RECORDING:
            self.pending_reach = True
        elif previous == RecorderStatus.STATE_RECORDING:
            # Episode over: new target for the next one, arm home during the reset period.
            self.randomize_pub.publish(Empty())
            if self.leader_joints is not None:
                self._start(plan_home(self.leader_joints, self.speed_scale), "going home")

    def _start(self, path: JointPath, what: str) -> None:
        self.path, self.path_start = path, self.get_clock().now()
        self.get_logger().info(f"{what} ({path.duration:.1f} s)")

    def _tick(self) -> None:
        if self.pending_reach and self.leader_joints is not None and self.target is not None:
            self.pending_reach = False
            x, y, z = self.target
            self._start(plan_reach(self.leader_joints, self.target, speed_scale=self.speed_scale),
                        f"reaching for the target at ({x:.3f}, {y:.3f}, {z:.3f}) m")
        if self.path is None:
            return
        elapsed = (self.get_clock().now() - self.path_start).nanoseconds * 1e-9
        positions = to_lerobot_units(self.path.at(elapsed))
        reply = send_command(self.control_socket, {"cmd": "move", "positions": positions, "frame": "normalized",
                                                   "speed": HAND_SPEED_TICKS_S})
        if not reply.get("ok"):
            self.get_logger().error(f"leader simulator refused the move: {reply.get('error')}")
        if elapsed > self.path.duration + 0.5:
            self.path = None


def main(args=None) -> int:
    return run_node(ScriptedOperatorNode, "scripted_operator", args, description=__doc__.split("\n\n")[0],
                    parameters=PARAMETERS)

if __name__ == "__main__":
    sys.exit(main())
