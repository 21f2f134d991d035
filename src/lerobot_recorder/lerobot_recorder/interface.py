"""The robot interface: one YAML file per robot setup that maps ROS topics to LeRobot dataset features.

The live recorder, the bag converter and the policy node all build their subscriptions, their frame alignment and
their dataset features from a `RobotInterface`, so what is recorded, what is converted and what a policy is served
cannot drift apart. The schema is documented in config/robots/README.md; `load_interface(path)` reads and validates
a file and every error names the file, the line and the key, e.g.

    config/robots/x.yaml:14: action.names: expected 6 entries to match action.joints, got 5

This module does not import rclpy; the message readers/writers in `ros_conversion` are imported when used.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, NoReturn, Sequence

import numpy as np
import yaml
from yaml.constructor import SafeConstructor

from lerobot_drivers.qos import (
    CAMERA_IMAGE_QOS, COMMAND_TOPIC_QOS, RECORDED_JOINT_STATE_QOS, TASK_QOS, QoSSpec,
)
from lerobot_recorder import ros_conversion as rc
from lerobot_recorder.alignment import FrameAssembler, FrameClock, Frame, Sample, StreamSpec
from lerobot_recorder.transforms import (
    Transform,
    TransformError,
    VectorTransform,
    linear_transform,
    named_transform,
    scale_transform,
)

JOINT_SOURCE_TYPES = (rc.JOINT_STATE, rc.FLOAT64_ARRAY, rc.FLOAT32_ARRAY, rc.JOINT_TRAJECTORY)
COMMAND_TYPES = (rc.JOINT_STATE, rc.FLOAT64_ARRAY, rc.FLOAT32_ARRAY, rc.JOINT_TRAJECTORY)
IMAGE_TYPES = {"raw": rc.IMAGE, "compressed": rc.COMPRESSED_IMAGE}
NAME_SUFFIX = {"position": ".pos", "velocity": ".vel", "effort": ".effort"}
TASK_KEY = "task"

_TOPIC_RE = re.compile(r"^[~/]?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")
_CAMERA_RE = re.compile(r"^[A-Za-z0-9_-]+$")


class InterfaceError(ValueError):
    """A robot interface file that is not valid: `file:line: key: message`."""

    def __init__(self, file: str, line: int, key: str, message: str) -> None:
        self.file, self.line, self.key, self.message = file, line, key, message
        super().__init__(f"{file}:{line}: {key}: {message}" if key else f"{file}:{line}: {message}")


# ---------------------------------------------------------------------------------------------- model
# Default QoS per kind of stream: lerobot_drivers.qos (which says why each); a file can override them per topic.


@dataclass(frozen=True)
class JointSource:
    """One topic contributing joints to a vector feature (observation.state or action)."""

    key: str  # alignment stream key
    topic: str
    msg_type: str
    field: str  # position | velocity | effort
    joints: tuple[str, ...]  # ROS joint names, in dataset order
    names: tuple[str, ...]  # dataset names, one per joint
    transform: VectorTransform  # ROS units -> dataset units
    stamp: str  # header | receive
    qos: QoSSpec
    max_age_s: float | None
    required: bool
    where: str = field(default="", compare=False)  # "file:line: key", for cross-checks

    def values_from_msg(self, msg: Any) -> np.ndarray:
        """Dataset-unit float32 values of this source's joints from one message."""
        if self.msg_type == rc.JOINT_STATE:
            ros = rc.joint_state_values(msg, self.joints, self.field, self.topic)
        elif self.msg_type == rc.JOINT_TRAJECTORY:
            ros = rc.trajectory_values(msg, self.joints, self.field, self.topic)
        else:
            ros = rc.array_values(msg, self.joints, self.topic)
        with np.errstate(over="ignore", invalid="ignore"):
            values = self.transform.forward(ros).astype(np.float32)
        bad = ~np.isfinite(values)
        if bad.any():
            # A finite ROS value can still overflow float32 after the unit transform (1e39 rad): the frame that would
            # use it is skipped, as for any invalid message; the episode goes on.
            which = [f"{self.joints[i]}={float(ros[i])!r}" for i in np.flatnonzero(bad)]
            raise rc.ConversionError(f"{self.topic}: values out of float32 range in dataset units "
                                     f"({', '.join(which)})")
        return values


