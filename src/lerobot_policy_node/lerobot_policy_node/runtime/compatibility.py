"""Does a checkpoint fit a robot interface? Every difference is listed at configure, none is discovered on the robot.

Two sources describe what a checkpoint expects:
- its policy config (`config.json`, every checkpoint, upstream's too): the input features (state size, cameras as
  (C, H, W)) and the action size;
- `robot_interface.json` (checkpoints trained here): the dataset's fps, feature names in column order and, when the
  dataset carried its robot interface, the unit transforms. Upstream checkpoints lack it, so for them names, order,
  units and fps cannot be checked (said so in `CompatibilityReport.unchecked`).
Names must match in order too: a policy's column j is the interface's column j, never matched by position after a
reordering (the table-slamming bug of lerobot #4122 was an action-key order mismatch).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from lerobot_recorder.interface import InterfaceError, RobotInterface, parse_interface
from lerobot_policy_node.runtime.errors import IncompatibleCheckpointError

STATE_KEY = "observation.state"
ACTION_KEY = "action"
IMAGE_PREFIX = "observation.images."


@dataclass
class CompatibilityReport:
    differences: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # what this checkpoint does not say, so was not compared

    @property
    def ok(self) -> bool:
        return not self.differences


def _feature_type(feature: Any) -> str:
    value = feature.get("type") if isinstance(feature, Mapping) else getattr(feature, "type", None)
    return str(getattr(value, "value", value))


def _feature_shape(feature: Any) -> tuple[int, ...]:
    value = feature.get("shape") if isinstance(feature, Mapping) else getattr(feature, "shape", ())
    return tuple(int(d) for d in value)


def _compare_config_features(interface: RobotInterface, inputs: Mapping[str, Any], outputs: Mapping[str, Any],
                             report: CompatibilityReport) -> None:
    cameras = {c.key: c for c in interface.images.values()}
    for key, feature in inputs.items():
        kind, shape = _feature_type(feature), _feature_shape(feature)
        if key == STATE_KEY:
            want = (len(interface.state.names),)
            if shape != want:
                report.differences.append(f"{key}: shape {shape} in the checkpoint, {want} in the interface "
                                          f"({interface.state.names})")
        elif key in cameras:
            camera = cameras[key]
            want = (camera.channels, camera.height, camera.width)
            if shape != want:
                report.differences.append(f"{key}: (C, H, W) {shape} in the checkpoint, {want} in the interface")
        elif kind == "VISUAL" or key.startswith(IMAGE_PREFIX):
            report.differences.append(f"{key}: the checkpoint takes this camera; the interface has "
                                      f"{sorted(cameras) or 'no camera'}")
        else:
            report.differences.append(f"{key} ({kind}): a policy input the interface does not provide")
    for key in cameras:
        if key not in inputs:
            report.differences.append(f"{key}: a camera of the interface that the checkpoint does not take")
    if STATE_KEY not in inputs:
        report.differences.append(f"{STATE_KEY}: the checkpoint takes no state; the interface provides "
                                  f"{len(interface.state.names)} values")
    if ACTION_KEY not in outputs:
        report.differences.append(f"{ACTION_KEY}: the checkpoint outputs {sorted(outputs)}, no '{ACTION_KEY}'")
    else:
        shape, want = _feature_shape(outputs[ACTION_KEY]), (len(interface.action.names),)
        if shape != want:
            report.differences.append(f"{ACTION_KEY}: shape {shape} in the checkpoint, {want} in the interface "
                                      f"({interface.action.names})")


def _compare_names(key: str, theirs: list[str], ours: list[str], report: CompatibilityReport) -> None:
    if theirs == ours:
        return
    if sorted(theirs) == sorted(ours):
        report.differences.append(f"{key}: the same names in another order: checkpoint {theirs}, interface {ours}")
        return
    only_theirs = [n for n in theirs if n not in ours]
    only_ours = [n for n in ours if n not in theirs]
    report.differences.append(f"{key}: names differ: only in the checkpoint {only_theirs}, only in the interface "
                              f"{only_ours}")


def _stored_interface(content: Any, source: str) -> RobotInterface:
    text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
    return parse_interface(text, f"{source}:robot_interface.json[interface]")


def _compare_units(stored: RobotInterface, interface: RobotInterface, report: CompatibilityReport) -> None:
    for key, theirs, ours in ((STATE_KEY, stored.state, interface.state), (ACTION_KEY, stored.action, interface.action)):
        their_units = dict(zip(theirs.names, theirs.transform.transforms))
        for name, transform in zip(ours.names, ours.transform.transforms):
            other = their_units.get(name)
            if other is None:
                continue  # a names difference, reported already
            same = math.isclose(other.scale, transform.scale, rel_tol=1e-9) and math.isclose(
                other.offset, transform.offset, rel_tol=1e-9, abs_tol=1e-12)
            if not same:
                report.differences.append(f"{key} {name}: units {other.describe()} in the checkpoint's interface, "
                                          f"{transform.describe()} in this interface")


def _compare_robot_interface(interface: RobotInterface, stored: Mapping[str, Any], source: str,
                             report: CompatibilityReport) -> None:
    fps = stored.get("fps")
    if fps is None:
        report.unchecked.append("fps (robot_interface.json has none)")
    elif int(fps) != interface.fps:
        report.differences.append(f"fps: {fps} in the checkpoint's dataset, {interface.fps} in the interface")
    features = stored.get("features") or {}
    ours = interface.dataset_features()
    for key in (STATE_KEY, ACTION_KEY):
        names = (features.get(key) or {}).get("names")
        if names is None:
            report.unchecked.append(f"{key} names")
        else:
            _compare_names(key, list(names), list(ours[key]["names"]), report)
    content = stored.get("interface")
    if content is None:
        report.unchecked.append("units (the checkpoint's dataset did not carry its robot interface)")
        return
    try:
        stored_interface = _stored_interface(content, source)
    except InterfaceError as error:
        report.differences.append(f"the checkpoint's stored robot interface cannot be read: {error}")
        return
    _compare_units(stored_interface, interface, report)


def compare(interface: RobotInterface, inputs: Mapping[str, Any], outputs: Mapping[str, Any],
            robot_interface: Mapping[str, Any] | None, source: str) -> CompatibilityReport:
    """Every difference between a checkpoint (features from its config, plus robot_interface.json when it has one)
    and a robot interface."""
    report = CompatibilityReport()
    _compare_config_features(interface, inputs, outputs, report)
    if robot_interface is None:
        report.unchecked.append("fps, feature names and units (no robot_interface.json: an upstream checkpoint)")
    else:
        _compare_robot_interface(interface, robot_interface, source, report)
    return report


def check_compatible(interface: RobotInterface, inputs: Mapping[str, Any], outputs: Mapping[str, Any],
                     robot_interface: Mapping[str, Any] | None, source: str) -> CompatibilityReport:
    """`compare`, raising IncompatibleCheckpointError (listing every difference) when there is any."""
    report = compare(interface, inputs, outputs, robot_interface, source)
    if not report.ok:
        raise IncompatibleCheckpointError(source, interface.path, report.differences)
    return report
