"""Issue 9 item 9: the dataset tools and push take the writer's lock, refuse a dataset with an interrupted save or
pending video segments until it is recovered, and an in-place episode removal survives a crash between its two
renames (the dataset is never only in a side folder that the next removal deletes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from hardening_testlib import file_digests, kill_during_save, record, run_and_kill  # noqa: E402

from lerobot_dataset import LeRobotDatasetWriter, cli, feature_edits, hub, tools, validate_dataset  # noqa: E402
from lerobot_dataset.errors import DatasetBusyError  # noqa: E402
from lerobot_dataset.reader import LeRobotDatasetReader  # noqa: E402
from lerobot_dataset.writer import EpisodeSaveError  # noqa: E402


class RecordingHubApi:
    """Stands in for huggingface_hub.HfApi (there is no Hub access here): records every call, uploads nothing."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: self.calls.append(name)


def _states(root) -> list[list[float]]:
    with LeRobotDatasetReader(root) as reader:
        return [reader[i]["observation.state"].tolist() for i in range(len(reader))]


def _tool_calls(root, tmp_path, api):
    """Every tool that reads or rewrites a dataset, as zero-argument calls."""
    other = record(tmp_path / "other", episodes=1)
    return {
        "delete in place": lambda: tools.delete_episodes(root, [0], progress=False),
        "delete to a copy": lambda: tools.delete_episodes(root, [0], tmp_path / "deleted", progress=False),
        "recompute stats": lambda: tools.recompute_stats(root, progress=False),
        "split": lambda: tools.split_dataset(root, {"a": [0], "b": [1]}, tmp_path / "split", progress=False),
        "merge": lambda: tools.merge_datasets([root, other], tmp_path / "merged", progress=False),
        "remove feature": lambda: feature_edits.remove_features(root, ["observation.state"], tmp_path / "rm", progress=False),
        "modify tasks": lambda: feature_edits.modify_tasks(root, "new", progress=False),
        "push": lambda: hub.push_dataset(root, "user/name", api=api),
    }


def test_tools_and_push_refuse_a_dataset_open_in_a_writer(tmp_path, capsys):
    root = record(tmp_path / "ds", episodes=2)
    writer = LeRobotDatasetWriter.open(root)  # a live recording
    before = file_digests(root)
    api = RecordingHubApi()
    for name, call in _tool_calls(root, tmp_path, api).items():
        with pytest.raises(DatasetBusyError, match="open in another LeRobotDatasetWriter"):
            call()
    assert api.calls == []  # nothing went up
    assert cli.main(["push", str(root), "--repo-id", "user/name", "--dry-run"]) == 1
    assert "open in another LeRobotDatasetWriter" in capsys.readouterr().err
    assert file_digests(root) == before
    for i in range(3):  # and the recording goes on
        writer.add_frame({"observation.state": np.array([2, i], np.float32)}, task="task 2")
    writer.save_episode()
    writer.close()
    assert validate_dataset(root).ok
    tools.delete_episodes(root, [0], progress=False)  # free again
    assert _states(root)[0] == [1.0, 0.0]


def test_tools_refuse_an_interrupted_save_until_it_is_recovered(tmp_path, capsys):
    root = record(tmp_path / "ds", episodes=2)
    kill_during_save(root, "data_written", tmp_path)  # the data file already holds part of episode 2
    api = RecordingHubApi()
    for name, call in _tool_calls(root, tmp_path, api).items():
        with pytest.raises(DatasetBusyError, match=r"interrupted episode save.*lerobot-dataset recover"):
            call()
    assert api.calls == []
    report = validate_dataset(root)
    assert not report.ok and report.by_check("layout.unfinished")

    assert cli.main(["recover", str(root)]) == 0
    assert "repaired" in capsys.readouterr().out
    assert validate_dataset(root).ok and len(_states(root)) == 10
    tools.delete_episodes(root, [0], progress=False)
    assert _states(root)[0] == [1.0, 0.0]


