"""meta/episodes/chunk-XXX/file-XXX.parquet: one row per episode (where its frames and video spans are, its tasks
and its statistics). Row i of the files concatenated in sorted path order is episode i.

Columns (upstream order): episode_index, tasks, length, data/chunk_index, data/file_index, dataset_from_index,
dataset_to_index, per camera videos/<key>/{chunk_index, file_index, from_timestamp, to_timestamp},
stats/<feature>/<stat>, meta/episodes/chunk_index, meta/episodes/file_index (see `format.episodes_schema`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from . import durable_io
from .errors import DatasetFormatError
from .format import VISUAL_DTYPES, episodes_file_path, episodes_schema, iter_sorted_files, next_chunk_file, stats_feature_keys
from .stats import Stats, flat_episode_stats, unflatten_episode_stats

EPISODES_GLOB = "meta/episodes/*/*.parquet"
REQUIRED_COLUMNS = ("episode_index", "length", "data/chunk_index", "data/file_index", "dataset_from_index", "dataset_to_index")
VIDEO_COLUMNS = ("chunk_index", "file_index", "from_timestamp", "to_timestamp")

__all__ = [
    "EpisodeInfo",
    "EpisodesFileWriter",
    "VideoSpan",
    "committed_episode_indices",
    "episode_infos",
    "episode_stats_columns",
    "episode_stats_from_row",
    "episodes_files",
    "read_episode_rows",
    "read_episodes_table",
    "write_episodes_file",
]


@dataclass(frozen=True)
class VideoSpan:
    """Where one episode of one camera lives: which mp4 and which time span inside it."""

    chunk_index: int
    file_index: int
    from_timestamp: float
    to_timestamp: float


@dataclass(frozen=True)
class EpisodeInfo:
    """One row of meta/episodes/*.parquet (without the per-episode stats)."""

    episode_index: int
    length: int
    tasks: tuple[str, ...]
    data_chunk_index: int
    data_file_index: int
    dataset_from_index: int
    dataset_to_index: int
    videos: dict[str, VideoSpan] = field(default_factory=dict)


def episodes_files(root: Path | str) -> list[Path]:
    return iter_sorted_files(root, EPISODES_GLOB)


def _read_file(path: Path, columns: Sequence[str] | None = None) -> pa.Table:
    try:
        return pq.read_table(path, columns=list(columns) if columns is not None else None)
    except (pa.ArrowException, OSError) as exc:
        raise DatasetFormatError(f"{path}: unreadable parquet ({exc})") from None


def read_episodes_table(root: Path | str) -> pa.Table:
    """Every meta/episodes file concatenated in sorted path order (row i = episode i)."""
    paths = episodes_files(root)
    if not paths:
        raise DatasetFormatError(f"{root}: no episode metadata (meta/episodes/chunk-*/file-*.parquet)")
    tables = [_read_file(p) for p in paths]
    try:
        return pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
    except pa.ArrowException as exc:
        raise DatasetFormatError(f"{root}: meta/episodes files have incompatible columns ({exc})") from None


def _check_order(rows_episode_index: Sequence[Any], where: Path | str) -> None:
    for row, ep in enumerate(rows_episode_index):
        if ep != row:
            raise DatasetFormatError(
                f"{where}: meta/episodes row {row} holds episode_index {ep}; rows must be episodes 0..N-1 in order"
            )


def episode_infos(table: pa.Table, video_keys: Sequence[str], where: Path | str = "meta/episodes") -> list[EpisodeInfo]:
    """The rows of an episodes table as EpisodeInfo (checked: required columns, no nulls, rows in order)."""
    required = list(REQUIRED_COLUMNS)
    for key in video_keys:
        required += [f"videos/{key}/{c}" for c in VIDEO_COLUMNS]
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise DatasetFormatError(f"{where}: missing columns {missing}")
    cols = {c: table.column(c).to_pylist() for c in required}
    nulls = [c for c, values in cols.items() if any(v is None for v in values)]
    if nulls:
        raise DatasetFormatError(f"{where}: columns {nulls} have empty (null) cells")
    tasks = table.column("tasks").to_pylist() if "tasks" in table.column_names else [[]] * table.num_rows
    out = []
    for row in range(table.num_rows):
        videos = {
            key: VideoSpan(
                chunk_index=int(cols[f"videos/{key}/chunk_index"][row]),
                file_index=int(cols[f"videos/{key}/file_index"][row]),
                from_timestamp=float(cols[f"videos/{key}/from_timestamp"][row]),
                to_timestamp=float(cols[f"videos/{key}/to_timestamp"][row]),
            )
            for key in video_keys
        }
        out.append(
            EpisodeInfo(
                episode_index=int(cols["episode_index"][row]),
                length=int(cols["length"][row]),
                tasks=tuple(tasks[row] or ()),
                data_chunk_index=int(cols["data/chunk_index"][row]),
                data_file_index=int(cols["data/file_index"][row]),
                dataset_from_index=int(cols["dataset_from_index"][row]),
                dataset_to_index=int(cols["dataset_to_index"][row]),
                videos=videos,
            )
        )
    _check_order([e.episode_index for e in out], where)
    return out


