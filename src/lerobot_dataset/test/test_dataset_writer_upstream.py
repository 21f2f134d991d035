"""Resume: our writer appends episodes to a dataset written by upstream lerobot 0.4.4, and upstream still loads it
with every old and new frame in place (upstream itself would start new files; we append to its current ones)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lerobot_dataset import LeRobotDatasetWriter
from oracle import oracle_env
from oracle import synthetic_episodes as syn

pytestmark = [pytest.mark.oracle, pytest.mark.slow]

NEW_EPISODES = [(6, 10, 2), (7, 13, 0)]  # (synthetic episode id, length, task id)


@pytest.fixture(scope="module")
def appended():
    root = oracle_env.copy_dataset(oracle_env.upstream_dataset("libsvtav1"), "ours_appended_to_upstream")
    with LeRobotDatasetWriter.open(root) as w:
        assert w.total_episodes == len(syn.EPISODE_LENGTHS)
        assert w.tasks == [syn.TASKS[t] for t in dict.fromkeys(syn.EPISODE_TASKS)]
        for ep, length, task in NEW_EPISODES:
            for f in range(length):
                w.add_frame(syn.frame_dict(ep, f), task=syn.TASKS[task])
            w.save_episode()
    return root


def test_info_counts_after_append(appended):
    info = json.loads((appended / "meta/info.json").read_text())
    assert info["total_episodes"] == len(syn.EPISODE_LENGTHS) + len(NEW_EPISODES)
    assert info["total_frames"] == sum(syn.EPISODE_LENGTHS) + sum(n for _, n, _ in NEW_EPISODES)
    assert info["splits"] == {"train": f"0:{info['total_episodes']}"}


def test_upstream_loads_old_and_new_episodes(appended):
    items = oracle_env.read_with_upstream(appended)
    old_total = sum(syn.EPISODE_LENGTHS)
    assert items.length == old_total + sum(n for _, n, _ in NEW_EPISODES)
    assert items.num_episodes == len(syn.EPISODE_LENGTHS) + len(NEW_EPISODES)
    # every frame of the upstream-written episodes is unchanged
    i = 0
    for ep, (length, task) in enumerate(zip(syn.EPISODE_LENGTHS, syn.EPISODE_TASKS)):
        for f in (0, length - 1):
            item = items[i + f]
            np.testing.assert_array_equal(item["observation.state"], syn.frame_dict(ep, f)["observation.state"])
            assert item["task"] == syn.TASKS[task]
        i += length
    # the appended episodes: values, indices, tasks, PNG images bit-exact, video frames close to what was recorded
    for new_no, (ep, length, task) in enumerate(NEW_EPISODES):
        for f in range(length):
            item = items[i]
            src = syn.frame_dict(ep, f)
            where = f"appended episode {ep} frame {f} (index {i})"
            np.testing.assert_array_equal(item["observation.state"], src["observation.state"], err_msg=where)
            assert int(item["index"]) == i and int(item["frame_index"]) == f, where
            assert int(item["episode_index"]) == len(syn.EPISODE_LENGTHS) + new_no, where
            assert item["task"] == syn.TASKS[task], where
            png = src[syn.IMAGE_KEY].transpose(2, 0, 1).astype(np.float32) / 255
            np.testing.assert_array_equal(item[syn.IMAGE_KEY], png, err_msg=where)
            for key in syn.CAMERAS:
                err = np.abs(item[key].transpose(1, 2, 0) * 255 - src[key].astype(np.float32)).mean()
                assert err < 12, f"{where} {key}: mean |error| {err:.1f}"
            i += 1