@dataclass(frozen=True)
class VectorFeature:
    """observation.state or action: one float32 vector concatenated from one or more joint sources."""

    key: str
    sources: tuple[JointSource, ...]

    @property
    def names(self) -> list[str]:
        return [n for s in self.sources for n in s.names]

    @property
    def joints(self) -> list[str]:
        return [j for s in self.sources for j in s.joints]

    @property
    def transform(self) -> VectorTransform:
        return VectorTransform(tuple(t for s in self.sources for t in s.transform.transforms))

    def dataset_feature(self) -> dict[str, Any]:
        return {"dtype": "float32", "shape": (len(self.names),), "names": self.names}

    def from_msg(self, msg: Any) -> np.ndarray:
        topics = {s.topic for s in self.sources}
        if len(topics) != 1:
            raise ValueError(
                f"{self.key} is read from {len(topics)} topics {sorted(topics)}; one message cannot fill it, "
                "feed messages through RobotInterface.decode() and a FrameAssembler"
            )
        return np.concatenate([s.values_from_msg(msg) for s in self.sources])


@dataclass(frozen=True)
class CameraFeature:
    """observation.images.<name> from a sensor_msgs/Image or CompressedImage topic."""

    name: str
    topic: str
    kind: str  # raw | compressed
    height: int
    width: int
    channels: int
    storage: str  # video | image
    stamp: str
    qos: QoSSpec
    max_age_s: float | None
    required: bool
    where: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        return f"observation.images.{self.name}"

    @property
    def msg_type(self) -> str:
        return IMAGE_TYPES[self.kind]

    def dataset_feature(self) -> dict[str, Any]:
        return {"dtype": self.storage, "shape": (self.height, self.width, self.channels),
                "names": ["height", "width", "channels"]}

    def values_from_msg(self, msg: Any) -> np.ndarray:
        if self.kind == "raw":
            return rc.image_values(msg, self.height, self.width, self.channels, self.topic)
        return rc.compressed_image_values(msg, self.height, self.width, self.channels, self.topic)


@dataclass(frozen=True)
class TaskSource:
    """The task text of each frame: the latest std_msgs/String on `topic`, else the fixed `text`."""

    text: str | None
    topic: str | None
    qos: QoSSpec
    required: bool
    where: str = field(default="", compare=False)
    key: str = TASK_KEY
    msg_type: str = rc.STRING
    stamp: str = "receive"
    max_age_s: float | None = None  # a task stays valid until replaced


@dataclass(frozen=True)
class ActionCommand:
    """Where a policy's actions go: topic, message type and ROS joint names (dataset order)."""

    topic: str
    msg_type: str
    joints: tuple[str, ...]
    qos: QoSSpec
    time_from_start_s: float  # JointTrajectory only


@dataclass(frozen=True)
class TopicSubscription:
    """One ROS subscription and the alignment streams its messages feed."""

    topic: str
    msg_type: str
    qos: QoSSpec
    stamp: str  # header | receive
    stream_keys: tuple[str, ...]


