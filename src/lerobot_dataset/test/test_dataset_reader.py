"""LeRobotDatasetReader on a dataset written by our writer (no upstream needed): values, windows, episodes,
decoder cache, torch output, pickling, and the errors for bad input and old datasets."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lerobot_dataset.reader import DatasetVersionError, LeRobotDatasetReader
from lerobot_dataset.video_decode import FrameTimestampError, VideoFileDecoder, decode_frames
from oracle import synthetic_episodes as syn
from oracle.our_writer_dataset import write_with_our_writer

FPS = syn.FPS
STARTS = np.cumsum([0] + syn.EPISODE_LENGTHS)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_with_our_writer(tmp_path_factory.mktemp("reader") / "ds")


@pytest.fixture()
def scratch(root, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(root, dst)
    return dst


def test_meta(root):
    r = LeRobotDatasetReader(root)
    assert len(r) == r.meta.total_frames == sum(syn.EPISODE_LENGTHS)
    assert r.fps == FPS and r.meta.codebase_version == "v3.0"
    assert r.meta.total_episodes == len(syn.EPISODE_LENGTHS)
    assert sorted(r.meta.tasks) == sorted(syn.TASKS)
    assert r.meta.video_keys == list(syn.CAMERAS)
    assert r.meta.camera_keys == [*syn.CAMERAS, syn.IMAGE_KEY]
    starts, ends = r.meta.episode_bounds()
    np.testing.assert_array_equal(starts, STARTS[:-1])
    np.testing.assert_array_equal(ends, STARTS[1:])
    for ep, task in enumerate(syn.EPISODE_TASKS):
        assert r.meta.episodes[ep].tasks == (syn.TASKS[task],)
    assert r.meta.stats["observation.state"]["mean"].shape == (6,)
    assert r.meta.stats[syn.IMAGE_KEY]["mean"].shape == (3, 1, 1)


def test_items_hold_the_recorded_values(root):
    r = LeRobotDatasetReader(root)
    for ep, length in enumerate(syn.EPISODE_LENGTHS):
        for f in range(length):
            i = int(STARTS[ep]) + f
            item = r[i]
            src = syn.frame_dict(ep, f)
            assert item["observation.state"].dtype == np.float32
            np.testing.assert_array_equal(item["observation.state"], src["observation.state"])
            np.testing.assert_array_equal(item["action"], src["action"])
            for key, dtype in (("timestamp", np.float32), ("index", np.int64), ("frame_index", np.int64)):
                assert item[key].shape == () and item[key].dtype == dtype
            assert int(item["index"]) == i and int(item["frame_index"]) == f and int(item["episode_index"]) == ep
            assert item["timestamp"] == np.float32(f / FPS)
            assert item["task"] == syn.TASKS[syn.EPISODE_TASKS[ep]]
            img = item[syn.IMAGE_KEY]
            assert img.dtype == np.float32 and img.shape == (3, *syn.IMAGE_HW)
            np.testing.assert_array_equal(img, src[syn.IMAGE_KEY].transpose(2, 0, 1).astype(np.float32) / 255)
            for key, hw in syn.CAMERAS.items():
                assert item[key].shape == (3, *hw) and item[key].dtype == np.float32
                assert 0.0 <= item[key].min() and item[key].max() <= 1.0


def test_video_frames_are_the_right_frames(root):
    r = LeRobotDatasetReader(root, return_uint8=True)
    for ep in (0, 3, 5):
        view = r.episode(ep)
        for salt, (key, hw) in enumerate(syn.CAMERAS.items()):
            src = np.stack([syn.camera_frame(salt, ep, f, hw) for f in range(len(view))]).astype(np.float64)
            for f in range(len(view)):
                got = view[f][key]
                assert got.dtype == np.uint8
                err = np.abs(src - got.transpose(1, 2, 0)).mean(axis=(1, 2, 3))
                assert int(err.argmin()) == f and err[f] < 12


def test_random_access_equals_sequential(root):
    seq = LeRobotDatasetReader(root, return_uint8=True)
    expected = [seq[i] for i in range(len(seq))]
    rnd = LeRobotDatasetReader(root, return_uint8=True)
    for i in np.random.default_rng(0).permutation(np.repeat(np.arange(len(rnd)), 3)).tolist():
        for key in syn.CAMERAS:
            np.testing.assert_array_equal(rnd[i][key], expected[i][key], err_msg=f"item {i} {key}")


def test_delta_windows_pad_with_edge_copies(root):
    r = LeRobotDatasetReader(root, delta_timestamps={
        "observation.state": [-2 / FPS, -1 / FPS, 0.0],
        "action": [0.0, 1 / FPS, 2 / FPS],
        "observation.images.front": [-1 / FPS, 0.0],
        "observation.images.wrist": [0.0],
    })
    first = int(STARTS[1])  # first frame of episode 1
    item = r[first]
    np.testing.assert_array_equal(item["observation.state_is_pad"], [True, True, False])
    state0 = syn.frame_dict(1, 0)["observation.state"]
    np.testing.assert_array_equal(item["observation.state"], np.stack([state0] * 3))  # edge copies, not zeros
    np.testing.assert_array_equal(item["action_is_pad"], [False, False, False])
    np.testing.assert_array_equal(item["action"], np.stack([syn.frame_dict(1, f)["action"] for f in range(3)]))
    assert item["observation.images.front"].shape == (2, 3, *syn.CAMERAS["observation.images.front"])
    np.testing.assert_array_equal(item["observation.images.front"][0], item["observation.images.front"][1])
    assert item["observation.images.wrist"].shape == (3, *syn.CAMERAS["observation.images.wrist"])  # squeezed

    last = int(STARTS[2]) - 1  # last frame of episode 1
    item = r[last]
    np.testing.assert_array_equal(item["action_is_pad"], [False, True, True])
    a_last = syn.frame_dict(1, syn.EPISODE_LENGTHS[1] - 1)["action"]
    np.testing.assert_array_equal(item["action"], np.stack([a_last] * 3))
    assert item["observation.state_is_pad"].dtype == bool


def test_episode_subset_and_views(root):
    r = LeRobotDatasetReader(root, episodes=[4, 1])
    assert len(r) == syn.EPISODE_LENGTHS[1] + syn.EPISODE_LENGTHS[4]
    assert r.num_episodes == 2
    assert int(r[0]["episode_index"]) == 1  # dataset order, whatever order the list was given in
    assert int(r[syn.EPISODE_LENGTHS[1]]["episode_index"]) == 4
    view = r.episode(4)
    assert len(view) == syn.EPISODE_LENGTHS[4] and view.tasks == (syn.TASKS[syn.EPISODE_TASKS[4]],)
    frames = list(view)
    assert [int(x["frame_index"]) for x in frames] == list(range(len(view)))
    np.testing.assert_array_equal(view[-1]["action"], frames[-1]["action"])
    cols = r.episode_columns(4, ["action", "index"])
    assert cols["action"].shape == (len(view), 6)
    np.testing.assert_array_equal(cols["index"], np.arange(STARTS[4], STARTS[5]))
    with pytest.raises(KeyError, match="not loaded"):
        r.episode(0)
    with pytest.raises(ValueError, match=r"episodes \[9\] do not exist"):
        LeRobotDatasetReader(root, episodes=[9])


def test_torch_output(root):
    torch = pytest.importorskip("torch")
    r = LeRobotDatasetReader(root, output="torch", delta_timestamps={"action": [0.0, 1 / FPS]})
    item = r[3]
    assert isinstance(item["observation.state"], torch.Tensor) and item["observation.state"].dtype == torch.float32
    assert item["index"].dim() == 0 and item["index"].dtype == torch.int64
    assert item["action_is_pad"].dtype == torch.bool and item["action"].shape == (2, 6)
    assert item["observation.images.front"].dtype == torch.float32
    assert isinstance(item["task"], str)


def test_pickles_for_dataloader_workers(root):
    r = LeRobotDatasetReader(root)
    r[5]  # open a decoder first: it must not travel through pickle
    clone = pickle.loads(pickle.dumps(r))
    for key in ("observation.state", "observation.images.front", syn.IMAGE_KEY):
        np.testing.assert_array_equal(clone[5][key], r[5][key])


def test_index_errors(root):
    r = LeRobotDatasetReader(root)
    np.testing.assert_array_equal(r[-1]["index"], len(r) - 1)
    with pytest.raises(IndexError):
        r[len(r)]
    with pytest.raises(TypeError):
        r["0"]


def test_bad_delta_timestamps(root):
    with pytest.raises(ValueError, match="multiples of 1/fps"):
        LeRobotDatasetReader(root, delta_timestamps={"action": [0.0, 0.01]})
    with pytest.raises(ValueError, match="not features"):
        LeRobotDatasetReader(root, delta_timestamps={"actions": [0.0]})


def test_frame_outside_tolerance_names_the_file(scratch):
    # Shift episode 1's video span by half a frame: no frame lies within 1e-4 s of the queries any more.
    files = sorted(scratch.glob("meta/episodes/*/*.parquet"))
    for path in files:
        t = pq.read_table(path)
        col = "videos/observation.images.front/from_timestamp"
        eps = t.column("episode_index").to_pylist()
        if 1 in eps:
            values = t.column(col).to_pylist()
            values[eps.index(1)] += 0.5 / FPS
            t = t.set_column(t.column_names.index(col), col, pa.array(values, pa.float64()))
            pq.write_table(t, path)
    r = LeRobotDatasetReader(scratch)
    with pytest.raises(FrameTimestampError, match=r"observation\.images\.front.*no frame within tolerance_s"):
        r[int(STARTS[1]) + 2]
    r[0]  # other episodes still read


def test_decoder_past_end_of_stream(root):
    video = next(root.glob("videos/observation.images.front/*/*.mp4"))
    dec = VideoFileDecoder(video)
    assert dec.frames_at([0.0, 1 / FPS]).shape[0] == 2
    with pytest.raises(FrameTimestampError, match="past the end"):
        dec.frames_at([100.0])
    dec.close()
    one_shot = decode_frames(video, [1 / FPS])
    np.testing.assert_array_equal(one_shot[0], VideoFileDecoder(video).frames_at([1 / FPS])[0])


def test_refuses_v2_datasets(tmp_path):
    v2 = tmp_path / "v21"
    (v2 / "meta").mkdir(parents=True)
    (v2 / "meta" / "info.json").write_text(json.dumps({"codebase_version": "v2.1", "fps": 30, "features": {}}))
    (v2 / "meta" / "episodes.jsonl").write_text("")
    with pytest.raises(DatasetVersionError, match=r"v2\.x.*convert_dataset_v21_to_v30 --repo-id="):
        LeRobotDatasetReader(v2)
    # Without info.json, the v2 files alone identify it.
    (v2 / "meta" / "info.json").unlink()
    with pytest.raises(DatasetVersionError, match="v2"):
        LeRobotDatasetReader(v2)


def test_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError):
        LeRobotDatasetReader(tmp_path / "nope")


def test_torch_dataloader_workers(root):
    torch = pytest.importorskip("torch")
    r = LeRobotDatasetReader(root, output="torch", delta_timestamps={"action": [0.0, 1 / FPS]})
    r[0]  # decoders opened in the parent must not be used by forked workers
    loader = torch.utils.data.DataLoader(r, batch_size=8, num_workers=2, shuffle=False,
                                         multiprocessing_context="fork")
    batches = list(loader)
    assert sum(len(b["index"]) for b in batches) == len(r)
    first = batches[0]
    assert first["observation.images.front"].shape == (8, 3, *syn.CAMERAS["observation.images.front"])
    assert first["action"].shape == (8, 2, 6) and first["action_is_pad"].dtype == torch.bool
    assert first["task"][0] == syn.TASKS[syn.EPISODE_TASKS[0]]
    np.testing.assert_array_equal(first["observation.images.front"][3].numpy(), r[3]["observation.images.front"].numpy())
    torch.testing.assert_close(torch.cat([b["index"] for b in batches]), torch.arange(len(r)))


def test_broken_info_is_a_clear_error(scratch):
    from lerobot_dataset.reader import DatasetFormatError

    info_file = scratch / "meta" / "info.json"
    info = json.loads(info_file.read_text())
    del info["features"]["task_index"]
    info_file.write_text(json.dumps(info))
    with pytest.raises(DatasetFormatError, match=r"default features \['task_index'\] are missing"):
        LeRobotDatasetReader(scratch)
    (scratch / "meta" / "info.json").unlink()
    with pytest.raises(DatasetFormatError, match="missing meta/info.json"):
        LeRobotDatasetReader(scratch)
