"""delta_timestamps_for: a policy's windows in seconds, as upstream's resolve_delta_timestamps."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import data_testlib as tl  # noqa: E402

from lerobot_train.data.windows import delta_timestamps_for  # noqa: E402

FEATURES = ["observation.state", "observation.images.front", "action", "next.reward", "timestamp", "index"]


def test_observation_keys_including_cameras_get_the_observation_window():
    policy = tl.PolicyWindows(observation_delta_indices=[-2, -1, 0], action_delta_indices=[0, 1, 2], reward_delta_indices=[0])
    got = delta_timestamps_for(policy, 10, FEATURES)
    assert got == {
        "observation.state": [-0.2, -0.1, 0.0],
        "observation.images.front": [-0.2, -0.1, 0.0],
        "action": [0.0, 0.1, 0.2],
        "next.reward": [0.0],
    }


def test_no_window_means_no_key_and_an_empty_dict_when_nothing_is_windowed():
    act = tl.PolicyWindows(action_delta_indices=list(range(100)))
    got = delta_timestamps_for(act, 30, FEATURES)
    assert list(got) == ["action"] and len(got["action"]) == 100 and got["action"][99] == 99 / 30
    assert delta_timestamps_for(tl.PolicyWindows(), 30, FEATURES) == {}


def test_config_features_are_used_when_the_dataset_features_are_not_given():
    policy = tl.PolicyWindows(
        observation_delta_indices=[-1, 0], action_delta_indices=[0, 1],
        input_features={"observation.state": None, "observation.images.wrist": None}, output_features={"action": None},
    )
    assert set(delta_timestamps_for(policy, 30)) == {"observation.state", "observation.images.wrist", "action"}


def test_bad_configs_are_named():
    class NoIndices:
        action_delta_indices = [0]

    with pytest.raises(TypeError, match="observation_delta_indices"):
        delta_timestamps_for(NoIndices(), 30, FEATURES)
    with pytest.raises(TypeError, match="whole frame offsets"):
        delta_timestamps_for(tl.PolicyWindows(action_delta_indices=[0, 0.5]), 30, FEATURES)
    with pytest.raises(ValueError, match="fps"):
        delta_timestamps_for(tl.PolicyWindows(), 0, FEATURES)


@pytest.mark.oracle
@pytest.mark.slow
def test_windows_equal_upstream_resolve_delta_timestamps(tmp_path):
    from oracle import oracle_env

    root = tl.our_dataset()
    out = tmp_path / "windows.json"
    oracle_env.run_oracle("resolve_windows_upstream.py", str(root), str(out))
    upstream = json.loads(out.read_text())
    features = json.loads((root / "meta/info.json").read_text())["features"]
    for name, cfg in upstream.items():
        policy = tl.PolicyWindows(
            observation_delta_indices=cfg["observation_delta_indices"],
            action_delta_indices=cfg["action_delta_indices"],
            reward_delta_indices=cfg["reward_delta_indices"],
        )
        ours = delta_timestamps_for(policy, tl.FPS, features)
        assert ours == (cfg["delta_timestamps"] or {}), name
