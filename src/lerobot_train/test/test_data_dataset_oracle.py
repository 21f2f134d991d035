"""TrainingDataset against upstream lerobot 0.4.4's `LeRobotDataset(delta_timestamps=...)`, item for item.

Datasets written by UPSTREAM's writer (AV1 and H.264, files rolled over); windows from a Diffusion-like policy
config through `delta_timestamps_for` (two observation steps for state and every camera, a 16-step action
horizon starting one step back), so pads occur at both episode edges. Our cameras are uint8 and are compared
after `cameras_to_float`, which must give upstream's float32 frames bit for bit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import data_testlib as tl  # noqa: E402
from oracle import oracle_env  # noqa: E402
from oracle import synthetic_episodes as syn  # noqa: E402
from oracle.compare import assert_items_equal  # noqa: E402

from lerobot_train.data.dataset import TrainingDataset, cameras_to_float  # noqa: E402

pytestmark = [pytest.mark.oracle, pytest.mark.slow]

SUBSET = [1, 4, 5]


@pytest.fixture(scope="module")
def setup():
    av1, h264 = oracle_env.upstream_dataset("libsvtav1"), oracle_env.upstream_dataset("h264")
    features = json.loads((av1 / "meta/info.json").read_text())["features"]
    windows = tl.windows_seconds(tl.DIFFUSION_LIKE, features)
    upstream = oracle_env.read_many_with_upstream({
        "av1": (av1, {"delta_timestamps": windows}),
        "av1_subset": (av1, {"episodes": SUBSET, "delta_timestamps": windows}),
        "h264": (h264, {"delta_timestamps": windows}),
    })
    return av1, h264, windows, upstream


def test_every_item_equals_upstream(setup):
    av1, _, windows, upstream = setup
    ds = TrainingDataset(av1, delta_timestamps=windows)
    theirs = upstream["av1"]
    assert len(ds) == theirs.length
    pads = 0
    for i in range(len(ds)):
        ours = tl.to_numpy_item(cameras_to_float(ds[i]))
        assert_items_equal(ours, theirs[i], f"item {i}")
        pads += int(ours["action_is_pad"].any()) + int(ours["observation.images.front_is_pad"].any())
    assert pads > 0, "no padded window was compared"


def test_episode_subset_equals_upstream(setup):
    av1, _, windows, upstream = setup
    ds = TrainingDataset(av1, delta_timestamps=windows, episodes=SUBSET)
    theirs = upstream["av1_subset"]
    assert len(ds) == theirs.length == sum(syn.EPISODE_LENGTHS[e] for e in SUBSET)
    for i in range(len(ds)):
        assert_items_equal(tl.to_numpy_item(cameras_to_float(ds[i])), theirs[i], f"subset item {i}")


def test_two_datasets_equal_upstream_reading_each(setup):
    av1, h264, windows, upstream = setup
    ds = TrainingDataset([av1, h264], delta_timestamps=windows)
    n = upstream["av1"].length
    assert len(ds) == n + upstream["h264"].length
    for pos in list(range(0, len(ds), 5)) + [n - 1, n, len(ds) - 1]:
        d, row = (0, pos) if pos < n else (1, pos - n)
        ours = tl.to_numpy_item(cameras_to_float(ds[pos]))
        assert int(ours.pop("dataset_index")) == d
        assert_items_equal(ours, upstream["av1" if d == 0 else "h264"][row], f"position {pos}")
