"""TrainingDataset: items, windows and pads, episode subsets, several datasets, DataLoader workers (fork, spawn)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import data_testlib as tl  # noqa: E402
from oracle import synthetic_episodes as syn  # noqa: E402

from lerobot_dataset.reader import LeRobotDatasetReader  # noqa: E402
from lerobot_train.data.augment import ImageTransformConfig, ImageTransforms, ImageTransformsConfig  # noqa: E402
from lerobot_train.data.dataset import TrainingDataset, cameras_to_float, with_imagenet_stats  # noqa: E402
from lerobot_train.data.sampler import EpisodeAwareSampler  # noqa: E402

EP_START = np.cumsum([0] + syn.EPISODE_LENGTHS)[:-1]


@pytest.fixture(scope="module")
def root() -> Path:
    return tl.our_dataset()


@pytest.fixture(scope="module")
def windows(root) -> dict:
    return tl.windows_seconds(tl.DIFFUSION_LIKE, json.loads((root / "meta/info.json").read_text())["features"])


def test_item_types_and_uint8_cameras(root, windows):
    ds = TrainingDataset(root, delta_timestamps=windows)
    item = ds[20]
    assert item["observation.state"].dtype == torch.float32 and item["observation.state"].shape == (2, 6)
    assert item["action"].shape == (16, 6) and item["action_is_pad"].dtype == torch.bool
    for key in ("index", "episode_index", "frame_index", "task_index"):
        assert item[key].dtype == torch.int64 and item[key].ndim == 0
    assert item["timestamp"].dtype == torch.float32
    for key, (h, w) in [*syn.CAMERAS.items(), (syn.IMAGE_KEY, syn.IMAGE_HW)]:
        assert item[key].dtype == torch.uint8 and item[key].shape == (2, 3, h, w), key
    assert item["task"] == syn.TASKS[syn.EPISODE_TASKS[1]]
    floats = cameras_to_float(item)
    for key in tl.CAMERAS:
        assert floats[key].dtype == torch.float32
        assert torch.equal(floats[key], item[key].to(torch.float32) / 255)
    assert floats["index"] is item["index"], "non-camera values pass through"


def test_windows_pad_with_edge_frames_at_episode_boundaries(root, windows):
    ds = TrainingDataset(root, delta_timestamps=windows)
    ep = 2
    first, length = int(EP_START[ep]), syn.EPISODE_LENGTHS[ep]
    start = ds[first]
    assert start["observation.state_is_pad"].tolist() == [True, False]
    state0, _ = syn.joint_values(ep, 0)
    assert torch.equal(start["observation.state"][0], torch.from_numpy(state0)), "a padded step copies the edge frame"
    assert torch.equal(start["observation.state"][1], torch.from_numpy(state0))
    last = ds[first + length - 1]
    # action window -1 .. 14 at the last frame: offsets 0 and -1 are inside, 1 .. 14 are past the end
    assert last["action_is_pad"].tolist() == [False, False] + [True] * 14
    _, action_last = syn.joint_values(ep, length - 1)
    assert all(torch.equal(last["action"][k], torch.from_numpy(action_last)) for k in range(1, 16))
    assert torch.equal(last["observation.images.front"][0], ds[first + length - 2]["observation.images.front"][1])


def test_episode_subset_positions_and_ranges(root, windows):
    ds = TrainingDataset(root, delta_timestamps=windows, episodes=[4, 1])
    lengths = [syn.EPISODE_LENGTHS[1], syn.EPISODE_LENGTHS[4]]
    assert len(ds) == sum(lengths) and ds.num_episodes == 2
    assert ds.meta.dataset_from_index.tolist() == [0, lengths[0]]
    assert ds.meta.dataset_to_index.tolist() == [lengths[0], sum(lengths)]
    assert [int(ds[i]["episode_index"]) for i in (0, lengths[0] - 1, lengths[0], len(ds) - 1)] == [1, 1, 4, 4]
    assert int(ds[lengths[0]]["index"]) == int(EP_START[4]), "items keep the dataset's absolute index"


def test_several_datasets_concatenate_with_dataset_index(root, windows):
    other = tl.our_dataset("h264")  # same episodes, encoded with another codec
    ds = TrainingDataset([root, other], delta_timestamps=windows, episodes=[None, [0, 5]])
    n_other = syn.EPISODE_LENGTHS[0] + syn.EPISODE_LENGTHS[5]
    assert len(ds) == 99 + n_other and ds.num_episodes == 6 + 2
    assert ds.meta.dataset_to_index[-1] == len(ds)
    assert [(e.dataset_index, e.episode_index) for e in ds.meta.episodes[-2:]] == [(1, 0), (1, 5)]
    reader = LeRobotDatasetReader(other, episodes=[0, 5], delta_timestamps=windows, return_uint8=True, output="torch")
    for pos in (99, 99 + 3, len(ds) - 1):
        item = ds[pos]
        assert int(item["dataset_index"]) == 1
        expected = reader[pos - 99]
        expected["dataset_index"] = torch.tensor(1)
        tl.assert_same_item(item, expected, f"position {pos}")
    assert int(ds[0]["dataset_index"]) == 0
    assert ds.meta.stats["action"]["count"].tolist() == [2 * 99], "stats of both datasets combined"


def test_mismatching_datasets_are_refused_naming_the_difference(root, tmp_path):
    renamed = tmp_path / "renamed"
    shutil.copytree(root, renamed)
    info = json.loads((renamed / "meta/info.json").read_text())
    info["features"]["action"]["names"] = [f"joint_{i}" for i in range(6)]
    (renamed / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="feature 'action' differs"):
        TrainingDataset([root, renamed])
    info["fps"] = 15
    (renamed / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="fps"):
        TrainingDataset([root, renamed])


def test_bad_arguments_are_named(root):
    with pytest.raises(ValueError, match="one list"):
        TrainingDataset([root, root], episodes=[0, 1])
    with pytest.raises(ValueError, match="episodes"):
        TrainingDataset(root, episodes=[42])
    with pytest.raises(ValueError, match="not features"):
        TrainingDataset(root, delta_timestamps={"observation.velocity": [0.0]})
    with pytest.raises(IndexError):
        TrainingDataset(root)[99]


def test_image_transforms_run_on_float_images_in_the_item(root):
    cfg = ImageTransformsConfig(enable=True, max_num_transforms=1, tfs={
        "brightness": ImageTransformConfig(weight=1.0, type="ColorJitter", kwargs={"brightness": (0.5, 0.5)}),
    })
    plain = TrainingDataset(root)
    augmented = TrainingDataset(root, image_transforms=ImageTransforms(cfg))
    a, b = plain[7], augmented[7]
    for key in tl.CAMERAS:
        assert b[key].dtype == torch.float32
        assert torch.allclose(b[key], (a[key].to(torch.float32) / 255) * 0.5)
    assert torch.equal(cameras_to_float(b)[syn.IMAGE_KEY], b[syn.IMAGE_KEY]), "float cameras pass through"


def test_sampler_with_drop_n_last_frames_keeps_action_chunks_inside_episodes(root):
    ds = TrainingDataset(root, delta_timestamps={"action": [i / tl.FPS for i in range(8)]})
    sampler = EpisodeAwareSampler(ds.meta.dataset_from_index, ds.meta.dataset_to_index, drop_n_last_frames=7,
                                  shuffle=True, seed=0)
    positions = list(sampler)
    assert len(positions) == 99 - 6 * 7
    assert not any(ds[p]["action_is_pad"].any() for p in positions)


def _collect(ds, context: str | None, workers: int) -> list[dict]:
    loader = torch.utils.data.DataLoader(
        ds, batch_size=5, num_workers=workers, multiprocessing_context=context,
        sampler=EpisodeAwareSampler(ds.meta.dataset_from_index, ds.meta.dataset_to_index, shuffle=True, seed=3),
    )
    return list(loader)


@pytest.mark.slow
@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_workers_give_the_same_batches(root, windows, context):
    ds = TrainingDataset(root, delta_timestamps=windows, episodes=[0, 2])
    ds[0]  # open decoders in the parent first: forked workers must not reuse them
    reference = _collect(ds, None, 0)
    got = _collect(ds, context, 2)
    assert len(got) == len(reference) == 5
    for i, (a, b) in enumerate(zip(got, reference)):
        assert a["task"] == b["task"]
        for key, value in b.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(a[key], value), f"batch {i} '{key}' ({context})"


def test_imagenet_stats_replace_camera_mean_and_std_only(root):
    ds = TrainingDataset(root)
    stats = with_imagenet_stats(ds.meta.stats, ds.meta.camera_keys)
    for key in ds.meta.camera_keys:
        assert stats[key]["mean"].shape == (3, 1, 1) and float(stats[key]["std"][2, 0, 0]) == pytest.approx(0.225)
        assert np.array_equal(stats[key]["max"], ds.meta.stats[key]["max"])
    assert np.array_equal(stats["action"]["mean"], ds.meta.stats["action"]["mean"])
    assert not np.array_equal(ds.meta.stats[syn.IMAGE_KEY]["mean"], stats[syn.IMAGE_KEY]["mean"]), "a copy"
