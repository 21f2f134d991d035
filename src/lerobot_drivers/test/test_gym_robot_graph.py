"""gym robot node in its own process: Pendulum-v1 driven over DDS must follow the same trajectory as a local env."""
import sys
import time

import gymnasium as gym
import numpy as np
import pytest

pytestmark = pytest.mark.graph


class Peer:
    def __init__(self, context):
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node

        self.node = Node("gym_robot_test", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def spin_until(self, predicate, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not predicate():
            self.executor.spin_once(timeout_sec=0.02)
        return predicate()

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()


def node_args(*params):
    return [sys.executable, "-m", "lerobot_drivers.nodes.gym_robot_node", "--ros-args", "-p", "env_id:=Pendulum-v1",
            "-p", "seed:=3", *sum((["-p", p] for p in params), [])]


def distinct(states):
    out = []
    for s in states:
        if not out or not np.array_equal(out[-1], s):
            out.append(s)
    return out


def test_pendulum_over_dds_follows_the_reference_trajectory(spawn, rclpy_context):
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Bool, Float64
    from std_srvs.srv import Trigger

    from lerobot_drivers.qos import CAMERA_IMAGE_QOS

    proc = spawn(node_args("env_kwargs:='{\"render_mode\": \"rgb_array\"}'", "render_camera:=pendulum",
                           "action_timeout:=0", "state_names:=[cos_theta, sin_theta, theta_dot]",
                           "topic_prefix:=/pend"), "gym_robot")
    peer = Peer(rclpy_context)
    states, rewards, terminated, images = [], [], [], []
    peer.node.create_subscription(JointState, "/pend/joint_states", states.append, 50)
    peer.node.create_subscription(Float64, "/pend/reward", lambda m: rewards.append(m.data), 50)
    peer.node.create_subscription(Bool, "/pend/terminated", lambda m: terminated.append(m.data), 50)
    # Reliable, as the node publishes them and the recorder reads them: 750 kB best-effort samples are lost whole
    # on a loaded machine (a fragment dropped = the sample dropped).
    peer.node.create_subscription(Image, "/cameras/pendulum/image_raw", images.append,
                                  CAMERA_IMAGE_QOS.profile())
    action_pub = peer.node.create_publisher(JointState, "/pend/joint_commands", 10)

    reference = gym.make("Pendulum-v1")
    start, _ = reference.reset(seed=3)
    torque = 0.7
    expected, expected_rewards = [start], []
    for _ in range(40):
        obs, reward, *_ = reference.step(np.array([torque], np.float32))
        expected.append(obs)
        expected_rewards.append(reward)
    try:
        # paused before the first action: the reset observation, again and again
        assert peer.spin_until(lambda: len(states) >= 5 and images), proc.output()
        assert list(states[0].name) == ["cos_theta", "sin_theta", "theta_dot"]
        for msg in states:
            np.testing.assert_allclose(msg.position, start, rtol=1e-6)
        assert not rewards
        image = images[-1]
        assert (image.width, image.height, image.encoding) == (500, 500, "rgb8")
        assert peer.spin_until(lambda: any(image.header.stamp == s.header.stamp for s in states)), (
            image.header.stamp, [s.header.stamp for s in states])  # one stamp per tick for all outputs

        received_before = len(states)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(distinct(s.position for s in states)) < 11:
            action_pub.publish(JointState(name=["torque"], position=[torque]))
            peer.spin_until(lambda: False, timeout=0.1)
        trajectory = distinct(np.asarray(s.position) for s in states)
        assert len(trajectory) >= 11, proc.output()
        for got, want in zip(trajectory, expected):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert peer.spin_until(lambda: len(rewards) >= 10)
        np.testing.assert_allclose(rewards[:10], expected_rewards[:10], rtol=1e-5)
        assert not any(terminated)
        stamps = [s.header.stamp.sec + s.header.stamp.nanosec * 1e-9 for s in states[received_before:]]
        assert all(b > a for a, b in zip(stamps, stamps[1:]))

        # reset service: back to paused (the held action is dropped), state stays put
        client = peer.node.create_client(Trigger, "/gym_robot/reset")
        assert client.wait_for_service(timeout_sec=20)
        future = client.call_async(Trigger.Request())
        peer.executor.spin_until_future_complete(future, timeout_sec=20)
        assert future.result().success
        peer.spin_until(lambda: False, timeout=0.3)
        states.clear()
        assert peer.spin_until(lambda: len(states) >= 5)
        assert len(distinct(np.asarray(s.position) for s in states)) == 1
    finally:
        peer.close()


def test_float32_multiarray_state_and_action(spawn, rclpy_context):
    from std_msgs.msg import Float32MultiArray

    proc = spawn(node_args("state_msg_type:=Float32MultiArray", "action_msg_type:=Float32MultiArray",
                           "fps:=50", "camera_names:=[not_an_image=x]"), "gym_robot_bad_camera")
    assert proc.popen.wait(30) == 2
    assert "camera_names renames ['not_an_image']" in proc.output()
    proc = spawn(node_args("state_msg_type:=Float32MultiArray", "action_msg_type:=Float32MultiArray",
                           "fps:=50"), "gym_robot_array")
    peer = Peer(rclpy_context)
    states = []
    peer.node.create_subscription(Float32MultiArray, "/gym/state", states.append, 50)
    action_pub = peer.node.create_publisher(Float32MultiArray, "/gym/action", 10)
    try:
        assert peer.spin_until(lambda: states), proc.output()
        first = np.asarray(states[0].data)
        assert first.shape == (3,)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and np.allclose(states[-1].data, first):
            action_pub.publish(Float32MultiArray(data=[-2.0]))
            peer.spin_until(lambda: False, timeout=0.1)
        assert not np.allclose(states[-1].data, first), proc.output()
        # a wrong-sized action is rejected with a message naming the topic and the expected size
        action_pub.publish(Float32MultiArray(data=[1.0, 2.0]))
        proc.wait_for_output("ignoring action on /gym/action: action has 2 values but Pendulum-v1 expects 1")
    finally:
        peer.close()


def test_missing_env_id_exits_with_a_clear_error(spawn):
    proc = spawn([sys.executable, "-m", "lerobot_drivers.nodes.gym_robot_node"], "gym_robot_no_env")
    assert proc.popen.wait(30) == 2
    assert "parameter env_id is required" in proc.output()
