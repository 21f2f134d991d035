"""Simulated camera node in its own process: JointState in, rendered images and the scene target out over DDS."""
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.graph


def test_sim_camera_renders_joint_states_and_randomizes_target(spawn, rclpy_context):
    from geometry_msgs.msg import PointStamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Bool, Empty
    from std_srvs.srv import Trigger

    from lerobot_drivers.image_conversion import image_msg_to_numpy
    from lerobot_drivers.sim.kinematics import forward_kinematics, inverse_kinematics
    from lerobot_drivers.sim.scene import FOREARM, ReachingScene, SceneConfig

    proc = spawn([sys.executable, "-m", "lerobot_drivers.nodes.sim_camera_node", "--ros-args",
                  "-p", "camera_name:=scene", "-p", "width:=320", "-p", "height:=240", "-p", "fps:=20",
                  "-p", "seed:=5", "-p", "joint_states_topic:=/sim_test/joint_states",
                  "-p", "extra_cameras:=[overhead=top]"], "sim_camera")
    node = Node("sim_camera_test", context=rclpy_context)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    images, targets, reached = [], [], []
    node.create_subscription(Image, "/cameras/scene/image_raw", images.append, qos_profile_sensor_data)
    overhead = []
    node.create_subscription(Image, "/cameras/overhead/image_raw", overhead.append, qos_profile_sensor_data)
    node.create_subscription(PointStamped, "/scene/target", targets.append, 10)
    node.create_subscription(Bool, "/scene/reached", lambda m: reached.append(m.data), 10)
    joints_pub = node.create_publisher(JointState, "/sim_test/joint_states", 10)
    randomize_pub = node.create_publisher(Empty, "/scene/randomize_target", 10)

    def spin_until(predicate, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not predicate():
            executor.spin_once(timeout_sec=0.05)
        return predicate()

    # A local scene with the same seed and size predicts the node's first target and where links must appear.
    local = ReachingScene(SceneConfig(width=320, height=240), seed=5)
    try:
        assert spin_until(lambda: images and targets), proc.output()
        first = targets[-1]
        assert first.header.frame_id == "base"
        np.testing.assert_allclose([first.point.x, first.point.y, first.point.z], local.target_centre)
        image = image_msg_to_numpy(images[-1])
        assert (images[-1].width, images[-1].height, images[-1].encoding) == (320, 240, "rgb8")
        np.testing.assert_array_equal(image, local.render({}))  # no JointState yet: zero pose

        q = {"shoulder_pan": 0.5, "shoulder_lift": 0.3, "elbow_flex": 0.2, "wrist_flex": 0.6,
             "wrist_roll": 0.0, "gripper": 0.3}
        msg = JointState(name=list(q), position=list(q.values()))
        pose = forward_kinematics(q)
        fore_px = local.projector.project([(pose.elbow + pose.wrist) / 2])[0].round().astype(int)

        def shows_pose():
            if not images:
                return False
            last = image_msg_to_numpy(images[-1])
            return tuple(last[fore_px[1], fore_px[0]]) == FOREARM and np.array_equal(last, local.render(q))

        images.clear()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not shows_pose():
            joints_pub.publish(msg)
            spin_until(lambda: False, timeout=0.1)
        assert shows_pose(), proc.output()
        # the extra camera sees the same scene from above, with the same stamp as the main camera's frame
        assert spin_until(lambda: any(np.array_equal(image_msg_to_numpy(m), local.render(q, view="top"))
                                      for m in overhead))
        match = next(m for m in overhead if np.array_equal(image_msg_to_numpy(m), local.render(q, view="top")))
        assert match.header.frame_id == "overhead_optical_frame"
        assert spin_until(lambda: any(m.header.stamp == match.header.stamp for m in images))
        stamp = images[-1].header.stamp
        assert stamp.sec > 0  # node clock (system time), not zero

        # service: a new target from the seeded sequence
        client = node.create_client(Trigger, "/sim_camera/randomize_target")
        assert client.wait_for_service(timeout_sec=20)
        future = client.call_async(Trigger.Request())
        executor.spin_until_future_complete(future, timeout_sec=20)
        assert future.result().success and "new target at" in future.result().message
        expected = local.randomize_target()
        assert spin_until(lambda: np.allclose([targets[-1].point.x, targets[-1].point.y], expected[:2]))

        # topic trigger: the next one in the sequence
        expected = local.randomize_target()
        randomize_pub.publish(Empty())
        assert spin_until(lambda: np.allclose([targets[-1].point.x, targets[-1].point.y], expected[:2])), \
            proc.output()

        # reach it: /scene/reached turns true
        solution = inverse_kinematics(expected + [0, 0, 0.01])
        reach = JointState(name=list(solution.joints), position=list(solution.joints.values()))
        reached.clear()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (reached and reached[-1]):
            joints_pub.publish(reach)
            spin_until(lambda: False, timeout=0.1)
        assert reached and reached[-1], proc.output()
    finally:
        executor.shutdown()
        node.destroy_node()
