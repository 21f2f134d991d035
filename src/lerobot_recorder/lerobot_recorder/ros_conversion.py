"""ROS messages <-> numpy feature values, without a node.

Readers are duck-typed on the message fields, so they accept rclpy messages (live recorder, policy node) and the
message objects `rosbags` deserialises (bag converter) alike. Writers build rclpy messages (imported lazily, so the
readers work where rclpy is absent).

Every reader raises `ConversionError` naming the topic, what was expected and what was received.
"""
from __future__ import annotations

import importlib
from typing import Any, Sequence

import numpy as np

NS_PER_S = 1_000_000_000

JOINT_STATE = "sensor_msgs/msg/JointState"
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
FLOAT32_ARRAY = "std_msgs/msg/Float32MultiArray"
FLOAT64_ARRAY = "std_msgs/msg/Float64MultiArray"
JOINT_TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
STRING = "std_msgs/msg/String"

HEADERLESS_TYPES = (FLOAT32_ARRAY, FLOAT64_ARRAY, STRING)
JOINT_FIELDS = ("position", "velocity", "effort")


class ConversionError(ValueError):
    """A message that cannot be turned into the declared feature value."""


def message_class(type_name: str) -> type:
    """The rclpy message class of 'pkg/msg/Name' (for creating subscriptions and publishers)."""
    parts = type_name.split("/")
    if len(parts) != 3 or parts[1] != "msg":
        raise ValueError(f"message type must look like 'pkg/msg/Name', got {type_name!r}")
    module = importlib.import_module(f"{parts[0]}.msg")
    return getattr(module, parts[2])


# --------------------------------------------------------------------------------------------------- stamps
def header_stamp_ns(msg: Any) -> int:
    stamp = msg.header.stamp
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def sample_stamp_ns(msg: Any, stamp_source: str, receive_ns: int) -> int:
    """The stamp alignment uses: the header stamp, or the receive time (log time in a bag).

    A zero header stamp means "not set" (and "start now" on a JointTrajectory), so it falls back to the
    receive time instead of aligning a message to 1970."""
    if stamp_source == "receive":
        return int(receive_ns)
    if stamp_source != "header":
        raise ValueError(f"stamp source must be 'header' or 'receive', got {stamp_source!r}")
    stamp = header_stamp_ns(msg)
    return stamp if stamp != 0 else int(receive_ns)


def _finite(values: np.ndarray, topic: str, labels: Sequence[str]) -> np.ndarray:
    bad = ~np.isfinite(values)
    if bad.any():
        which = [f"{labels[i]}={values[i]}" for i in np.flatnonzero(bad)]
        raise ConversionError(f"{topic}: non-finite values: {', '.join(which)}")
    return values


# ----------------------------------------------------------------------------------------------- joints
def joint_state_values(msg: Any, joints: Sequence[str], field: str, topic: str) -> np.ndarray:
    """Select `joints` BY NAME from a JointState's `field` array, in the declared order (float64)."""
    if field not in JOINT_FIELDS:
        raise ValueError(f"joint field must be one of {JOINT_FIELDS}, got {field!r}")
    names = list(msg.name)
    data = np.asarray(getattr(msg, field), dtype=np.float64)
    if len(data) != len(names):
        raise ConversionError(
            f"{topic}: JointState has {len(names)} names but {len(data)} {field} values"
        )
    index = {}
    for i, name in enumerate(names):
        if name in index:
            raise ConversionError(f"{topic}: JointState lists joint {name!r} twice")
        index[name] = i
    absent = [j for j in joints if j not in index]
    if absent:
        raise ConversionError(f"{topic}: JointState lacks joint(s) {absent}; it has {names}")
    values = data[[index[j] for j in joints]]
    return _finite(values, topic, joints)


def array_values(msg: Any, joints: Sequence[str], topic: str) -> np.ndarray:
    """Float32/64MultiArray: entries are the declared joints, in order (the array carries no names)."""
    data = np.asarray(msg.data, dtype=np.float64)
    if data.ndim != 1 or len(data) != len(joints):
        raise ConversionError(f"{topic}: expected {len(joints)} values for {list(joints)}, got {len(data)}")
    return _finite(data, topic, joints)


def trajectory_values(msg: Any, joints: Sequence[str], field: str, topic: str) -> np.ndarray:
    """JointTrajectory: the FIRST point's positions (or velocities), selected by joint name.

    A teleop streaming single-point trajectories commands that point; multi-point trajectories are reduced to
    their first point because a frame holds one action."""
    field_name = {"position": "positions", "velocity": "velocities", "effort": "effort"}[field]
    names = list(msg.joint_names)
    if len(msg.points) == 0:
        raise ConversionError(f"{topic}: JointTrajectory has no points")
    data = np.asarray(getattr(msg.points[0], field_name), dtype=np.float64)
    if len(data) != len(names):
        raise ConversionError(
            f"{topic}: JointTrajectory has {len(names)} joint_names but {len(data)} {field_name} in point 0"
        )
    index = {name: i for i, name in enumerate(names)}
    absent = [j for j in joints if j not in index]
    if absent:
        raise ConversionError(f"{topic}: JointTrajectory lacks joint(s) {absent}; it has {names}")
    return _finite(data[[index[j] for j in joints]], topic, joints)


