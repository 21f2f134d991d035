"""ROS message readers/writers: rclpy messages (live) and rosbags messages (bag converter) give the same values."""
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float32MultiArray, Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from lerobot_recorder import ros_conversion as rc
from lerobot_recorder.interface import load_interface

ROBOTS = Path(__file__).resolve().parents[3] / "config" / "robots"
TOPIC = "/cam"


def rgb_pattern(h=4, w=6):
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def raw_image(pixels: np.ndarray, encoding: str, pad: int = 0) -> Image:
    h, w = pixels.shape[:2]
    c = 1 if pixels.ndim == 2 else pixels.shape[2]
    rows = pixels.reshape(h, w * c)
    padded = np.concatenate([rows, np.full((h, pad), 255, np.uint8)], axis=1)
    return Image(height=h, width=w, encoding=encoding, step=w * c + pad, data=padded.tobytes())


# ------------------------------------------------------------------------------------------------ images
@pytest.mark.parametrize("pad", [0, 2])
def test_raw_rgb_and_bgr_decode_to_rgb(pad):
    rgb = rgb_pattern()
    np.testing.assert_array_equal(rc.image_values(raw_image(rgb, "rgb8", pad), 4, 6, 3, TOPIC), rgb)
    np.testing.assert_array_equal(rc.image_values(raw_image(rgb[:, :, ::-1].copy(), "bgr8", pad), 4, 6, 3, TOPIC), rgb)


def test_mono_images():
    gray = rgb_pattern()[:, :, 0].copy()
    as_rgb = rc.image_values(raw_image(gray, "mono8"), 4, 6, 3, TOPIC)
    assert as_rgb.shape == (4, 6, 3) and (as_rgb == gray[:, :, None]).all()
    single = rc.image_values(raw_image(gray, "mono8"), 4, 6, 1, TOPIC)
    assert single.shape == (4, 6, 1) and (single[:, :, 0] == gray).all()
    with pytest.raises(rc.ConversionError, match="/cam: feature declares 1 channel but the image is rgb8"):
        rc.image_values(raw_image(rgb_pattern(), "rgb8"), 4, 6, 1, TOPIC)


def test_image_errors_name_topic_and_expectation():
    msg = raw_image(rgb_pattern(), "rgb8")
    with pytest.raises(rc.ConversionError, match=r"/cam: expected a 640x480 image \(width x height\), got 6x4"):
        rc.image_values(msg, 480, 640, 3, TOPIC)
    with pytest.raises(rc.ConversionError, match="/cam: unsupported image encoding '16UC1'"):
        rc.image_values(Image(height=4, width=6, encoding="16UC1", step=12, data=bytes(48)), 4, 6, 3, TOPIC)
    short = raw_image(rgb_pattern(), "rgb8")
    short.data = bytes(10)
    with pytest.raises(rc.ConversionError, match="/cam: image data has 10 bytes"):
        rc.image_values(short, 4, 6, 3, TOPIC)


