"""A gymnasium environment as a robot on ROS topics (semantics of ticks and actions: see lerobot_drivers.gym_robot).

Parameters: the PARAMETERS table below (`gym_robot --help`). env_kwargs is a JSON object; on the command line
quote it as a YAML string: -p "env_kwargs:='{\"obs_type\": \"pixels_agent_pos\"}'".
Publishes (all stamped with the tick's node-clock time):
  <prefix>/joint_states (JointState: position = state vector) or <prefix>/state (Float32MultiArray),
  /cameras/<name>/image_raw (Image rgb8, sensor-data QoS) per image observation (name = dict key, or "image"),
  <prefix>/reward (std_msgs/Float64), <prefix>/terminated and <prefix>/truncated (std_msgs/Bool) after each step.
Subscribes: <prefix>/joint_commands (JointState, position = action) or <prefix>/action (Float32MultiArray).
Services: ~/reset (std_srvs/Trigger): reset the env now; the held action is dropped.
"""
from __future__ import annotations

import sys

import numpy as np
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float32MultiArray, Float64
from std_srvs.srv import Trigger

from lerobot_drivers.gym_robot import (GymRobot, GymRobotConfig, GymRobotError, parse_camera_names,
                                       parse_env_kwargs)
from lerobot_drivers.qos import CAMERA_IMAGE_QOS
from lerobot_drivers.image_conversion import numpy_to_image_msg
from lerobot_drivers.nodes.log_throttle import LogThrottle
from lerobot_drivers.nodes.parameters import ParameterSpec, declare_parameters, parameter_values
from lerobot_drivers.nodes.runner import run_node

MSG_TYPES = ("JointState", "Float32MultiArray")

PARAMETERS = (
    ParameterSpec("env_id", "", "gymnasium id (required): `ns/Name-vN` imports package `ns` first; `module:Name-vN` "
                  "also works", read_only=True),
    ParameterSpec("env_kwargs", "{}", "JSON object of keyword arguments for gymnasium.make", read_only=True),
    ParameterSpec("fps", 0.0, "tick rate (Hz); 0 = the env's metadata render_fps", dynamic_typing=True,
                  read_only=True),
    ParameterSpec("seed", 0, "seed of the first reset; -1 = none", bounds=(-1, 2**31 - 1), read_only=True),
    ParameterSpec("state_names", Parameter.Type.STRING_ARRAY, "names of the state vector entries; default obs_<i> "
                  "or <key>_<i> for dict observations", read_only=True),
    ParameterSpec("render_camera", "", "camera name for env.render() images; empty = off (needs render_mode "
                  "rgb_array in env_kwargs)", read_only=True),
    ParameterSpec("camera_names", Parameter.Type.STRING_ARRAY, "\"obs_key=camera\" entries (e.g. [pixels=front]); "
                  "default camera name = the observation key", read_only=True),
    ParameterSpec("on_stale_action", "hold", "what a stale action does", choices=("hold", "pause"), read_only=True),
    ParameterSpec("action_timeout", 0.5, "seconds after which an action is stale; 0 = never", dynamic_typing=True,
                  read_only=True),
    ParameterSpec("auto_reset", True, "reset the env when an episode terminates or is truncated", read_only=True),
    ParameterSpec("topic_prefix", "/gym", "prefix of the state, action, reward and done topics", read_only=True),
    ParameterSpec("state_msg_type", "JointState", "message type of the state", choices=MSG_TYPES, read_only=True),
    ParameterSpec("action_msg_type", "JointState", "message type of the action", choices=MSG_TYPES, read_only=True),
    ParameterSpec("action_names", Parameter.Type.STRING_ARRAY, "when set, a JointState action is matched by name, "
                  "else taken in order", read_only=True),
)