# ----------------------------------------------------------------------------------------------- images
# Pixel decoding is lerobot_drivers.image_conversion (the same code the camera node encodes with); this module
# adds the checks against the interface's declared size and channels and names the topic in errors.
def _check_size(image: np.ndarray, height: int, width: int, topic: str) -> None:
    if image.shape[0] != height or image.shape[1] != width:
        raise ConversionError(
            f"{topic}: expected a {width}x{height} image (width x height), got {image.shape[1]}x{image.shape[0]}"
        )


def image_values(msg: Any, height: int, width: int, channels: int, topic: str) -> np.ndarray:
    """sensor_msgs/Image (rgb8, bgr8, mono8) -> uint8 (H, W, C): RGB for 3 channels, mono8 only for 1."""
    from lerobot_drivers import image_conversion as ic

    try:
        if channels == 1:
            if msg.encoding != "mono8":
                raise ConversionError(f"{topic}: feature declares 1 channel but the image is {msg.encoding}")
            image = ic.image_msg_to_numpy(msg)[:, :, None]
        elif msg.encoding == "bgr8":
            import cv2  # one vectorised pass; reversing channels in numpy is ~10x slower at 640x480

            image = cv2.cvtColor(ic.image_msg_to_numpy(msg), cv2.COLOR_BGR2RGB)
        else:
            image = ic.image_msg_to_rgb(msg)
    except ic.ImageConversionError as error:
        raise ConversionError(f"{topic}: {error}") from None
    _check_size(image, height, width, topic)
    return np.ascontiguousarray(image)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, extended, progressive, lossless, ...): they carry the image size.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def declared_image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) a PNG or JPEG header declares, read without decoding; None for other or truncated data.

    Checked before decoding so that a header declaring a huge image is refused without OpenCV allocating it (or
    raising cv2.error, which would otherwise escape as a non-ValueError)."""
    if data[:8] == _PNG_SIGNATURE and len(data) >= 24 and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7):  # markers without a length
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker in _JPEG_SOF:
            if i + 9 > len(data):
                return None
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
        if marker == 0xDA or length < 2:  # start of scan before any frame header: malformed
            return None
        i += 2 + length
    return None


def compressed_image_values(msg: Any, height: int, width: int, channels: int, topic: str) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg/png, as image_transport publishes) -> uint8 (H, W, C) RGB.

    The size the header declares is checked before decoding; any decoder failure becomes a ConversionError."""
    from lerobot_drivers import image_conversion as ic

    if channels == 1:
        raise ConversionError(f"{topic}: 1-channel features from CompressedImage are not supported")
    data = bytes(msg.data)
    declared = declared_image_size(data)
    if declared is not None and declared != (width, height):
        raise ConversionError(f"{topic}: expected a {width}x{height} image (width x height), the compressed image "
                              f"({msg.format!r}) declares {declared[0]}x{declared[1]}; not decoded")
    try:
        image = ic.compressed_msg_to_rgb(msg)
    except ic.ImageConversionError as error:
        raise ConversionError(f"{topic}: {error}") from None
    except Exception as error:  # cv2.error and friends: a malformed image must never stop the recorder's input
        raise ConversionError(f"{topic}: the compressed image ({msg.format!r}, {len(data)} bytes) could not be "
                              f"decoded: {type(error).__name__}: {str(error).strip()[:200]}") from None
    _check_size(image, height, width, topic)
    return np.ascontiguousarray(image)


# ------------------------------------------------------------------------------------------------- task
def task_text(msg: Any, topic: str) -> str:
    text = str(msg.data).strip()
    if not text:
        raise ConversionError(f"{topic}: empty task string")
    return text


# ---------------------------------------------------------------------------------------------- writers
def _time_msg(stamp_ns: int):
    from builtin_interfaces.msg import Time

    return Time(sec=int(stamp_ns // NS_PER_S), nanosec=int(stamp_ns % NS_PER_S))


def joint_state_msg(joints: Sequence[str], positions: np.ndarray, stamp_ns: int = 0, field: str = "position"):
    from sensor_msgs.msg import JointState

    msg = JointState()
    msg.header.stamp = _time_msg(stamp_ns)
    msg.name = list(joints)
    setattr(msg, field, [float(v) for v in positions])
    return msg


def float_array_msg(type_name: str, values: np.ndarray):
    from std_msgs.msg import Float32MultiArray, Float64MultiArray

    cls = Float32MultiArray if type_name == FLOAT32_ARRAY else Float64MultiArray
    return cls(data=[float(v) for v in values])


def joint_trajectory_msg(
    joints: Sequence[str],
    positions: np.ndarray,
    stamp_ns: int = 0,
    time_from_start_s: float = 0.0,
    field: str = "position",
):
    """A single-point trajectory (stamp 0 = "start now" for ros2_control's JointTrajectoryController)."""
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    msg = JointTrajectory()
    msg.header.stamp = _time_msg(stamp_ns)
    msg.joint_names = list(joints)
    point = JointTrajectoryPoint()
    setattr(point, {"position": "positions", "velocity": "velocities", "effort": "effort"}[field],
            [float(v) for v in positions])
    ns = int(round(time_from_start_s * NS_PER_S))
    point.time_from_start = Duration(sec=ns // NS_PER_S, nanosec=ns % NS_PER_S)
    msg.points = [point]
    return msg
