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
def _bytes_view(data: Any) -> np.ndarray:
    """uint8 view of a message byte buffer: array.array / bytes (rclpy) or a numpy array (rosbags), no copy."""
    if isinstance(data, np.ndarray):
        return data.astype(np.uint8, copy=False).reshape(-1)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:  # a plain list of ints
        return np.asarray(data, dtype=np.uint8)


_COLOR_ORDER = {"rgb8": (3, [0, 1, 2]), "bgr8": (3, [2, 1, 0]), "rgba8": (4, [0, 1, 2]), "bgra8": (4, [2, 1, 0])}


def image_values(msg: Any, height: int, width: int, channels: int, topic: str) -> np.ndarray:
    """sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8) -> uint8 (H, W, C), RGB channel order."""
    if int(msg.height) != height or int(msg.width) != width:
        raise ConversionError(
            f"{topic}: expected a {width}x{height} image (width x height), got {msg.width}x{msg.height}"
        )
    encoding = str(msg.encoding).lower()
    if encoding in _COLOR_ORDER:
        src_channels, order = _COLOR_ORDER[encoding]
    elif encoding in ("mono8", "8uc1"):
        src_channels, order = 1, [0]
    else:
        raise ConversionError(
            f"{topic}: unsupported image encoding {msg.encoding!r}; expected rgb8, bgr8, rgba8, bgra8 or mono8"
        )
    step = int(msg.step)
    row_bytes = width * src_channels
    if step < row_bytes:
        raise ConversionError(f"{topic}: step {step} is shorter than a row of {row_bytes} bytes ({encoding})")
    raw = _bytes_view(msg.data)
    if raw.size < step * height:
        raise ConversionError(f"{topic}: image data has {raw.size} bytes, expected {step * height}")
    pixels = raw[: step * height].reshape(height, step)[:, :row_bytes].reshape(height, width, src_channels)
    if channels == 1:
        if src_channels != 1:
            raise ConversionError(f"{topic}: feature declares 1 channel but the image is {encoding}")
        return pixels.copy()
    if channels != 3:
        raise ConversionError(f"{topic}: only 1 or 3 channels are supported, feature declares {channels}")
    if src_channels == 1:
        return np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, order])


def compressed_image_values(msg: Any, height: int, width: int, channels: int, topic: str) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg/png, as image_transport publishes) -> uint8 (H, W, C) RGB."""
    import cv2

    buffer = _bytes_view(msg.data)
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    decoded = cv2.imdecode(buffer, flag) if buffer.size else None
    if decoded is None:
        raise ConversionError(f"{topic}: could not decode CompressedImage (format {msg.format!r}, {buffer.size} bytes)")
    if decoded.shape[0] != height or decoded.shape[1] != width:
        raise ConversionError(
            f"{topic}: expected a {width}x{height} image (width x height), got {decoded.shape[1]}x{decoded.shape[0]}"
        )
    if channels == 1:
        return decoded.reshape(height, width, 1)
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


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
