"""OpenCV camera lifecycle node in its own process, a video file as device, frames received over DDS."""
import sys
import time

import numpy as np
import pytest

from lerobot_drivers.cameras.video_file import write_video_file

pytestmark = pytest.mark.graph

W, H = 64, 48
RED, GREEN, BLUE = (200, 30, 30), (30, 200, 30), (30, 30, 200)


def quadrant_frame(base):
    frame = np.empty((H, W, 3), np.uint8)
    frame[:] = base
    frame[: H // 2, : W // 2] = GREEN
    return frame


def camera_args(video, name, *params):
    return [sys.executable, "-m", "lerobot_drivers.nodes.camera_node", "--ros-args", "-r", f"__node:=cam_{name}",
            "-p", f"camera_name:={name}", "-p", f"device:={video}", "-p", "fps:=30", *sum((["-p", p] for p in params), [])]


class Receiver:
    def __init__(self, context, topic):
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image

        self.node = Node("camera_test_receiver", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.messages = []  # (msg, receive time in ns on the same system clock)
        self.node.create_subscription(
            Image, topic, lambda m: self.messages.append((m, self.node.get_clock().now().nanoseconds)),
            qos_profile_sensor_data)

    def spin_until(self, predicate, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not predicate():
            self.executor.spin_once(timeout_sec=0.05)
        return predicate()

    def spin_for(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()


def test_frames_rotation_stamps_and_reconnect_over_dds(spawn, rclpy_context, tmp_path):
    from lerobot_drivers.image_conversion import image_msg_to_numpy

    video = write_video_file(tmp_path / "cam.mkv", [quadrant_frame(RED)] * 15)
    # rotation 90: the published image is H wide and W high
    node = spawn(camera_args(video, "wrist", f"width:={H}", f"height:={W}", "rotation:=90", "backoff_max:=0.3"),
                 "camera_node")
    rx = Receiver(rclpy_context, "/cameras/wrist/image_raw")
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    diagnostics = []
    rx.node.create_subscription(DiagnosticArray, "/diagnostics",
                                lambda m: diagnostics.extend(s for s in m.status if "camera wrist" in s.name), 10)
    try:
        assert rx.spin_until(lambda: len(rx.messages) >= 20), f"frames: {len(rx.messages)}\n{node.output()}"
        assert rx.spin_until(lambda: any(d.level == DiagnosticStatus.OK and d.message == "streaming"
                                         for d in diagnostics)), diagnostics
        expected = np.rot90(quadrant_frame(RED), k=-1)
        for msg, received_ns in rx.messages:
            assert (msg.width, msg.height, msg.encoding, msg.step) == (H, W, "rgb8", 3 * H)
            assert msg.header.frame_id == "wrist_optical_frame"
            np.testing.assert_array_equal(image_msg_to_numpy(msg), expected)
            stamp_ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            assert 0 <= received_ns - stamp_ns < 5 * 10**9  # capture time on the node clock, before arrival
        stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m, _ in rx.messages]
        assert all(b > a for a, b in zip(stamps, stamps[1:]))
        span = (stamps[-1] - stamps[0]) / 1e9
        assert span > 0 and (len(stamps) - 1) / span < 45  # paced to ~30 fps, not decoded flat out

        # Device disappears, then comes back with different content: the node reconnects by itself.
        video.unlink()
        node.wait_for_output("cannot open camera device", timeout=20)
        assert rx.spin_until(lambda: any(d.level == DiagnosticStatus.ERROR and "cannot open" in d.message
                                         for d in diagnostics)), diagnostics
        rx.messages.clear()
        write_video_file(video, [quadrant_frame(BLUE)] * 15)
        blue = np.rot90(quadrant_frame(BLUE), k=-1)
        assert rx.spin_until(lambda: any(np.array_equal(image_msg_to_numpy(m), blue) for m, _ in rx.messages)), \
            node.output()
        assert "streaming (reconnects so far:" in node.output()
        # The 15-frame file looped several times: announced once at INFO, not at every loop (log noise).
        assert node.output().count("streaming (reconnects so far:") == 1, node.output()
    finally:
        rx.close()


def _change_state(node, executor, service_name, transition_id):
    from lifecycle_msgs.srv import ChangeState, GetState

    client = node.create_client(ChangeState, f"{service_name}/change_state")
    assert client.wait_for_service(timeout_sec=20)
    request = ChangeState.Request()
    request.transition.id = transition_id
    future = client.call_async(request)
    executor.spin_until_future_complete(future, timeout_sec=20)
    assert future.done()
    getter = node.create_client(GetState, f"{service_name}/get_state")
    assert getter.wait_for_service(timeout_sec=20)
    state = getter.call_async(GetState.Request())
    executor.spin_until_future_complete(state, timeout_sec=20)
    return future.result().success, state.result().current_state.label


def test_lifecycle_transitions_and_waiting_for_a_late_device(spawn, rclpy_context, tmp_path):
    from lifecycle_msgs.msg import Transition

    video = tmp_path / "late.mkv"  # does not exist yet
    node = spawn(camera_args(video, "top", f"width:={W}", f"height:={H}", "autostart:=false",
                             "wait_for_device:=true", "backoff_max:=0.3"), "camera_node")
    rx = Receiver(rclpy_context, "/cameras/top/image_raw")
    try:
        ok, label = _change_state(rx.node, rx.executor, "/cam_top", Transition.TRANSITION_CONFIGURE)
        assert (ok, label) == (True, "inactive"), node.output()
        assert "waiting for it (wait_for_device=true)" in node.output()
        ok, label = _change_state(rx.node, rx.executor, "/cam_top", Transition.TRANSITION_ACTIVATE)
        assert (ok, label) == (True, "active")
        rx.spin_for(0.5)
        assert not rx.messages
        write_video_file(video, [quadrant_frame(RED)] * 15)
        assert rx.spin_until(lambda: len(rx.messages) >= 5), node.output()
        assert rx.messages[-1][0].width == W

        ok, label = _change_state(rx.node, rx.executor, "/cam_top", Transition.TRANSITION_DEACTIVATE)
        assert (ok, label) == (True, "inactive")
        rx.spin_for(1.0)  # frames already in flight may still arrive
        rx.messages.clear()
        rx.spin_for(1.0)
        assert not rx.messages, "inactive camera must not publish"
        ok, label = _change_state(rx.node, rx.executor, "/cam_top", Transition.TRANSITION_CLEANUP)
        assert (ok, label) == (True, "unconfigured")
    finally:
        rx.close()


def test_unopenable_device_and_size_mismatch_exit_with_a_clear_error(spawn, tmp_path):
    missing = spawn(camera_args(tmp_path / "missing.mkv", "gone"), "camera_missing")
    assert missing.popen.wait(30) == 1
    assert "cannot open camera device" in missing.output() and "missing.mkv" in missing.output()
    video = write_video_file(tmp_path / "cam.mkv", [quadrant_frame(RED)] * 3)
    wrong = spawn(camera_args(video, "wrong", "width:=640", "height:=480"), "camera_wrong")
    assert wrong.popen.wait(30) == 1
    assert "delivers 64x48 but 640x480 was requested" in wrong.output()