def test_tools_refuse_pending_video_segments(tmp_path, monkeypatch):
    root = record(tmp_path / "ds", episodes=1, video=True)
    from lerobot_dataset import recovery

    def disk_full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(recovery, "concat_segment", disk_full)
    writer = LeRobotDatasetWriter.open(root, fsync=False)
    for i in range(5):
        writer.add_frame({"observation.state": np.array([1, i], np.float32),
                          "observation.images.cam": np.full((24, 32, 3), 90, np.uint8)}, task="task 1")
    writer.save_episode()  # committed; its segment cannot be appended
    with pytest.raises(EpisodeSaveError, match="pending"):
        writer.close()
    monkeypatch.undo()
    with pytest.raises(DatasetBusyError, match="not yet appended"):
        tools.split_dataset(root, {"a": [0], "b": [1]}, tmp_path / "split", progress=False)
    api = RecordingHubApi()
    with pytest.raises(DatasetBusyError, match="not yet appended"):
        hub.push_dataset(root, "user/name", api=api)
    assert api.calls == []
    LeRobotDatasetWriter.open(root).close()  # the writer finishes the append
    tools.split_dataset(root, {"a": [0], "b": [1]}, tmp_path / "split", progress=False)
    assert validate_dataset(tmp_path / "split" / "b").ok


def _kill_once_the_original_moves(root: Path, edit: str, tmp_path: Path) -> None:
    """Run `edit` (a line of Python using `root`, `tools`, `LeRobotDatasetWriter`) in a child process that SIGKILLs
    itself right after the original dataset was renamed away, before the rebuilt copy takes its name."""
    run_and_kill(f"""
        import os, signal
        from pathlib import Path
        from lerobot_dataset import LeRobotDatasetWriter, durable_io, tools
        root = Path({str(root)!r})
        real_replace = durable_io.replace

        def replace_then_die(src, dst, fsync=True):
            real_replace(src, dst, fsync)
            if Path(src) == root:  # the original is gone from its name; the rebuilt copy is not there yet
                os.kill(os.getpid(), signal.SIGKILL)

        durable_io.replace = replace_then_die
        {edit}
        """, tmp_path)


def test_crash_between_the_two_renames_of_an_episode_removal_loses_nothing(tmp_path):
    """The recorder removes a saved episode by rebuilding the dataset next to it and swapping folders. Kill the
    process right after the original was renamed away: the next open finishes the swap."""
    root = record(tmp_path / "ds", episodes=3)
    _kill_once_the_original_moves(root, "tools.remove_saved_episode(LeRobotDatasetWriter.open(root), 1)", tmp_path)
    assert not root.exists()  # the crash window
    with LeRobotDatasetWriter.open(root) as writer:  # finishes the swap first
        assert writer.total_episodes == 2
    assert [s[0] for s in _states(root)] == [0.0] * 5 + [2.0] * 5  # episode 1 removed, episode 2 renumbered
    assert sorted(p.name for p in tmp_path.iterdir()) == ["child.py", "ds"]  # no side folder left
    assert validate_dataset(root).ok


def test_crash_between_the_renames_of_an_in_place_delete_keeps_the_backup(tmp_path, capsys):
    root = record(tmp_path / "ds", episodes=3)
    _kill_once_the_original_moves(root, "tools.delete_episodes(root, [0], progress=False)", tmp_path)
    assert not root.exists() and (tmp_path / "ds_old").is_dir()
    with pytest.raises(DatasetBusyError, match="interrupted in-place edit"):
        tools.dataset_summary(root)
    assert cli.main(["recover", str(root)]) == 0
    assert [s[0] for s in _states(root)] == [1.0] * 5 + [2.0] * 5
    assert [s[0] for s in _states(tmp_path / "ds_old")] == [0.0] * 5 + [1.0] * 5 + [2.0] * 5  # upstream's backup
    assert json.loads((root / "meta/info.json").read_text())["total_episodes"] == 2


def test_removing_the_only_episode_removes_the_dataset_and_recording_goes_on(tmp_path):
    root = record(tmp_path / "ds", episodes=1)
    removed = tools.remove_saved_episode(LeRobotDatasetWriter.open(root), -1)
    assert removed.episode_index == 0 and not root.exists()
    writer = removed.writer
    for i in range(4):
        writer.add_frame({"observation.state": np.array([7, i], np.float32)}, task="again")
    writer.save_episode()
    writer.close()
    assert _states(root) == [[7.0, float(i)] for i in range(4)]
