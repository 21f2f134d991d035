"""Read a LeRobotDataset v3.0 from disk: metadata, random access by frame, delta_timestamps windows, episodes.

`LeRobotDatasetReader(root)[i]` returns the same values as upstream `LeRobotDataset(repo_id, root=root)[i]`:
every feature of the frame (vectors float32 or int64, shape-(1,) features as 0-d arrays, cameras as CHW float32
in [0, 1]), `task` (the task string) and, with `delta_timestamps`, `(T, ...)` windows plus `<key>_is_pad` masks.
The reader is numpy-only (torch is imported only for `output="torch"`) and needs pyarrow, PyAV, and OpenCV for
image (PNG) features.

Value conventions copied from upstream so that training code sees identical inputs:
- floating features come back as float32 and integer features as int64 (upstream builds tensors from Python
  scalars: `torch.tensor(float)` is float32 and `torch.tensor(int)` is int64);
- a window position outside the episode holds a copy of the nearest edge frame and its `_is_pad` entry is True;
- a video key with a one-element window is squeezed to (C, H, W), as upstream's `frames.squeeze(0)` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import format as fmt
from .video_decode import DEFAULT_TOLERANCE_S, VideoDecoderPool

CONVERT_COMMAND = "python -m lerobot.datasets.v30.convert_dataset_v21_to_v30 --repo-id=<repo_id> --root=<dir>"
CONVERT_COMMAND_HEAD = "python -m lerobot.scripts.convert_dataset_v21_to_v30 --repo-id=<repo_id>"


class DatasetFormatError(ValueError):
    """The folder is not a readable LeRobotDataset v3.0."""


class DatasetVersionError(DatasetFormatError):
    """The dataset is an older (v2.x or v1.x) LeRobotDataset and must be converted first."""


# ============================================================================================ metadata
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


def _major_version(codebase_version: str) -> int | None:
    try:
        return int(str(codebase_version).lstrip("v").split(".")[0])
    except ValueError:
        return None


def check_v3_layout(root: Path) -> None:
    """Raise DatasetVersionError for v1.x/v2.x datasets, DatasetFormatError when info.json is missing."""
    info_file = fmt.info_path(root)
    v2_markers = [p for p in ("meta/episodes.jsonl", "meta/tasks.jsonl", "meta/episodes_stats.jsonl") if (root / p).exists()]
    version = None
    if info_file.exists():
        try:
            version = json.loads(info_file.read_text(encoding="utf-8")).get("codebase_version")
        except json.JSONDecodeError as exc:
            raise DatasetFormatError(f"{info_file}: not valid JSON ({exc})") from exc
    major = _major_version(version) if version is not None else None
    if (major is not None and major < 3) or (major is None and v2_markers):
        found = f"codebase_version {version!r} in meta/info.json" if version else f"v2 files {v2_markers}"
        raise DatasetVersionError(
            f"{root} is a LeRobotDataset v2.x dataset ({found}); this reader reads v3.0 only. "
            f"Convert it with upstream LeRobot: `{CONVERT_COMMAND}` (lerobot 0.4.x) or "
            f"`{CONVERT_COMMAND_HEAD}` (newer releases)."
        )
    if not info_file.exists():
        raise DatasetFormatError(f"{root}: not a LeRobotDataset (missing {fmt.INFO_PATH})")
    if major is None or major > 3:
        raise DatasetFormatError(
            f"{info_file}: codebase_version {version!r} is not supported (expected 'v3.x')"
        )


def read_tasks(root: Path) -> list[str]:
    """meta/tasks.parquet as a list indexed by task_index. The task string is the pandas index column, named
    'task' (upstream HEAD) or '__index_level_0__' (lerobot 0.4.4)."""
    path = fmt.tasks_path(root)
    if not path.exists():
        raise DatasetFormatError(f"{root}: missing {fmt.TASKS_PATH}")
    table = pq.read_table(path)
    names = table.column_names
    text_col = next((c for c in ("task", "__index_level_0__") if c in names), None)
    if text_col is None:
        text_col = next((f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)), None)
    if text_col is None or "task_index" not in names:
        raise DatasetFormatError(f"{path}: expected a 'task_index' column and a task string column, got {names}")
    texts = table.column(text_col).to_pylist()
    indices = table.column("task_index").to_pylist()
    tasks: list[str | None] = [None] * len(texts)
    for idx, text in zip(indices, texts):
        if idx is None or not 0 <= idx < len(texts) or tasks[idx] is not None:
            raise DatasetFormatError(f"{path}: task_index values must be 0..{len(texts) - 1} without repeats, got {indices}")
        tasks[idx] = text
    return [str(t) for t in tasks]


def read_episodes_table(root: Path) -> pa.Table:
    """All meta/episodes/chunk-*/file-*.parquet files, concatenated in sorted path order (row i = episode i)."""
    paths = list(fmt.iter_sorted_files(root, "meta/episodes/*/*.parquet"))
    if not paths:
        raise DatasetFormatError(f"{root}: no episode metadata (meta/episodes/chunk-*/file-*.parquet)")
    tables = [pq.read_table(p) for p in paths]
    return pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]


def _episode_infos(table: pa.Table, video_keys: Sequence[str]) -> list[EpisodeInfo]:
    required = ["episode_index", "length", "data/chunk_index", "data/file_index", "dataset_from_index", "dataset_to_index"]
    for key in video_keys:
        required += [f"videos/{key}/{c}" for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")]
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise DatasetFormatError(f"meta/episodes: missing columns {missing}")
    cols = {c: table.column(c).to_pylist() for c in required}
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
    return out


def _stats_to_numpy(stats: Mapping[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    return {key: {name: np.asarray(value) for name, value in per.items()} for key, per in stats.items()}


class DatasetMeta:
    """meta/: info.json, stats.json, tasks.parquet and the episodes table of a v3.0 dataset."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"dataset root not found: {self.root}")
        check_v3_layout(self.root)
        self.info: dict[str, Any] = fmt.read_info(self.root)
        for key in ("fps", "features", "data_path"):
            if key not in self.info:
                raise DatasetFormatError(f"{fmt.info_path(self.root)}: missing key {key!r}")
        self.features: dict[str, dict[str, Any]] = self.info["features"]
        for key, ft in self.features.items():
            if not isinstance(ft, dict) or "dtype" not in ft or "shape" not in ft:
                raise DatasetFormatError(f"{fmt.info_path(self.root)}: feature {key!r} needs 'dtype' and 'shape', got {ft!r}")
        missing = [k for k in fmt.DEFAULT_FEATURES if k not in self.features]
        if missing:
            raise DatasetFormatError(f"{fmt.info_path(self.root)}: default features {missing} are missing")
        stats_file = fmt.stats_path(self.root)
        self.stats: dict[str, dict[str, np.ndarray]] = (
            _stats_to_numpy(json.loads(stats_file.read_text(encoding="utf-8"))) if stats_file.exists() else {}
        )
        self.tasks: list[str] = read_tasks(self.root)
        self.episodes_table: pa.Table = read_episodes_table(self.root)
        self.episodes: list[EpisodeInfo] = _episode_infos(self.episodes_table, self.video_keys)
        for row, ep in enumerate(self.episodes):
            if ep.episode_index != row:
                raise DatasetFormatError(
                    f"meta/episodes: row {row} holds episode_index {ep.episode_index}; rows must be episodes 0..N-1 in order"
                )

    # ---------------------------------------------------------------- simple facts
    @property
    def fps(self) -> int:
        return int(self.info["fps"])

    @property
    def codebase_version(self) -> str:
        return str(self.info.get("codebase_version"))

    @property
    def robot_type(self) -> str | None:
        return self.info.get("robot_type")

    @property
    def total_episodes(self) -> int:
        return len(self.episodes)

    @property
    def total_frames(self) -> int:
        return self.episodes[-1].dataset_to_index if self.episodes else 0

    @property
    def video_keys(self) -> list[str]:
        return fmt.video_keys(self.features)

    @property
    def image_keys(self) -> list[str]:
        return fmt.image_keys(self.features)

    @property
    def camera_keys(self) -> list[str]:
        return [k for k, f in self.features.items() if f["dtype"] in fmt.VISUAL_DTYPES]

    def episode_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(dataset_from_index, dataset_to_index) of every episode, for samplers."""
        return (
            np.array([e.dataset_from_index for e in self.episodes], dtype=np.int64),
            np.array([e.dataset_to_index for e in self.episodes], dtype=np.int64),
        )

    def data_file(self, chunk_index: int, file_index: int) -> Path:
        return self.root / self.info["data_path"].format(chunk_index=chunk_index, file_index=file_index)

    def video_file(self, episode_index: int, video_key: str) -> Path:
        span = self.episodes[episode_index].videos[video_key]
        template = self.info.get("video_path") or fmt.VIDEO_PATH
        return self.root / template.format(video_key=video_key, chunk_index=span.chunk_index, file_index=span.file_index)


# ============================================================================================ columns
def _numpy_dtype_like_upstream(dtype: str) -> np.dtype:
    """Upstream turns parquet values into Python scalars then torch tensors: floats -> float32, ints -> int64."""
    np_dtype = np.dtype(dtype)
    if np_dtype.kind == "f":
        return np.dtype(np.float32)
    if np_dtype.kind in "iu":
        return np.dtype(np.int64)
    if np_dtype.kind == "b":
        return np.dtype(bool)
    raise DatasetFormatError(f"unsupported feature dtype {dtype!r}")


def _column_to_numpy(column: pa.ChunkedArray, key: str, feature: Mapping[str, Any]) -> np.ndarray:
    """A numeric data column as an (N, *shape) array; shape-(1,) features become (N,)."""
    shape = tuple(feature["shape"])
    out_dtype = _numpy_dtype_like_upstream(feature["dtype"])
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(arr)
    while pa.types.is_list(arr.type) or pa.types.is_fixed_size_list(arr.type) or pa.types.is_large_list(arr.type):
        arr = arr.flatten()
    if arr.null_count:
        raise DatasetFormatError(f"data column {key!r} has {arr.null_count} null values")
    values = arr.to_numpy(zero_copy_only=False)
    per_row = int(np.prod(shape)) if shape else 1
    if values.size != n * per_row:
        raise DatasetFormatError(
            f"data column {key!r}: expected {per_row} values per row for shape {list(shape)}, got {values.size} for {n} rows"
        )
    values = values.astype(out_dtype, copy=False)
    return values.reshape(n) if shape in ((1,), ()) else values.reshape((n, *shape))


@dataclass
class _ImageColumn:
    """PNG-embedded image feature: bytes per row (or a path relative to the dataset root when not embedded)."""

    data: list[bytes | None]
    paths: list[str | None]


def _decode_png(blob: bytes, where: str) -> np.ndarray:
    import cv2  # only needed for datasets with image features

    img = cv2.imdecode(np.frombuffer(blob, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DatasetFormatError(f"{where}: image bytes could not be decoded")
    if img.ndim == 2:
        return img[:, :, None]
    if img.shape[2] == 3:
        return img[:, :, ::-1]
    if img.shape[2] == 4:
        return img[:, :, [2, 1, 0, 3]]
    return img


# ============================================================================================ reader
class LeRobotDatasetReader:
    """Random access to the frames of a LeRobotDataset v3.0 folder.

    Args:
        root: dataset folder (holding meta/, data/, videos/).
        episodes: read only these episode indices (relative positions 0..len-1 then walk their frames in
            dataset order, as upstream's `episodes=` filter does).
        delta_timestamps: `{key: [seconds, ...]}` windows around each frame; each delta must be a multiple of
            1/fps within `tolerance_s`.
        tolerance_s: allowed |video frame time - query time| and delta rounding error (upstream default 1e-4).
        return_uint8: cameras as uint8 CHW instead of float32 in [0, 1].
        output: "numpy" (default) or "torch" (tensors; 0-d for scalars, bool masks).
        max_open_video_files: video decoders kept open (least recently used are closed).
        decoder_threads: FFmpeg threads per video decoder (1 suits random access and DataLoader workers;
            0 lets FFmpeg choose, which helps a single process reading sequentially).
    """

    def __init__(
        self,
        root: Path | str,
        episodes: Sequence[int] | None = None,
        delta_timestamps: Mapping[str, Sequence[float]] | None = None,
        tolerance_s: float = DEFAULT_TOLERANCE_S,
        return_uint8: bool = False,
        output: str = "numpy",
        max_open_video_files: int = 16,
        decoder_threads: int = 1,
    ) -> None:
        if output not in ("numpy", "torch"):
            raise ValueError(f"output must be 'numpy' or 'torch', got {output!r}")
        self.root = Path(root)
        self.meta = DatasetMeta(self.root)
        self.tolerance_s = float(tolerance_s)
        self.return_uint8 = return_uint8
        self.output = output
        self.fps = self.meta.fps
        self.features = self.meta.features
        self.episodes = self._check_episodes(episodes)
        self.delta_timestamps = dict(delta_timestamps) if delta_timestamps is not None else None
        self.delta_indices = self._delta_indices(self.delta_timestamps) if self.delta_timestamps else None
        self._videos = VideoDecoderPool(max_open_files=max_open_video_files, threads=decoder_threads)
        self._load_data()

    # ---------------------------------------------------------------- construction
    def _check_episodes(self, episodes: Sequence[int] | None) -> list[int] | None:
        if episodes is None:
            return None
        episodes = [int(e) for e in episodes]
        bad = [e for e in episodes if not 0 <= e < self.meta.total_episodes]
        if bad:
            raise ValueError(f"episodes {bad} do not exist: the dataset has episodes 0..{self.meta.total_episodes - 1}")
        return episodes

    def _delta_indices(self, delta_timestamps: Mapping[str, Sequence[float]]) -> dict[str, list[int]]:
        unknown = [k for k in delta_timestamps if k not in self.features]
        if unknown:
            raise ValueError(f"delta_timestamps keys {unknown} are not features of the dataset ({list(self.features)})")
        off_grid = {
            key: [d for d in deltas if abs(d * self.fps - round(d * self.fps)) / self.fps > self.tolerance_s]
            for key, deltas in delta_timestamps.items()
        }
        off_grid = {k: v for k, v in off_grid.items() if v}
        if off_grid:
            raise ValueError(
                f"delta_timestamps must be multiples of 1/fps (fps={self.fps}) within tolerance_s={self.tolerance_s}; "
                f"these are not: {off_grid}"
            )
        return {key: [round(d * self.fps) for d in deltas] for key, deltas in delta_timestamps.items()}

    def _data_files(self) -> list[Path]:
        if self.episodes is None:
            paths = list(fmt.iter_sorted_files(self.root, "data/*/*.parquet"))
        else:
            wanted = {(self.meta.episodes[e].data_chunk_index, self.meta.episodes[e].data_file_index) for e in self.episodes}
            paths = sorted(self.meta.data_file(c, f) for c, f in wanted)
        if not paths:
            raise DatasetFormatError(f"{self.root}: no data files (data/chunk-*/file-*.parquet)")
        return paths

    def _load_data(self) -> None:
        columns = [k for k in fmt.data_feature_keys(self.features)]
        tables = []
        for path in self._data_files():
            table = pq.read_table(path)
            missing = [c for c in columns if c not in table.column_names]
            if missing:
                raise DatasetFormatError(f"{path}: missing data columns {missing}")
            table = table.select(columns)
            if self.episodes is not None:
                mask = np.isin(table.column("episode_index").to_numpy(), self.episodes)
                table = table.filter(pa.array(mask))
            tables.append(table)
        table = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
        self._num_rows = table.num_rows

        self._numeric: dict[str, np.ndarray] = {}
        self._images: dict[str, _ImageColumn] = {}
        self._strings: dict[str, list[str]] = {}
        for key in columns:
            ft = self.features[key]
            col = table.column(key)
            if ft["dtype"] == "image":
                arr = col.combine_chunks()
                self._images[key] = _ImageColumn(
                    data=arr.field("bytes").to_pylist(), paths=arr.field("path").to_pylist()
                )
            elif ft["dtype"] in ("string", "language"):
                self._strings[key] = col.to_pylist()
            else:
                self._numeric[key] = _column_to_numpy(col, key, ft)

        # Absolute `index` -> row: identity for the full dataset (row == index is a v3.0 invariant);
        # a sorted lookup when only some episodes are loaded.
        self._abs_index = self._numeric["index"]
        self._ep_index = self._numeric["episode_index"]
        self._timestamps = self._numeric["timestamp"]
        if self._num_rows > 1 and not np.all(np.diff(self._abs_index) > 0):
            raise DatasetFormatError(f"{self.root}: data rows are not in increasing `index` order")

    # ---------------------------------------------------------------- sizes
    def __len__(self) -> int:
        return self._num_rows

    @property
    def num_frames(self) -> int:
        return self._num_rows

    @property
    def num_episodes(self) -> int:
        return len(self.episodes) if self.episodes is not None else self.meta.total_episodes

    @property
    def episode_indices(self) -> list[int]:
        return list(self.episodes) if self.episodes is not None else list(range(self.meta.total_episodes))

    # ---------------------------------------------------------------- item access
    def _row_of(self, abs_index: int) -> int:
        if self.episodes is None:
            return abs_index
        row = int(np.searchsorted(self._abs_index, abs_index))
        if row >= self._num_rows or self._abs_index[row] != abs_index:
            raise KeyError(f"frame index {abs_index} is not in the loaded episodes {self.episodes}")
        return row

    def _image(self, key: str, row: int) -> np.ndarray:
        col = self._images[key]
        blob = col.data[row]
        where = f"{key} row {row}"
        if blob is None:
            path = col.paths[row]
            if not path:
                raise DatasetFormatError(f"{where}: image has neither bytes nor path")
            blob = (self.root / path).read_bytes()
        hwc = _decode_png(blob, where)
        return np.ascontiguousarray(hwc.transpose(2, 0, 1))

    def _camera_out(self, chw_uint8: np.ndarray) -> np.ndarray:
        if self.return_uint8:
            return chw_uint8
        return chw_uint8.astype(np.float32) / 255  # float32 division, bit-identical to upstream's tensor / 255

    def _value(self, key: str, rows: Sequence[int] | int) -> Any:
        """Non-video value(s) of `key` at data row(s)."""
        if key in self._numeric:
            return np.array(self._numeric[key][rows])
        if key in self._images:
            if isinstance(rows, (int, np.integer)):
                return self._camera_out(self._image(key, int(rows)))
            return np.stack([self._camera_out(self._image(key, int(r))) for r in rows])
        if key in self._strings:
            return self._strings[key][rows] if isinstance(rows, (int, np.integer)) else [self._strings[key][r] for r in rows]
        raise KeyError(key)

    def _video_frames(self, key: str, episode_index: int, timestamps: Sequence[float]) -> np.ndarray:
        span = self.meta.episodes[episode_index].videos[key]
        path = self.meta.video_file(episode_index, key)
        query = [span.from_timestamp + float(ts) for ts in timestamps]
        hwc = self._videos.frames_at(path, query, self.tolerance_s)  # (T, H, W, C)
        frames = np.ascontiguousarray(hwc.transpose(0, 3, 1, 2))
        return self._camera_out(frames)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        if not isinstance(idx, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(idx).__name__}")
        n = self._num_rows
        if not -n <= idx < n:
            raise IndexError(f"frame {idx} out of range for a dataset of {n} frames")
        row = int(idx) % n
        ep_idx = int(self._ep_index[row])
        abs_idx = int(self._abs_index[row])

        item: dict[str, Any] = {}
        for key in self._numeric:
            item[key] = np.array(self._numeric[key][row])  # a copy: callers may modify items freely
        for key in self._images:
            item[key] = self._value(key, row)
        for key in self._strings:
            item[key] = self._strings[key][row]

        query_rows: dict[str, list[int]] = {}
        if self.delta_indices is not None:
            ep = self.meta.episodes[ep_idx]
            start, end = ep.dataset_from_index, ep.dataset_to_index
            for key, deltas in self.delta_indices.items():
                query_abs = [min(max(abs_idx + d, start), end - 1) for d in deltas]
                item[f"{key}_is_pad"] = np.array([not start <= abs_idx + d < end for d in deltas], dtype=bool)
                query_rows[key] = [self._row_of(q) for q in query_abs]
                if key not in self.meta.video_keys:
                    item[key] = self._value(key, query_rows[key])

        for key in self.meta.video_keys:
            if key in query_rows:
                frames = self._video_frames(key, ep_idx, [float(self._timestamps[r]) for r in query_rows[key]])
            else:
                frames = self._video_frames(key, ep_idx, [float(self._timestamps[row])])
            item[key] = frames[0] if frames.shape[0] == 1 else frames  # upstream squeezes a single frame

        item["task"] = self.meta.tasks[int(self._numeric["task_index"][row])]
        return self._to_output(item)

    def _to_output(self, item: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.output == "torch":
            import torch

            for key, value in item.items():
                if isinstance(value, np.ndarray):
                    # (np.ascontiguousarray would turn 0-d scalars into shape (1,))
                    out[key] = torch.from_numpy(value if value.flags.c_contiguous else value.copy(order="C"))
                elif isinstance(value, np.generic):
                    out[key] = torch.from_numpy(np.asarray(value))
                else:
                    out[key] = value
            return out
        for key, value in item.items():
            out[key] = np.asarray(value) if isinstance(value, np.generic) else value
        return out

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self[i]

    # ---------------------------------------------------------------- episodes
    def episode(self, episode_index: int) -> "EpisodeView":
        """The frames of one episode (by its episode_index in the dataset)."""
        if self.episodes is not None and episode_index not in self.episodes:
            raise KeyError(f"episode {episode_index} is not loaded (episodes={self.episodes})")
        if not 0 <= episode_index < self.meta.total_episodes:
            raise KeyError(f"episode {episode_index} does not exist (dataset has {self.meta.total_episodes})")
        ep = self.meta.episodes[episode_index]
        first_row = self._row_of(ep.dataset_from_index)
        return EpisodeView(self, ep, first_row)

    def episode_columns(self, episode_index: int, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Whole numeric columns of one episode as (length, ...) arrays, without decoding any camera."""
        view = self.episode(episode_index)
        rows = slice(view.first_row, view.first_row + view.info.length)
        keys = list(self._numeric) if keys is None else list(keys)
        return {k: self._numeric[k][rows].copy() for k in keys}

    def close(self) -> None:
        self._videos.close()

    def __enter__(self) -> "LeRobotDatasetReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"LeRobotDatasetReader(root={str(self.root)!r}, episodes={self.num_episodes}, frames={len(self)}, "
            f"fps={self.fps}, features={list(self.features)})"
        )


class EpisodeView:
    """Sequence view of one episode's frames: `len`, `[j]` (j-th frame of the episode), iteration."""

    def __init__(self, reader: LeRobotDatasetReader, info: EpisodeInfo, first_row: int) -> None:
        self.reader = reader
        self.info = info
        self.first_row = first_row

    @property
    def episode_index(self) -> int:
        return self.info.episode_index

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.info.tasks

    def __len__(self) -> int:
        return self.info.length

    def __getitem__(self, j: int) -> dict[str, Any]:
        if not -self.info.length <= j < self.info.length:
            raise IndexError(f"frame {j} out of range for episode {self.info.episode_index} of {self.info.length} frames")
        return self.reader[self.first_row + j % self.info.length]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for j in range(self.info.length):
            yield self[j]

