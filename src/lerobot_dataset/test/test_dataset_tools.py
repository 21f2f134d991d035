"""Dataset tools (delete / merge / split / recompute stats) on datasets recorded with our writer.

Every edited dataset is read back with our reader and compared frame by frame (values and decoded camera frames)
with the source episodes it came from; the oracle tests also load the results with upstream lerobot 0.4.4.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import dataset_tools_testlib as tl  # noqa: E402
from oracle import synthetic_episodes as syn  # noqa: E402

from lerobot_dataset import tools  # noqa: E402
from lerobot_dataset.errors import UnsafePathError  # noqa: E402
from lerobot_dataset.format import read_info  # noqa: E402
from lerobot_dataset.source_dataset import DatasetToolError, load_source, read_tasks  # noqa: E402
from lerobot_dataset.validate import validate_dataset  # noqa: E402


@pytest.fixture(scope="module")
def src_a(tmp_path_factory) -> Path:
    return tl.record_dataset(tmp_path_factory.mktemp("a") / "ds", tl.EPISODES_A)


@pytest.fixture(scope="module")
def src_b(tmp_path_factory) -> Path:
    return tl.record_dataset(tmp_path_factory.mktemp("b") / "ds", tl.EPISODES_B)


@pytest.fixture(scope="module")
def items_a(src_a) -> dict[int, list[dict]]:
    return {e: tl.episode_items(src_a, e) for e in range(len(tl.EPISODES_A))}


@pytest.fixture(scope="module")
def items_b(src_b) -> dict[int, list[dict]]:
    return {e: tl.episode_items(src_b, e) for e in range(len(tl.EPISODES_B))}


def _stats_json(root: Path) -> dict:
    return json.loads((root / "meta/stats.json").read_text())


def _check_structure(root: Path, expected_lengths: list[int]) -> None:
    """Global invariants: the validator passes; contiguous index, one row group per episode, ranges, totals."""
    report = validate_dataset(root)
    assert report.ok, report.format()
    info = read_info(root)
    src = load_source(root)
    assert info["total_episodes"] == len(expected_lengths)
    assert info["total_frames"] == sum(expected_lengths)
    assert info["splits"] == {"train": f"0:{len(expected_lengths)}"}
    assert [int(e["length"]) for e in src.episodes] == expected_lengths
    starts = np.cumsum([0] + expected_lengths)
    assert [int(e["dataset_from_index"]) for e in src.episodes] == starts[:-1].tolist()
    assert [int(e["dataset_to_index"]) for e in src.episodes] == starts[1:].tolist()
    files = sorted(root.glob("data/*/*.parquet"))
    index = np.concatenate([pq.read_table(f, columns=["index"])["index"].to_numpy() for f in files])
    np.testing.assert_array_equal(index, np.arange(sum(expected_lengths)))
    assert sum(pq.ParquetFile(f).num_row_groups for f in files) == len(expected_lengths)
    stats = _stats_json(root)
    assert stats["index"]["count"] == [sum(expected_lengths)]
    assert stats["episode_index"]["max"] == [len(expected_lengths) - 1]
    assert stats["index"]["max"] == [sum(expected_lengths) - 1]
    assert info["total_tasks"] == len(src.tasks)
    for ep in src.episodes:  # every episode's video segment spans exactly its frames
        for key in src.video_keys:
            span = ep[f"videos/{key}/to_timestamp"] - ep[f"videos/{key}/from_timestamp"]
            assert span == pytest.approx(ep["length"] / src.fps, abs=1e-6)


# ---------------------------------------------------------------------------------------------- delete
def test_delete_episodes_keeps_values_and_frames(src_a, items_a, tmp_path):
    out = tmp_path / "deleted"
    result = tools.delete_episodes(src_a, [1, 3], out, progress=False)
    kept = [0, 2, 4, 5]
    assert result.total_episodes == 4 and result.reencoded_segments == 0
    _check_structure(out, [tl.EPISODES_A[e][1] for e in kept])
    # Tasks of the kept episodes only (0,0,1,2 -> all three still used), in the original order.
    assert read_tasks(out) == [syn.TASKS[0], syn.TASKS[1], syn.TASKS[2]]
    for new, old in enumerate(kept):
        got = tl.episode_items(out, new)
        tl.assert_same_frames(got, items_a[old], new_episode=new)
        assert [g["task"] for g in got] == [syn.TASKS[tl.EPISODES_A[old][2]]] * len(got)
        assert int(got[0]["task_index"]) == read_tasks(out).index(got[0]["task"])
    # Source untouched.
    assert read_info(src_a)["total_episodes"] == 6


def test_delete_drops_unused_tasks_and_remaps_task_index(src_a, items_a, tmp_path):
    out = tmp_path / "only_task2"
    tools.delete_episodes(src_a, [0, 1, 2, 4], out, progress=False)  # keeps 3 (task 2) and 5 (task 2)
    assert read_tasks(out) == [syn.TASKS[2]]
    items = tl.read_items(out)
    assert {int(i["task_index"]) for i in items} == {0}
    assert {i["task"] for i in items} == {syn.TASKS[2]}
    stats = _stats_json(out)
    assert stats["task_index"]["max"] == [0] and stats["task_index"]["min"] == [0]
    tl.assert_same_frames(tl.episode_items(out, 1), items_a[5], new_episode=1)


def test_delete_episode_stats_are_renumbered(src_a, tmp_path):
    out = tmp_path / "del"
    tools.delete_episodes(src_a, [0], out, progress=False)
    src, dst = load_source(src_a), load_source(out)
    for new in range(5):
        old = new + 1
        s_old, s_new = src.episode_stats[old], dst.episode_stats[new]
        # Unchanged features keep their stats exactly.
        for key in ("observation.state", "action", "observation.images.front", "frame_index", "timestamp"):
            for stat, value in s_old[key].items():
                np.testing.assert_array_equal(s_new[key][stat], value, err_msg=f"{key}/{stat}")
        assert s_new["episode_index"]["min"].tolist() == [new] == s_new["episode_index"]["max"].tolist()
        lo = int(dst.episodes[new]["dataset_from_index"])
        assert s_new["index"]["min"].tolist() == [lo]
        assert s_new["index"]["max"].tolist() == [lo + int(dst.episodes[new]["length"]) - 1]
    # Global stats are the aggregate of the kept episodes: count and the state mean weighted by length.
    stats = _stats_json(out)
    lengths = np.array([int(e["length"]) for e in dst.episodes])
    means = np.stack([s["observation.state"]["mean"] for s in dst.episode_stats])
    np.testing.assert_allclose(stats["observation.state"]["mean"], (means * lengths[:, None]).sum(0) / lengths.sum())
    assert stats["observation.state"]["count"] == [int(lengths.sum())]


def test_delete_in_place_keeps_original_as_old(src_a, items_a, tmp_path):
    root = tmp_path / "inplace"
    shutil.copytree(src_a, root)
    result = tools.delete_episodes(root, [2], progress=False)
    assert result.root == root and result.backup == tmp_path / "inplace_old"
    assert read_info(root)["total_episodes"] == 5
    assert read_info(tmp_path / "inplace_old")["total_episodes"] == 6
    tl.assert_same_frames(tl.episode_items(root, 2), items_a[3], new_episode=2)
    # A second in-place edit would overwrite the backup: refused, dataset unchanged.
    with pytest.raises(DatasetToolError, match="inplace_old.*already exists"):
        tools.delete_episodes(root, [0], progress=False)
    assert read_info(root)["total_episodes"] == 5
    assert not list(tmp_path.glob("*.edit-*")) and not list(tmp_path.glob("*.partial-*"))


def test_delete_keeps_the_files_asked_for(src_a, tmp_path):
    """keep_files: files outside the format (the recorder's interface file) go along into the edited dataset;
    a missing one is skipped, one outside the dataset is refused before anything is written."""
    root = tmp_path / "with_extra"
    shutil.copytree(src_a, root)
    (root / "meta/robot_interface.yaml").write_text("fps: 30\n")
    result = tools.delete_episodes(root, [0], tmp_path / "out", keep_files=("meta/robot_interface.yaml", "meta/absent.txt"),
                                   progress=False)
    assert (result.root / "meta/robot_interface.yaml").read_text() == "fps: 30\n"
    assert not (result.root / "meta/absent.txt").exists()
    assert validate_dataset(result.root).ok
    with pytest.raises(UnsafePathError, match=r"keep_files.*'\.\./outside\.txt'"):
        tools.delete_episodes(root, [0], tmp_path / "out2", keep_files=("../outside.txt",), progress=False)
    assert not (tmp_path / "out2").exists()


def test_delete_errors(src_a, tmp_path):
    with pytest.raises(DatasetToolError, match=r"unknown episode index \[6, 9\].*episodes 0\.\.5"):
        tools.delete_episodes(src_a, [1, 6, 9], tmp_path / "x", progress=False)
    with pytest.raises(DatasetToolError, match="would delete all 6 episodes"):
        tools.delete_episodes(src_a, range(6), tmp_path / "y", progress=False)
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "keep.txt").write_text("not empty")
    with pytest.raises(DatasetToolError, match="already exists and is not empty"):
        tools.delete_episodes(src_a, [0], tmp_path / "z", progress=False)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    with pytest.raises(DatasetToolError, match="not a LeRobot dataset"):
        tools.delete_episodes(tmp_path / "nothing", [0], tmp_path / "w", progress=False)


def test_delete_with_reencode_keeps_frames_close(src_a, items_a, tmp_path):
    out = tmp_path / "reencoded"
    result = tools.delete_episodes(src_a, [0, 1, 2, 3], out, force_reencode=True, progress=False)
    assert result.reencoded_segments == 2 * 2  # 2 episodes x 2 cameras
    _check_structure(out, [tl.EPISODES_A[4][1], tl.EPISODES_A[5][1]])
    for new, old in enumerate([4, 5]):
        got = tl.episode_items(out, new)
        assert len(got) == len(items_a[old])
        for g, w in zip(got, items_a[old]):
            np.testing.assert_array_equal(g["observation.state"], w["observation.state"])
            np.testing.assert_array_equal(g["observation.images.overhead"], w["observation.images.overhead"])
            for key in syn.CAMERAS:
                diff = np.abs(g[key].astype(np.int16) - w[key].astype(np.int16))
                assert diff.mean() < 6.0, f"{key}: re-encoded frame differs by {diff.mean():.2f} on average"


# ---------------------------------------------------------------------------------------------- merge
def test_merge_unifies_tasks_and_keeps_frames(src_a, src_b, items_a, items_b, tmp_path):
    out = tmp_path / "merged"
    result = tools.merge_datasets([src_a, src_b], out, progress=False)
    lengths = [e[1] for e in tl.EPISODES_A] + [e[1] for e in tl.EPISODES_B]
    assert result.total_episodes == 9
    _check_structure(out, lengths)
    # B's tasks are a subset of A's: no new task; B's episodes are remapped to A's task indices.
    assert read_tasks(out) == syn.TASKS
    for e in range(6):
        tl.assert_same_frames(tl.episode_items(out, e), items_a[e], new_episode=e)
    for e in range(3):
        got = tl.episode_items(out, 6 + e)
        tl.assert_same_frames(got, items_b[e], new_episode=6 + e)
        assert int(got[0]["task_index"]) == syn.TASKS.index(got[0]["task"])
    # One video file per camera: B's segments were appended after A's by stream copy.
    assert len(list(out.glob("videos/observation.images.front/*/*.mp4"))) == 1


def test_merge_order_defines_task_order(src_a, src_b, tmp_path):
    out = tmp_path / "merged_ba"
    tools.merge_datasets([src_b, src_a], out, progress=False)
    # B uses tasks 1 and 0 (by its own task_index order: B's first task is TASKS[1]).
    assert read_tasks(out)[:2] == [syn.TASKS[1], syn.TASKS[0]]
    assert read_tasks(out)[2] == syn.TASKS[2]


def test_merge_rolls_video_and_data_files_at_size_limits(tmp_path, items_a):
    small = tl.record_dataset(tmp_path / "small", tl.EPISODES_A[:3], video_files_size_in_mb=0.004,
                              data_files_size_in_mb=0.02)
    out = tmp_path / "merged_small"
    tools.merge_datasets([small, tl.record_dataset(tmp_path / "small2", tl.EPISODES_A[3:])], out, progress=False)
    # The limits come from the first dataset's info.json; an episode that does not fit starts a new file.
    info = read_info(out)
    assert info["video_files_size_in_mb"] == 0.004 and info["data_files_size_in_mb"] == 0.02
    files = sorted(out.glob("videos/observation.images.front/*/*.mp4"))
    assert len(files) > 1
    assert len(sorted(out.glob("data/*/*.parquet"))) > 1
    src = load_source(out)
    assert any(ep["videos/observation.images.front/from_timestamp"] == 0.0 for ep in src.episodes[1:])
    assert any(ep["data/file_index"] > 0 for ep in src.episodes)
    _check_structure(out, [e[1] for e in tl.EPISODES_A])
    for e in range(6):
        tl.assert_same_frames(tl.episode_items(out, e), items_a[e], new_episode=e)


def test_merge_rejects_mismatching_datasets(src_a, tmp_path):
    other_fps = tl.record_dataset(tmp_path / "fps15", [(0, 5, 0)], fps=15)
    with pytest.raises(DatasetToolError, match=r"fps differs: .* has 30, .*fps15 has 15"):
        tools.merge_datasets([src_a, other_fps], tmp_path / "m1", progress=False)

    def twin_with(name: str, edit) -> Path:
        twin = tmp_path / name
        shutil.copytree(src_a, twin)
        info = json.loads((twin / "meta/info.json").read_text())
        edit(info)
        (twin / "meta/info.json").write_text(json.dumps(info, indent=4))
        return twin

    def state7(info: dict) -> None:
        info["features"]["observation.state"].update(shape=[7], names=None)

    with pytest.raises(DatasetToolError, match=r"feature 'observation.state' differs in \['names', 'shape'\]"):
        tools.merge_datasets([src_a, twin_with("shape7", state7)], tmp_path / "m2", progress=False)
    no_image = twin_with("noimg", lambda info: info["features"].pop(syn.IMAGE_KEY))
    with pytest.raises(DatasetToolError, match=r"only in .*: \['observation.images.overhead'\]"):
        tools.merge_datasets([src_a, no_image], tmp_path / "m3", progress=False)
    other_robot = twin_with("koch", lambda info: info.update(robot_type="koch"))
    with pytest.raises(DatasetToolError, match="robot_type differs: .* has 'so101', .*koch has 'koch'"):
        tools.merge_datasets([src_a, other_robot], tmp_path / "m4", progress=False)
    other_codec = twin_with("h264", lambda info: info["features"]["observation.images.wrist"]["info"].update(
        {"video.codec": "h264"}))
    with pytest.raises(DatasetToolError, match=r"feature 'observation.images.wrist' differs in \['info'\]"):
        tools.merge_datasets([src_a, other_codec], tmp_path / "m6", progress=False)

    with pytest.raises(DatasetToolError, match="at least 2"):
        tools.merge_datasets([src_a], tmp_path / "m5", progress=False)
    with pytest.raises(DatasetToolError, match="one of the inputs"):
        tools.merge_datasets([src_a, other_fps], src_a, progress=False)
    assert not any((tmp_path / f"m{i}").exists() for i in range(1, 7))


def test_merge_ignores_video_encoder_keys(src_a, tmp_path):
    twin = tmp_path / "twin"
    shutil.copytree(src_a, twin)
    info = json.loads((twin / "meta/info.json").read_text())
    for key in syn.CAMERAS:
        info["features"][key].setdefault("info", {})["video.crf"] = 99
    (twin / "meta/info.json").write_text(json.dumps(info, indent=4))
    out = tmp_path / "merged_twin"
    tools.merge_datasets([src_a, twin], out, progress=False)
    merged = read_info(out)
    assert merged["total_episodes"] == 12
    # Disagreeing encoder settings are not carried over as if they applied to every episode.
    assert merged["features"]["observation.images.front"]["info"]["video.crf"] is None
    assert merged["features"]["observation.images.front"]["info"]["video.codec"] == "av1"


# ---------------------------------------------------------------------------------------------- split
def test_split_by_fractions(src_a, items_a, tmp_path):
    results = tools.split_dataset(src_a, {"train": 0.5, "val": 0.5}, tmp_path / "splits", progress=False)
    assert set(results) == {"train", "val"}
    _check_structure(tmp_path / "splits/train", [e[1] for e in tl.EPISODES_A[:3]])
    _check_structure(tmp_path / "splits/val", [e[1] for e in tl.EPISODES_A[3:]])
    for new, old in enumerate([3, 4, 5]):
        tl.assert_same_frames(tl.episode_items(tmp_path / "splits/val", new), items_a[old], new_episode=new)


def test_split_by_episode_lists(src_a, items_a, tmp_path):
    tools.split_dataset(src_a, {"train": [5, 0, 2], "test": [4]}, tmp_path / "s", progress=False)
    _check_structure(tmp_path / "s/train", [tl.EPISODES_A[e][1] for e in (0, 2, 5)])
    for new, old in enumerate([0, 2, 5]):
        tl.assert_same_frames(tl.episode_items(tmp_path / "s/train", new), items_a[old], new_episode=new)
    assert read_tasks(tmp_path / "s/test") == [syn.TASKS[1]]


def test_fractions_to_episodes():
    assert tools.fractions_to_episodes(10, {"train": 0.8, "val": 0.2}) == {
        "train": list(range(8)),
        "val": [8, 9],
    }
    # Rounding remainder goes to the last split when the fractions sum to 1.
    assert tools.fractions_to_episodes(7, {"a": 0.5, "b": 0.5}) == {"a": [0, 1, 2], "b": [3, 4, 5, 6]}
    # Fractions that leave episodes in no split are refused (issue 15 item 14), naming how many.
    with pytest.raises(DatasetToolError, match="sum to 0.6, which would leave 4 of 10 episodes in no split"):
        tools.fractions_to_episodes(10, {"a": 0.3, "b": 0.3})
    with pytest.raises(DatasetToolError, match="sum to 1.2"):
        tools.fractions_to_episodes(10, {"a": 0.6, "b": 0.6})
    with pytest.raises(DatasetToolError, match=r"\['b'\] would get no episode"):
        tools.fractions_to_episodes(3, {"a": 0.5, "b": 0.1, "c": 0.4})


def test_split_errors(src_a, tmp_path):
    with pytest.raises(DatasetToolError, match="episode 2 is in both 'a' and 'b'"):
        tools.split_dataset(src_a, {"a": [1, 2], "b": [2, 3]}, tmp_path / "e1", progress=False)
    with pytest.raises(DatasetToolError, match=r"unknown episode index \[7\]"):
        tools.split_dataset(src_a, {"a": [1, 7]}, tmp_path / "e2", progress=False)
    with pytest.raises(DatasetToolError, match="either fractions or episode lists"):
        tools.split_dataset(src_a, {"a": 0.5, "b": [1]}, tmp_path / "e3", progress=False)
    assert not any((tmp_path / f"e{i}").exists() for i in (1, 2, 3))


# ---------------------------------------------------------------------------------------------- recompute stats
def test_recompute_stats_restores_corrupted_stats(src_a, tmp_path):
    root = tmp_path / "rs"
    shutil.copytree(src_a, root)
    before = load_source(root)
    good_global = _stats_json(root)
    # Corrupt stats.json and the per-episode stats columns.
    (root / "meta/stats.json").write_text("{}")
    ep_file = root / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(ep_file)
    col = table.column_names.index("stats/observation.state/mean")
    table = table.set_column(col, "stats/observation.state/mean", [[[0.0] * 6] * table.num_rows])
    pq.write_table(table, ep_file)

    tools.recompute_stats(root, progress=False)
    after = load_source(root)
    for ep in range(6):
        for key in ("observation.state", "action", "timestamp", "frame_index", "index", "episode_index"):
            for stat, value in before.episode_stats[ep][key].items():
                np.testing.assert_allclose(after.episode_stats[ep][key][stat], value, rtol=1e-9, atol=1e-9,
                                           err_msg=f"episode {ep} {key}/{stat}")
        # PNG images are lossless: identical stats.
        for stat, value in before.episode_stats[ep][syn.IMAGE_KEY].items():
            np.testing.assert_allclose(after.episode_stats[ep][syn.IMAGE_KEY][stat], value, atol=1e-12)
        # Video stats now come from the decoded (lossy) frames: close to the writer's, from the same samples.
        for key in syn.CAMERAS:
            b, a = before.episode_stats[ep][key], after.episode_stats[ep][key]
            assert a["count"].tolist() == b["count"].tolist()
            np.testing.assert_allclose(a["mean"], b["mean"], atol=0.02)
            assert a["mean"].shape == (3, 1, 1)
    new_global = _stats_json(root)
    assert set(new_global) == set(good_global)
    np.testing.assert_allclose(new_global["observation.state"]["mean"], good_global["observation.state"]["mean"])
    assert new_global["index"]["count"] == good_global["index"]["count"]
    # Row metadata other than stats is unchanged.
    for b, a in zip(before.episodes, after.episodes):
        assert {k: v for k, v in a.items() if not k.startswith("stats/")} == {
            k: v for k, v in b.items() if not k.startswith("stats/")
        }


# ---------------------------------------------------------------------------------------------- summary
def test_dataset_summary(src_a):
    s = tools.dataset_summary(src_a)
    assert s["fps"] == 30 and s["robot_type"] == "so101"
    assert s["total_episodes"] == 6 and s["total_frames"] == sum(syn.EPISODE_LENGTHS)
    assert s["tasks"] == syn.TASKS
    assert s["cameras"] == {"video": list(syn.CAMERAS), "image": [syn.IMAGE_KEY]}
    assert s["features"]["observation.images.front"]["codec"] == "av1"
    assert s["files"]["data"] == ["data/chunk-000/file-000.parquet"]
    assert len(s["files"]["videos"]) == 2
    assert s["sizes_bytes"]["total"] == sum(p.stat().st_size for p in src_a.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------------- upstream oracle
@pytest.mark.oracle
def test_upstream_loads_edited_datasets(src_a, src_b, tmp_path):
    """Upstream LeRobotDataset (0.4.4) loads the results of delete, merge and split and returns our reader's
    values (which the other tests compare with the source episodes)."""
    from oracle import oracle_env

    deleted = tmp_path / "deleted"
    tools.delete_episodes(src_a, [1, 4], deleted, progress=False)
    merged = tmp_path / "merged"
    tools.merge_datasets([deleted, src_b], merged, progress=False)
    tools.split_dataset(merged, {"train": [0, 2, 5], "val": [1, 6]}, tmp_path / "split", progress=False)
    val = tmp_path / "split" / "val"
    upstream = oracle_env.read_many_with_upstream(
        {"deleted": (deleted, None), "merged": (merged, None), "val": (val, None)}
    )
    for root in (deleted, merged, val):
        ours = tl.read_items(root)
        theirs = upstream[root.name]
        assert theirs.length == len(ours)
        assert theirs.num_episodes == read_info(root)["total_episodes"]
        for i, item in enumerate(ours):
            up = theirs[i]
            assert up["task"] == item["task"]
            for key, value in item.items():
                if key == "task":
                    continue
                if key in syn.CAMERAS or key == syn.IMAGE_KEY:
                    got = np.round(up[key] * 255.0).astype(np.uint8)  # upstream: float32 CHW in [0, 1]
                    np.testing.assert_array_equal(got, value, err_msg=f"{root.name}[{i}] {key}")
                else:
                    np.testing.assert_array_equal(up[key], value, err_msg=f"{root.name}[{i}] {key}")


@pytest.mark.oracle
def test_tools_accept_upstream_written_dataset(tmp_path):
    """An upstream-written dataset can be edited: delete + split, result frames equal the source's."""
    from oracle import oracle_env

    src = oracle_env.upstream_dataset()
    n = read_info(src)["total_episodes"]
    out = tmp_path / "up_deleted"
    tools.delete_episodes(src, [0], out, progress=False)
    for new in range(n - 1):
        tl.assert_same_frames(tl.episode_items(out, new), tl.episode_items(src, new + 1), new_episode=new)
    theirs = oracle_env.read_with_upstream(out)
    assert theirs.length == read_info(out)["total_frames"]


def test_empty_dataset_summary_and_errors(tmp_path):
    from lerobot_dataset.writer import LeRobotDatasetWriter

    from lerobot_dataset.format import normalize_features
    from lerobot_dataset.meta_info import make_info, write_info

    root = tmp_path / "empty"
    LeRobotDatasetWriter.create(root, fps=30, features=syn.features(), fsync=False).close()
    assert not root.exists()  # a writer that saved no episode leaves nothing behind
    write_info(root, make_info(30, normalize_features(syn.features())))  # an empty dataset as upstream's create() leaves it
    s = tools.dataset_summary(root)
    assert s["total_episodes"] == 0 and s["total_frames"] == 0 and s["episode_length"] is None
    with pytest.raises(DatasetToolError, match=r"unknown episode index \[0\] .* it has no episodes"):
        tools.delete_episodes(root, [0], tmp_path / "out", progress=False)