def test_compressed_png_is_lossless_and_jpeg_decodes():
    rgb = rgb_pattern(24, 32)
    ok, png = cv2.imencode(".png", rgb[:, :, ::-1])
    assert ok
    msg = CompressedImage(format="png", data=png.tobytes())
    np.testing.assert_array_equal(rc.compressed_image_values(msg, 24, 32, 3, TOPIC), rgb)
    flat = np.zeros((24, 32, 3), np.uint8)
    flat[:] = (200, 30, 10)
    ok, jpg = cv2.imencode(".jpg", flat[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    decoded = rc.compressed_image_values(CompressedImage(format="jpeg", data=jpg.tobytes()), 24, 32, 3, TOPIC)
    assert np.abs(decoded.astype(int) - flat).max() <= 3  # RGB order kept (a BGR mix-up would be off by 190)
    with pytest.raises(rc.ConversionError, match=r"/cam: expected a 64x48 image"):
        rc.compressed_image_values(msg, 48, 64, 3, TOPIC)
    with pytest.raises(rc.ConversionError, match="/cam: .*could not decode"):
        rc.compressed_image_values(CompressedImage(format="jpeg", data=b"not a jpeg"), 24, 32, 3, TOPIC)


# ------------------------------------------------------------------------------------------------ joints
def test_joint_state_field_selection():
    msg = JointState(name=["b", "a"], position=[2.0, 1.0], velocity=[20.0, 10.0])
    np.testing.assert_array_equal(rc.joint_state_values(msg, ["a", "b"], "position", "/js"), [1.0, 2.0])
    np.testing.assert_array_equal(rc.joint_state_values(msg, ["a"], "velocity", "/js"), [10.0])
    with pytest.raises(rc.ConversionError, match="/js: JointState has 2 names but 0 effort values"):
        rc.joint_state_values(msg, ["a"], "effort", "/js")
    twice = JointState(name=["a", "a"], position=[1.0, 2.0])
    with pytest.raises(rc.ConversionError, match="/js: JointState lists joint 'a' twice"):
        rc.joint_state_values(twice, ["a"], "position", "/js")


def test_multi_arrays():
    np.testing.assert_array_equal(rc.array_values(Float64MultiArray(data=[1.0, 2.0]), ["x", "y"], "/c"), [1.0, 2.0])
    np.testing.assert_allclose(rc.array_values(Float32MultiArray(data=[0.5]), ["x"], "/c"), [0.5])
    with pytest.raises(rc.ConversionError, match=r"/c: expected 2 values for \['x', 'y'\], got 3"):
        rc.array_values(Float64MultiArray(data=[1.0, 2.0, 3.0]), ["x", "y"], "/c")
    with pytest.raises(rc.ConversionError, match="/c: non-finite values: y=inf"):
        rc.array_values(Float64MultiArray(data=[1.0, math.inf]), ["x", "y"], "/c")
    out = rc.float_array_msg(rc.FLOAT32_ARRAY, np.array([1.5, 2.5]))
    assert isinstance(out, Float32MultiArray) and list(out.data) == [1.5, 2.5]


def test_trajectory_first_point_by_name():
    points = [JointTrajectoryPoint(positions=[0.2, 0.1]), JointTrajectoryPoint(positions=[9.0, 9.0])]
    msg = JointTrajectory(joint_names=["j2", "j1"], points=points)
    np.testing.assert_array_equal(rc.trajectory_values(msg, ["j1", "j2"], "position", "/t"), [0.1, 0.2])
    with pytest.raises(rc.ConversionError, match="/t: JointTrajectory has no points"):
        rc.trajectory_values(JointTrajectory(joint_names=["j1"]), ["j1"], "position", "/t")
    with pytest.raises(rc.ConversionError, match=r"/t: JointTrajectory lacks joint\(s\) \['j3'\]"):
        rc.trajectory_values(msg, ["j1", "j3"], "position", "/t")
    built = rc.joint_trajectory_msg(["j1"], np.array([0.3]), stamp_ns=2_000_000_001, time_from_start_s=0.25)
    assert (built.header.stamp.sec, built.header.stamp.nanosec) == (2, 1)
    assert (built.points[0].time_from_start.sec, built.points[0].time_from_start.nanosec) == (0, 250_000_000)


def test_task_text():
    assert rc.task_text(String(data="  pick  "), "/task") == "pick"
    with pytest.raises(rc.ConversionError, match="/task: empty task string"):
        rc.task_text(String(data="  "), "/task")


# ------------------------------------------------------------------------------------------------- stamps
def test_stamp_sources():
    msg = JointState()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 12, 345
    assert rc.sample_stamp_ns(msg, "header", receive_ns=1) == 12_000_000_345
    assert rc.sample_stamp_ns(msg, "receive", receive_ns=1) == 1
    assert rc.sample_stamp_ns(JointState(), "header", receive_ns=77) == 77  # unset stamp: receive time
    with pytest.raises(ValueError, match="stamp source"):
        rc.sample_stamp_ns(msg, "arrival", 0)


def test_message_class():
    assert rc.message_class("sensor_msgs/msg/JointState") is JointState
    with pytest.raises(ValueError, match="pkg/msg/Name"):
        rc.message_class("JointState")


# -------------------------------------------------------------------------------------------- bag messages
def test_rosbags_messages_convert_like_rclpy_messages():
    """The bag converter hands over rosbags' own message objects (numpy arrays for sequences)."""
    store = get_typestore(Stores.ROS2_JAZZY)
    T = store.types
    header = T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=5, nanosec=7), frame_id="")
    so101 = load_interface(ROBOTS / "so101.yaml")
    names = ["gripper", "wrist_roll", "wrist_flex", "elbow_flex", "shoulder_lift", "shoulder_pan"]
    positions = np.array([0.5, 0.1, 0.2, 0.3, 0.4, 0.6])
    bag_js = T["sensor_msgs/msg/JointState"](header=header, name=names, position=positions,
                                              velocity=np.array([]), effort=np.array([]))
    live_js = JointState(name=names, position=positions.tolist())
    live_js.header.stamp.sec, live_js.header.stamp.nanosec = 5, 7
    np.testing.assert_array_equal(so101.state_from_msg(bag_js), so101.state_from_msg(live_js))
    [bag_sample] = so101.decode("/follower/joint_states", bag_js, receive_ns=0)
    [live_sample] = so101.decode("/follower/joint_states", live_js, receive_ns=0)
    assert bag_sample.stamp_ns == live_sample.stamp_ns == 5_000_000_007

    rgb = rgb_pattern(480, 640)
    raw = store.serialize_cdr(
        T["sensor_msgs/msg/Image"](header=header, height=480, width=640, encoding="bgr8", is_bigendian=0, step=1920,
                                   data=np.ascontiguousarray(rgb[:, :, ::-1]).reshape(-1)),
        "sensor_msgs/msg/Image")
    bag_image = store.deserialize_cdr(raw, "sensor_msgs/msg/Image")
    np.testing.assert_array_equal(so101.image_from_msg("front", bag_image), rgb)
