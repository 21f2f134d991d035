"""Checkpoint <-> interface compatibility (every difference listed), observations through the interface, and the
output content (ROS units, trajectory velocities, nothing in the past)."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from policy_runtime_testlib import image, joint_state, make_interface  # noqa: E402

from lerobot_policy_node.runtime.compatibility import check_compatible, compare  # noqa: E402
from lerobot_policy_node.runtime.errors import IncompatibleCheckpointError  # noqa: E402
from lerobot_policy_node.runtime.observation import MissedObservation, Observation, ObservationAssembler  # noqa: E402
from lerobot_policy_node.runtime.outputs import (  # noqa: E402
    TimedChunk, chunk_marker_lines, chunk_rows_ros, finite_difference_velocities, trajectory_content,
)

INPUTS = {"observation.state": {"type": "STATE", "shape": [2]},
          "observation.images.wrist": {"type": "VISUAL", "shape": [3, 8, 12]}}
OUTPUTS = {"action": {"type": "ACTION", "shape": [2]}}


def stored_interface(interface, **overrides):
    """What the trainer writes to robot_interface.json for a dataset recorded with `interface`."""
    features = {k: {"dtype": v["dtype"], "shape": list(v["shape"]), "names": v["names"]}
                for k, v in interface.dataset_features().items()}
    content = {"fps": interface.fps, "robot_type": interface.robot_type, "features": features,
               "interface": yaml.safe_load(interface.source_text)}
    content.update(overrides)
    return content


def test_a_checkpoint_trained_on_this_interface_matches():
    interface = make_interface(camera=True)
    report = check_compatible(interface, INPUTS, OUTPUTS, stored_interface(interface), "ckpt")
    assert report.ok and report.unchecked == []


def test_every_difference_is_listed():
    interface = make_interface(camera=True)
    trained_on = make_interface(fps=30, camera=True)
    stored = stored_interface(trained_on)
    stored["features"]["action"]["names"] = ["b.pos", "a.pos"]  # same names, other order
    stored["features"]["observation.state"]["names"] = ["a.pos", "c.pos"]
    stored["interface"]["observation"]["state"]["transforms"] = "identity"  # trained on radians
    inputs = {"observation.state": {"type": "STATE", "shape": [3]},
              "observation.images.top": {"type": "VISUAL", "shape": [3, 8, 12]},
              "observation.environment_state": {"type": "ENV", "shape": [4]}}
    outputs = {"action": {"type": "ACTION", "shape": [2]}}
    with pytest.raises(IncompatibleCheckpointError) as caught:
        check_compatible(interface, inputs, outputs, stored, "my/ckpt")
    differences = caught.value.differences
    text = str(caught.value)
    assert text.startswith("checkpoint my/ckpt does not match robot interface test_arm.yaml (")
    expected = [
        "observation.state: shape (3,) in the checkpoint, (2,) in the interface",
        "observation.images.top: the checkpoint takes this camera",
        "observation.environment_state (ENV): a policy input the interface does not provide",
        "observation.images.wrist: a camera of the interface that the checkpoint does not take",
        "fps: 30 in the checkpoint's dataset, 10 in the interface",
        "action: the same names in another order: checkpoint ['b.pos', 'a.pos'], interface ['a.pos', 'b.pos']",
        "observation.state: names differ: only in the checkpoint ['c.pos'], only in the interface ['b.pos']",
        "observation.state a.pos: units identity in the checkpoint's interface, rad2deg in this interface",
        "observation.state b.pos: units identity in the checkpoint's interface, rad2deg in this interface",
    ]
    for fragment in expected:
        assert any(fragment in d for d in differences), (fragment, differences)
    assert len(differences) == len(expected)


def test_camera_shape_and_action_size_differences():
    interface = make_interface(camera=True)
    inputs = dict(INPUTS, **{"observation.images.wrist": {"type": "VISUAL", "shape": [3, 96, 96]}})
    report = compare(interface, inputs, {"action": {"type": "ACTION", "shape": [6]}}, None, "ckpt")
    assert report.differences == [
        "observation.images.wrist: (C, H, W) (3, 96, 96) in the checkpoint, (3, 8, 12) in the interface",
        "action: shape (6,) in the checkpoint, (2,) in the interface (['a.pos', 'b.pos'])",
    ]


def test_upstream_checkpoints_are_checked_against_their_config_only():
    report = compare(make_interface(camera=True), INPUTS, OUTPUTS, None, "lerobot/some_policy")
    assert report.ok and "no robot_interface.json" in report.unchecked[0]


# ----------------------------------------------------------------------------------------------- observations
def test_observation_is_the_newest_value_of_each_feature_in_dataset_units_with_its_age():
    interface = make_interface(fps=10, camera=True)
    observations = ObservationAssembler(interface)
    assert sorted(s.topic for s in observations.subscriptions()) == ["/arm/joint_states", "/arm/wrist/image_raw"]
    t0 = 50 * 10**9
    observations.add_message("/arm/joint_states", joint_state([0.1, 0.2], t0), t0)
    observations.add_message("/arm/joint_states", joint_state([math.pi / 2, -math.pi], t0 + 40_000_000), t0)
    observations.add_message("/arm/wrist/image_raw", image(t0 + 10_000_000, value=7), t0)
    observations.add_message("/arm/joint_states", joint_state([9.0, 9.0], t0 + 90_000_000), t0)  # after the tick
    result = observations.observe(t0 + 50_000_000)
    assert isinstance(result, Observation)
    assert np.allclose(result.state, [90.0, -180.0]) and result.state.dtype == np.float32
    assert result.values["observation.images.wrist"].shape == (8, 12, 3)
    assert result.ages_s["observation.state"] == pytest.approx(0.01)
    assert result.ages_s["observation.images.wrist"] == pytest.approx(0.04)
    assert result.task == "test task"


def test_missing_and_stale_features_give_no_observation_and_are_counted():
    interface = make_interface(fps=10, camera=True)
    observations = ObservationAssembler(interface)
    t0 = 50 * 10**9
    observations.add_message("/arm/joint_states", joint_state([0.1, 0.2], t0), t0)
    missed = observations.observe(t0 + 10_000_000)
    assert isinstance(missed, MissedObservation) and missed.reasons == {"observation.images.wrist": "missing"}
    observations.add_message("/arm/wrist/image_raw", image(t0 + 20_000_000), t0)
    late = observations.observe(t0 + 500_000_000)  # state limit 0.2 s, camera 0.3 s
    assert late.reasons == {"observation.state": "stale", "observation.images.wrist": "stale"}
    assert "limit 0.200 s" in late.describe()
    assert observations.miss_counts() == {"observation.images.wrist": {"missing": 1, "stale": 1},
                                          "observation.state": {"stale": 1}}
    observations.forget()
    assert isinstance(observations.observe(t0 + 600_000_000), MissedObservation)


def test_invalid_messages_are_rejected_not_used():
    interface = make_interface(fps=10)
    observations = ObservationAssembler(interface)
    t0 = 50 * 10**9
    observations.add_message("/arm/joint_states", joint_state([0.1], t0, names=("a",)), t0)
    missed = observations.observe(t0 + 10_000_000)
    assert missed.reasons == {"observation.state": "invalid"} and "lacks joint(s) ['b']" in missed.describe()
    assert observations.invalid_messages == 1


# --------------------------------------------------------------------------------------------------- outputs
def timed_chunk(rows, start_row=0, t0=10**9, fps=10):
    rows = np.asarray(rows, dtype=np.float64)
    times = np.array([t0 + k * 10**9 // fps for k in range(len(rows))], dtype=np.int64)
    return TimedChunk(chunk_id=3, rows=rows, start_row=start_row, row_times_ns=times, period_s=1 / fps,
                      observation_stamp_ns=t0, latency_s=0.05, delay_rows=start_row,
                      executed_during_inference=start_row, inference_delay=0)


def test_chunk_rows_in_ros_units_and_trajectory_of_the_rows_still_to_execute():
    interface = make_interface(fps=10)
    chunk = timed_chunk([[0.0, 90.0], [18.0, 90.0], [36.0, 0.0], [54.0, -90.0]], start_row=1)
    assert np.allclose(chunk_rows_ros(interface, chunk)[1], [math.radians(18), math.pi / 2])
    trajectory = trajectory_content(interface, chunk, now_ns=10**9)
    assert trajectory.joint_names == ["a", "b"] and trajectory.start_ns == 10**9 + 100_000_000
    assert np.allclose(trajectory.times_from_start_s, [0.0, 0.1, 0.2])
    assert np.allclose(trajectory.velocities[:, 0], math.radians(180))  # 18 deg per 0.1 s, everywhere
    assert np.allclose(trajectory.velocities[:, 1], [math.radians(-900), math.radians(-900), math.radians(-900)])
    # Rows already in the past are left out; a chunk wholly in the past is never published.
    late = trajectory_content(interface, chunk, now_ns=10**9 + 250_000_000)
    assert late.start_ns == 10**9 + 300_000_000 and len(late.positions) == 1
    assert trajectory_content(interface, chunk, now_ns=10**9 + 300_000_001) is None


def test_finite_difference_velocities():
    positions = np.array([[0.0], [1.0], [4.0], [9.0]])
    assert np.allclose(finite_difference_velocities(positions, 0.5)[:, 0], [2.0, 4.0, 8.0, 10.0])
    assert np.array_equal(finite_difference_velocities(positions[:1], 0.5), [[0.0]])


def test_marker_lines_one_per_joint_along_time():
    interface = make_interface(fps=10)
    lines = chunk_marker_lines(interface, timed_chunk([[0.0, 10.0], [20.0, 30.0], [40.0, 50.0]], start_row=1))
    assert [line.name for line in lines] == ["a.pos", "b.pos"]
    assert np.allclose(lines[1].points, [[0.0, 0.1, 0.15], [0.05, 0.1, 0.25]])
