"""Our reader against upstream lerobot 0.4.4 (the oracle venv) on datasets written by UPSTREAM's writer.

Both readers open the same files; every item must be equal: numeric values, dtypes and shapes, task strings,
delta_timestamps windows and `_is_pad` masks, and decoded camera frames pixel for pixel. Frames are compared
exactly (max |diff| == 0): both sides decode with the same PyAV/FFmpeg build (av 18.1.0 in both venvs) and the
same `rgb24` conversion, so there is no 1/255 colour-conversion slack to allow for.
"""

from __future__ import annotations

import numpy as np
import pytest

from lerobot_dataset.reader import LeRobotDatasetReader
from lerobot_dataset.validate import validate_dataset
from oracle import oracle_env
from oracle import synthetic_episodes as syn
from oracle import our_writer_dataset
from oracle.compare import assert_items_equal

pytestmark = [pytest.mark.oracle, pytest.mark.slow]

FPS = syn.FPS
WINDOWS = {
    "observation.state": [-2 / FPS, -1 / FPS, 0.0],
    "action": [i / FPS for i in range(8)],
    "observation.images.front": [-1 / FPS, 0.0, 1 / FPS],
    "observation.images.wrist": [0.0],  # one-element video window: upstream squeezes it to (C, H, W)
    "observation.images.overhead": [-1 / FPS, 0.0],
}


SUBSET = [1, 4, 5]


@pytest.fixture(scope="module")
def av1_items():
    """Everything the window tests need from upstream's reader on the AV1 dataset, read by one oracle process."""
    root = oracle_env.upstream_dataset("libsvtav1")
    jobs = {
        "plain": (root, None),
        "windows": (root, {"delta_timestamps": WINDOWS}),
        "subset": (root, {"episodes": SUBSET, "delta_timestamps": WINDOWS}),
    }
    # test_oracle_our_writer's reads too: in the same session one oracle start-up serves both modules.
    jobs.update({f"ours_{k}": v for k, v in our_writer_dataset.upstream_read_jobs(oracle_env.our_dataset()).items()})
    return oracle_env.read_many_with_upstream(jobs)


@pytest.fixture(scope="module", params=oracle_env.UPSTREAM_VCODECS)
def upstream_root(request):
    return oracle_env.upstream_dataset(request.param)


@pytest.fixture(scope="module")
def upstream_items(upstream_root, av1_items):
    # Window logic does not depend on the codec, so other codecs are compared item by item without windows.
    return {"plain": oracle_env.read_with_upstream(upstream_root)}


def test_upstream_dataset_rolls_over_files(upstream_root):
    # The fixture must exercise multi-file reading, or the comparisons below prove less than they claim.
    assert len(list(upstream_root.glob("data/*/*.parquet"))) >= 3
    assert len(list(upstream_root.glob("data/chunk-001/*.parquet"))) >= 1
    for key in syn.CAMERAS:
        assert len(list(upstream_root.glob(f"videos/{key}/*/*.mp4"))) >= 3


def test_every_item_equals_upstream(upstream_root, upstream_items):
    theirs = upstream_items["plain"]
    reader = LeRobotDatasetReader(upstream_root)
    assert len(reader) == theirs.length == sum(syn.EPISODE_LENGTHS)
    assert reader.num_episodes == theirs.num_episodes == len(syn.EPISODE_LENGTHS)
    for i in range(len(reader)):
        assert_items_equal(reader[i], theirs[i], f"item {i}")


def test_delta_windows_equal_upstream(av1_items):
    theirs = av1_items["windows"]
    reader = LeRobotDatasetReader(oracle_env.upstream_dataset("libsvtav1"), delta_timestamps=WINDOWS)
    pads_seen = 0
    for i in range(len(reader)):
        ours = reader[i]
        assert_items_equal(ours, theirs[i], f"item {i}")
        pads_seen += int(ours["action_is_pad"].any()) + int(ours["observation.state_is_pad"].any())
    assert pads_seen > 0, "no padded window was compared"


def test_episode_subset_with_windows_equals_upstream(av1_items):
    theirs = av1_items["subset"]
    reader = LeRobotDatasetReader(oracle_env.upstream_dataset("libsvtav1"), episodes=SUBSET, delta_timestamps=WINDOWS)
    assert len(reader) == theirs.length == syn.EPISODE_LENGTHS[1] + syn.EPISODE_LENGTHS[4] + syn.EPISODE_LENGTHS[5]
    for i in range(len(reader)):
        assert_items_equal(reader[i], theirs[i], f"subset item {i}")


def test_random_order_reads_equal_upstream(upstream_root, upstream_items):
    # The decoder cache continues forward or seeks depending on the previous read; any order must give
    # upstream's frames.
    theirs = upstream_items["plain"]
    reader = LeRobotDatasetReader(upstream_root)
    order = np.random.default_rng(3).permutation(np.repeat(np.arange(len(reader)), 2))
    for i in order.tolist():
        assert_items_equal(reader[i], theirs[i], f"item {i} (random order)")


def test_decoded_frames_show_the_recorded_frame(upstream_root):
    # Guards against both readers being equally wrong: each decoded frame is closest to its own source frame.
    reader = LeRobotDatasetReader(upstream_root, return_uint8=True)
    for ep in range(len(syn.EPISODE_LENGTHS)):
        view = reader.episode(ep)
        for salt, (key, hw) in enumerate(syn.CAMERAS.items()):
            sources = np.stack([syn.camera_frame(salt, ep, f, hw) for f in range(len(view))]).astype(np.float64)
            for f in range(len(view)):
                decoded = view[f][key].transpose(1, 2, 0).astype(np.float64)
                errors = np.abs(sources - decoded).mean(axis=(1, 2, 3))
                assert int(errors.argmin()) == f, f"{key} episode {ep} frame {f}: looks like frame {errors.argmin()}"
                assert errors[f] < 12, f"{key} episode {ep} frame {f}: mean |error| {errors[f]:.1f}"


def test_upstream_written_dataset_is_valid(upstream_root):
    report = validate_dataset(upstream_root)
    assert report.ok, report.format()
    assert report.summary["episodes"] == len(syn.EPISODE_LENGTHS)
