"""Synthetic robot streams for the recorder and bag tests: a schedule of stamped messages, built as rclpy
messages (for publishing) or rosbags messages (for bags), and the frames a recording of them must contain.

The robot: one follower arm state (JointState, radians, gripper fraction), one leader arm action (JointState),
one camera (rgb8). Values are functions of the message index, so a test can recompute any frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FPS = 30
NS = 1_000_000_000
JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
HEIGHT, WIDTH = 64, 96
MAX_AGE_S = 0.1


def interface_yaml(prefix: str = "/rt", height: int = HEIGHT, width: int = WIDTH, max_age_s: float = MAX_AGE_S,
                   reliable: bool = True, storage: str = "video") -> str:
    qos = "{reliability: reliable, depth: 100}" if reliable else "{reliability: best_effort, depth: 10}"
    return f"""\
robot_type: test_arm
fps: {FPS}
observation:
  state:
    topic: {prefix}/follower/joint_states
    joints: {JOINTS}
    transforms: {{default: rad2deg, gripper: {{scale: 100}}}}
    qos: {qos}
    max_age_s: {max_age_s}
  images:
    front:
      topic: {prefix}/cameras/front/image_raw
      height: {height}
      width: {width}
      storage: {storage}
      qos: {qos}
      max_age_s: {max_age_s}
action:
  topic: {prefix}/leader/joint_states
  joints: {JOINTS}
  transforms: {{default: rad2deg, gripper: {{scale: 100}}}}
  qos: {qos}
  max_age_s: {max_age_s}