@dataclass(frozen=True)
class RobotInterface:
    path: str
    robot_type: str
    fps: int
    state: VectorFeature
    images: dict[str, CameraFeature]
    action: VectorFeature
    command: ActionCommand
    task: TaskSource
    source_text: str = field(default="", compare=False, repr=False)

    # ------------------------------------------------------------------------------------- dataset side
    def dataset_features(self) -> dict[str, dict[str, Any]]:
        """The LeRobotDataset `features` (without the 5 default ones), as lerobot-record builds them for this robot:
        action, observation.state, then observation.images.<cam> in file order; shapes are tuples."""
        features = {"action": self.action.dataset_feature(), "observation.state": self.state.dataset_feature()}
        for camera in self.images.values():
            features[camera.key] = camera.dataset_feature()
        return features

    @property
    def use_videos(self) -> bool:
        return any(c.storage == "video" for c in self.images.values())

    # -------------------------------------------------------------------------------------- alignment
    def stream_specs(self, include_action: bool = True, include_task: bool = True) -> list[StreamSpec]:
        streams: list[Any] = list(self.state.sources) + list(self.images.values())
        if include_action:
            streams += list(self.action.sources)
        if include_task and self.task.topic is not None:
            streams.append(self.task)
        return [StreamSpec(s.key, s.max_age_s, s.required) for s in streams]

    def make_assembler(
        self,
        start_ns: int | None = None,
        latency_s: float = 0.0,
        include_action: bool = True,
        include_task: bool = True,
        buffer_capacity: int = 256,
    ) -> FrameAssembler:
        """A FrameAssembler over this interface's streams; with start_ns it owns a FrameClock at this fps."""
        clock = FrameClock(self.fps, start_ns) if start_ns is not None else None
        return FrameAssembler(self.stream_specs(include_action, include_task), clock, latency_s, buffer_capacity)

    def subscriptions(self, include_action: bool = True, include_task: bool = True) -> list[TopicSubscription]:
        """One entry per topic to subscribe (validation guarantees one type/QoS/stamp source per topic)."""
        by_topic: dict[str, list[Any]] = {}
        for s in self._streams(include_action, include_task):
            by_topic.setdefault(s.topic, []).append(s)
        return [
            TopicSubscription(topic, group[0].msg_type, group[0].qos, group[0].stamp, tuple(s.key for s in group))
            for topic, group in by_topic.items()
        ]

    def decode(self, topic: str, msg: Any, receive_ns: int, include_action: bool = True,
               include_task: bool = True) -> list[Sample]:
        """Every alignment sample one message yields. A conversion failure becomes an invalid sample (counted by
        the FrameAssembler, and reported as reason `invalid` at the ticks that would have used it)."""
        samples = []
        for stream in self._streams(include_action, include_task):
            if stream.topic != topic:
                continue
            stamp = rc.sample_stamp_ns(msg, stream.stamp, receive_ns)
            try:
                samples.append(Sample(stream.key, stamp, self._convert(stream, msg)))
            except rc.ConversionError as error:
                samples.append(Sample(stream.key, stamp, None, str(error)))
        if not samples:
            raise KeyError(f"topic {topic!r} feeds no feature of {self.path}")
        return samples

    def frame_values(self, frame: Frame, include_action: bool = True) -> dict[str, Any]:
        """Dataset frame values (dataset feature key -> array; plus "task" when known) from an aligned frame."""
        keys = [s.key for s in self.state.sources] + [c.key for c in self.images.values()]
        if include_action:
            keys += [s.key for s in self.action.sources]
        absent = [k for k in keys if k not in frame.values]
        if absent:
            raise ValueError(f"frame at tick {frame.tick_index} lacks {absent} ({dict(frame.missing)})")
        values: dict[str, Any] = {
            "observation.state": np.concatenate([frame.value(s.key) for s in self.state.sources]).astype(np.float32)
        }
        if include_action:
            values["action"] = np.concatenate([frame.value(s.key) for s in self.action.sources]).astype(np.float32)
        for camera in self.images.values():
            values[camera.key] = frame.value(camera.key)
        task = frame.value(TASK_KEY) if TASK_KEY in frame.values else self.task.text
        if task is not None:
            values["task"] = task
        return values

    # ------------------------------------------------------------------------------- message helpers
    def state_from_msg(self, msg: Any) -> np.ndarray:
        """observation.state (float32, dataset units) from one message of the state topic."""
        return self.state.from_msg(msg)

    def action_from_msg(self, msg: Any) -> np.ndarray:
        """action (float32, dataset units) from one message of the action source topic."""
        return self.action.from_msg(msg)

    def image_from_msg(self, camera: str, msg: Any) -> np.ndarray:
        return self.images[camera].values_from_msg(msg)

    def action_to_ros(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """Dataset-unit actions (..., N) -> ROS units (float64), e.g. a whole (horizon, N) chunk at once."""
        return self.action.transform.inverse(values)

    def action_to_msg(self, values: Sequence[float] | np.ndarray, stamp_ns: int = 0):
        """One action (N,) -> the command message (inverse transforms, ROS joint names)."""
        ros = self.action_to_ros(values)
        if ros.ndim != 1:
            raise ValueError(f"action_to_msg takes one action of shape ({len(self.command.joints)},), got {ros.shape}")
        bad = ~np.isfinite(ros)
        if bad.any():
            raise ValueError(f"action has non-finite values for {[self.action.names[i] for i in np.flatnonzero(bad)]}")
        command = self.command
        if command.msg_type == rc.JOINT_STATE:
            return rc.joint_state_msg(command.joints, ros, stamp_ns)
        if command.msg_type == rc.JOINT_TRAJECTORY:
            return rc.joint_trajectory_msg(command.joints, ros, stamp_ns, command.time_from_start_s)
        return rc.float_array_msg(command.msg_type, ros)

    # -------------------------------------------------------------------------------------- internals
    def _streams(self, include_action: bool, include_task: bool) -> list[Any]:
        streams: list[Any] = list(self.state.sources) + list(self.images.values())
        if include_action:
            streams += list(self.action.sources)
        if include_task and self.task.topic is not None:
            streams.append(self.task)
        return streams

    @staticmethod
    def _convert(stream: Any, msg: Any) -> Any:
        if isinstance(stream, TaskSource):
            return rc.task_text(msg, stream.topic)
        return stream.values_from_msg(msg)


# -------------------------------------------------------------------------------------- YAML reading
_constructor = SafeConstructor()


class _Entry:
    """A YAML node with its file, line and dotted key path, for errors that point at the offending line."""

    def __init__(self, file: str, node: yaml.Node, key: str, key_node: yaml.Node | None = None) -> None:
        self.file, self.node, self.key = file, node, key
        # Errors point at the line of the key ("action:"), not where a block value starts (its first child).
        self._mark = (key_node or node).start_mark

    @property
    def line(self) -> int:
        return self._mark.line + 1

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}: {self.key}"

    def fail(self, message: str) -> NoReturn:
        raise InterfaceError(self.file, self.line, self.key, message)

    def child_key(self, name: str | int) -> str:
        if isinstance(name, int):
            return f"{self.key}[{name}]"
        return f"{self.key}.{name}" if self.key else name

    def mapping(self, allowed: Iterable[str], what: str = "a mapping") -> dict[str, "_Entry"]:
        if not isinstance(self.node, yaml.MappingNode):
            self.fail(f"expected {what}, got {self._kind()}")
        allowed = list(allowed)
        out: dict[str, _Entry] = {}
        for key_node, value_node in self.node.value:
            key = _constructor.construct_object(key_node, deep=True)
            entry = _Entry(self.file, value_node, self.child_key(str(key)), key_node)
            if not isinstance(key, str):
                _Entry(self.file, key_node, self.key).fail(f"keys must be strings, got {key!r}")
            if key in out:
                _Entry(self.file, key_node, entry.key).fail("duplicate key")
            if allowed and key not in allowed:
                _Entry(self.file, key_node, entry.key).fail(f"unknown key; expected one of {', '.join(allowed)}")
            out[key] = entry
        return out

    def free_mapping(self, what: str) -> dict[str, "_Entry"]:
        return self.mapping((), what)

    def sequence(self, what: str = "a list") -> list["_Entry"]:
        if not isinstance(self.node, yaml.SequenceNode):
            self.fail(f"expected {what}, got {self._kind()}")
        return [_Entry(self.file, n, self.child_key(i)) for i, n in enumerate(self.node.value)]

    def scalar(self) -> Any:
        if not isinstance(self.node, yaml.ScalarNode):
            self.fail(f"expected a single value, got {self._kind()}")
        return _constructor.construct_object(self.node, deep=True)

    def string(self) -> str:
        value = self.scalar()
        if not isinstance(value, str) or not value:
            self.fail(f"expected a non-empty string, got {value!r}")
        return value

    def integer(self, minimum: int | None = None) -> int:
        value = self.scalar()
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"expected an integer, got {value!r}")
        if minimum is not None and value < minimum:
            self.fail(f"expected an integer >= {minimum}, got {value}")
        return value

    def number(self) -> float:
        value = self.scalar()
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(f"expected a number, got {value!r}")
        return float(value)

    def boolean(self) -> bool:
        value = self.scalar()
        if not isinstance(value, bool):
            self.fail(f"expected true or false, got {value!r}")
        return value

    def choice(self, options: Sequence[Any]) -> Any:
        value = self.scalar()
        if isinstance(value, bool) or value not in options:
            self.fail(f"expected one of {', '.join(str(o) for o in options)}, got {value!r}")
        return value

    def string_list(self) -> list[str]:
        items = self.sequence("a list of names")
        if not items:
            self.fail("expected at least one entry, got an empty list")
        values = [item.string() for item in items]
        for i, value in enumerate(values):
            if value in values[:i]:
                items[i].fail(f"duplicate entry {value!r}")
        return values

    def _kind(self) -> str:
        if isinstance(self.node, yaml.MappingNode):
            return "a mapping"
        if isinstance(self.node, yaml.SequenceNode):
            return "a list"
        return repr(_constructor.construct_object(self.node, deep=True))


