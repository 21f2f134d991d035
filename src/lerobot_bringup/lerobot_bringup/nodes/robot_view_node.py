"""`robot_view`: what rviz needs to watch a policy drive the arm (thin ROS layer over lerobot_bringup.robot_view).

Subscribes: joint_states_topic (sensor_msgs/JointState, suite units: radians, gripper opening fraction),
            action_chunk_topic (lerobot_msgs/ActionChunk: the chunks the executor runs), target_topic
            (geometry_msgs/PointStamped: the cube's top centre) and reached_topic (std_msgs/Bool).
Publishes:  ~/markers (visualization_msgs/MarkerArray, frame = the URDF's root link): the newest predicted chunk as an
            end-effector path (URDF forward kinematics of every row, blue), the path the fingertips actually took
            over the last `executed_history_s` (orange), and the cube (red; green when reached).
            /joint_states (sensor_msgs/JointState in URDF units, gripper as its joint angle) for
            robot_state_publisher, when publish_joint_states is true.
Parameters: the PARAMETERS table below (`robot_view --help`).
"""
from __future__ import annotations

import sys

from geometry_msgs.msg import Point, PointStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from lerobot_bringup.robot_view import (
    CubeMarker, EndEffectorKinematics, ExecutedPath, PathMarker, cube_marker, executed_path_marker,
    predicted_path_marker, share_urdf,
)
from lerobot_drivers.nodes.log_throttle import LogThrottle
from lerobot_drivers.nodes.parameters import ParameterSpec, declare_parameters, parameter_values
from lerobot_drivers.nodes.runner import run_node
from lerobot_drivers.qos import JOINT_STATE_PUBLISHER_QOS, LATEST_JOINT_STATE_QOS, TRAJECTORY_QOS
from lerobot_drivers.urdf_kinematics import UrdfError
from lerobot_msgs.msg import ActionChunk

PARAMETERS = (
    ParameterSpec("urdf", "", "robot description file; empty = share/lerobot_bringup/urdf/<robot>.urdf",
                  read_only=True),
    ParameterSpec("robot", "so101", "installed URDF to use when urdf is empty (so101, koch)", read_only=True),
    ParameterSpec("tip_link", "gripper_tip", "the URDF link whose path is drawn", read_only=True),
    ParameterSpec("joint_states_topic", "/follower/joint_states", "the arm's measured joint states", read_only=True),
    ParameterSpec("action_chunk_topic", "/follower/action_chunk", "the chunks the arm executes", read_only=True),
    ParameterSpec("target_topic", "/scene/target", "the cube's top centre (empty = no cube)", read_only=True),
    ParameterSpec("reached_topic", "/scene/reached", "whether the cube is reached (colours the cube)", read_only=True),
    ParameterSpec("cube_size", 0.03, "edge of the drawn cube (m)", bounds=(0.001, 1.0), read_only=True),
    ParameterSpec("executed_history_s", 5.0, "how much of the executed path is drawn (s)", bounds=(0.1, 600.0),
                  read_only=True),
    ParameterSpec("publish_joint_states", True, "republish the joint states in URDF units on /joint_states for "
                  "robot_state_publisher", read_only=True),
    ParameterSpec("marker_rate_hz", 10.0, "how often the executed path and the cube are republished",
                  bounds=(0.1, 100.0), read_only=True),
)


def _colour(rgba) -> ColorRGBA:
    return ColorRGBA(r=float(rgba[0]), g=float(rgba[1]), b=float(rgba[2]), a=float(rgba[3]))


