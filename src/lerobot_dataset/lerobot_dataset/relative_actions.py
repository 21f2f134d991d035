"""Statistics of RELATIVE actions, for policies trained on `action - state` (upstream's relative-action mode).

A policy with relative actions predicts, for a chunk of `chunk_size` actions starting at frame t, the offsets
`action[t + k] - state[t]` (k = 0 .. chunk_size-1) on the joints that are converted; excluded joints (by
default the gripper, whose command is not a small offset from its position) stay absolute. Its normaliser
must then use statistics of those offsets, not of the absolute actions. Upstream HEAD
(`datasets/compute_stats.py::compute_relative_action_stats`, `lerobot-edit-dataset --operation.type
recompute_stats --operation.relative_action true`) defines them as:
- chunks: every start t such that the whole chunk [t, t + chunk_size) lies inside one episode (chunks are not
  padded; an episode shorter than chunk_size contributes nothing);
- values: for every chunk, its chunk_size rows `action[t + k] - mask * state[t][:action_dim]`;
- statistics over all those rows, per action dimension: min, max, mean, population std, count (= chunks x
  chunk_size), quantiles q01 .. q99 from a 5000-bin histogram (as every other stat of the dataset);
- mask: a joint is excluded when an `exclude_joints` token equals its action name or is contained in it,
  case-insensitively (`"gripper"` excludes `"gripper.pos"`); names missing -> every dimension is converted.
The result replaces `stats.json["action"]`; per-episode stats in meta/episodes keep the absolute actions.

Computed exactly in two passes over batches of chunks (min/max/sums, then histograms with the final range),
so memory stays bounded whatever the dataset size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow.parquet as pq

from . import format as fmt
from .stats import NUM_QUANTILE_BINS, Stats, quantile_from_hist

ACTION = "action"
STATE = "observation.state"
DEFAULT_EXCLUDE_JOINTS = ("gripper",)  # upstream's default when relative_exclude_joints is not given
DEFAULT_CHUNK_SIZE = 50  # upstream's --operation.chunk_size default
_CHUNKS_PER_BATCH = 20_000


def relative_action_mask(action_names: Sequence[str] | None, action_dim: int,
                         exclude_joints: Sequence[str] | None) -> np.ndarray:
    """Which action dimensions become relative (True) and which stay absolute (False)."""
    tokens = [str(t).lower() for t in (exclude_joints or ()) if t]
    if not tokens or action_names is None:
        return np.ones(action_dim, dtype=bool)
    names = [str(n).lower() for n in list(action_names)[:action_dim]]
    mask = [not any(tok == name or tok in name for tok in tokens) for name in names]
    mask += [True] * (action_dim - len(mask))
    return np.array(mask, dtype=bool)


def valid_chunk_starts(episode_from: np.ndarray, episode_to: np.ndarray, chunk_size: int) -> np.ndarray:
    """Row indices t whose chunk [t, t + chunk_size) stays inside one episode ([from, to) per episode)."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    parts = [np.arange(a, b - chunk_size + 1, dtype=np.int64) for a, b in zip(episode_from, episode_to) if b - a >= chunk_size]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def relative_chunks(actions: np.ndarray, states: np.ndarray, starts: np.ndarray, chunk_size: int,
                    mask: np.ndarray) -> np.ndarray:
    """(len(starts) * chunk_size, action_dim) float64 rows `action[t + k] - mask * state[t]`."""
    dim = actions.shape[1]
    rows = starts[:, None] + np.arange(chunk_size)[None, :]
    chunks = actions[rows].astype(np.float64)  # (n, chunk, dim)
    offset = states[starts, :dim].astype(np.float64) * mask.astype(np.float64)
    chunks -= offset[:, None, :]
    return chunks.reshape(-1, dim)


def _batches(starts: np.ndarray) -> Iterator[np.ndarray]:
    for i in range(0, len(starts), _CHUNKS_PER_BATCH):
        yield starts[i : i + _CHUNKS_PER_BATCH]


