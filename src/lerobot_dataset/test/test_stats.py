"""Stats as LeRobotDataset v3.0 stores them: values against numpy, shapes, sampling rules, aggregation."""

import numpy as np
import pytest

from lerobot_dataset import stats as S
from lerobot_dataset.format import QUANTILE_KEYS, STAT_KEYS


def test_sampling_rules_match_upstream_formulas():
    assert S.estimate_num_samples(1) == 1
    assert S.estimate_num_samples(50) == 50
    assert S.estimate_num_samples(400) == 100  # 400**0.75 = 89 < 100
    assert S.estimate_num_samples(500) == 105
    assert S.estimate_num_samples(1000) == 177
    assert S.estimate_num_samples(10_000) == 1000
    assert S.estimate_num_samples(10**8) == 10_000
    idx = S.sample_indices(1800)
    assert len(idx) == S.estimate_num_samples(1800) == int(1800**0.75)
    assert idx[0] == 0 and idx[-1] == 1799
    assert idx == np.round(np.linspace(0, 1799, len(idx))).astype(int).tolist()
    assert S.downsample_factor(96, 128) == 1
    assert S.downsample_factor(480, 640) == 4  # int(640 / 150)
    assert S.downsample_factor(720, 480) == 4  # int(720 / 150), height is the long side
    img = np.arange(480 * 640 * 3, dtype=np.int64).reshape(480, 640, 3)
    np.testing.assert_array_equal(S.auto_downsample_hwc(img), img[::4, ::4])


def test_vector_stats_against_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=(2000, 4)).astype(np.float32)
    st = S.vector_stats(x)
    assert list(st) == list(STAT_KEYS)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(st["min"], x64.min(0))
    np.testing.assert_allclose(st["max"], x64.max(0))
    np.testing.assert_allclose(st["mean"], x64.mean(0), rtol=1e-12)
    np.testing.assert_allclose(st["std"], x64.std(0), rtol=1e-9)
    np.testing.assert_array_equal(st["count"], [2000])
    bin_width = (x64.max(0) - x64.min(0)) / S.NUM_QUANTILE_BINS
    srt = np.sort(x64, axis=0)
    for key, q in zip(QUANTILE_KEYS, (0.01, 0.10, 0.50, 0.90, 0.99)):
        # Histogram quantile at rank q*N: between the neighbouring order statistics, up to one bin.
        rank = q * len(x64)
        lo = srt[max(0, int(np.floor(rank)) - 1)] - bin_width
        hi = srt[min(len(x64) - 1, int(np.ceil(rank)))] + bin_width
        assert np.all(st[key] >= lo) and np.all(st[key] <= hi), (key, st[key], lo, hi)
    assert all(v.shape == (4,) for k, v in st.items() if k != "count")


def test_scalar_and_constant_and_single_frame():
    st = S.vector_stats(np.arange(10, dtype=np.int64))
    assert st["min"].shape == (1,) and st["count"].tolist() == [10]
    assert st["min"][0] == 0 and st["max"][0] == 9 and st["mean"][0] == pytest.approx(4.5)
    const = S.vector_stats(np.full((5, 2), 7.0, np.float32))
    for key in QUANTILE_KEYS + ("min", "max", "mean"):
        np.testing.assert_allclose(const[key], [7.0, 7.0])
    np.testing.assert_allclose(const["std"], [0.0, 0.0])
    one = S.vector_stats(np.array([[1.0, 2.0]], np.float32))
    np.testing.assert_allclose(one["q99"], [1.0, 2.0])
    np.testing.assert_array_equal(one["count"], [1])


def test_image_stats_uint8_fast_path_equals_float_path():
    rng = np.random.default_rng(2)
    imgs = rng.integers(0, 256, size=(40, 30, 20, 3), dtype=np.uint8)
    imgs[..., 2] //= 3  # different distribution per channel
    st = S.image_stats(imgs)
    ref = S.image_stats(imgs.astype(np.float64))  # generic path (no bincount)
    for key in STAT_KEYS:
        assert st[key].shape == ((1,) if key == "count" else (3, 1, 1))
        np.testing.assert_allclose(st[key], ref[key], rtol=1e-9, atol=1e-12)
    flat = imgs.reshape(-1, 3).astype(np.float64) / 255.0
    np.testing.assert_allclose(st["mean"].ravel(), flat.mean(0))
    np.testing.assert_allclose(st["std"].ravel(), flat.std(0), rtol=1e-9)
    np.testing.assert_allclose(st["max"].ravel(), flat.max(0))
    assert st["count"].tolist() == [40]


def test_frame_sampler_picks_upstream_indices_and_thins_long_episodes():
    frames = [np.full((4, 4, 3), i % 256, np.uint8) for i in range(300)]
    sampler = S.FrameSampler()
    for f in frames:
        sampler.add(f)
    got = sampler.samples()[:, 0, 0, 0].tolist()
    assert got == [i % 256 for i in S.sample_indices(300)]
    # Tiny memory budget: the sampler thins but still returns estimate_num_samples frames near the right ones.
    small = S.FrameSampler(max_bytes=1, min_frames=64)
    for i in range(1000):
        small.add(np.full((2, 2, 1), i // 4, np.uint8))
    picked = small.samples()
    assert len(picked) == S.estimate_num_samples(1000)
    want = np.array(S.sample_indices(1000)) // 4
    assert np.abs(picked[:, 0, 0, 0].astype(int) - want).max() <= 4


def test_aggregate_equals_stats_of_concatenation():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(100, 3))
    b = rng.normal(5, 3, size=(250, 3))
    agg = S.aggregate_stats([{"x": S.vector_stats(a)}, {"x": S.vector_stats(b)}])["x"]
    both = np.concatenate([a, b])
    np.testing.assert_allclose(agg["mean"], both.mean(0))
    np.testing.assert_allclose(agg["std"], both.std(0))
    np.testing.assert_allclose(agg["min"], both.min(0))
    np.testing.assert_allclose(agg["max"], both.max(0))
    assert agg["count"].tolist() == [350]
    sa, sb = S.vector_stats(a), S.vector_stats(b)
    np.testing.assert_allclose(agg["q01"], np.minimum(sa["q01"], sb["q01"]))
    np.testing.assert_allclose(agg["q99"], np.maximum(sa["q99"], sb["q99"]))


def test_json_and_episode_row_roundtrip():
    st = {"img": S.image_stats(np.zeros((3, 4, 4, 3), np.uint8) + 10), "v": S.vector_stats(np.ones((3, 2)))}
    back = S.stats_from_json(S.stats_to_json(st))
    for k in st:
        for sk in st[k]:
            np.testing.assert_allclose(back[k][sk], st[k][sk])
    row = S.flat_episode_stats(st)
    assert "stats/img/q50" in row and row["stats/img/count"] == [3]
    again = S.unflatten_episode_stats(row)
    np.testing.assert_allclose(again["img"]["mean"], st["img"]["mean"])
