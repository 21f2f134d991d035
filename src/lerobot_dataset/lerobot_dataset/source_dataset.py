"""Metadata I/O for the dataset tools: a finished dataset's info, tasks, per-episode rows (with their stats) and the
writers of the same tables for a new dataset.

The tools never keep a dataset open for appending: they read a finished source and write a new folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .format import (
    INFO_PATH,
    TASKS_PATH,
    VISUAL_DTYPES,
    episodes_file_path,
    episodes_schema,
    iter_sorted_files,
    next_chunk_file,
    read_info,
    stats_feature_keys,
    stats_path,
    tasks_path,
    video_keys,
    write_json_atomic,
)
from .stats import stats_to_json

EpisodeStats = dict[str, dict[str, np.ndarray]]


class DatasetToolError(ValueError):
    """A dataset cannot be edited as asked (bad input, mismatching datasets, broken metadata)."""


@dataclass
class SourceDataset:
    """A finished dataset as the tools see it: info, task strings by task_index, one dict per episode row."""

    root: Path
    info: dict[str, Any]
    tasks: list[str]
    episodes: list[dict[str, Any]]  # row i is episode i; stats/* columns parsed into `episode_stats`
    episode_stats: list[EpisodeStats] = field(default_factory=list)

    @property
    def fps(self) -> int:
        return int(self.info["fps"])

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        return self.info["features"]

    @property
    def video_keys(self) -> list[str]:
        return video_keys(self.features)

    @property
    def total_episodes(self) -> int:
        return len(self.episodes)


# ---------------------------------------------------------------------------------------------- reading
def read_tasks(root: Path | str) -> list[str]:
    """Task strings ordered by task_index (accepts HEAD's named `task` index and 0.4.4's unnamed index)."""
    df = pd.read_parquet(tasks_path(root))
    if "task_index" not in df.columns:
        raise DatasetToolError(f"{Path(root) / TASKS_PATH}: expected a 'task_index' column, got {list(df.columns)}")
    if "task" in df.columns:
        df = df.set_index("task")
    df = df.sort_values("task_index")
    indices = df["task_index"].to_list()
    if indices != list(range(len(indices))):
        raise DatasetToolError(f"{Path(root) / TASKS_PATH}: task_index must be 0..{len(indices) - 1}, got {indices}")
    return [str(t) for t in df.index]


def write_tasks(root: Path | str, tasks: list[str]) -> None:
    """meta/tasks.parquet: column task_index, pandas index `task` (row order == task_index order)."""
    path = tasks_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame({"task_index": np.arange(len(tasks), dtype=np.int64)}, index=pd.Index(tasks, name="task"))
    df.to_parquet(path)


def stats_from_row(row: Mapping[str, Any], features: Mapping[str, Mapping[str, Any]]) -> EpisodeStats:
    """Parse the `stats/<feature>/<stat>` columns of one episodes row into numpy arrays.

    Visual stats keep their (C,1,1) shape; `count` is int64, the rest float64.
    """
    out: EpisodeStats = {}
    for col, value in row.items():
        if not col.startswith("stats/") or value is None:
            continue
        feature, stat = col[len("stats/") :].rsplit("/", 1)
        dtype = np.int64 if stat == "count" else np.float64
        arr = np.asarray(value, dtype=dtype)
        ft = features.get(feature)
        if ft is not None and ft["dtype"] in VISUAL_DTYPES and stat != "count" and arr.ndim == 1:
            arr = arr.reshape(-1, 1, 1)
        out.setdefault(feature, {})[stat] = arr
    return out


def read_episode_rows(root: Path | str, expected: int | None = None) -> list[dict[str, Any]]:
    files = list(iter_sorted_files(root, "meta/episodes/*/*.parquet"))
    if not files and expected == 0:  # created, no episode saved yet
        return []
    if not files:
        raise DatasetToolError(f"{root}: no meta/episodes/*/*.parquet files (unfinished or not a v3.0 dataset)")
    rows: list[dict[str, Any]] = []
    for f in files:
        rows.extend(pq.read_table(f).to_pylist())
    for i, row in enumerate(rows):
        if row.get("episode_index") != i:
            raise DatasetToolError(
                f"{root}: meta/episodes row {i} holds episode_index {row.get('episode_index')}; rows must be 0..N-1"
            )
    return rows


def load_source(root: Path | str) -> SourceDataset:
    root = Path(root)
    if not (root / INFO_PATH).is_file():
        raise DatasetToolError(f"{root} is not a LeRobot dataset: {INFO_PATH} is missing")
    info = read_info(root)
    version = info.get("codebase_version")
    if not str(version).startswith("v3."):
        raise DatasetToolError(f"{root}: codebase_version {version!r} is not supported; expected v3.x")
    tasks = read_tasks(root) if tasks_path(root).exists() or info.get("total_episodes") else []
    rows = read_episode_rows(root, expected=info.get("total_episodes"))
    if len(rows) != info.get("total_episodes"):
        raise DatasetToolError(
            f"{root}: info.json total_episodes={info.get('total_episodes')} but meta/episodes has {len(rows)} rows"
        )
    stats = [stats_from_row(r, info["features"]) for r in rows]
    return SourceDataset(root=root, info=info, tasks=tasks, episodes=rows, episode_stats=stats)


# ---------------------------------------------------------------------------------------------- writing
def write_stats_json(root: Path | str, stats: Mapping[str, Mapping[str, Any]]) -> None:
    write_json_atomic(stats_path(root), stats_to_json(stats))


def flatten_episode_stats(stats: EpisodeStats, features: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """{feature: {stat: array}} -> {'stats/<feature>/<stat>': nested list} for the features that carry stats."""
    out: dict[str, Any] = {}
    for key in stats_feature_keys(features):
        feat_stats = stats.get(key)
        if feat_stats is None:
            raise DatasetToolError(f"episode stats are missing feature '{key}'")
        for stat, value in feat_stats.items():
            out[f"stats/{key}/{stat}"] = np.asarray(value).tolist()
    return out


class EpisodesMetaWriter:
    """Writes meta/episodes/chunk-XXX/file-XXX.parquet rows in episode order, rolling files at the data size limit."""

    def __init__(self, root: Path, features: Mapping[str, Mapping[str, Any]], chunks_size: int, file_size_mb: float):
        self.root = root
        self.schema = episodes_schema(features)
        self.chunks_size = chunks_size
        self.limit_bytes = file_size_mb * 1024 * 1024
        self.chunk, self.file = 0, 0
        self._rows: list[dict[str, Any]] = []
        self._rows_bytes = 0

    def add(self, row: dict[str, Any]) -> None:
        # The index columns point at where the row lands; rolling is decided before placing it.
        est = len(json.dumps(row, default=str))
        if self._rows and self._rows_bytes + est >= self.limit_bytes:
            self._flush()
            self.chunk, self.file = next_chunk_file(self.chunk, self.file, self.chunks_size)
        row["meta/episodes/chunk_index"] = self.chunk
        row["meta/episodes/file_index"] = self.file
        self._rows.append(row)
        self._rows_bytes += est

    def _flush(self) -> None:
        if not self._rows:
            return
        missing = [n for n in self.schema.names if n not in self._rows[0]]
        if missing:
            raise DatasetToolError(f"episode metadata row lacks columns {missing}")
        table = pa.Table.from_pylist(self._rows, schema=self.schema)
        path = episodes_file_path(self.root, self.chunk, self.file)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="snappy", use_dictionary=True)
        self._rows, self._rows_bytes = [], 0

    def close(self) -> None:
        self._flush()