def _require(parent: _Entry, items: dict[str, _Entry], key: str) -> _Entry:
    if key not in items:
        raise InterfaceError(parent.file, parent.line, parent.child_key(key), "missing required key")
    return items[key]


def _topic(entry: _Entry) -> str:
    topic = entry.string()
    if not _TOPIC_RE.match(topic):
        entry.fail(f"not a valid ROS topic name: {topic!r}")
    return topic


def _msg_type(entry: _Entry, allowed: Sequence[str]) -> str:
    value = entry.string()
    normalized = value if "/msg/" in value else value.replace("/", "/msg/", 1)  # accept "sensor_msgs/JointState"
    if normalized not in allowed:
        entry.fail(f"unsupported message type {value!r}; expected one of {', '.join(allowed)}")
    return normalized


def _qos(entry: _Entry | None, default: QoSSpec) -> QoSSpec:
    if entry is None:
        return default
    items = entry.mapping(("reliability", "durability", "depth"))
    reliability = (
        items["reliability"].choice(("reliable", "best_effort")) if "reliability" in items else default.reliability
    )
    durability = (
        items["durability"].choice(("volatile", "transient_local")) if "durability" in items else default.durability
    )
    depth = items["depth"].integer(minimum=1) if "depth" in items else default.depth
    return QoSSpec(reliability, durability, depth)


