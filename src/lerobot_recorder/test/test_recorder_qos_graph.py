"""A camera publishing with QoS the recorder's subscription cannot match is reported by topic, not waited on."""
import sys

import pytest

pytestmark = pytest.mark.graph

INTERFACE = """
robot_type: test_arm
fps: 30
observation:
  state: {topic: /qos_test/joint_states, joints: [a, b]}
  images:
    front: {topic: /qos_test/camera, height: 48, width: 64}
action: {topic: /qos_test/commands, joints: [a, b]}
"""


def test_incompatible_camera_qos_is_logged_with_the_topic(spawn, tmp_path, rclpy_context):
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    interface = tmp_path / "qos_test.yaml"
    interface.write_text(INTERFACE)
    recorder = spawn([sys.executable, "-m", "lerobot_recorder.nodes.recorder_node", "--ros-args",
                      "-p", f"interface:={interface}", "-p", f"dataset_root:={tmp_path / 'ds'}",
                      "-p", "autostart:=true"], "recorder")
    recorder.wait_for_output("accepting RecordEpisode goals", timeout=60)

    # A best-effort camera publisher cannot serve the recorder's reliable image subscription (the default).
    node = rclpy.create_node("best_effort_camera", context=rclpy_context)
    node.create_publisher(Image, "/qos_test/camera", qos_profile_sensor_data)
    recorder.wait_for_output("/qos_test/camera: a publisher's QoS is incompatible", timeout=30)
    assert "RELIABILITY" in recorder.output()
    assert "/qos_test/joint_states: a publisher's QoS is incompatible" not in recorder.output()
    node.destroy_node()
