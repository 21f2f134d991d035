"""Per-episode and aggregated feature statistics, as LeRobotDataset v3.0 stores them.

Conventions (upstream `datasets/compute_stats.py`, re-implemented here):
- every non-string feature gets min, max, mean, std (population), count and the quantiles q01 q10 q50 q90 q99;
- quantiles come from a 5000-bin histogram spanning [min, max] with linear interpolation inside the bin;
- vectors (N, D) -> stats of shape (D,); scalars (N,) -> shape (1,); count is always [N];
- images/videos: a sample of frames (`sample_indices`), each downsampled (`auto_downsample_height_width`),
  stats per channel over all sampled pixels, divided by 255, shape (C, 1, 1); count = number of sampled frames;
- aggregation: min of mins, max of maxes, count-weighted mean, parallel-variance std, summed count, and
  quantiles as a conservative envelope (min across inputs for q <= 50, max for q > 50).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from .format import DEFAULT_QUANTILES, QUANTILE_KEYS

NUM_QUANTILE_BINS = 5000

Stats = dict[str, np.ndarray]


# ---------------------------------------------------------------------------------------------- frame sampling
def estimate_num_samples(
    dataset_len: int, min_num_samples: int = 100, max_num_samples: int = 10_000, power: float = 0.75
) -> int:
    """How many frames of an episode of `dataset_len` frames are sampled for image stats."""
    lower = min(min_num_samples, dataset_len)
    return max(lower, min(int(dataset_len**power), max_num_samples))


def sample_indices(data_len: int) -> list[int]:
    """Evenly spaced frame indices (rounded) used for image/video stats."""
    n = estimate_num_samples(data_len)
    return np.round(np.linspace(0, data_len - 1, n)).astype(int).tolist()


def downsample_factor(height: int, width: int, target_size: int = 150, max_size_threshold: int = 300) -> int:
    """Stride used to shrink a frame before stats (1 = unchanged)."""
    if max(width, height) < max_size_threshold:
        return 1
    return int(width / target_size) if width > height else int(height / target_size)


def auto_downsample_hwc(img: np.ndarray) -> np.ndarray:
    """Strided downsample of an (H, W, C) frame (same pixels upstream picks from the (C, H, W) layout)."""
    f = downsample_factor(img.shape[0], img.shape[1])
    return img if f == 1 else img[::f, ::f]


class FrameSampler:
    """Keeps downsampled copies of the frames of one episode so that image stats can be computed at the end
    with upstream's sample_indices, without holding full-resolution frames.

    The episode length is unknown while recording, so every frame is kept (downsampled) up to `max_frames`;
    past that the kept set is thinned to every other frame (and the stride doubles). With thinning, the
    sampled indices are mapped to the nearest kept frame, which is statistically equivalent.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, min_frames: int = 256):
        self._max_bytes = max_bytes
        self._min_frames = min_frames
        self._kept: list[np.ndarray] = []
        self._stride = 1
        self._seen = 0
        self._max_frames: int | None = None

    def add(self, frame_hwc: np.ndarray) -> None:
        idx = self._seen
        self._seen += 1
        if idx % self._stride:
            return
        small = np.ascontiguousarray(auto_downsample_hwc(frame_hwc))
        if self._max_frames is None:
            self._max_frames = max(self._min_frames, self._max_bytes // max(1, small.nbytes))
        self._kept.append(small)
        if len(self._kept) >= self._max_frames:
            self._kept = self._kept[::2]
            self._stride *= 2

    @property
    def num_frames(self) -> int:
        return self._seen

    def samples(self) -> np.ndarray:
        """The sampled frames (S, h, w, C) for an episode of `num_frames` frames."""
        if self._seen == 0:
            raise ValueError("no frames were recorded")
        picks = [min(round(i / self._stride), len(self._kept) - 1) for i in sample_indices(self._seen)]
        return np.stack([self._kept[p] for p in picks])

    def reset(self) -> None:
        self._kept = []
        self._stride = 1
        self._seen = 0


# ---------------------------------------------------------------------------------------------- stats
def quantile_from_hist(hist: np.ndarray, lo: float, hi: float, total: float) -> list[float]:
    """The DEFAULT_QUANTILES (q01 q10 q50 q90 q99) of `total` values counted in `hist`, a histogram with uniform
    bins over [lo, hi] (NUM_QUANTILE_BINS bins, as every stats path here uses), interpolated linearly inside the
    bin where each quantile falls. Needs hi > lo."""
    nbins = len(hist)
    width = (hi - lo) / nbins
    cum = np.cumsum(hist)
    vals = []
    for q in DEFAULT_QUANTILES:
        target = q * total
        k = int(np.searchsorted(cum, target))
        if k == 0:
            vals.append(lo)
        elif k >= nbins:
            vals.append(hi)
        else:
            before = cum[k - 1]
            inside = cum[k] - before
            left = lo + k * width
            vals.append(left if inside == 0 else left + (target - before) / inside * width)
    return vals


def _column_quantiles(column: np.ndarray, vmin: float, vmax: float) -> list[float]:
    lo, hi = vmin - 1e-10, vmax + 1e-10
    if not hi > lo:  # constant column (padding lost to float precision): every quantile is the value
        return [vmin] * len(DEFAULT_QUANTILES)
    hist, _ = np.histogram(column, bins=NUM_QUANTILE_BINS, range=(lo, hi))
    return quantile_from_hist(hist, lo, hi, column.shape[0])


def _uint8_column_stats(counts: np.ndarray) -> tuple[float, float, float, float, list[float]]:
    """min, max, mean, population std and quantiles of a uint8 column given its 256 value counts.

    Equivalent to the float path (same 5000-bin histogram over [min, max]) but without materialising floats.
    """
    values = np.nonzero(counts)[0]
    vmin, vmax = float(values[0]), float(values[-1])
    total = float(counts.sum())
    levels = np.arange(256, dtype=np.float64)
    mean = float((levels * counts).sum() / total)
    std = math.sqrt(max(0.0, float((levels * levels * counts).sum() / total) - mean * mean))
    lo, hi = vmin - 1e-10, vmax + 1e-10
    if not hi > lo:
        return vmin, vmax, mean, std, [vmin] * len(DEFAULT_QUANTILES)
    bins = np.clip(((levels[values] - lo) / (hi - lo) * NUM_QUANTILE_BINS).astype(np.int64), 0, NUM_QUANTILE_BINS - 1)
    hist = np.bincount(bins, weights=counts[values], minlength=NUM_QUANTILE_BINS)
    return vmin, vmax, mean, std, quantile_from_hist(hist, lo, hi, total)


def _rows_stats(rows: np.ndarray, count: int) -> Stats:
    """Stats over the rows of a (M, D) float64 array; `count` is what gets stored as count."""
    vmin = rows.min(axis=0)
    vmax = rows.max(axis=0)
    mean = rows.mean(axis=0)
    stats: Stats = {"min": vmin, "max": vmax, "mean": mean}
    if rows.shape[0] < 2:
        stats["std"] = rows.std(axis=0)
        stats["count"] = np.array([count], dtype=np.int64)
        for key in QUANTILE_KEYS:
            stats[key] = mean.copy()
        return stats
    stats["std"] = np.sqrt(np.maximum(0.0, (rows * rows).mean(axis=0) - mean * mean))
    stats["count"] = np.array([count], dtype=np.int64)
    per_column = [_column_quantiles(rows[:, j], float(vmin[j]), float(vmax[j])) for j in range(rows.shape[1])]
    for qi, key in enumerate(QUANTILE_KEYS):
        stats[key] = np.array([col[qi] for col in per_column], dtype=np.float64)
    return stats


def vector_stats(values: np.ndarray) -> Stats:
    """Stats of a numeric feature over an episode: values (N,) for scalars or (N, D) for vectors.

    Multi-dimensional features (N, ...) keep their trailing shape.
    """
    values = np.asarray(values)
    n = values.shape[0]
    rows = values.reshape(n, -1).astype(np.float64)
    stats = _rows_stats(rows, n)
    trailing = values.shape[1:] if values.ndim > 1 else (1,)
    return {k: (v if k == "count" else v.reshape(trailing)) for k, v in stats.items()}


def image_stats(samples_hwc: np.ndarray, scale: float = 255.0) -> Stats:
    """Per-channel stats of sampled frames (S, h, w, C) -> shape (C, 1, 1), divided by `scale`; count = S."""
    s, _, _, c = samples_hwc.shape
    if samples_hwc.dtype == np.uint8 and samples_hwc.size // c >= 2:
        per_channel = [
            _uint8_column_stats(np.bincount(samples_hwc[..., ch].ravel(), minlength=256)) for ch in range(c)
        ]
        stats = {
            "min": np.array([p[0] for p in per_channel]),
            "max": np.array([p[1] for p in per_channel]),
            "mean": np.array([p[2] for p in per_channel]),
            "std": np.array([p[3] for p in per_channel]),
            "count": np.array([s], dtype=np.int64),
        }
        for qi, key in enumerate(QUANTILE_KEYS):
            stats[key] = np.array([p[4][qi] for p in per_channel])
    else:
        stats = _rows_stats(samples_hwc.reshape(-1, c).astype(np.float64), s)
    return {k: (v if k == "count" else (v / scale).reshape(c, 1, 1)) for k, v in stats.items()}


def aggregate_feature_stats(stats_list: Sequence[Mapping[str, np.ndarray]]) -> Stats:
    """Combine one feature's stats from several episodes."""
    means = np.stack([np.asarray(s["mean"], dtype=np.float64) for s in stats_list])
    variances = np.stack([np.asarray(s["std"], dtype=np.float64) ** 2 for s in stats_list])
    counts = np.stack([np.asarray(s["count"], dtype=np.int64) for s in stats_list])
    total = counts.sum(axis=0)
    w = counts.astype(np.float64)
    while w.ndim < means.ndim:
        w = w[..., None]
    mean = (means * w).sum(axis=0) / total
    var = ((variances + (means - mean) ** 2) * w).sum(axis=0) / total
    out: Stats = {
        "min": np.min(np.stack([np.asarray(s["min"], dtype=np.float64) for s in stats_list]), axis=0),
        "max": np.max(np.stack([np.asarray(s["max"], dtype=np.float64) for s in stats_list]), axis=0),
        "mean": mean,
        "std": np.sqrt(var),
        "count": total,
    }
    for key in QUANTILE_KEYS:
        if all(key in s for s in stats_list):
            vals = np.stack([np.asarray(s[key], dtype=np.float64) for s in stats_list])
            out[key] = vals.min(axis=0) if int(key[1:]) <= 50 else vals.max(axis=0)
    return out


def aggregate_stats(stats_list: Sequence[Mapping[str, Mapping[str, np.ndarray]]]) -> dict[str, Stats]:
    """Combine {feature: stats} dicts (episodes) into dataset stats; features are the union, order kept."""
    keys: list[str] = []
    for s in stats_list:
        keys += [k for k in s if k not in keys]
    return {k: aggregate_feature_stats([s[k] for s in stats_list if k in s]) for k in keys}


# ---------------------------------------------------------------------------------------------- (de)serialise
def stats_to_json(stats: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
    return {k: {sk: np.asarray(sv).tolist() for sk, sv in fs.items()} for k, fs in stats.items()}


def stats_from_json(obj: Mapping[str, Mapping[str, Any]]) -> dict[str, Stats]:
    return {
        k: {sk: np.asarray(sv, dtype=np.int64 if sk == "count" else np.float64) for sk, sv in fs.items()}
        for k, fs in obj.items()
    }


def flat_episode_stats(ep_stats: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, Any]:
    """{"stats/<feature>/<stat>": nested list} columns of a meta/episodes row."""
    out: dict[str, Any] = {}
    for key, fs in ep_stats.items():
        for stat, val in fs.items():
            arr = np.asarray(val)
            out[f"stats/{key}/{stat}"] = arr.astype(np.int64 if stat == "count" else np.float64).tolist()
    return out


def unflatten_episode_stats(row: Mapping[str, Any]) -> dict[str, Stats]:
    """Inverse of flat_episode_stats for one meta/episodes row (a dict of column -> value)."""
    out: dict[str, Stats] = {}
    for col, val in row.items():
        if not col.startswith("stats/"):
            continue
        _, rest = col.split("/", 1)
        key, stat = rest.rsplit("/", 1)
        if val is None:
            continue
        out.setdefault(key, {})[stat] = np.asarray(
            _to_nested_list(val), dtype=np.int64 if stat == "count" else np.float64
        )
    return out


def _to_nested_list(val: Any) -> Any:
    if isinstance(val, np.ndarray) and val.dtype == object:
        return [_to_nested_list(v) for v in val]
    if isinstance(val, (list, tuple)):
        return [_to_nested_list(v) for v in val]
    return val


__all__ = [
    "FrameSampler",
    "aggregate_feature_stats",
    "aggregate_stats",
    "auto_downsample_hwc",
    "downsample_factor",
    "estimate_num_samples",
    "flat_episode_stats",
    "image_stats",
    "quantile_from_hist",
    "sample_indices",
    "stats_from_json",
    "stats_to_json",
    "unflatten_episode_stats",
    "vector_stats",
]