def _max_age(entry: _Entry | None, default: float | None) -> float | None:
    if entry is None:
        return default
    if entry.scalar() is None:
        return None
    value = entry.number()
    if value <= 0:
        entry.fail(f"expected a positive number of seconds (or null for no limit), got {value:g}")
    return value


def _one_transform(entry: _Entry) -> Transform:
    try:
        if isinstance(entry.node, yaml.ScalarNode):
            return named_transform(entry.string())
        items = entry.mapping(("scale", "linear"), "a transform")
        if len(items) != 1:
            entry.fail("a transform mapping has exactly one key: scale or linear")
        if "scale" in items:
            return scale_transform(items["scale"].number())
        linear = items["linear"].mapping(("scale", "offset"), "{scale: k, offset: b}")
        scale = _require(items["linear"], linear, "scale").number()
        offset = linear["offset"].number() if "offset" in linear else 0.0
        return linear_transform(scale, offset)
    except TransformError as error:
        entry.fail(str(error))


def _is_single_transform(entry: _Entry) -> bool:
    if isinstance(entry.node, yaml.ScalarNode):
        return True
    if isinstance(entry.node, yaml.MappingNode):
        keys = {_constructor.construct_object(k) for k, _ in entry.node.value}
        return bool(keys) and keys <= {"scale", "linear"}
    return False


