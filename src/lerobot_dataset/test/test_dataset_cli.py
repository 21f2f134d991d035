"""`lerobot-dataset` CLI: exit codes, printed reports, and each subcommand end to end on our writer's datasets.

Most tests call `dataset_cli.main(argv)` in-process; one runs the module as a subprocess to check the real
entry point and exit status.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import dataset_tools_testlib as tl  # noqa: E402
from oracle import synthetic_episodes as syn  # noqa: E402

from lerobot_dataset import cli as dataset_cli  # noqa: E402
from lerobot_dataset.format import read_info  # noqa: E402
from lerobot_dataset.source_dataset import read_tasks  # noqa: E402


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    return tl.record_dataset(tmp_path_factory.mktemp("cli") / "ds", tl.EPISODES_A[:4])


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = dataset_cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_info_text_and_json(src, capsys):
    code, out, _ = run(capsys, "info", src)
    assert code == 0
    assert "fps           30" in out and "robot_type    so101" in out
    assert "episodes      4" in out
    assert f"frames        {sum(syn.EPISODE_LENGTHS[:4])}" in out
    for task in syn.TASKS:
        assert task in out
    assert "observation.images.front" in out and "codec=av1" in out
    code, out, _ = run(capsys, "info", src, "--json")
    summary = json.loads(out)
    assert summary["total_episodes"] == 4 and summary["tasks"] == syn.TASKS
    assert summary["files"]["videos"] == [
        "videos/observation.images.front/chunk-000/file-000.mp4",
        "videos/observation.images.wrist/chunk-000/file-000.mp4",
    ]


def test_validate_exit_codes_and_locations(src, tmp_path, capsys):
    code, out, _ = run(capsys, "validate", src)
    assert code == 0, out
    assert "VALID" in out and "INVALID" not in out

    broken = tmp_path / "broken"
    shutil.copytree(src, broken)
    info = json.loads((broken / "meta/info.json").read_text())
    info["total_frames"] += 5
    (broken / "meta/info.json").write_text(json.dumps(info, indent=4))
    (broken / "videos/observation.images.wrist/chunk-000/file-000.mp4").unlink()
    code, out, _ = run(capsys, "validate", broken)
    assert code == 1
    assert "INVALID" in out
    assert "meta/info.json" in out  # each problem names its file
    assert "videos/observation.images.wrist/chunk-000/file-000.mp4" in out

    code, out, _ = run(capsys, "validate", broken, "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert any(p["file"] == "meta/info.json" for p in report["problems"])

    code, out, _ = run(capsys, "validate", tmp_path / "missing")
    assert code == 1


def test_delete_episodes_cli(src, tmp_path, capsys):
    out_dir = tmp_path / "del"
    code, out, err = run(capsys, "delete-episodes", src, "--episodes", "1", "3", "--output", out_dir, "--quiet")
    assert code == 0, err
    assert f"wrote {out_dir}: 2 episodes" in out
    assert read_info(out_dir)["total_episodes"] == 2
    tl.assert_same_frames(tl.episode_items(out_dir, 1), tl.episode_items(src, 2), new_episode=1)
    # Comma and range forms.
    code, _, err = run(capsys, "delete-episodes", src, "--episodes", "0-1,3", "--output", tmp_path / "d2", "--quiet")
    assert code == 0, err
    assert read_info(tmp_path / "d2")["total_frames"] == syn.EPISODE_LENGTHS[2]


def test_delete_in_place_cli(src, tmp_path, capsys):
    root = tmp_path / "ds"
    shutil.copytree(src, root)
    code, out, _ = run(capsys, "delete-episodes", root, "--episodes", "0", "--quiet")
    assert code == 0
    assert f"original kept at {tmp_path / 'ds_old'}" in out
    assert read_info(root)["total_episodes"] == 3 and read_info(tmp_path / "ds_old")["total_episodes"] == 4
    code, _, err = run(capsys, "delete-episodes", root, "--episodes", "0", "--quiet")
    assert code == 1 and "ds_old" in err and "already exists" in err


def test_delete_unknown_episode_cli(src, tmp_path, capsys):
    code, out, err = run(capsys, "delete-episodes", src, "--episodes", "9", "--output", tmp_path / "x", "--quiet")
    assert code == 1
    assert "unknown episode index [9]" in err and "episodes 0..3" in err
    assert not (tmp_path / "x").exists()
    with pytest.raises(SystemExit) as exc:
        dataset_cli.main(["delete-episodes", str(src), "--episodes", "one"])
    assert exc.value.code == 2
    assert "bad episode list 'one'" in capsys.readouterr().err


def test_merge_and_split_cli(src, tmp_path, capsys):
    other = tl.record_dataset(tmp_path / "other", tl.EPISODES_B)
    merged = tmp_path / "merged"
    code, out, err = run(capsys, "merge", src, other, "--output", merged, "--quiet")
    assert code == 0, err
    assert "7 episodes" in out and "from 2 datasets" in out
    assert read_tasks(merged) == syn.TASKS

    code, out, err = run(capsys, "split", merged, "--fractions", "train=0.6,val=0.4", "--output", tmp_path / "sp",
                         "--quiet")
    assert code == 0, err
    assert read_info(tmp_path / "sp/train")["total_episodes"] == 4
    assert read_info(tmp_path / "sp/val")["total_episodes"] == 3

    code, out, err = run(capsys, "split", merged, "--episodes", "a=0-2", "b=6", "--output", tmp_path / "sp2", "--quiet")
    assert code == 0, err
    assert read_info(tmp_path / "sp2/a")["total_episodes"] == 3
    assert read_info(tmp_path / "sp2/b")["total_frames"] == tl.EPISODES_B[2][1]


def test_merge_mismatch_cli(src, tmp_path, capsys):
    other = tl.record_dataset(tmp_path / "fps10", [(0, 4, 0)], fps=10)
    code, _, err = run(capsys, "merge", src, other, "--output", tmp_path / "m", "--quiet")
    assert code == 1
    assert "fps differs" in err and "has 10" in err
    assert not (tmp_path / "m").exists()


def test_recompute_stats_cli_output_copy(src, tmp_path, capsys):
    out_dir = tmp_path / "restats"
    before = (src / "meta/stats.json").read_bytes()
    code, out, err = run(capsys, "recompute-stats", src, "--output", out_dir, "--quiet")
    assert code == 0, err
    stats = json.loads((out_dir / "meta/stats.json").read_text())
    original = json.loads((src / "meta/stats.json").read_text())
    assert stats["action"]["mean"] == pytest.approx(original["action"]["mean"])
    assert (src / "meta/stats.json").read_bytes() == before  # the input is not touched with --output
    code, _, err = run(capsys, "recompute-stats", src, "--output", out_dir)
    assert code == 1 and "already exists" in err


def test_push_dry_run_lists_files_and_card(src, tmp_path, capsys):
    root = tmp_path / "ds"
    shutil.copytree(src, root)
    staging = root / "images/observation.images.overhead/episode-000000"
    staging.mkdir(parents=True)
    (staging / "frame-000000.png").write_bytes(b"png")
    code, out, err = run(capsys, "push", root, "--repo-id", "someone/so101_test", "--dry-run", "--tags", "so101")
    assert code == 0, err
    assert "to dataset repo someone/so101_test" in out and "tag v3.0" in out
    assert "  meta/info.json" in out and "  data/chunk-000/file-000.parquet" in out
    assert "  videos/observation.images.front/chunk-000/file-000.mp4" in out
    assert "images/" not in out.replace("observation.images", "")
    assert "data_files: data/*/*.parquet" in out and "- so101" in out


def test_push_refuses_invalid_dataset(src, tmp_path, capsys):
    root = tmp_path / "bad"
    shutil.copytree(src, root)
    (root / "meta/tasks.parquet").unlink()
    code, _, err = run(capsys, "push", root, "--repo-id", "someone/x", "--dry-run")
    assert code == 1
    assert "refusing to push an invalid dataset" in err and "meta/tasks.parquet" in err


def test_module_entry_point_exit_status(src, tmp_path):
    env = dict(os.environ, TQDM_DISABLE="1")
    ok = subprocess.run([sys.executable, "-m", "lerobot_dataset.cli", "validate", str(src)],
                        capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = subprocess.run([sys.executable, "-m", "lerobot_dataset.cli", "info", str(tmp_path / "none")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 1
    assert "not a LeRobot dataset" in bad.stderr
    usage = subprocess.run([sys.executable, "-m", "lerobot_dataset.cli", "merge"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert usage.returncode == 2


def test_split_episode_lists_are_parsed_and_duplicate_names_rejected():
    import argparse

    assert dataset_cli.parse_split_episodes(["train=0,1,2", " val =3"]) == {"train": [0, 1, 2], "val": [3]}
    with pytest.raises(argparse.ArgumentTypeError, match="split 'train' given twice"):
        dataset_cli.parse_split_episodes(["train =1", "train=2"])
    with pytest.raises(argparse.ArgumentTypeError, match="expected NAME=EPISODES"):
        dataset_cli.parse_split_episodes(["=1"])
