"""Simulated camera: renders the reaching scene with the arm at its latest JointState, like a real camera topic.

Subscribes: joint_states_topic (default /follower/joint_states, sensor_msgs/JointState, radians + gripper fraction;
            partial messages update only the joints they name; before the first message the arm is drawn at zero),
            /scene/randomize_target (std_msgs/Empty: new target, e.g. published by an episode manager),
            /scene/set_target (geometry_msgs/PointStamped: put the target at x, y; z is ignored).
Publishes:  /cameras/<camera_name>/image_raw (sensor_msgs/Image rgb8, sensor-data QoS, stamped on the node clock at
            render time), and with the same stamp, every frame: /scene/target (geometry_msgs/PointStamped, centre of
            the cube's top face in metres, frame `base_frame`), /scene/reached (std_msgs/Bool).
Services:   ~/randomize_target (std_srvs/Trigger; the message gives the new target).
Parameters: the PARAMETERS table below (`sim_camera --help`).
"""
from __future__ import annotations

import sys

from geometry_msgs.msg import PointStamped
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Empty
from std_srvs.srv import Trigger

from lerobot_drivers.qos import CAMERA_IMAGE_QOS, LATEST_JOINT_STATE_QOS
from lerobot_drivers.image_conversion import numpy_to_image_msg
from lerobot_drivers.sim.kinematics import JOINT_NAMES, forward_kinematics
from lerobot_drivers.sim.scene import VIEWS, ReachingScene, SceneConfig
from lerobot_drivers.nodes.parameters import ParameterSpec, declare_parameters, parameter_values
from lerobot_drivers.nodes.runner import run_node

PARAMETERS = (
    ParameterSpec("camera_name", "front", "name in the topic /cameras/<camera_name>/image_raw", read_only=True),
    ParameterSpec("width", 640, "image width (pixels)", bounds=(32, 4096), read_only=True),
    ParameterSpec("height", 480, "image height (pixels)", bounds=(32, 4096), read_only=True),
    ParameterSpec("fps", 30.0, "render and publish rate (Hz)", dynamic_typing=True, read_only=True),
    ParameterSpec("view", "three_quarter", "camera placement", choices=tuple(sorted(VIEWS)), read_only=True),
    ParameterSpec("seed", 0, "seed of the cube positions", bounds=(0, 2**31 - 1), read_only=True),
    ParameterSpec("reach_radius", 0.04, "gripper distance to the cube's top centre that counts as reached (m)",
                  bounds=(0.001, 1.0), read_only=True),
    ParameterSpec("joint_states_topic", "/follower/joint_states", "joint states of the arm to draw", read_only=True),
    ParameterSpec("base_frame", "base", "frame_id of /scene/target", read_only=True),
    ParameterSpec("extra_cameras", Parameter.Type.STRING_ARRAY, "more cameras on the same scene, same size and stamp, "
                  "as \"name=view\" entries (e.g. [overhead=top]), each on /cameras/<name>/image_raw",
                  read_only=True),
)


class SimCameraNode(Node):
    def __init__(self, **kwargs):
        super().__init__("sim_camera", **kwargs)
        declare_parameters(self, PARAMETERS)
        p = parameter_values(self, PARAMETERS)
        self.camera_name = str(p["camera_name"])
        fps = float(p["fps"])
        if fps <= 0:
            raise ValueError(f"parameter fps must be > 0, got {fps}")
        config = SceneConfig(width=int(p["width"]), height=int(p["height"]),
                             view=str(p["view"]), reach_radius=float(p["reach_radius"]))
        self.scene = ReachingScene(config, seed=int(p["seed"]))
        self.base_frame = str(p["base_frame"])
        self.joints = {name: (0.5 if name == "gripper" else 0.0) for name in JOINT_NAMES}

        self.cameras = {self.camera_name: config.view}
        for entry in p["extra_cameras"] or []:
            name, sep, view = (part.strip() for part in str(entry).partition("="))
            if not sep or not name or name in self.cameras:
                raise ValueError(f"extra_cameras entries look like 'overhead=top' (unique names), got {entry!r}")
            self.scene.renderer(view)  # raises ValueError naming the valid views
            self.cameras[name] = view
        self.image_pubs = {name: self.create_publisher(Image, f"/cameras/{name}/image_raw", CAMERA_IMAGE_QOS.profile())
                           for name in self.cameras}
        self.target_pub = self.create_publisher(PointStamped, "/scene/target", 10)
        self.reached_pub = self.create_publisher(Bool, "/scene/reached", 10)
        self.create_subscription(JointState, str(p["joint_states_topic"]),
                                 self._on_joint_state, LATEST_JOINT_STATE_QOS.profile())
        self.create_subscription(Empty, "/scene/randomize_target", lambda _: self._randomize("topic"), 10)
        self.create_subscription(PointStamped, "/scene/set_target", self._on_set_target, 10)
        self.create_service(Trigger, "~/randomize_target", self._on_randomize_service)
        self.create_timer(1.0 / fps, self._tick)
        self.get_logger().info(
            f"sim cameras {self.cameras}: {config.width}x{config.height} at {fps:g} fps; "
            f"target at {self._format_target()}")

    def _format_target(self) -> str:
        x, y, z = self.scene.target_centre
        return f"({x:.3f}, {y:.3f}, {z:.3f}) m"

    def _on_joint_state(self, msg: JointState) -> None:
        if len(msg.position) != len(msg.name):
            self.get_logger().warning(
                f"ignoring JointState with {len(msg.name)} names but {len(msg.position)} positions", once=True)
            return
        for name, value in zip(msg.name, msg.position):
            if name in self.joints:
                self.joints[name] = float(value)

    def _randomize(self, why: str) -> str:
        self.scene.randomize_target()
        text = f"new target at {self._format_target()} ({why})"
        self.get_logger().info(text)
        return text

    def _on_randomize_service(self, request, response):
        response.success, response.message = True, self._randomize("service")
        return response

    def _on_set_target(self, msg: PointStamped) -> None:
        self.scene.set_target(msg.point.x, msg.point.y)
        self.get_logger().info(f"target set to {self._format_target()}")

    def _tick(self) -> None:
        stamp = self.get_clock().now().to_msg()
        pose = forward_kinematics(self.joints, self.scene.config.geometry)
        for name, view in self.cameras.items():
            image = self.scene.render(None, pose=pose, view=view)
            self.image_pubs[name].publish(numpy_to_image_msg(image, "rgb8", stamp=stamp,
                                                             frame_id=f"{name}_optical_frame"))
        target = PointStamped()
        target.header.stamp, target.header.frame_id = stamp, self.base_frame
        target.point.x, target.point.y, target.point.z = map(float, self.scene.target_centre)
        self.target_pub.publish(target)
        self.reached_pub.publish(Bool(data=self.scene.is_reached(pose)))


def main(args=None) -> int:
    return run_node(SimCameraNode, "sim_camera", args, description=__doc__.split("\n\n")[0], parameters=PARAMETERS)

if __name__ == "__main__":
    sys.exit(main())
