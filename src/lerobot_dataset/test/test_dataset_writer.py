"""LeRobotDataset v3.0 writer: every file it writes, read back with pyarrow / pandas / PyAV and checked."""

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lerobot_dataset import LeRobotDatasetWriter, VideoEncoderConfig
from lerobot_dataset import format as F
from lerobot_dataset.video import decode_png
from lerobot_dataset.writer import EpisodeSaveError, FrameValidationError

FPS = 30
H, W = 64, 80
MOTORS = ["shoulder_pan.pos", "shoulder_lift.pos", "elbow_flex.pos", "wrist_flex.pos", "wrist_roll.pos", "gripper.pos"]


def features(cams=("front", "wrist"), image_cams=("top",)):
    f = {
        "observation.state": {"dtype": "float32", "shape": (6,), "names": MOTORS},
        "action": {"dtype": "float32", "shape": (6,), "names": MOTORS},
    }
    for c in cams:
        f[f"observation.images.{c}"] = {"dtype": "video", "shape": (H, W, 3), "names": ["height", "width", "channels"]}
    for c in image_cams:
        f[f"observation.images.{c}"] = {"dtype": "image", "shape": (H // 2, W // 2, 3), "names": ["height", "width", "channels"]}
    return f


def level(ep, i, cam=0):
    """Gray level that identifies (episode, frame, camera) after lossy encoding."""
    return 20 + (ep * 53 + i * 11 + cam * 97) % 200


def make_frame(ep, i, feats, rng):
    frame = {}
    for cam_no, (k, ft) in enumerate(feats.items()):
        if ft["dtype"] == "video":
            frame[k] = np.full(ft["shape"], level(ep, i, cam_no), np.uint8)
        elif ft["dtype"] == "image":
            frame[k] = rng.integers(0, 256, size=ft["shape"], dtype=np.uint8)
        else:
            frame[k] = (rng.normal(size=ft["shape"]) * 30 + ep).astype(ft["dtype"])
    return frame


def record(writer, ep, n, task, feats, rng, keep=None):
    for i in range(n):
        fr = make_frame(ep, i, feats, rng)
        if keep is not None:
            keep.append(fr)
        writer.add_frame(fr, task=task)
    return writer.save_episode()


def read_data(root):
    files = sorted(Path(root).glob("data/*/*.parquet"))
    return pa.concat_tables([pq.read_table(p) for p in files]), files


def read_episodes(root):
    files = sorted(Path(root).glob("meta/episodes/*/*.parquet"))
    return pa.concat_tables([pq.read_table(p) for p in files]).to_pylist()


def decode_levels(path):
    """[(pts seconds as Fraction, mean gray level)] of every frame of an mp4."""
    out = []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        for fr in c.decode(s):
            out.append((Fraction(fr.pts) * s.time_base, float(fr.to_ndarray(format="rgb24").mean())))
    return out


def keyframe_times(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return {Fraction(p.pts) * s.time_base for p in c.demux(s) if p.dts is not None and p.is_keyframe}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """3 episodes (20/25/30 frames), 2 video cameras + 1 image feature, 2 tasks."""
    root = tmp_path_factory.mktemp("ds") / "so101_test"
    feats = features()
    rng = np.random.default_rng(0)
    frames, summaries = [], []
    with LeRobotDatasetWriter.create(root, FPS, feats, robot_type="so101_follower") as w:
        for ep, (n, task) in enumerate([(20, "pick the cube"), (25, "place the cube"), (30, "pick the cube")]):
            keep = []
            summaries.append(record(w, ep, n, task, feats, rng, keep))
            frames.append(keep)
    return root, feats, frames, summaries


def test_info_json(recorded):
    root, feats, frames, _ = recorded
    info = json.loads((root / "meta/info.json").read_text())
    assert list(info) == [
        "codebase_version", "robot_type", "total_episodes", "total_frames", "total_tasks", "chunks_size",
        "data_files_size_in_mb", "video_files_size_in_mb", "fps", "splits", "data_path", "video_path", "features",
    ]
    assert info["codebase_version"] == "v3.0"
    assert info["robot_type"] == "so101_follower"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 75, 2)
    assert (info["chunks_size"], info["data_files_size_in_mb"], info["video_files_size_in_mb"]) == (1000, 100, 200)
    assert info["fps"] == 30 and info["splits"] == {"train": "0:3"}
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    # user features first, the 5 default features last
    assert list(info["features"]) == list(feats) + ["timestamp", "frame_index", "episode_index", "index", "task_index"]
    assert info["features"]["timestamp"] == {"dtype": "float32", "shape": [1], "names": None}
    assert info["features"]["observation.state"]["names"] == MOTORS
    for cam in ("observation.images.front", "observation.images.wrist"):
        vinfo = info["features"][cam]["info"]
        assert vinfo == {
            "video.height": H, "video.width": W, "video.codec": "av1", "video.pix_fmt": "yuv420p",
            "video.is_depth_map": False, "video.fps": 30, "video.channels": 3, "has_audio": False,
            "video.g": 2, "video.crf": 30, "video.preset": 12, "video.fast_decode": 0, "video.extra_options": {},
        }
    assert "info" not in info["features"]["observation.images.top"]
    assert not (root / ".staging").exists() and not (root / "images").exists()


def test_data_parquet_schema_and_values(recorded):
    root, feats, frames, _ = recorded
    files = sorted(root.glob("data/*/*.parquet"))
    assert [p.relative_to(root).as_posix() for p in files] == ["data/chunk-000/file-000.parquet"]
    pf = pq.ParquetFile(files[0])
    schema = pf.schema_arrow
    assert schema.names == [
        "observation.state", "action", "observation.images.top",
        "timestamp", "frame_index", "episode_index", "index", "task_index",
    ]
    assert schema.field("observation.state").type == pa.list_(pa.field("element", pa.float32()), 6)
    assert schema.field("observation.images.top").type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    assert schema.field("timestamp").type == pa.float32()
    for k in ("frame_index", "episode_index", "index", "task_index"):
        assert schema.field(k).type == pa.int64()
    hf = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert hf["observation.state"] == {"feature": {"dtype": "float32", "_type": "Value"}, "length": 6, "_type": "List"}
    assert hf["observation.images.top"] == {"_type": "Image"}
    assert hf["timestamp"] == {"dtype": "float32", "_type": "Value"}
    # one row group per episode
    assert pf.num_row_groups == 3
    assert [pf.metadata.row_group(i).num_rows for i in range(3)] == [20, 25, 30]
    assert pf.metadata.row_group(0).column(0).compression == "SNAPPY"

    t = pf.read()
    assert t.column("index").to_pylist() == list(range(75))
    lengths = [20, 25, 30]
    assert t.column("episode_index").to_pylist() == sum(([e] * n for e, n in enumerate(lengths)), [])
    assert t.column("frame_index").to_pylist() == sum((list(range(n)) for n in lengths), [])
    ts = t.column("timestamp").to_numpy()
    assert ts.dtype == np.float32
    np.testing.assert_array_equal(ts, (t.column("frame_index").to_numpy() / FPS).astype(np.float32))
    assert t.column("task_index").to_pylist() == [0] * 20 + [1] * 25 + [0] * 30
    all_frames = [fr for ep in frames for fr in ep]
    state = np.stack(t.column("observation.state").to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(state, np.stack([f["observation.state"] for f in all_frames]))
    imgs = t.column("observation.images.top").to_pylist()
    assert imgs[0]["path"] == "frame-000000.png" and imgs[21]["path"] == "frame-000001.png"
    for row, fr in zip(imgs[::7], all_frames[::7]):
        assert row["bytes"][:8] == b"\x89PNG\r\n\x1a\n"
        np.testing.assert_array_equal(decode_png(row["bytes"]), fr["observation.images.top"])


def test_tasks_parquet(recorded):
    root = recorded[0]
    df = pd.read_parquet(root / "meta/tasks.parquet")
    assert df.index.name == "task"
    assert list(df.index) == ["pick the cube", "place the cube"]
    assert df["task_index"].tolist() == [0, 1] and df["task_index"].dtype == np.int64
    schema = pq.read_schema(root / "meta/tasks.parquet")
    assert schema.names == ["task_index", "task"]
    assert json.loads(schema.metadata[b"pandas"])["index_columns"] == ["task"]


def test_episodes_parquet(recorded):
    root, feats, frames, summaries = recorded
    files = sorted(root.glob("meta/episodes/*/*.parquet"))
    assert [p.relative_to(root).as_posix() for p in files] == ["meta/episodes/chunk-000/file-000.parquet"]
    schema = pq.read_schema(files[0])
    vcols = []
    for cam in ("observation.images.front", "observation.images.wrist"):
        vcols += [f"videos/{cam}/chunk_index", f"videos/{cam}/file_index", f"videos/{cam}/from_timestamp", f"videos/{cam}/to_timestamp"]
    stat_cols = [f"stats/{k}/{s}" for k in list(feats) + list(F.DEFAULT_FEATURES) for s in F.STAT_KEYS]
    assert schema.names == (
        ["episode_index", "tasks", "length", "data/chunk_index", "data/file_index", "dataset_from_index", "dataset_to_index"]
        + vcols + stat_cols + ["meta/episodes/chunk_index", "meta/episodes/file_index"]
    )
    assert schema.field("tasks").type == pa.list_(pa.string())
    assert schema.field("videos/observation.images.front/from_timestamp").type == pa.float64()
    assert schema.field("stats/action/mean").type == pa.list_(pa.float64())
    assert schema.field("stats/action/count").type == pa.list_(pa.int64())
    assert schema.field("stats/observation.images.top/mean").type == pa.list_(pa.list_(pa.list_(pa.float64())))
    rows = read_episodes(root)
    assert [r["episode_index"] for r in rows] == [0, 1, 2]
    assert [r["length"] for r in rows] == [20, 25, 30]
    assert [r["tasks"] for r in rows] == [["pick the cube"], ["place the cube"], ["pick the cube"]]
    assert [(r["dataset_from_index"], r["dataset_to_index"]) for r in rows] == [(0, 20), (20, 45), (45, 75)]
    assert all(r["data/chunk_index"] == 0 and r["data/file_index"] == 0 for r in rows)
    assert all(r["meta/episodes/chunk_index"] == 0 and r["meta/episodes/file_index"] == 0 for r in rows)
    for cam in ("observation.images.front", "observation.images.wrist"):
        assert [r[f"videos/{cam}/from_timestamp"] for r in rows] == pytest.approx([0.0, 20 / 30, 45 / 30], abs=1e-12)
        assert [r[f"videos/{cam}/to_timestamp"] for r in rows] == pytest.approx([20 / 30, 45 / 30, 75 / 30], abs=1e-12)
    # per-episode stats of a vector feature, against numpy
    ep1_state = np.stack([f["observation.state"] for f in frames[1]]).astype(np.float64)
    np.testing.assert_allclose(rows[1]["stats/observation.state/mean"], ep1_state.mean(0), rtol=1e-6)
    np.testing.assert_allclose(rows[1]["stats/observation.state/min"], ep1_state.min(0))
    assert rows[1]["stats/observation.state/count"] == [25]
    assert rows[1]["stats/index/min"] == [20.0] and rows[1]["stats/index/max"] == [44.0]
    assert rows[2]["stats/episode_index/mean"] == [2.0]
    # video stats: constant gray frames -> per-channel mean close to the mean gray level / 255
    mean = np.array(rows[0]["stats/observation.images.front/mean"])
    assert mean.shape == (3, 1, 1)
    want = np.mean([level(0, i, 2) for i in range(20)]) / 255
    np.testing.assert_allclose(mean.ravel(), want, atol=1e-9)
    assert rows[0]["stats/observation.images.front/count"] == [20]
    assert summaries[2].episode_index == 2 and summaries[2].length == 30
    assert summaries[2].video_timestamps["observation.images.front"] == pytest.approx((1.5, 2.5))


def test_stats_json(recorded):
    root, feats, frames, _ = recorded
    stats = json.loads((root / "meta/stats.json").read_text())
    assert set(stats) == set(feats) | set(F.DEFAULT_FEATURES)
    for k, fs in stats.items():
        assert set(fs) == set(F.STAT_KEYS), k
    all_frames = [fr for ep in frames for fr in ep]
    action = np.stack([f["action"] for f in all_frames]).astype(np.float64)
    np.testing.assert_allclose(stats["action"]["mean"], action.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats["action"]["std"], action.std(0), rtol=1e-6)
    np.testing.assert_allclose(stats["action"]["min"], action.min(0))
    np.testing.assert_allclose(stats["action"]["max"], action.max(0))
    assert stats["action"]["count"] == [75]
    assert stats["index"]["min"] == [0.0] and stats["index"]["max"] == [74.0] and stats["index"]["mean"] == [37.0]
    assert stats["frame_index"]["max"] == [29.0]
    assert stats["timestamp"]["max"] == pytest.approx([29 / 30])
    img = np.array(stats["observation.images.top"]["mean"])
    assert img.shape == (3, 1, 1) and np.all((img > 0.4) & (img < 0.6))
    assert stats["observation.images.top"]["count"] == [75]  # 20 + 25 + 30 sampled frames (episodes < 100 frames)
    vid_max = np.array(stats["observation.images.wrist"]["max"])
    assert vid_max.shape == (3, 1, 1) and np.all(vid_max <= 1.0)


def test_videos_concatenated_cfr_keyframe_at_each_episode(recorded):
    root, feats, frames, _ = recorded
    for cam_no, cam in [(2, "observation.images.front"), (3, "observation.images.wrist")]:
        files = sorted(root.glob(f"videos/{cam}/*/*.mp4"))
        assert [p.relative_to(root).as_posix() for p in files] == [f"videos/{cam}/chunk-000/file-000.mp4"]
        decoded = decode_levels(files[0])
        assert len(decoded) == 75
        # CFR: frame k sits exactly at k/fps
        assert [t for t, _ in decoded] == [Fraction(k, FPS) for k in range(75)]
        # every episode starts on a keyframe
        assert {Fraction(0), Fraction(20, 30), Fraction(45, 30)} <= keyframe_times(files[0])
        # content: frame i of episode e is where from_timestamp + i/fps says
        starts = [0, 20, 45]
        for ep, start in enumerate(starts):
            for i in (0, 1, len(frames[ep]) - 1):
                assert abs(decoded[start + i][1] - level(ep, i, cam_no)) < 4, (cam, ep, i)
        with av.open(str(files[0])) as c:
            s = c.streams.video[0]
            assert s.codec_context.name in ("libdav1d", "av1")
            assert (s.width, s.height, s.average_rate) == (W, H, FPS)
            assert float(s.duration * s.time_base) == pytest.approx(75 / 30)


def test_validation_errors_name_feature_expected_received(tmp_path):
    feats = features(cams=("front",), image_cams=())
    rng = np.random.default_rng(0)
    with LeRobotDatasetWriter.create(tmp_path / "ds", FPS, feats) as w:
        good = make_frame(0, 0, feats, rng)

        def bad(msg_parts, task="t", **changes):
            fr = dict(good)
            for k, v in changes.items():
                if v is None:
                    fr.pop(k)
                else:
                    fr[k] = v
            with pytest.raises(FrameValidationError) as ei:
                w.add_frame(fr, task=task)
            for part in msg_parts:
                assert part in str(ei.value), (part, str(ei.value))

        bad(["missing features", "action"], action=None)
        bad(["unknown feature 'extra'"], extra=np.zeros(1))
        bad(["'frame_index' is set by the writer"], frame_index=np.array([0]))
        bad(["feature 'action'", "dtype float32", "got float64"], action=np.zeros(6, np.float64))
        bad(["feature 'action'", "shape (6,)", "got (7,)"], action=np.zeros(7, np.float32))
        bad(["feature 'observation.state'", "NaN"], **{"observation.state": np.array([0, np.nan, 0, 0, 0, 0], np.float32)})
        bad(["feature 'observation.state'", "inf"], **{"observation.state": np.array([0, np.inf, 0, 0, 0, 0], np.float32)})
        bad(["feature 'action'", "numpy.ndarray", "got list"], action=[0.0] * 6)
        bad(["feature 'observation.images.front'", f"({H}, {W}, 3)", "got (10, 10, 3)"],
            **{"observation.images.front": np.zeros((10, 10, 3), np.uint8)})
        bad(["feature 'observation.images.front'", "uint8", "got int16"],
            **{"observation.images.front": np.zeros((H, W, 3), np.int16)})
        bad(["task: expected a non-empty str"], task=None)
        # all problems are reported at once
        bad(["missing features", "feature 'observation.state'"], action=None, **{"observation.state": np.zeros(3, np.float32)})
        assert w.episode_length == 0  # nothing was appended by rejected frames
        # the frame dict may carry the task itself (upstream style); CHW and float [0,1] images are accepted
        fr = dict(good, task="from frame")
        fr["observation.images.front"] = np.full((3, H, W), 0.5, np.float32)
        w.add_frame(fr)
        assert w.save_episode().tasks == ["from frame"]


def test_create_errors(tmp_path):
    feats = features(cams=("front",), image_cams=())
    with LeRobotDatasetWriter.create(tmp_path / "ds", FPS, feats) as w:
        record(w, 0, 2, "t", feats, np.random.default_rng(0))
    with pytest.raises(FileExistsError):
        LeRobotDatasetWriter.create(tmp_path / "ds", FPS, feats)
    with pytest.raises(ValueError, match="use_videos=False"):
        LeRobotDatasetWriter.create(tmp_path / "b", FPS, feats, use_videos=False)
    with pytest.raises(ValueError, match="must not contain '/'"):
        LeRobotDatasetWriter.create(tmp_path / "c", FPS, {"a/b": {"dtype": "float32", "shape": (1,)}})
    with pytest.raises(ValueError, match="fps"):
        LeRobotDatasetWriter.create(tmp_path / "d", 0, feats)
    feats_e = features(cams=(), image_cams=())
    w = LeRobotDatasetWriter.create(tmp_path / "e", FPS, feats_e, use_videos=False)
    with pytest.raises(ValueError, match="no frames"):
        w.save_episode()
    record(w, 0, 2, "t", feats_e, np.random.default_rng(0))
    w.close()
    assert json.loads((tmp_path / "e/meta/info.json").read_text())["video_path"] is None


def test_rollover_with_tiny_limits_and_chunk_advance(tmp_path):
    feats = features(cams=("front",), image_cams=())
    rng = np.random.default_rng(1)
    root = tmp_path / "ds"
    lengths = [5, 6, 7, 8]
    with LeRobotDatasetWriter.create(
        root, FPS, feats, data_files_size_in_mb=0.001, video_files_size_in_mb=0.001, chunks_size=2
    ) as w:
        sums = [record(w, ep, n, "t", feats, rng) for ep, n in enumerate(lengths)]
    expected_files = [(0, 0), (0, 1), (1, 0), (1, 1)]  # 2 files per chunk
    assert [(s.data_chunk_index, s.data_file_index) for s in sums] == expected_files
    assert [p.relative_to(root).as_posix() for p in sorted(root.glob("data/*/*.parquet"))] == [
        F.DATA_PATH.format(chunk_index=c, file_index=f) for c, f in expected_files
    ]
    assert len(sorted(root.glob("videos/observation.images.front/*/*.mp4"))) == 4
    assert len(sorted(root.glob("meta/episodes/*/*.parquet"))) == 4  # meta follows the data size limit, as upstream
    rows = read_episodes(root)
    assert [(r["data/chunk_index"], r["data/file_index"]) for r in rows] == expected_files
    assert [(r["videos/observation.images.front/chunk_index"], r["videos/observation.images.front/file_index"]) for r in rows] == expected_files
    assert [(r["meta/episodes/chunk_index"], r["meta/episodes/file_index"]) for r in rows] == expected_files
    assert all(r["videos/observation.images.front/from_timestamp"] == 0.0 for r in rows)
    # sorted concatenation of the data files: row position == index
    data, _ = read_data(root)
    assert data.column("index").to_pylist() == list(range(sum(lengths)))
    for r, n in zip(rows, lengths):
        p = F.video_file_path(root, "observation.images.front", r["videos/observation.images.front/chunk_index"], r["videos/observation.images.front/file_index"])
        assert len(decode_levels(p)) == n


def test_next_chunk_file_rule():
    assert F.next_chunk_file(0, 0, 1000) == (0, 1)
    assert F.next_chunk_file(0, 998, 1000) == (0, 999)
    assert F.next_chunk_file(0, 999, 1000) == (1, 0)
    assert F.next_chunk_file(3, 1, 2) == (4, 0)


def test_discard_episode_then_save(tmp_path):
    feats = features(cams=("front",), image_cams=("top",))
    rng = np.random.default_rng(2)
    root = tmp_path / "ds"
    with LeRobotDatasetWriter.create(root, FPS, feats) as w:
        for i in range(12):
            w.add_frame(make_frame(9, i, feats, rng), task="discarded task")
        w.discard_episode()
        assert w.episode_length == 0
        s = record(w, 0, 10, "kept", feats, rng)
        assert s.episode_index == 0 and s.dataset_to_index == 10
        # context exit with an unsaved episode discards it
        for i in range(5):
            w.add_frame(make_frame(1, i, feats, rng), task="unsaved")
    info = json.loads((root / "meta/info.json").read_text())
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (1, 10, 1)
    assert list(pd.read_parquet(root / "meta/tasks.parquet").index) == ["kept"]
    decoded = decode_levels(root / "videos/observation.images.front/chunk-000/file-000.mp4")
    assert len(decoded) == 10 and abs(decoded[3][1] - level(0, 3, 2)) < 4
    assert not (root / ".staging").exists()


def test_reopen_and_append(tmp_path):
    feats = features(cams=("front", "wrist"), image_cams=("top",))
    rng = np.random.default_rng(3)
    root = tmp_path / "ds"
    with LeRobotDatasetWriter.create(root, FPS, feats, video_encoder=VideoEncoderConfig(vcodec="h264", crf=23, preset="ultrafast")) as w:
        record(w, 0, 10, "a", feats, rng)
        record(w, 1, 12, "b", feats, rng)
    with LeRobotDatasetWriter.open(root) as w:
        assert w.video_encoder.encoder_name == "libx264" and w.video_encoder.crf == 23
        assert (w.total_episodes, w.total_frames, w.tasks) == (2, 22, ["a", "b"])
        s2 = record(w, 2, 8, "c", feats, rng)
        s3 = record(w, 3, 9, "a", feats, rng)
    assert (s2.dataset_from_index, s3.dataset_to_index) == (22, 39)
    info = json.loads((root / "meta/info.json").read_text())
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (4, 39, 3)
    assert info["features"]["observation.images.front"]["info"]["video.codec"] == "h264"
    data, files = read_data(root)
    assert len(files) == 1 and pq.ParquetFile(files[0]).num_row_groups == 4
    assert data.column("index").to_pylist() == list(range(39))
    assert data.column("task_index").to_pylist() == [0] * 10 + [1] * 12 + [2] * 8 + [0] * 9
    rows = read_episodes(root)
    assert [r["tasks"] for r in rows] == [["a"], ["b"], ["c"], ["a"]]
    for cam_no, cam in [(2, "observation.images.front"), (3, "observation.images.wrist")]:
        decoded = decode_levels(root / f"videos/{cam}/chunk-000/file-000.mp4")
        assert [t for t, _ in decoded] == [Fraction(k, FPS) for k in range(39)]
        for r in rows:
            start = round(r[f"videos/{cam}/from_timestamp"] * FPS)
            ep = r["episode_index"]
            assert abs(decoded[start][1] - level(ep, 0, cam_no)) < 4
            assert abs(decoded[start + r["length"] - 1][1] - level(ep, r["length"] - 1, cam_no)) < 4
    stats = json.loads((root / "meta/stats.json").read_text())
    assert stats["index"]["max"] == [38.0] and stats["index"]["count"] == [39]


def test_several_tasks_in_one_episode(tmp_path):
    feats = features(cams=(), image_cams=())
    rng = np.random.default_rng(4)
    root = tmp_path / "ds"
    with LeRobotDatasetWriter.create(root, FPS, feats, use_videos=False) as w:
        for i in range(6):
            w.add_frame(make_frame(0, i, feats, rng), task="reach" if i < 3 else "grasp")
        s = w.save_episode()
    assert s.tasks == ["reach", "grasp"]
    assert read_episodes(root)[0]["tasks"] == ["reach", "grasp"]
    data, _ = read_data(root)
    assert data.column("task_index").to_pylist() == [0, 0, 0, 1, 1, 1]


def test_add_frame_after_failed_worker_abandons_episode(tmp_path):
    feats = features(cams=("front",), image_cams=())
    rng = np.random.default_rng(5)
    root = tmp_path / "ds"
    with LeRobotDatasetWriter.create(root, FPS, feats) as w:
        record(w, 0, 4, "ok", feats, rng)
        w.add_frame(make_frame(1, 0, feats, rng), task="x")
        worker = w._workers["observation.images.front"]

        def boom(_frame):
            raise OSError(28, "No space left on device")

        worker._on_frame = boom  # the failure happens in the worker thread, reported by a later call
        with pytest.raises(EpisodeSaveError, match="abandoned.*No space left"):
            for i in range(1, 50):
                w.add_frame(make_frame(1, i, feats, rng), task="x")
            w.save_episode()
        assert w.episode_length == 0
        del worker._on_frame  # back to the real encoder
        s = record(w, 1, 5, "ok", feats, rng)
        assert s.episode_index == 1 and s.dataset_from_index == 4
    assert len(decode_levels(root / "videos/observation.images.front/chunk-000/file-000.mp4")) == 9


def test_rewrite_limit_starts_new_data_files_before_the_size_limit(tmp_path):
    """Data/meta files are rewritten at each save; past rewrite_limit_mb they stop taking episodes."""
    feats = features(cams=(), image_cams=())
    rng = np.random.default_rng(6)
    root = tmp_path / "ds"
    with LeRobotDatasetWriter.create(root, FPS, feats, use_videos=False, rewrite_limit_mb=0.0005) as w:
        assert w.data_files_size_in_mb == 100
        sums = [record(w, ep, 30, "t", feats, rng) for ep in range(3)]
    assert [(s.data_chunk_index, s.data_file_index) for s in sums] == [(0, 0), (0, 1), (0, 2)]
    assert len(list(root.glob("meta/episodes/*/*.parquet"))) == 3
    assert json.loads((root / "meta/info.json").read_text())["data_files_size_in_mb"] == 100
    data, _ = read_data(root)
    assert data.column("index").to_pylist() == list(range(90))
    with pytest.raises(ValueError, match="rewrite_limit_mb"):
        LeRobotDatasetWriter.create(tmp_path / "x", FPS, feats, use_videos=False, rewrite_limit_mb=0)
    assert not (tmp_path / "x").exists()


def test_camera_stats_use_upstream_frame_sampling(tmp_path):
    """Episodes longer than 100 frames: image/video stats come from estimate_num_samples(n) sampled frames."""
    from lerobot_dataset.stats import estimate_num_samples, sample_indices

    feats = {
        "observation.images.cam": {"dtype": "video", "shape": (16, 16, 3), "names": ["height", "width", "channels"]},
        "observation.images.png": {"dtype": "image", "shape": (8, 8, 3), "names": ["height", "width", "channels"]},
    }
    n = 150
    root = tmp_path / "ds"
    with LeRobotDatasetWriter.create(root, FPS, feats) as w:
        for i in range(n):
            w.add_frame({"observation.images.cam": np.full((16, 16, 3), i, np.uint8),
                         "observation.images.png": np.full((8, 8, 3), i, np.uint8)}, task="t")
        w.save_episode()
    row = read_episodes(root)[0]
    picked = np.array(sample_indices(n), dtype=np.float64)
    for key in feats:
        assert row[f"stats/{key}/count"] == [estimate_num_samples(n)] == [100]
        np.testing.assert_allclose(np.array(row[f"stats/{key}/mean"]).ravel(), picked.mean() / 255)
        np.testing.assert_allclose(np.array(row[f"stats/{key}/max"]).ravel(), (n - 1) / 255)
        np.testing.assert_allclose(np.array(row[f"stats/{key}/std"]).ravel(), picked.std() / 255)


def test_scalar_int_bool_string_features(tmp_path):
    feats = {
        "next.reward": {"dtype": "float32", "shape": (1,), "names": None},
        "next.done": {"dtype": "bool", "shape": (1,), "names": None},
        "observation.counts": {"dtype": "int64", "shape": (3,), "names": ["a", "b", "c"]},
        "language_note": {"dtype": "string", "shape": (1,), "names": None},
    }
    root = tmp_path / "ds"
    with LeRobotDatasetWriter.create(root, FPS, feats, use_videos=False) as w:
        for i in range(4):
            w.add_frame({"next.reward": np.array([i / 2], np.float32), "next.done": np.array([i == 3]),
                         "observation.counts": np.array([i, 2 * i, 3 * i]), "language_note": f"note {i}"}, task="t")
        with pytest.raises(FrameValidationError, match="feature 'language_note': expected str, got int"):
            w.add_frame({"next.reward": np.array([0], np.float32), "next.done": np.array([False]),
                         "observation.counts": np.zeros(3, np.int64), "language_note": 5}, task="t")
        w.save_episode()
    schema = pq.read_schema(root / "data/chunk-000/file-000.parquet")
    assert schema.field("next.reward").type == pa.float32()
    assert schema.field("next.done").type == pa.bool_()
    assert schema.field("observation.counts").type == pa.list_(pa.field("element", pa.int64()), 3)
    assert schema.field("language_note").type == pa.string()
    t = pq.read_table(root / "data/chunk-000/file-000.parquet")
    assert t.column("next.done").to_pylist() == [False, False, False, True]
    assert t.column("language_note").to_pylist() == ["note 0", "note 1", "note 2", "note 3"]
    assert t.column("observation.counts").to_pylist()[2] == [2, 4, 6]
    stats = json.loads((root / "meta/stats.json").read_text())
    assert "language_note" not in stats
    assert stats["next.done"]["mean"] == [0.25] and stats["observation.counts"]["max"] == [3.0, 6.0, 9.0]
    assert stats["next.reward"]["min"] == [0.0] and stats["next.reward"]["max"] == [1.5]


def test_one_writer_per_dataset(tmp_path):
    feats = features(cams=(), image_cams=())
    root = tmp_path / "ds"
    w = LeRobotDatasetWriter.create(root, FPS, feats, use_videos=False)
    record(w, 0, 2, "t", feats, np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="open in another LeRobotDatasetWriter"):
        LeRobotDatasetWriter.open(root)
    w.close()
    w2 = LeRobotDatasetWriter.open(root)  # the lock went with close()
    w2.close()