def read_episode_rows(root: Path | str, expected: int | None = None) -> list[dict[str, Any]]:
    """Every episode row as a dict (stats columns included), checked to be episodes 0..N-1 in order.
    No files is an empty list only when `expected == 0` (a dataset with no episode yet)."""
    files = episodes_files(root)
    if not files and expected == 0:
        return []
    if not files:
        raise DatasetFormatError(f"{root}: no meta/episodes/*/*.parquet files (unfinished or not a v3.0 dataset)")
    rows: list[dict[str, Any]] = []
    for f in files:
        rows.extend(_read_file(f).to_pylist())
    _check_order([r.get("episode_index") for r in rows], root)
    return rows


def committed_episode_indices(root: Path | str) -> set[int]:
    """episode_index values present in meta/episodes (an episode is committed once its row is there)."""
    out: set[int] = set()
    for p in episodes_files(root):
        out.update(_read_file(p, ["episode_index"]).column(0).to_pylist())
    return out


def episode_stats_from_row(row: Mapping[str, Any], features: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Stats]:
    """The `stats/<feature>/<stat>` cells of one row as {feature: {stat: array}} (count int64, others float64).
    With `features`, camera stats stored flat (C,) are given their (C, 1, 1) shape."""
    stats = unflatten_episode_stats(row)
    for key, per in stats.items():
        ft = (features or {}).get(key)
        if ft is not None and ft.get("dtype") in VISUAL_DTYPES:
            for name, arr in per.items():
                if name != "count" and arr.ndim == 1:
                    per[name] = arr.reshape(-1, 1, 1)
    return stats


def episode_stats_columns(stats: Mapping[str, Mapping[str, Any]], features: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """{feature: {stat: array}} -> the `stats/<feature>/<stat>` cells of a row, for every feature that carries stats."""
    ordered = {}
    for key in stats_feature_keys(features):
        if key not in stats:
            raise DatasetFormatError(f"episode stats are missing feature '{key}'")
        ordered[key] = stats[key]
    return flat_episode_stats(ordered)


def write_episodes_file(path: Path, table: pa.Table, fsync: bool = True) -> None:
    """Replace one meta/episodes file atomically and durably (one row group)."""
    durable_io.write_parquet(path, [table], table.schema, fsync)


class EpisodesFileWriter:
    """Writes episode rows of a NEW dataset in episode order, rolling to the next file at `file_size_mb`."""

    def __init__(self, root: Path, features: Mapping[str, Mapping[str, Any]], chunks_size: int, file_size_mb: float,
                 fsync: bool = True):
        self.root = root
        self.schema = episodes_schema(features)
        self.chunks_size = chunks_size
        self.limit_bytes = file_size_mb * 1024 * 1024
        self.fsync = fsync
        self.chunk, self.file = 0, 0
        self._rows: list[dict[str, Any]] = []
        self._rows_bytes = 0

    def add(self, row: dict[str, Any]) -> None:
        # The meta/episodes index columns say where the row lands; rolling is decided before placing it.
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
            raise DatasetFormatError(f"episode metadata row lacks columns {missing}")
        table = pa.Table.from_pylist(self._rows, schema=self.schema)
        write_episodes_file(episodes_file_path(self.root, self.chunk, self.file), table, self.fsync)
        self._rows, self._rows_bytes = [], 0

    def close(self) -> None:
        self._flush()
