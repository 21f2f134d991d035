"""remove-feature, modify-tasks and convert-images-to-video against upstream lerobot 0.4.4's remove_feature,
modify_tasks and convert_image_to_video_dataset on the same source dataset: same data, features, tasks and
statistics (where upstream keeps them), and upstream reads our outputs as it reads its own.

The differences feature_edits.py documents (stats upstream drops or leaves stale, HEAD's encoder keys in the
video info) are the only ones allowed here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import dataset_tools_testlib as tl  # noqa: E402
from oracle import oracle_env  # noqa: E402
from oracle import synthetic_episodes as syn  # noqa: E402

from lerobot_dataset import feature_edits  # noqa: E402
from lerobot_dataset.meta_tasks import read_tasks  # noqa: E402

pytestmark = [pytest.mark.oracle, pytest.mark.slow]

REMOVED = ["observation.images.front", "action"]
NEW_TASK, EPISODE_TASKS = "sort the blocks", {1: "wave at the camera"}
STREAM_INFO_KEYS = ("video.height", "video.width", "video.codec", "video.pix_fmt", "video.fps", "video.channels", "has_audio")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Both sides' outputs for the same image-only source dataset (3 episodes)."""
    base = tmp_path_factory.mktemp("edits")
    src = tl.record_dataset(base / "src", [(e, syn.EPISODE_LENGTHS[e], syn.EPISODE_TASKS[e]) for e in range(3)],
                            features=syn.features("image"))
    job = base / "job.json"
    job.write_text(json.dumps({
        "remove_feature": REMOVED,
        "modify_tasks": {"new_task": NEW_TASK, "episode_tasks": {str(k): v for k, v in EPISODE_TASKS.items()}},
        "convert_image_to_video": {"vcodec": "libsvtav1", "crf": 30, "g": 2},
    }))
    upstream = base / "upstream"
    oracle_env.run_oracle("edit_with_upstream.py", str(src), str(upstream), str(job))
    ours = base / "ours"
    feature_edits.remove_features(src, REMOVED, ours / "remove_feature", progress=False)
    feature_edits.modify_tasks(src, NEW_TASK, EPISODE_TASKS, ours / "modify_tasks", progress=False)
    feature_edits.convert_images_to_video(src, ours / "convert_image_to_video", progress=False)
    return {"ours": ours, "upstream": upstream}


def _data(root: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted(root.glob("data/*/*.parquet"))])


def _episodes(root: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted(root.glob("meta/episodes/*/*.parquet"))],
                            promote_options="default")


def _info(root: Path) -> dict:
    return json.loads((root / "meta/info.json").read_text())


def _stats(root: Path) -> dict:
    return json.loads((root / "meta/stats.json").read_text())


def _assert_same_data(ours: Path, upstream: Path) -> None:
    a, b = _data(ours), _data(upstream)
    assert a.column_names == b.column_names
    for name in a.column_names:
        assert a.column(name).to_pylist() == b.column(name).to_pylist(), name


def _upstream_items(outputs: dict, op: str) -> tuple[oracle_env.UpstreamItems, oracle_env.UpstreamItems]:
    reads = oracle_env.read_many_with_upstream({side: (outputs[side] / op, None) for side in ("ours", "upstream")})
    return reads["ours"], reads["upstream"]


def _assert_same_items(ours: oracle_env.UpstreamItems, upstream: oracle_env.UpstreamItems, pixel_tolerance: float = 0.0) -> None:
    assert ours.length == upstream.length and ours.indices == upstream.indices
    for i in ours.indices:
        a, b = ours[i], upstream[i]
        assert set(a) == set(b), i
        for key in b:
            if isinstance(b[key], np.ndarray) and key.startswith("observation.images.") and pixel_tolerance:
                assert a[key].shape == b[key].shape and np.abs(a[key] - b[key]).mean() < pixel_tolerance, (i, key)
            elif isinstance(b[key], np.ndarray):
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"item {i} {key}")
            else:
                assert a[key] == b[key], (i, key)


def test_remove_feature_matches_upstream(outputs):
    ours, upstream = outputs["ours"] / "remove_feature", outputs["upstream"] / "remove_feature"
    _assert_same_data(ours, upstream)
    a, b = _info(ours), _info(upstream)
    for key in ("features", "fps", "robot_type", "total_episodes", "total_frames", "total_tasks", "video_path", "data_path"):
        assert a[key] == b[key], key
    assert read_tasks(ours) == read_tasks(upstream)
    sa, sb = _stats(ours), _stats(upstream)
    assert sorted(sa) == sorted(sb)
    for feature in sa:
        for stat in sa[feature]:
            np.testing.assert_allclose(sa[feature][stat], sb[feature][stat], rtol=1e-9, err_msg=f"{feature}.{stat}")
    # documented difference: upstream keeps the removed features' per-episode stats columns in meta/episodes
    assert not [c for c in _episodes(ours).column_names if any(f"/{k}/" in c for k in REMOVED)]
    _assert_same_items(*_upstream_items(outputs, "remove_feature"))


def test_modify_tasks_matches_upstream(outputs):
    ours, upstream = outputs["ours"] / "modify_tasks", outputs["upstream"] / "modify_tasks"
    _assert_same_data(ours, upstream)
    assert read_tasks(ours) == read_tasks(upstream) == sorted({NEW_TASK, *EPISODE_TASKS.values()})
    assert _episodes(ours).column("tasks").to_pylist() == _episodes(upstream).column("tasks").to_pylist()
    assert _info(ours)["total_tasks"] == _info(upstream)["total_tasks"] == 2
    sa, sb = _stats(ours), _stats(upstream)
    for feature in (f for f in sa if f != "task_index"):  # upstream leaves task_index stats stale
        for stat in sa[feature]:
            np.testing.assert_allclose(sa[feature][stat], sb[feature][stat], rtol=1e-9, err_msg=f"{feature}.{stat}")
    assert sa["task_index"]["max"] == [1.0]
    _assert_same_items(*_upstream_items(outputs, "modify_tasks"))


def test_convert_images_to_video_matches_upstream(outputs):
    ours, upstream = outputs["ours"] / "convert_image_to_video", outputs["upstream"] / "convert_image_to_video"
    _assert_same_data(ours, upstream)
    a, b = _info(ours), _info(upstream)
    assert list(a["features"]) == list(b["features"])
    for key, fb in b["features"].items():
        fa = a["features"][key]
        assert (fa["dtype"], fa["shape"], fa["names"]) == (fb["dtype"], fb["shape"], fb["names"]), key
        if fb["dtype"] == "video":
            assert {k: fa["info"][k] for k in STREAM_INFO_KEYS} == {k: fb["info"][k] for k in STREAM_INFO_KEYS}, key
    for key in ("fps", "total_episodes", "total_frames", "total_tasks", "video_path"):
        assert a[key] == b[key], key
    ea, eb = _episodes(ours), _episodes(upstream)
    for column in (c for c in eb.column_names if c.startswith("videos/") or c in ("episode_index", "length", "dataset_from_index", "dataset_to_index")):
        np.testing.assert_allclose(ea.column(column).to_pylist(), eb.column(column).to_pylist(), atol=1e-6, err_msg=column)
    # documented difference: our video features keep the statistics of the frames they were encoded from
    assert all(_stats(ours)[k]["mean"] for k in syn.CAMERAS)
    _assert_same_items(*_upstream_items(outputs, "convert_image_to_video"), pixel_tolerance=0.03)