def _transforms(entry: _Entry | None, joints: list[str], joints_key: str) -> VectorTransform:
    """`transforms`: one transform for all joints, a list (one per joint) or a mapping joint -> transform
    (with an optional `default` for the joints not listed)."""
    if entry is None:
        return VectorTransform(tuple(named_transform("identity") for _ in joints))
    if _is_single_transform(entry):
        single = _one_transform(entry)
        return VectorTransform(tuple(single for _ in joints))
    if isinstance(entry.node, yaml.SequenceNode):
        items = entry.sequence()
        if len(items) != len(joints):
            entry.fail(f"expected {len(joints)} entries to match {joints_key}, got {len(items)}")
        return VectorTransform(tuple(_one_transform(item) for item in items))
    items = entry.free_mapping("a transform, a list of transforms or a mapping joint -> transform")
    for name, item in items.items():
        if name != "default" and name not in joints:
            raise InterfaceError(item.file, item.line, item.key, f"not a joint of {joints_key} {joints}")
    default = _one_transform(items["default"]) if "default" in items else named_transform("identity")
    return VectorTransform(tuple(_one_transform(items[j]) if j in items else default for j in joints))


_SOURCE_KEYS = ("topic", "type", "field", "joints", "names", "transforms", "stamp", "qos", "max_age_s", "required")


def _joint_source(entry: _Entry, items: dict[str, _Entry], key: str, fps: int, role: str) -> JointSource:
    topic = _topic(_require(entry, items, "topic"))
    msg_type = _msg_type(items["type"], JOINT_SOURCE_TYPES) if "type" in items else rc.JOINT_STATE
    joint_field = items["field"].choice(rc.JOINT_FIELDS) if "field" in items else "position"
    if msg_type in (rc.FLOAT32_ARRAY, rc.FLOAT64_ARRAY) and joint_field != "position":
        items["field"].fail(f"{msg_type} carries one value per joint; field must be position")
    joints_entry = _require(entry, items, "joints")
    joints = joints_entry.string_list()
    if "names" in items:
        names = items["names"].string_list()
        if len(names) != len(joints):
            items["names"].fail(f"expected {len(joints)} entries to match {joints_entry.key}, got {len(names)}")
        for i, name in enumerate(names):
            if "/" in name:
                items["names"].sequence()[i].fail(f"dataset names must not contain '/': {name!r}")
    else:
        names = [j + NAME_SUFFIX[joint_field] for j in joints]
    transform = _transforms(items.get("transforms"), joints, joints_entry.key)
    headerless = msg_type in rc.HEADERLESS_TYPES
    if "stamp" in items:
        stamp = items["stamp"].choice(("header", "receive"))
        if stamp == "header" and headerless:
            items["stamp"].fail(f"{msg_type} has no header; use stamp: receive")
    else:
        stamp = "receive" if headerless else "header"
    if role == "action":
        default_qos = RECORDED_JOINT_STATE_QOS if msg_type == rc.JOINT_STATE else COMMAND_TOPIC_QOS
    else:
        default_qos = RECORDED_JOINT_STATE_QOS
    return JointSource(
        key=key,
        topic=topic,
        msg_type=msg_type,
        field=joint_field,
        joints=tuple(joints),
        names=tuple(names),
        transform=transform,
        stamp=stamp,
        qos=_qos(items.get("qos"), default_qos),
        max_age_s=_max_age(items.get("max_age_s"), 2.0 / fps),
        required=items["required"].boolean() if "required" in items else True,
        where=entry.where,
    )


