"""validate_dataset: valid datasets pass; each corruption is reported by its check with file, episode and index."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lerobot_dataset.validate import validate_dataset
from oracle import synthetic_episodes as syn
from oracle.our_writer_dataset import write_with_our_writer

FIRST_DATA = "data/chunk-000/file-000.parquet"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return write_with_our_writer(tmp_path_factory.mktemp("validate") / "ds")


@pytest.fixture()
def ds(pristine, tmp_path):
    dst = tmp_path / "ds"
    shutil.copytree(pristine, dst)
    return dst


def _edit_column(path, column, row, value):
    table = pq.read_table(path)
    values = table.column(column).to_pylist()
    values[row] = value
    i = table.column_names.index(column)
    pq.write_table(table.set_column(i, table.schema.field(i), pa.array(values, table.schema.field(i).type)), path)


def _episodes_row(ds, episode_index):
    """(meta/episodes file, row in it) of an episode."""
    for path in sorted(ds.glob("meta/episodes/*/*.parquet")):
        episodes = pq.read_table(path).column("episode_index").to_pylist()
        if episode_index in episodes:
            return path, episodes.index(episode_index)
    raise AssertionError(f"episode {episode_index} is in no meta/episodes file")


def _only(report, check):
    found = report.by_check(check)
    assert found, f"expected a '{check}' problem, got:\n{report.format()}"
    return found


def test_valid_dataset_passes(pristine):
    report = validate_dataset(pristine)
    assert report.ok, report.format()
    assert report.problems == []
    assert report.summary == {"episodes": len(syn.EPISODE_LENGTHS), "frames": sum(syn.EPISODE_LENGTHS),
                              "tasks": len(syn.TASKS), "video_files": 9}
    assert "VALID" in report.format()


def test_deleted_row(ds):
    path = ds / FIRST_DATA
    table = pq.read_table(path)
    keep = [r for r in range(table.num_rows) if r != 5]
    pq.write_table(table.take(keep), path)
    report = validate_dataset(ds)
    assert not report.ok
    index_problem = _only(report, "data.index")[0]
    assert (index_problem.file, index_problem.episode, index_problem.index) == (FIRST_DATA, 0, 6)
    rows_problem = _only(report, "data.episode_rows")[0]
    assert rows_problem.episode == 0 and "13 data rows" in rows_problem.message
    assert "INVALID" in report.format() and "episode 0, index 6" in report.format()


def test_wrong_timestamp(ds):
    _edit_column(ds / FIRST_DATA, "timestamp", 3, 0.5)
    report = validate_dataset(ds)
    problems = _only(report, "data.timestamp")
    assert len(problems) == 1
    assert (problems[0].file, problems[0].episode, problems[0].index) == (FIRST_DATA, 0, 3)
    assert "frame_index/fps" in problems[0].message


def test_wrong_frame_index(ds):
    _edit_column(ds / FIRST_DATA, "frame_index", 4, 40)
    report = validate_dataset(ds)
    p = _only(report, "data.frame_index")[0]
    assert (p.episode, p.index) == (0, 4) and "expected 4" in p.message


def test_missing_stats(ds):
    stats_file = ds / "meta" / "stats.json"
    stats = json.loads(stats_file.read_text())
    del stats["action"]
    del stats["observation.state"]["std"]
    stats_file.write_text(json.dumps(stats))
    report = validate_dataset(ds)
    messages = [p.message for p in _only(report, "stats.missing")]
    assert any("'action'" in m for m in messages)
    assert any("'observation.state' lacks ['std']" in m for m in messages)
    assert all(p.file == "meta/stats.json" for p in report.by_check("stats."))


def test_wrong_stats_shape(ds):
    stats_file = ds / "meta" / "stats.json"
    stats = json.loads(stats_file.read_text())
    stats["observation.images.front"]["mean"] = [0.5, 0.5, 0.5]
    stats_file.write_text(json.dumps(stats))
    p = _only(validate_dataset(ds), "stats.shape")[0]
    assert "observation.images.front" in p.message and "[3, 1, 1]" in p.message


def test_truncated_video(ds):
    rel = "videos/observation.images.wrist/chunk-000/file-000.mp4"
    video = ds / rel
    data = video.read_bytes()
    video.write_bytes(data[: len(data) * 6 // 10])
    report = validate_dataset(ds)
    assert not report.ok
    problems = [p for p in report.by_check("video.") if p.file == rel]
    assert problems, report.format()
    assert all(p.episode is not None for p in problems)
    # The other camera's files are untouched and not blamed.
    assert not [p for p in report.problems if "observation.images.front" in (p.file or "")]


def test_bad_task_index(ds):
    _edit_column(ds / FIRST_DATA, "task_index", 7, 9)
    p = _only(validate_dataset(ds), "data.task_index")[0]
    assert (p.file, p.episode, p.index) == (FIRST_DATA, 0, 7)
    assert "task_index 9 does not exist" in p.message


def test_episodes_table_inconsistent(ds):
    target, row = _episodes_row(ds, 2)
    _edit_column(target, "dataset_to_index", row, 999)
    report = validate_dataset(ds)
    problems = _only(report, "episodes.range")
    assert any(p.episode == 2 and "length" in p.message for p in problems)
    assert any(p.episode == 3 and "expected 999" in p.message for p in problems)


def test_missing_video_file(ds):
    rel = "videos/observation.images.front/chunk-001/file-000.mp4"
    (ds / rel).unlink()
    p = _only(validate_dataset(ds), "episodes.video_ref")[0]
    assert rel in p.message and p.episode is not None


def test_unreadable_data_file(ds):
    path = ds / FIRST_DATA
    path.write_bytes(path.read_bytes()[:-100])  # footer gone, as after a hard kill
    p = _only(validate_dataset(ds), "data.file")[0]
    assert p.file == FIRST_DATA and "footer" in p.message


def test_info_schema(ds):
    info_file = ds / "meta" / "info.json"
    info = json.loads(info_file.read_text())
    info["fps"] = "30"
    del info["features"]["index"]
    info["features"]["action"]["shape"] = [6, 0]
    info_file.write_text(json.dumps(info))
    report = validate_dataset(ds)
    messages = " | ".join(p.message for p in report.by_check("info."))
    assert "'fps' must be an int" in messages
    assert "default feature 'index' is missing" in messages
    assert "feature 'action'" in messages


def test_total_counts(ds):
    info_file = ds / "meta" / "info.json"
    info = json.loads(info_file.read_text())
    info["total_frames"] += 1
    info["total_tasks"] = 7
    info_file.write_text(json.dumps(info))
    messages = [p.message for p in _only(validate_dataset(ds), "info.totals")]
    assert any("total_frames" in m for m in messages) and any("total_tasks" in m for m in messages)


def test_v2_dataset_is_reported(tmp_path):
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "info.json").write_text(json.dumps({"codebase_version": "v2.1", "fps": 30, "features": {}}))
    report = validate_dataset(tmp_path)
    p = _only(report, "layout.version")[0]
    assert "convert_dataset_v21_to_v30" in p.message and not report.ok


def test_missing_folder(tmp_path):
    assert not validate_dataset(tmp_path / "nope").ok


def test_many_problems_are_capped(ds):
    for path in ds.glob("data/*/*.parquet"):  # every frame gets a wrong timestamp
        table = pq.read_table(path)
        i = table.column_names.index("timestamp")
        bad = pa.array(np.full(table.num_rows, 9.0, dtype=np.float32))
        pq.write_table(table.set_column(i, table.schema.field(i), bad), path)
    problems = validate_dataset(ds).by_check("data.timestamp")
    assert len(problems) == 21 and "more problem(s)" in problems[-1].message


def test_video_with_frames_missing(ds):
    # A well-formed mp4 that simply stops early (an encoder that quit): remux only the first 10 packets.
    import av

    rel = "videos/observation.images.front/chunk-000/file-000.mp4"
    src_path = ds / rel
    short = src_path.with_name("short.mp4")
    with av.open(str(src_path)) as src, av.open(str(short), "w") as dst:
        s_in = src.streams.video[0]
        s_out = dst.add_stream_from_template(s_in, opaque=True)
        for n, packet in enumerate(src.demux(s_in)):
            if packet.dts is None or n >= 10:
                continue
            packet.stream = s_out
            dst.mux(packet)
    short.replace(src_path)
    report = validate_dataset(ds)
    frames = _only(report, "video.frames")
    first = frames[0]
    assert first.file == rel and first.episode == 0 and first.index == 10
    assert "no frame at" in first.message
    assert any("frames missing from the span" in p.message and p.episode == 0 for p in frames)


def test_column_types_and_names(ds):
    path = ds / FIRST_DATA
    table = pq.read_table(path)
    i = table.column_names.index("action")
    as_f64 = pa.array(np.asarray(table.column("action").to_pylist(), dtype=np.float64).tolist(), pa.list_(pa.float64(), 6))
    table = table.set_column(i, "action", as_f64).append_column("debug", pa.array(np.zeros(table.num_rows)))
    pq.write_table(table, path)
    report = validate_dataset(ds)
    types = _only(report, "data.types")[0]
    assert types.file == FIRST_DATA and "'action'" in types.message and "float32" in types.message
    cols = _only(report, "data.columns")[0]
    assert "debug" in cols.message


def test_episode_points_at_wrong_data_file(ds):
    target, row = _episodes_row(ds, 0)
    _edit_column(target, "data/file_index", row, 1)
    p = _only(validate_dataset(ds), "data.episode")[0]
    assert p.episode == 0 and p.file == FIRST_DATA and "points at data file (0, 1)" in p.message


def test_leftover_staging_is_a_warning(ds):
    (ds / "images" / "observation.images.front" / "episode-000006").mkdir(parents=True)
    report = validate_dataset(ds)
    assert report.ok and len(report.warnings) == 1
    assert report.warnings[0].check == "layout.staging" and "[warning]" in report.format()
