"""Issue 15 item 5 (writer half): a new dataset's folder appears with its first saved episode; a writer that saved
no episode leaves nothing behind, and an earlier dataset with no episode is reused instead of refused."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest

from lerobot_dataset import LeRobotDatasetWriter, validate_dataset
from lerobot_dataset.errors import DatasetBusyError, DatasetExistsError
from lerobot_dataset.format import normalize_features
from lerobot_dataset.meta_info import make_info, write_info
from lerobot_dataset.writer import EpisodeSaveError

FPS = 10
FEATURES = {
    "observation.state": {"dtype": "float32", "shape": (2,), "names": ["a", "b"]},
    "observation.images.cam": {"dtype": "video", "shape": (24, 32, 3), "names": ["height", "width", "channels"]},
}


def _frame(i: int) -> dict:
    return {"observation.state": np.array([i, -i], np.float32),
            "observation.images.cam": np.full((24, 32, 3), (30 * i) % 256, np.uint8)}


def _record(writer: LeRobotDatasetWriter, n: int = 4, task: str = "wave") -> None:
    for i in range(n):
        writer.add_frame(_frame(i), task=task)


def test_create_writes_nothing_until_the_first_saved_episode(tmp_path):
    root = tmp_path / "ds"
    LeRobotDatasetWriter.create(root, FPS, FEATURES).close()
    assert not root.exists()

    writer = LeRobotDatasetWriter.create(root, FPS, FEATURES)
    _record(writer)  # the folder is made (and locked) with the first frame, for the staging of the episode
    assert root.is_dir() and not (root / "meta").exists()
    writer.discard_episode()
    writer.close()
    assert not root.exists()  # nothing saved: the folder it made is gone

    with LeRobotDatasetWriter.create(root, FPS, FEATURES) as writer:
        _record(writer)
        writer.save_episode()
    assert validate_dataset(root).ok


def test_a_folder_the_user_made_is_kept_but_left_empty(tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    writer = LeRobotDatasetWriter.create(root, FPS, FEATURES)
    _record(writer)
    writer.close()  # the unsaved episode is discarded
    assert root.is_dir() and list(root.iterdir()) == []


def test_a_failed_first_save_leaves_nothing(tmp_path):
    root = tmp_path / "ds"
    writer = LeRobotDatasetWriter.create(root, FPS, FEATURES)

    def disk_full(stage: str) -> None:
        if stage == "tasks_written":  # info.json, tasks, data and the video are all written by now
            raise OSError(errno.ENOSPC, "No space left on device")

    writer._test_hook = disk_full
    _record(writer)
    with pytest.raises(EpisodeSaveError, match="disk full"):
        writer.save_episode()
    writer.close()
    assert not root.exists()


def test_an_earlier_dataset_without_episodes_is_reused(tmp_path):
    """What an interrupted start of an older version (or upstream's create()) leaves: only meta/info.json."""
    root = tmp_path / "ds"
    old = {"observation.state": {"dtype": "float32", "shape": (5,), "names": None}}
    write_info(root, make_info(30, normalize_features(old)))
    with LeRobotDatasetWriter.create(root, FPS, FEATURES) as writer:
        _record(writer)
        writer.save_episode()
    info = json.loads((root / "meta/info.json").read_text())
    assert info["fps"] == FPS and info["features"]["observation.state"]["shape"] == [2]
    assert info["total_episodes"] == 1 and validate_dataset(root).ok


def test_a_folder_with_episodes_or_other_files_is_refused(tmp_path):
    root = tmp_path / "ds"
    with LeRobotDatasetWriter.create(root, FPS, FEATURES) as writer:
        _record(writer)
        writer.save_episode()
    with pytest.raises(DatasetExistsError, match="already holds a dataset"):
        LeRobotDatasetWriter.create(root, FPS, FEATURES)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("x")
    with pytest.raises(FileExistsError, match="todo.txt"):
        LeRobotDatasetWriter.create(other, FPS, FEATURES)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetExistsError, match="is a file, not a folder"):
        LeRobotDatasetWriter.create(tmp_path / "file", FPS, FEATURES)


def test_create_in_a_folder_another_writer_holds_is_refused(tmp_path):
    root = tmp_path / "ds"
    first = LeRobotDatasetWriter.create(root, FPS, FEATURES)
    _record(first)  # holds the folder (no episode saved yet)
    with pytest.raises(DatasetBusyError, match="open in another LeRobotDatasetWriter"):
        LeRobotDatasetWriter.create(root, FPS, FEATURES)
    first.save_episode()
    first.close()
    assert validate_dataset(root).ok
