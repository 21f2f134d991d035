"""Helpers shared by the dataset-tools and dataset-CLI tests: small datasets recorded with OUR writer from the
deterministic synthetic episodes of tests/oracle/synthetic_episodes.py, and frame-by-frame comparisons."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from oracle import synthetic_episodes as syn

from lerobot_dataset.reader import LeRobotDatasetReader
from lerobot_dataset.writer import LeRobotDatasetWriter

RENUMBERED = ("episode_index", "index", "task_index")


def record_dataset(
    root: Path,
    episodes: Sequence[tuple[int, int, int]],
    *,
    fps: int = syn.FPS,
    features: dict | None = None,
    robot_type: str = "so101",
    video_files_size_in_mb: float | None = None,
    data_files_size_in_mb: float | None = None,
) -> Path:
    """Record `episodes` = [(synthetic episode id, length, task id), ...] with our writer: 2 video cameras,
    one image feature, 6-dof state and action."""
    kwargs: dict[str, Any] = {}
    if video_files_size_in_mb is not None:
        kwargs["video_files_size_in_mb"] = video_files_size_in_mb
    if data_files_size_in_mb is not None:
        kwargs["data_files_size_in_mb"] = data_files_size_in_mb
    writer = LeRobotDatasetWriter.create(
        root, fps=fps, features=features or syn.features(), robot_type=robot_type, fsync=False, **kwargs
    )
    try:
        for ep_id, length, task_id in episodes:
            for f in range(length):
                writer.add_frame(syn.frame_dict(ep_id, f), task=syn.TASKS[task_id])
            writer.save_episode()
    finally:
        writer.close()
    return root


# Source dataset A: 6 episodes, 3 tasks (task ids as in synthetic_episodes).
EPISODES_A = [(e, syn.EPISODE_LENGTHS[e], syn.EPISODE_TASKS[e]) for e in range(6)]
# Dataset B for merges: 3 episodes, one task shared with A (1) and episodes with other synthetic content.
EPISODES_B = [(10, 11, 1), (11, 16, 1), (12, 8, 0)]


def read_items(root: Path, episodes: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Every frame of the dataset (or of `episodes`) as our reader returns it, cameras as uint8 CHW."""
    with LeRobotDatasetReader(root, episodes=episodes, return_uint8=True) as reader:
        return [reader[i] for i in range(len(reader))]


def episode_items(root: Path, episode: int) -> list[dict[str, Any]]:
    return read_items(root, episodes=[episode])


def assert_same_frames(got: list[dict[str, Any]], want: list[dict[str, Any]], *, new_episode: int) -> None:
    """Same values and identical decoded frames; episode_index is `new_episode`; index/task_index may differ."""
    assert len(got) == len(want), f"episode length {len(got)} != {len(want)}"
    for j, (g, w) in enumerate(zip(got, want)):
        assert set(g) == set(w)
        for key in w:
            if key in RENUMBERED:
                continue
            if isinstance(w[key], np.ndarray):
                np.testing.assert_array_equal(g[key], w[key], err_msg=f"frame {j} key {key}")
            else:
                assert g[key] == w[key], f"frame {j} key {key}: {g[key]!r} != {w[key]!r}"
        assert int(g["episode_index"]) == new_episode