class RobotViewNode(Node):
    def __init__(self) -> None:
        super().__init__("robot_view")
        self._throttled = LogThrottle(self.get_logger())
        declare_parameters(self, PARAMETERS)
        p = parameter_values(self, PARAMETERS)
        urdf = p["urdf"] or str(share_urdf(str(p["robot"])))
        self.kinematics = EndEffectorKinematics.from_file(urdf, str(p["tip_link"]))
        self.frame = self.kinematics.frame
        self.executed = ExecutedPath(float(p["executed_history_s"]))
        self.cube_size = float(p["cube_size"])
        self.cube_top = None
        self.reached = False
        self.latest_joints: tuple[int, list[str], list[float]] | None = None  # (stamp ns, names, positions)
        self.markers_pub = self.create_publisher(MarkerArray, "~/markers", JOINT_STATE_PUBLISHER_QOS.profile())
        self.urdf_states_pub = (self.create_publisher(JointState, "/joint_states", JOINT_STATE_PUBLISHER_QOS.profile())
                                if p["publish_joint_states"] else None)
        self.create_subscription(JointState, str(p["joint_states_topic"]), self._on_joint_state,
                                 LATEST_JOINT_STATE_QOS.profile())
        self.create_subscription(ActionChunk, str(p["action_chunk_topic"]), self._on_chunk, TRAJECTORY_QOS.profile())
        if p["target_topic"]:
            self.create_subscription(PointStamped, str(p["target_topic"]), self._on_target, 10)
            self.create_subscription(Bool, str(p["reached_topic"]), self._on_reached, 10)
        self.create_timer(1.0 / float(p["marker_rate_hz"]), self._publish_scene)
        self.get_logger().info(f"drawing {self.kinematics.tip_link} of {urdf} in frame {self.frame}")

    # ------------------------------------------------------------------------------------------ inputs
    def _on_joint_state(self, msg: JointState) -> None:
        if len(msg.name) != len(msg.position):
            self._throttled.warning("joint_state", 5.0, f"ignoring JointState with {len(msg.name)} names but "
                                    f"{len(msg.position)} positions")
            return
        known = [i for i, name in enumerate(msg.name) if name in self.kinematics.description.joints]
        names = [msg.name[i] for i in known]
        values = [msg.position[i] for i in known]
        if self.urdf_states_pub is not None:
            urdf = self.kinematics.mapping.to_urdf(names, values)
            self.urdf_states_pub.publish(JointState(header=msg.header, name=list(urdf), position=list(urdf.values())))
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        # The executed path is sampled at the marker rate: forward kinematics of every 100 Hz joint state would cost
        # a share of a small robot computer's CPU for points nobody can tell apart.
        self.latest_joints = (stamp or self.get_clock().now().nanoseconds, names, values)

    def _on_chunk(self, msg: ActionChunk) -> None:
        if msg.horizon * msg.action_dim != len(msg.actions) or len(msg.names) != msg.action_dim:
            self._throttled.warning("chunk shape", 5.0, f"ignoring ActionChunk {msg.chunk_id}: {msg.horizon}x"
                                    f"{msg.action_dim} with {len(msg.actions)} values and {len(msg.names)} names")
            return
        rows = [msg.actions[k * msg.action_dim:(k + 1) * msg.action_dim] for k in range(msg.horizon)]
        try:
            points = self.kinematics.tip_positions(list(msg.names), rows)
        except ValueError as error:
            self._throttled.warning("chunk joints", 5.0, f"cannot draw ActionChunk {msg.chunk_id}: {error}")
            return
        self.markers_pub.publish(MarkerArray(markers=[self._line(predicted_path_marker(points[msg.rtc_delay_steps:]))]))

    def _on_target(self, msg: PointStamped) -> None:
        self.cube_top = (msg.point.x, msg.point.y, msg.point.z)

    def _on_reached(self, msg: Bool) -> None:
        self.reached = bool(msg.data)

    # ------------------------------------------------------------------------------------------ outputs
    def _publish_scene(self) -> None:
        if self.latest_joints is not None:
            stamp, names, values = self.latest_joints
            self.executed.add(stamp, self.kinematics.tip_positions(names, [values])[0])
        markers = [self._line(executed_path_marker(self.executed.points()))]
        if self.cube_top is not None:
            markers.append(self._cube(cube_marker(self.cube_top, self.cube_size, self.reached)))
        self.markers_pub.publish(MarkerArray(markers=markers))

    def _marker(self, namespace: str, kind: int) -> Marker:
        marker = Marker(ns=namespace, id=0, type=kind, action=Marker.ADD)
        marker.header.frame_id = self.frame
        marker.header.stamp = self.get_clock().now().to_msg()
        marker.pose.orientation.w = 1.0
        return marker

    def _line(self, path: PathMarker) -> Marker:
        marker = self._marker(path.namespace, Marker.LINE_STRIP)
        marker.scale.x = path.width
        marker.color = _colour(path.rgba)
        marker.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in path.points]
        return marker

    def _cube(self, cube: CubeMarker) -> Marker:
        marker = self._marker("cube", Marker.CUBE)
        marker.pose.position = Point(x=float(cube.centre[0]), y=float(cube.centre[1]), z=float(cube.centre[2]))
        marker.scale.x = marker.scale.y = marker.scale.z = cube.size
        marker.color = _colour(cube.rgba)
        return marker


def main(args=None) -> int:
    return run_node(RobotViewNode, "robot_view", args, config_errors=(UrdfError,),
                    description=__doc__.split("\n\n")[0], parameters=PARAMETERS)


if __name__ == "__main__":
    sys.exit(main())