"""


def write_interface(directory: Path, **kwargs) -> Path:
    path = Path(directory) / "test_arm.yaml"
    path.write_text(interface_yaml(**kwargs))
    return path


# ------------------------------------------------------------------------------------------------ values
def joint_positions(index: int, arm: str) -> np.ndarray:
    """Radians for the body joints, opening fraction for the gripper."""
    phase = 0.0 if arm == "follower" else 0.3
    body = [0.5 * math.sin(0.05 * index + phase + j) for j in range(5)]
    gripper = 0.5 + 0.4 * math.sin(0.03 * index + phase)
    return np.array(body + [gripper], dtype=np.float64)


def joint_dataset_values(index: int, arm: str) -> np.ndarray:
    """What the dataset must hold: degrees, gripper 0..100 (float32)."""
    ros = joint_positions(index, arm)
    out = np.concatenate([ros[:5] * 180.0 / math.pi, ros[5:] * 100.0])
    return out.astype(np.float32)


def camera_image(index: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """Smooth colour field with a moving square (video-friendly, index recoverable by eye)."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[..., 0] = (x * 255 // max(width - 1, 1)).astype(np.uint8)
    img[..., 1] = (y * 255 // max(height - 1, 1)).astype(np.uint8)
    img[..., 2] = (index * 7) % 256
    s = 12
    cx = (index * 3) % max(width - s, 1)
    img[8:8 + s, cx:cx + s] = 255
    return img


# ---------------------------------------------------------------------------------------------- schedule
@dataclass(frozen=True)
class ScheduledMessage:
    kind: str  # follower | leader | camera
    index: int
    stamp_ns: int
    arrival_ns: int  # when it is published (and its bag log time); differs from the stamp for non_monotonic
    # "" | nan | overflow (1e39 rad: finite, but not in float32 after rad2deg) | wrong_names | wrong_size |
    # non_monotonic | wrong_encoding | stamp_ahead (an hour ahead) | stamp_1970 | stamp_2038 (glitched stamps)
    fault: str = ""

    @property
    def implausibly_stamped(self) -> bool:
        return self.fault.startswith("stamp_")

    def topic(self, prefix: str = "/rt") -> str:
        return {"follower": f"{prefix}/follower/joint_states", "leader": f"{prefix}/leader/joint_states",
                "camera": f"{prefix}/cameras/front/image_raw"}[self.kind]

    @property
    def type_name(self) -> str:
        return "sensor_msgs/msg/Image" if self.kind == "camera" else "sensor_msgs/msg/JointState"


@dataclass
class Schedule:
    t0_ns: int
    messages: list[ScheduledMessage] = field(default_factory=list)

    @property
    def end_ns(self) -> int:
        return max(m.arrival_ns for m in self.messages)


def make_schedule(t0_ns: int, duration_s: float, joint_hz: int = 50, camera_hz: int = 30,
                  faults: dict[tuple[str, int], str] | None = None) -> Schedule:
    """Joint states at joint_hz, camera at camera_hz (offset by 4 ms), sorted by stamp (ties: kind order)."""
    faults = faults or {}
    messages = []
    for kind, hz, offset_ns in (("follower", joint_hz, 0), ("leader", joint_hz, 1_000_000),
                                ("camera", camera_hz, 4_000_000)):
        n = int(duration_s * hz)
        for i in range(n):
            arrival = t0_ns + offset_ns + (i * NS) // hz
            fault = faults.get((kind, i), "")
            stamp = arrival
            if fault == "non_monotonic":
                stamp = t0_ns + offset_ns + ((i - 2) * NS) // hz  # repeats an older stamp
            stamp = {"stamp_ahead": stamp + 3600 * NS, "stamp_1970": 1 * NS + 234,
                     "stamp_2038": (2**31 - 1) * NS + 567}.get(fault, stamp)
            messages.append(ScheduledMessage(kind, i, stamp, arrival, fault))
    messages.sort(key=lambda m: (m.arrival_ns, m.kind))
    return Schedule(t0_ns, messages)


# ------------------------------------------------------------------------------------------ messages
def _payload(m: ScheduledMessage) -> tuple:
    if m.kind == "camera":
        height, width = (HEIGHT, WIDTH + 8) if m.fault == "wrong_size" else (HEIGHT, WIDTH)
        encoding = "16UC1" if m.fault == "wrong_encoding" else "rgb8"
        return camera_image(m.index, height, width), encoding
    values = joint_positions(m.index, m.kind)
    names = list(JOINTS)
    if m.fault == "nan":
        values = values.copy()
        values[2] = float("nan")
    if m.fault == "overflow":
        values = values.copy()
        values[1] = 1e39
    if m.fault == "wrong_names":
        names = names[:-1] + ["claw"]
    return values, names


def rclpy_message(m: ScheduledMessage):
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import Image, JointState

    stamp = Time(sec=m.stamp_ns // NS, nanosec=m.stamp_ns % NS)
    if m.kind == "camera":
        img, encoding = _payload(m)
        msg = Image()
        msg.header.stamp = stamp
        msg.height, msg.width = img.shape[0], img.shape[1]
        msg.encoding = encoding
        msg.step = img.shape[1] * 3
        msg.data = img.tobytes()
        return msg
    values, names = _payload(m)
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = names
    msg.position = [float(v) for v in values]
    return msg


def rosbags_message(m: ScheduledMessage, store):
    types = store.types
    Time = types["builtin_interfaces/msg/Time"]
    Header = types["std_msgs/msg/Header"]
    header = Header(stamp=Time(sec=m.stamp_ns // NS, nanosec=m.stamp_ns % NS), frame_id="")
    if m.kind == "camera":
        img, encoding = _payload(m)
        return types["sensor_msgs/msg/Image"](
            header=header, height=img.shape[0], width=img.shape[1], encoding=encoding, is_bigendian=0,
            step=img.shape[1] * 3, data=img.reshape(-1).copy())
    values, names = _payload(m)
    return types["sensor_msgs/msg/JointState"](
        header=header, name=names, position=np.asarray(values, dtype=np.float64),
        velocity=np.zeros(0, dtype=np.float64), effort=np.zeros(0, dtype=np.float64))


def write_bag(path: Path, schedule: Schedule, storage: str = "sqlite3", prefix: str = "/rt",
              markers: list[tuple[int, str]] | None = None, split_topic: str = "/episode_marker",
              skip_kinds: tuple[str, ...] = ()) -> Path:
    """A rosbag2 (v9) of the schedule, serialized by rosbags (log time = arrival time = header stamp except for
    non_monotonic faults)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    entries = [(m.arrival_ns, "msg", m) for m in schedule.messages if m.kind not in skip_kinds]
    entries += [(stamp, "marker", text) for stamp, text in (markers or [])]
    entries.sort(key=lambda e: e[0])
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        connections = {}
        for log_ns, what, item in entries:
            if what == "marker":
                key = split_topic
                if key not in connections:
                    connections[key] = writer.add_connection(split_topic, "std_msgs/msg/String", typestore=store)
                msg = store.types["std_msgs/msg/String"](data=item)
                writer.write(connections[key], log_ns, store.serialize_cdr(msg, "std_msgs/msg/String"))
                continue
            topic = item.topic(prefix)
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, item.type_name, typestore=store)
            writer.write(connections[topic], log_ns, store.serialize_cdr(rosbags_message(item, store), item.type_name))
    return path


# ---------------------------------------------------------------------------------------- expectations
@dataclass(frozen=True)
class ExpectedFrame:
    tick_ns: int
    state: np.ndarray
    action: np.ndarray
    camera_index: int


def grid_ticks(start_ns: int, end_ns: int, fps: int = FPS):
    """Absolute grid instants k/fps (rounded half up to ns) in [start_ns, end_ns)."""
    k = (start_ns * fps) // NS
    while True:
        second, rem = divmod(k, fps)
        t = second * NS + (2 * rem * NS + fps) // (2 * fps)
        if t >= end_ns:
            return
        if t >= start_ns:
            yield t
        k += 1


def covered_end_ns(schedule: Schedule) -> int:
    """The last instant every stream has data for (min over streams of their last accepted stamp): an episode of
    this schedule ends at the last tick at or before it (no frame repeats the last values after the data ends)."""
    last: dict[str, int] = {}
    for m in schedule.messages:  # in arrival order; a non-monotonic or implausibly stamped message is dropped
        if m.implausibly_stamped or (m.kind in last and m.stamp_ns <= last[m.kind]):
            continue
        last[m.kind] = m.stamp_ns
    return min(last.values())


def expected_frames(schedule: Schedule, start_ns: int, end_ns: int, max_age_s: float = MAX_AGE_S,
                    fps: int = FPS) -> list[ExpectedFrame]:
    """Frames at grid ticks in [start, end): newest message stamped <= tick per stream, all fresh and valid."""
    max_age_ns = int(round(max_age_s * NS))
    streams: dict[str, list[ScheduledMessage]] = {"follower": [], "leader": [], "camera": []}
    for m in schedule.messages:  # in arrival order; a non-monotonic or implausibly stamped message is dropped
        stream = streams[m.kind]
        if m.implausibly_stamped or (stream and m.stamp_ns <= stream[-1].stamp_ns):
            continue
        stream.append(m)
    frames = []
    for t in grid_ticks(start_ns, end_ns, fps):
        chosen = {}
        for kind, stream in streams.items():
            newest = None
            for m in stream:
                if m.stamp_ns <= t:
                    newest = m
                else:
                    break
            chosen[kind] = newest
        if any(m is None or m.fault or t - m.stamp_ns > max_age_ns for m in chosen.values()):
            continue
        frames.append(ExpectedFrame(t, joint_dataset_values(chosen["follower"].index, "follower"),
                                    joint_dataset_values(chosen["leader"].index, "leader"), chosen["camera"].index))
    return frames