class GymRobotNode(Node):
    def __init__(self, **kwargs):
        super().__init__("gym_robot", **kwargs)
        self._throttled = LogThrottle(self.get_logger())
        declare_parameters(self, PARAMETERS)
        p = parameter_values(self, PARAMETERS)
        env_id = str(p["env_id"])
        if not env_id:
            raise GymRobotError("parameter env_id is required, e.g. -p env_id:=Pendulum-v1")
        seed = int(p["seed"])
        config = GymRobotConfig(
            env_id=env_id, env_kwargs=parse_env_kwargs(str(p["env_kwargs"])),
            fps=float(p["fps"]), seed=None if seed < 0 else seed,
            state_names=tuple(p["state_names"] or ()), render_camera=str(p["render_camera"]),
            camera_names=parse_camera_names(p["camera_names"] or []),
            on_stale_action=str(p["on_stale_action"]), action_timeout=float(p["action_timeout"]),
            auto_reset=bool(p["auto_reset"]))
        prefix = str(p["topic_prefix"]).rstrip("/")
        self.state_type = str(p["state_msg_type"])
        self.action_type = str(p["action_msg_type"])
        self.action_names = list(p["action_names"] or [])
        for name, value in (("state_msg_type", self.state_type), ("action_msg_type", self.action_type)):
            if value not in MSG_TYPES:
                raise GymRobotError(f"parameter {name} must be one of {MSG_TYPES}, got {value!r}")

        self.robot = GymRobot(config)
        if self.action_names and len(self.action_names) != self.robot.action_dim:
            raise GymRobotError(f"action_names has {len(self.action_names)} names but {env_id} takes "
                                f"{self.robot.action_dim} action values")
        if self.state_type == "JointState":
            self.state_pub = self.create_publisher(JointState, f"{prefix}/joint_states", 10)
        else:
            self.state_pub = self.create_publisher(Float32MultiArray, f"{prefix}/state", 10)
        self.image_pubs = {}
        self.reward_pub = self.create_publisher(Float64, f"{prefix}/reward", 10)
        self.terminated_pub = self.create_publisher(Bool, f"{prefix}/terminated", 10)
        self.truncated_pub = self.create_publisher(Bool, f"{prefix}/truncated", 10)
        if self.action_type == "JointState":
            self.action_topic = f"{prefix}/joint_commands"
            self.create_subscription(JointState, self.action_topic, self._on_joint_action, 10)
        else:
            self.action_topic = f"{prefix}/action"
            self.create_subscription(Float32MultiArray, self.action_topic, self._on_array_action, 10)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self._last_status = None
        self.create_timer(1.0 / self.robot.fps, self._tick)
        self.get_logger().info(
            f"gym robot {env_id} at {self.robot.fps:g} Hz: state {list(self.robot.state_names)}, "
            f"images {sorted(self.robot.observation.images)}, action dim {self.robot.action_dim} on {self.action_topic}")

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _set_action(self, values) -> None:
        try:
            self.robot.set_action(values, self._now())
        except GymRobotError as error:
            self._throttled.warning("action", 1.0, f"ignoring action on {self.action_topic}: {error}")

    def _on_joint_action(self, msg: JointState) -> None:
        if self.action_names and msg.name:
            index = {name: i for i, name in enumerate(msg.name)}
            missing = [n for n in self.action_names if n not in index]
            if missing or len(msg.position) != len(msg.name):
                self._throttled.warning(
                    "action names", 1.0, f"ignoring action on {self.action_topic}: needs names {self.action_names} with "
                    f"one position each, got names {list(msg.name)} and {len(msg.position)} positions")
                return
            self._set_action([msg.position[index[n]] for n in self.action_names])
        else:
            self._set_action(list(msg.position))

    def _on_array_action(self, msg: Float32MultiArray) -> None:
        self._set_action(list(msg.data))

    def _on_reset(self, request, response):
        self.robot.reset()
        self.robot.episode += 1
        response.success, response.message = True, f"reset: episode {self.robot.episode}"
        self.get_logger().info(response.message)
        return response

    def _image_pub(self, name: str):
        if name not in self.image_pubs:
            self.image_pubs[name] = self.create_publisher(Image, f"/cameras/{name}/image_raw", CAMERA_IMAGE_QOS.profile())
        return self.image_pubs[name]

    def _tick(self) -> None:
        stamp = self.get_clock().now()
        result = self.robot.tick(stamp.nanoseconds * 1e-9)
        stamp_msg = stamp.to_msg()
        if result.status != self._last_status and result.status:
            self.get_logger().info(f"not stepping: {result.status}" if not result.stepped else result.status)
        self._last_status = result.status
        state = result.observation.state
        if self.state_type == "JointState":
            msg = JointState(name=list(self.robot.state_names), position=state.tolist())
            msg.header.stamp = stamp_msg
        else:
            msg = Float32MultiArray(data=state.astype(np.float32).tolist())
        self.state_pub.publish(msg)
        for name, image in result.observation.images.items():
            self._image_pub(name).publish(numpy_to_image_msg(image, "rgb8", stamp=stamp_msg, frame_id=name))
        if result.stepped:
            self.reward_pub.publish(Float64(data=result.reward))
            self.terminated_pub.publish(Bool(data=result.terminated))
            self.truncated_pub.publish(Bool(data=result.truncated))


def main(args=None) -> int:
    return run_node(GymRobotNode, "gym_robot", args, config_errors=(GymRobotError,),
                    on_exit=lambda node: node.robot.close(), description=__doc__.split("\n\n")[0],
                    parameters=PARAMETERS)

if __name__ == "__main__":
    sys.exit(main())
