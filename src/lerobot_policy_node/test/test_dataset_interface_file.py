"""A recorded dataset carries the robot interface it was recorded with (meta/robot_interface.yaml), written with
the first saved episode, kept when an episode is removed, and not flagged by the dataset validator."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from policy_runtime_testlib import make_interface  # noqa: E402


def test_the_dataset_carries_its_robot_interface(tmp_path):
    from lerobot_dataset.validate import validate_dataset
    from lerobot_recorder.interface import parse_interface
    from lerobot_recorder.recording_dataset import (
        INTERFACE_FILE, open_dataset_writer, remove_saved_episode,
    )

    interface = make_interface(fps=10)
    root = tmp_path / "ds"
    writer = open_dataset_writer(interface, root, use_videos=False).writer
    frame = {"observation.state": np.zeros(2, np.float32), "action": np.ones(2, np.float32)}
    for _ in range(3):
        writer.add_frame(frame, task="reach")
    assert not (root / INTERFACE_FILE).exists()  # nothing on disk before the first saved episode
    writer.save_episode()
    stored = (root / INTERFACE_FILE).read_text(encoding="utf-8")
    assert stored == interface.source_text
    assert parse_interface(stored).dataset_features() == interface.dataset_features()
    for _ in range(3):
        writer.add_frame(frame, task="reach")
    writer.save_episode()
    writer, _ = remove_saved_episode(writer, root, 0)  # rebuilt by the dataset tools: the file is kept
    assert (root / INTERFACE_FILE).read_text(encoding="utf-8") == stored
    writer.close()
    report = validate_dataset(root)
    assert report.ok and not report.warnings, report.problems
