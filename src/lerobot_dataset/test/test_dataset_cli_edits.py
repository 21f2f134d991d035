"""Issue 15 item 14: `lerobot-dataset` has lerobot-edit-dataset's remove-feature, modify-tasks and
convert-images-to-video, finds a repo_id in the local Hub cache, refuses split fractions that leave episodes out,
says a file is not a folder, and documents every argument."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from hardening_testlib import record  # noqa: E402

from lerobot_dataset import LeRobotDatasetWriter, cli, validate_dataset  # noqa: E402
from lerobot_dataset.meta_tasks import read_tasks  # noqa: E402
from lerobot_dataset.reader import LeRobotDatasetReader  # noqa: E402


def run(capsys, *args) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _image_dataset(root: Path, episodes: int = 2, length: int = 6) -> Path:
    features = {"observation.state": {"dtype": "float32", "shape": (2,), "names": ["a", "b"]},
                "observation.images.top": {"dtype": "image", "shape": (24, 32, 3), "names": ["height", "width", "channels"]}}
    with LeRobotDatasetWriter.create(root, 10, features, use_videos=False, fsync=False) as w:
        for ep in range(episodes):
            for i in range(length):
                w.add_frame({"observation.state": np.array([ep, i], np.float32),
                             "observation.images.top": np.full((24, 32, 3), 20 * i + 60 * ep, np.uint8)}, task=f"task {ep}")
            w.save_episode()
    return root


def test_every_argument_and_option_has_help_text():
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip():
                missing.append(f"{name} {action.dest}")
    assert not missing, f"arguments without help text: {missing}"
    assert all(choice.help for choice in subparsers._choices_actions)


def test_validate_a_file_says_it_is_not_a_folder(tmp_path, capsys):
    path = tmp_path / "info.json"
    path.write_text("{}")
    code, out, _ = run(capsys, "validate", path)
    assert code == 1 and "is a file, not a dataset folder" in out


def test_split_fractions_that_leave_episodes_in_no_split_are_refused(tmp_path, capsys):
    root = record(tmp_path / "ds", episodes=4)
    code, _, err = run(capsys, "split", root, "--fractions", "train=0.5,val=0.25", "--output", tmp_path / "splits")
    assert code == 1 and "would leave 1 of 4 episodes in no split" in err and "\n" not in err.strip()
    assert not (tmp_path / "splits").exists()
    code, out, _ = run(capsys, "split", root, "--fractions", "train=0.5,val=0.25,rest=0.25", "--output", tmp_path / "splits")
    assert code == 0 and "rest:" in out


def test_remove_feature(tmp_path, capsys):
    root = record(tmp_path / "ds", episodes=2, video=True)
    code, out, _ = run(capsys, "remove-feature", root, "--features", "observation.images.cam", "--output", tmp_path / "out")
    assert code == 0, out
    with LeRobotDatasetReader(tmp_path / "out") as reader:
        assert reader.meta.video_keys == [] and reader.meta.info["video_path"] is None
        assert reader[6]["observation.state"].tolist() == [1.0, 1.0]
    assert not (tmp_path / "out" / "videos").exists() and validate_dataset(tmp_path / "out").ok
    code, _, err = run(capsys, "remove-feature", root, "--features", "index")
    assert code == 1 and "cannot be removed" in err
    code, out, _ = run(capsys, "remove-feature", root, "--features", "observation.images.cam")  # in place
    assert code == 0 and "original kept at" in out and (tmp_path / "ds_old" / "videos").is_dir()


def test_modify_tasks(tmp_path, capsys):
    root = record(tmp_path / "ds", episodes=3)
    code, out, _ = run(capsys, "modify-tasks", root, "--new-task", "reach", "--episode-tasks", "1=wave hello")
    assert code == 0, out
    assert read_tasks(root) == ["reach", "wave hello"]  # sorted, as upstream numbers them
    with LeRobotDatasetReader(root) as reader:
        assert [reader[i]["task"] for i in (0, 5, 10)] == ["reach", "wave hello", "reach"]
    assert validate_dataset(root).ok and not (tmp_path / "ds_old").exists()
    code, _, err = run(capsys, "modify-tasks", root, "--episode-tasks", "7=x")
    assert code == 1 and "unknown episode index [7]" in err
    code, _, err = run(capsys, "modify-tasks", root)
    assert code == 2 and "--new-task" in err


def test_convert_images_to_video(tmp_path, capsys):
    root = _image_dataset(tmp_path / "ds")
    out_dir = tmp_path / "video"
    code, out, _ = run(capsys, "convert-images-to-video", root, "--output", out_dir, "--vcodec", "h264", "--crf", "18")
    assert code == 0, out
    info = json.loads((out_dir / "meta/info.json").read_text())
    assert info["features"]["observation.images.top"]["dtype"] == "video"
    assert info["features"]["observation.images.top"]["info"]["video.codec"] == "h264"
    with LeRobotDatasetReader(out_dir, return_uint8=True) as reader, LeRobotDatasetReader(root, return_uint8=True) as source:
        for i in (0, 7, 11):
            diff = np.abs(reader[i]["observation.images.top"].astype(int) - source[i]["observation.images.top"].astype(int))
            assert diff.mean() < 3
    assert validate_dataset(out_dir).ok
    code, _, err = run(capsys, "convert-images-to-video", out_dir, "--output", tmp_path / "again")
    assert code == 1 and "has no image features" in err


def test_a_repo_id_is_found_in_the_local_hub_cache(tmp_path, capsys, monkeypatch):
    home, hub_cache = tmp_path / "lerobot_home", tmp_path / "hub"
    monkeypatch.setenv("HF_LEROBOT_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    record(home / "alice" / "cubes", episodes=2)
    code, out, _ = run(capsys, "info", "alice/cubes")
    assert code == 0 and str(home / "alice" / "cubes") in out

    # huggingface_hub's cache: snapshot files are links into blobs/, the v3.0 tag names the snapshot
    source = record(tmp_path / "src", episodes=2)
    repo = hub_cache / "datasets--bob--blocks"
    snapshot = repo / "snapshots" / "0123abcd"
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        blob = repo / "blobs" / path.relative_to(source).as_posix().replace("/", "_")
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, blob)
        link = snapshot / path.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir()
    (repo / "refs" / "v3.0").write_text("0123abcd")
    code, out, _ = run(capsys, "validate", "bob/blocks")
    assert code == 0 and "VALID" in out
    code, _, err = run(capsys, "delete-episodes", "bob/blocks", "--episodes", "0")
    assert code == 1 and "Hugging Face Hub cache" in err and "--output" in err
    code, out, _ = run(capsys, "delete-episodes", "bob/blocks", "--episodes", "0", "--output", tmp_path / "edited")
    assert code == 0 and validate_dataset(tmp_path / "edited").ok

    code, _, err = run(capsys, "info", "carol/missing")
    assert code == 1 and "lerobot-dataset pull carol/missing" in err