def _vector_feature(entry: _Entry, feature_key: str, fps: int, role: str, extra_keys: Sequence[str] = ()) -> tuple[
    VectorFeature, dict[str, _Entry]
]:
    """A vector feature written either inline (one source) or as `sources: [...]` (concatenated in order)."""
    items = entry.mapping(_SOURCE_KEYS + ("sources",) + tuple(extra_keys))
    if "sources" in items:
        inline = [k for k in items if k in _SOURCE_KEYS]
        if inline:
            items[inline[0]].fail("put source keys inside `sources` entries, or drop `sources` and use one source")
        source_entries = items["sources"].sequence("a list of sources")
        if not source_entries:
            items["sources"].fail("expected at least one source")
        sources = []
        for i, source_entry in enumerate(source_entries):
            source_items = source_entry.mapping(_SOURCE_KEYS)
            key = feature_key if len(source_entries) == 1 else f"{feature_key}#{i}"
            sources.append(_joint_source(source_entry, source_items, key, fps, role))
    else:
        sources = [_joint_source(entry, items, feature_key, fps, role)]
    seen: dict[str, str] = {}
    for source in sources:
        for name in source.names:
            if name in seen:
                entry.fail(f"dataset name {name!r} appears twice (sources {seen[name]} and {source.topic})")
            seen[name] = source.topic
    return VectorFeature(feature_key, tuple(sources)), items


def _camera(entry: _Entry, name: str, fps: int) -> CameraFeature:
    if not _CAMERA_RE.match(name):
        entry.fail("camera names use letters, digits, '_' and '-' only")
    items = entry.mapping(
        ("topic", "type", "height", "width", "channels", "storage", "stamp", "qos", "max_age_s", "required")
    )
    kind = items["type"].choice(tuple(IMAGE_TYPES)) if "type" in items else "raw"
    channels = items["channels"].choice((1, 3)) if "channels" in items else 3
    if kind == "compressed" and channels == 1:
        items["channels"].fail("compressed cameras are decoded to 3 channels; use channels: 3")
    return CameraFeature(
        name=name,
        topic=_topic(_require(entry, items, "topic")),
        kind=kind,
        height=_require(entry, items, "height").integer(minimum=1),
        width=_require(entry, items, "width").integer(minimum=1),
        channels=channels,
        storage=items["storage"].choice(("video", "image")) if "storage" in items else "video",
        stamp=items["stamp"].choice(("header", "receive")) if "stamp" in items else "header",
        qos=_qos(items.get("qos"), CAMERA_IMAGE_QOS),
        max_age_s=_max_age(items.get("max_age_s"), 3.0 / fps),
        required=items["required"].boolean() if "required" in items else True,
        where=entry.where,
    )


def _command(entry: _Entry | None, action: VectorFeature, action_entry: _Entry) -> ActionCommand:
    first = action.sources[0]
    if entry is None:
        if len({s.topic for s in action.sources}) != 1:
            action_entry.fail("action has several source topics; declare action.command (topic, type)")
        return ActionCommand(first.topic, first.msg_type, tuple(action.joints), COMMAND_TOPIC_QOS, 0.0)
    items = entry.mapping(("topic", "type", "joints", "qos", "time_from_start_s"))
    if "topic" not in items and len({s.topic for s in action.sources}) != 1:
        entry.fail("action has several source topics; declare command.topic")
    topic = _topic(items["topic"]) if "topic" in items else first.topic
    msg_type = _msg_type(items["type"], COMMAND_TYPES) if "type" in items else first.msg_type
    joints = items["joints"].string_list() if "joints" in items else action.joints
    if len(joints) != len(action.names):
        items["joints"].fail(f"expected {len(action.names)} entries to match action.names, got {len(joints)}")
    time_from_start = items["time_from_start_s"].number() if "time_from_start_s" in items else 0.0
    if time_from_start < 0:
        items["time_from_start_s"].fail(f"expected >= 0, got {time_from_start:g}")
    return ActionCommand(topic, msg_type, tuple(joints), _qos(items.get("qos"), COMMAND_TOPIC_QOS), time_from_start)


def _task(entry: _Entry | None) -> TaskSource:
    if entry is None:
        return TaskSource(None, None, TASK_QOS, False)
    items = entry.mapping(("text", "topic", "qos", "required"))
    if "text" not in items and "topic" not in items:
        entry.fail("declare text, topic or both")
    text = items["text"].string() if "text" in items else None
    topic = _topic(items["topic"]) if "topic" in items else None
    if "required" in items and topic is None:
        items["required"].fail("required applies to a task topic; there is none")
    required = items["required"].boolean() if "required" in items else False
    return TaskSource(text, topic, _qos(items.get("qos"), TASK_QOS), required, entry.where)


