"""The other direction: a dataset written by OUR writer loads in upstream lerobot 0.4.4's LeRobotDataset.

Upstream reads our files (in the oracle venv) and must return what we recorded and what our reader returns, item
for item: numeric values, tasks, PNG image features bit-exact, video frames pixel-identical to our reader's
decode, and the same delta_timestamps windows. A dataset of the same episodes written by upstream's writer
must hold the same values.
"""

from __future__ import annotations

import numpy as np
import pytest

from lerobot_dataset.reader import LeRobotDatasetReader
from oracle import oracle_env
from oracle import synthetic_episodes as syn
from oracle import our_writer_dataset
from oracle.compare import assert_items_equal

pytestmark = [pytest.mark.oracle, pytest.mark.slow]

FPS = syn.FPS
WINDOWS = our_writer_dataset.WINDOWS


@pytest.fixture(scope="module")
def our_root():
    return oracle_env.our_dataset("libsvtav1")


@pytest.fixture(scope="module")
def upstream_items(our_root):
    return oracle_env.read_many_with_upstream(our_writer_dataset.upstream_read_jobs(our_root))


def test_our_dataset_rolls_over_files(our_root):
    assert len(list(our_root.glob("data/*/*.parquet"))) >= 3
    for key in syn.CAMERAS:
        assert len(list(our_root.glob(f"videos/{key}/*/*.mp4"))) >= 3


def test_upstream_reads_what_we_recorded(upstream_items):
    theirs = upstream_items["plain"]
    assert theirs.length == sum(syn.EPISODE_LENGTHS)
    assert theirs.num_episodes == len(syn.EPISODE_LENGTHS)
    i = 0
    for ep, (length, task) in enumerate(zip(syn.EPISODE_LENGTHS, syn.EPISODE_TASKS)):
        for f in range(length):
            item = theirs[i]
            source = syn.frame_dict(ep, f)
            where = f"episode {ep} frame {f} (index {i})"
            np.testing.assert_array_equal(item["observation.state"], source["observation.state"], err_msg=where)
            np.testing.assert_array_equal(item["action"], source["action"], err_msg=where)
            assert int(item["index"]) == i and int(item["episode_index"]) == ep and int(item["frame_index"]) == f, where
            assert item["timestamp"] == np.float32(f / FPS), where
            assert item["task"] == syn.TASKS[task], where
            # PNG is lossless: the image feature comes back bit-exact (as float32 / 255).
            png = source[syn.IMAGE_KEY].transpose(2, 0, 1).astype(np.float32) / 255
            np.testing.assert_array_equal(item[syn.IMAGE_KEY], png, err_msg=where)
            for key in syn.CAMERAS:
                decoded = item[key].transpose(1, 2, 0) * 255
                err = np.abs(decoded - source[key].astype(np.float32)).mean()
                assert err < 12, f"{where} {key}: mean |error| {err:.1f} vs the recorded frame"
            i += 1


def test_upstream_items_equal_our_reader(our_root, upstream_items):
    theirs = upstream_items["plain"]
    reader = LeRobotDatasetReader(our_root)
    assert len(reader) == theirs.length
    for i in range(len(reader)):
        assert_items_equal(reader[i], theirs[i], f"item {i}")


def test_upstream_windows_equal_our_reader(our_root, upstream_items):
    theirs = upstream_items["windows"]
    reader = LeRobotDatasetReader(our_root, delta_timestamps=WINDOWS)
    for i in range(len(reader)):
        assert_items_equal(reader[i], theirs[i], f"item {i}")


def test_same_values_as_upstream_writer(our_root):
    ours = LeRobotDatasetReader(our_root)
    upstream = LeRobotDatasetReader(oracle_env.upstream_dataset("libsvtav1"))
    assert len(ours) == len(upstream)
    assert ours.meta.tasks and set(ours.meta.tasks) == set(upstream.meta.tasks)
    for i in range(len(ours)):
        a, b = ours[i], upstream[i]
        for key in ("observation.state", "action", "timestamp", "frame_index", "episode_index", "index", syn.IMAGE_KEY):
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"item {i} {key}")
        assert a["task"] == b["task"]
        for key in syn.CAMERAS:
            assert np.abs(a[key] - b[key]).mean() < 4 / 255, f"item {i} {key}: the two writers' videos differ visibly"