def relative_action_stats(actions: np.ndarray, states: np.ndarray, episode_from: np.ndarray, episode_to: np.ndarray,
                          chunk_size: int, mask: np.ndarray) -> Stats:
    """Statistics of the relative-action rows of every whole chunk (see the module docstring)."""
    actions = np.asarray(actions)
    states = np.asarray(states)
    if actions.ndim != 2 or states.ndim != 2 or len(actions) != len(states):
        raise ValueError(f"expected (N, D) actions and states of the same length, got {actions.shape} and {states.shape}")
    dim = actions.shape[1]
    if states.shape[1] < dim:
        raise ValueError(
            f"'{STATE}' has {states.shape[1]} dimensions but '{ACTION}' has {dim}: relative actions subtract the "
            f"state's first {dim} dimensions, so the state must have at least as many"
        )
    if mask.shape != (dim,):
        raise ValueError(f"mask must have one entry per action dimension ({dim}), got shape {mask.shape}")
    starts = valid_chunk_starts(np.asarray(episode_from), np.asarray(episode_to), chunk_size)
    if len(starts) == 0:
        longest = int(np.max(np.asarray(episode_to) - np.asarray(episode_from))) if len(episode_from) else 0
        raise ValueError(f"no episode has chunk_size={chunk_size} frames (longest: {longest}); choose a smaller --chunk-size")

    count = len(starts) * chunk_size
    vmin = np.full(dim, np.inf)
    vmax = np.full(dim, -np.inf)
    total = np.zeros(dim)
    total_sq = np.zeros(dim)
    for batch in _batches(starts):
        rows = relative_chunks(actions, states, batch, chunk_size, mask)
        vmin = np.minimum(vmin, rows.min(axis=0))
        vmax = np.maximum(vmax, rows.max(axis=0))
        total += rows.sum(axis=0)
        total_sq += (rows * rows).sum(axis=0)
    mean = total / count
    stats: Stats = {
        "min": vmin,
        "max": vmax,
        "mean": mean,
        "std": np.sqrt(np.maximum(0.0, total_sq / count - mean * mean)),
        "count": np.array([count], dtype=np.int64),
    }
    lo, hi = vmin - 1e-10, vmax + 1e-10
    hists = np.zeros((dim, NUM_QUANTILE_BINS))
    for batch in _batches(starts):
        rows = relative_chunks(actions, states, batch, chunk_size, mask)
        for j in range(dim):
            if hi[j] > lo[j]:
                hists[j] += np.histogram(rows[:, j], bins=NUM_QUANTILE_BINS, range=(lo[j], hi[j]))[0]
    per_dim = [
        quantile_from_hist(hists[j], lo[j], hi[j], count) if hi[j] > lo[j] else [float(vmin[j])] * len(fmt.QUANTILE_KEYS)
        for j in range(dim)
    ]
    for qi, key in enumerate(fmt.QUANTILE_KEYS):
        stats[key] = np.array([per_dim[j][qi] for j in range(dim)], dtype=np.float64)
    return stats


def _read_columns(root: Path) -> dict[str, np.ndarray]:
    """action, observation.state and episode_index of the whole dataset, in row (= index) order."""
    files = list(fmt.iter_sorted_files(root, "data/*/*.parquet"))
    if not files:
        raise ValueError(f"{root}: no data files (data/chunk-*/file-*.parquet)")
    parts: dict[str, list[np.ndarray]] = {ACTION: [], STATE: [], "index": []}
    for path in files:
        table = pq.read_table(path, columns=list(parts))
        for key in (ACTION, STATE):
            col = table.column(key).combine_chunks()
            n = len(col)
            values = col.flatten().to_numpy(zero_copy_only=False)
            parts[key].append(values.reshape(n, -1))
        parts["index"].append(table.column("index").to_numpy())
    out = {k: np.concatenate(v) for k, v in parts.items()}
    if not np.array_equal(out["index"], np.arange(len(out["index"]))):
        raise ValueError(f"{root}: data rows are not in index order 0..N-1; validate the dataset first")
    return out


def compute_dataset_relative_action_stats(root: Path | str, chunk_size: int = DEFAULT_CHUNK_SIZE,
                                          exclude_joints: Sequence[str] | None = None) -> tuple[Stats, np.ndarray]:
    """(relative-action stats, mask) of a dataset folder; mask True = converted dimension.

    `exclude_joints=None` applies upstream's default (the gripper, if the robot has one); joints named
    explicitly must match an action name, so a typo cannot silently turn a joint relative."""
    root = Path(root)
    info = fmt.read_info(root)
    features = info.get("features", {})
    for key in (ACTION, STATE):
        if key not in features:
            raise ValueError(f"{root}: relative actions need the features '{ACTION}' and '{STATE}'; '{key}' is missing")
    action_dim = int(np.prod(features[ACTION]["shape"]))
    names = features[ACTION].get("names")
    if isinstance(names, dict):  # upstream allows {"motors": [...]} style names
        names = next(iter(names.values()), None)
    if exclude_joints is None:
        exclude_joints = DEFAULT_EXCLUDE_JOINTS
    elif names is not None:
        unmatched = [t for t in exclude_joints if not any(str(t).lower() in str(n).lower() for n in names)]
        if unmatched:
            raise ValueError(f"exclude joints {unmatched} match no action name of {root} (names: {list(names)})")
    mask = relative_action_mask(names, action_dim, exclude_joints)
    columns = _read_columns(root)
    from .reader import DatasetMeta

    episode_from, episode_to = DatasetMeta(root).episode_bounds()
    stats = relative_action_stats(columns[ACTION], columns[STATE], episode_from, episode_to, chunk_size, mask)
    return stats, mask


def write_relative_action_stats(root: Path | str, stats: Stats) -> None:
    """Replace `stats.json["action"]` with `stats` (atomically and durably, under the dataset's exclusive lock, so
    no writer or tool changes stats.json meanwhile); every other feature's stats stay."""
    from .locking import dataset_lock
    from .meta_stats import read_stats, write_stats

    with dataset_lock(root, shared=False, action="write relative-action stats"):
        current: dict[str, Any] = read_stats(root)
        current[ACTION] = stats
        write_stats(root, current)