def _check_topics(streams: list[Any]) -> None:
    """A topic feeding several features must be read one way: same type, QoS and stamp source."""
    first_seen: dict[str, Any] = {}
    for stream in streams:
        other = first_seen.setdefault(stream.topic, stream)
        for attr in ("msg_type", "qos", "stamp"):
            a, b = getattr(other, attr), getattr(stream, attr)
            if a != b:
                file, line, key = re.match(r"^(.*):(\d+): (.*)$", stream.where).groups()
                shown_a = a.describe() if isinstance(a, QoSSpec) else a
                shown_b = b.describe() if isinstance(b, QoSSpec) else b
                raise InterfaceError(
                    file, int(line), key,
                    f"topic {stream.topic} is also read at {other.where} with {attr} {shown_a}; here it is {shown_b}",
                )


def parse_interface(text: str, path: str = "<string>") -> RobotInterface:
    """Parse and validate interface YAML text; `path` is only used in error messages and `RobotInterface.path`."""
    try:
        root_node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        raise InterfaceError(path, line, "", f"YAML syntax error: {error.problem or error}") from None
    if root_node is None:
        raise InterfaceError(path, 1, "", "the file is empty")
    root = _Entry(path, root_node, "")
    items = root.mapping(("robot_type", "fps", "observation", "action", "task"), "a mapping at the top level")
    robot_type = _require(root, items, "robot_type").string()
    fps = _require(root, items, "fps").integer(minimum=1)

    observation_entry = _require(root, items, "observation")
    observation = observation_entry.mapping(("state", "images"))
    state, _ = _vector_feature(_require(observation_entry, observation, "state"), "observation.state", fps, "state")
    images: dict[str, CameraFeature] = {}
    if "images" in observation:
        for name, camera_entry in observation["images"].free_mapping("a mapping camera name -> camera").items():
            images[name] = _camera(camera_entry, name, fps)

    action_entry = _require(root, items, "action")
    action, action_items = _vector_feature(action_entry, "action", fps, "action", extra_keys=("command",))
    command = _command(action_items.get("command"), action, action_entry)
    task = _task(items.get("task"))

    streams: list[Any] = list(state.sources) + list(images.values()) + list(action.sources)
    if task.topic is not None:
        streams.append(task)
    _check_topics(streams)
    return RobotInterface(path, robot_type, fps, state, images, action, command, task, text)


def load_interface(path: str | os.PathLike) -> RobotInterface:
    """Read and validate a robot interface file (errors name file:line: key)."""
    path_str = os.fspath(path)
    try:
        text = Path(path_str).read_text(encoding="utf-8")
    except OSError as error:
        raise InterfaceError(path_str, 0, "", f"cannot read the file: {error.strerror or error}") from None
    return parse_interface(text, path_str)


def robots_dirs() -> list[Path]:
    """Where `find_interface` looks for `<name>.yaml`: $LEROBOT_ROBOTS_PATH (':'-separated), then the installed
    share/lerobot_bringup/config/robots (lerobot_bringup installs the workspace's config/; looked up through the
    ament index as data, so this package does not import the bringup package)."""
    dirs = [Path(p) for p in os.environ.get("LEROBOT_ROBOTS_PATH", "").split(os.pathsep) if p]
    try:
        from ament_index_python.packages import get_package_share_directory

        dirs.append(Path(get_package_share_directory("lerobot_bringup")) / "config" / "robots")
    except Exception:  # not installed through colcon, or ament_index absent: only $LEROBOT_ROBOTS_PATH applies
        pass
    return dirs


def find_interface(name_or_path: str | os.PathLike) -> Path:
    """A path to an interface file given a path, or a bare name such as `so101` looked up in `robots_dirs()`."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    name = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
    searched = robots_dirs()
    for directory in searched:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"robot interface {str(name_or_path)!r} not found; looked in {[str(d) for d in searched]}")
