"""Read a LeRobotDataset v3.0 from disk: metadata, random access by frame, delta_timestamps windows, episodes.

`LeRobotDatasetReader(root)[i]` returns the same values as upstream `LeRobotDataset(repo_id, root=root)[i]`:
every feature of the frame (vectors float32 or int64, shape-(1,) features as 0-d arrays, cameras as CHW float32
in [0, 1]), `task` (the task string) and, with `delta_timestamps`, `(T, ...)` windows plus `<key>_is_pad` masks.
The reader is numpy-only (torch is imported only for `output="torch"`) and needs pyarrow, PyAV, and OpenCV for
image (PNG) features. Embedded images are read on demand, a row group at a time with a bounded cache, so an image
dataset larger than RAM can be read. Every path taken from the metadata stays inside the dataset folder
(a dataset from the Hub is untrusted input).

Value conventions copied from upstream so that training code sees identical inputs:
- floating features come back as float32 and integer features as int64 (upstream builds tensors from Python
  scalars: `torch.tensor(float)` is float32 and `torch.tensor(int)` is int64);
- a window position outside the episode holds a copy of the nearest edge frame and its `_is_pad` entry is True;
- a video key with a one-element window is squeezed to (C, H, W), as upstream's `frames.squeeze(0)` does.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import format as fmt
from .errors import DatasetFormatError, DatasetVersionError
from .meta_episodes import EpisodeInfo, VideoSpan, episode_infos, read_episodes_table
from .meta_info import read_info
from .meta_stats import read_stats
from .meta_tasks import read_tasks as _read_tasks
from .video_decode import DEFAULT_TOLERANCE_S, VideoDecoderPool

CONVERT_COMMAND = "python -m lerobot.datasets.v30.convert_dataset_v21_to_v30 --repo-id=<repo_id> --root=<dir>"
CONVERT_COMMAND_HEAD = "python -m lerobot.scripts.convert_dataset_v21_to_v30 --repo-id=<repo_id>"
# Decoded Arrow image columns of recently read row groups kept per reader (see _EmbeddedImages).
DEFAULT_IMAGE_CACHE_MB = 256

__all__ = [
    "DatasetFormatError",
    "DatasetMeta",
    "DatasetVersionError",
    "EpisodeInfo",
    "EpisodeView",
    "LeRobotDatasetReader",
    "VideoSpan",
    "check_v3_layout",
    "column_to_numpy",
    "decode_image_frame",
]


def _major_version(codebase_version: str) -> int | None:
    try:
        return int(str(codebase_version).lstrip("v").split(".")[0])
    except ValueError:
        return None


def check_v3_layout(root: Path) -> None:
    """Raise DatasetVersionError for v1.x/v2.x datasets, DatasetFormatError when info.json is missing."""
    info_file = fmt.info_path(root)
    v2_markers = [p for p in ("meta/episodes.jsonl", "meta/tasks.jsonl", "meta/episodes_stats.jsonl") if (root / p).exists()]
    version = read_info(root).get("codebase_version") if info_file.exists() else None
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
    """meta/tasks.parquet as a list indexed by task_index (meta_tasks.read_tasks)."""
    return _read_tasks(root)


class DatasetMeta:
    """meta/: info.json, stats.json, tasks.parquet and the episodes table of a v3.0 dataset."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"dataset root not found: {self.root}")
        check_v3_layout(self.root)
        self.info: dict[str, Any] = read_info(self.root)
        where = fmt.info_path(self.root)
        for key in ("fps", "features", "data_path"):
            if key not in self.info:
                raise DatasetFormatError(f"{where}: missing key {key!r}")
        if not isinstance(self.info["fps"], int) or isinstance(self.info["fps"], bool) or self.info["fps"] <= 0:
            raise DatasetFormatError(f"{where}: 'fps' must be a positive int, got {self.info['fps']!r}")
        fmt.check_path_template(self.info["data_path"], "data_path")
        self.features: dict[str, dict[str, Any]] = self.info["features"]
        for key, ft in self.features.items():
            if not isinstance(ft, dict) or "dtype" not in ft or "shape" not in ft:
                raise DatasetFormatError(f"{where}: feature {key!r} needs 'dtype' and 'shape', got {ft!r}")
        missing = [k for k in fmt.DEFAULT_FEATURES if k not in self.features]
        if missing:
            raise DatasetFormatError(f"{where}: default features {missing} are missing")
        if self.video_keys:
            fmt.check_path_template(self.info.get("video_path"), "video_path")
        self.stats: dict[str, dict[str, np.ndarray]] = read_stats(self.root)
        self.tasks: list[str] = _read_tasks(self.root)
        self.episodes_table: pa.Table = read_episodes_table(self.root)
        self.episodes: list[EpisodeInfo] = episode_infos(self.episodes_table, self.video_keys)
        self._paths: dict[tuple[str, int, int], Path] = {}  # checked file paths, by (video key or "", chunk, file)

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

    def check_episodes(self, episodes: Sequence[int]) -> list[int]:
        """`episodes` as ints; ValueError naming those the dataset does not have."""
        episodes = [int(e) for e in episodes]
        bad = [e for e in episodes if not 0 <= e < self.total_episodes]
        if bad:
            raise ValueError(f"episodes {bad} do not exist: the dataset has episodes 0..{self.total_episodes - 1}")
        return episodes

    def delta_indices(self, delta_timestamps: Mapping[str, Sequence[float]], tolerance_s: float) -> dict[str, list[int]]:
        """`{feature: [seconds]}` windows as frame offsets (seconds x fps, rounded). ValueError for a key that is not
        a feature, or an offset farther than `tolerance_s` from a multiple of 1/fps."""
        unknown = [k for k in delta_timestamps if k not in self.features]
        if unknown:
            raise ValueError(f"delta_timestamps keys {unknown} are not features of the dataset ({list(self.features)})")
        fps = self.fps
        off_grid = {
            key: [d for d in deltas if abs(d * fps - round(d * fps)) / fps > tolerance_s]
            for key, deltas in delta_timestamps.items()
        }
        off_grid = {k: v for k, v in off_grid.items() if v}
        if off_grid:
            raise ValueError(
                f"delta_timestamps must be multiples of 1/fps (fps={fps}) within tolerance_s={tolerance_s}; "
                f"these are not: {off_grid}"
            )
        return {key: [round(d * fps) for d in deltas] for key, deltas in delta_timestamps.items()}

    def data_file(self, chunk_index: int, file_index: int) -> Path:
        """The data file (chunk, file), from info.json's data_path; UnsafePathError if it would leave the root."""
        key = ("", chunk_index, file_index)
        if key not in self._paths:
            self._paths[key] = fmt.format_path_template(
                self.root, self.info["data_path"], "data_path", chunk_index=chunk_index, file_index=file_index)
        return self._paths[key]

    def video_file(self, episode_index: int, video_key: str) -> Path:
        """The mp4 holding one episode of one camera; UnsafePathError if the path would leave the root."""
        span = self.episodes[episode_index].videos[video_key]
        key = (video_key, span.chunk_index, span.file_index)
        if key not in self._paths:
            self._paths[key] = fmt.format_path_template(
                self.root, self.info["video_path"], "video_path", video_key=video_key,
                chunk_index=span.chunk_index, file_index=span.file_index)
        return self._paths[key]


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


def column_to_numpy(column: pa.ChunkedArray | pa.Array, key: str, feature: Mapping[str, Any]) -> np.ndarray:
    """The data column of numeric feature `key` (described by `feature`, its info.json entry) as an (N, *shape)
    array with upstream's value types (floats as float32, integers as int64); shape-(1,) features become (N,).
    DatasetFormatError when the column holds nulls or a number of values per row other than the shape's."""
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


def decode_image_frame(blob: bytes, feature: Mapping[str, Any], where: str) -> np.ndarray:
    """One frame of an image (PNG) feature as (H, W, C) uint8. A PNG whose header declares another size than the
    feature's shape is refused before decoding (a hostile header can declare gigapixels); any failure is a
    DatasetFormatError that starts with `where` (e.g. the feature and row)."""
    from .video import decode_png  # OpenCV: only needed for datasets with image features

    try:
        return decode_png(blob, _feature_hw(feature))
    except ValueError as exc:
        raise DatasetFormatError(f"{where}: {exc}") from None


def _feature_hw(feature: Mapping[str, Any]) -> tuple[int, int] | None:
    """(height, width) of a camera feature: shape (H, W, C), or (C, H, W) when names say channels come first."""
    shape = tuple(feature.get("shape") or ())
    if len(shape) != 3:
        return None
    names = feature.get("names") or []
    if isinstance(names, list) and len(names) == 3 and names[0] in ("channel", "channels"):
        return int(shape[1]), int(shape[2])
    if shape[0] in (1, 3, 4) and shape[2] not in (1, 3, 4):
        return int(shape[1]), int(shape[2])
    return int(shape[0]), int(shape[1])


class _EmbeddedImages:
    """The image (PNG) features of the loaded rows, read on demand.

    Each loaded row is located by (data file, row group, row in group); the image columns of a row group are read
    when one of its rows is asked for and kept, most recently used first, up to `cache_bytes`. Sequential reading
    reads every row group once; memory stays bounded whatever the dataset size. Safe to pickle into DataLoader
    workers (the cache is not shipped).
    """

    def __init__(self, root: Path, keys: list[str], files: list[Path], row_file: np.ndarray, row_in_file: np.ndarray,
                 cache_bytes: int) -> None:
        self.root = root
        self.keys = keys
        self.files = files
        self._row_file = row_file
        self._cache_bytes = cache_bytes
        metadata = [pq.ParquetFile(f).metadata for f in files]
        self._group_starts = [np.cumsum([0] + [m.row_group(i).num_rows for i in range(m.num_row_groups)]) for m in metadata]
        group = np.zeros(len(row_file), dtype=np.int64)
        offset = np.zeros(len(row_file), dtype=np.int64)
        for f, starts in enumerate(self._group_starts):
            rows = np.flatnonzero(row_file == f)
            g = np.searchsorted(starts, row_in_file[rows], side="right") - 1
            group[rows], offset[rows] = g, row_in_file[rows] - starts[g]
        self._row_group, self._row_offset = group, offset
        self._cache: OrderedDict[tuple[int, int], pa.Table] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = OrderedDict()
        return state

    def _group(self, f: int, g: int) -> pa.Table:
        key = (f, g)
        table = self._cache.get(key)
        if table is None:
            # Closed here, not when collected: the file handle and read buffers go back at once.
            with pq.ParquetFile(self.files[f]) as parquet:
                table = parquet.read_row_group(g, columns=self.keys)
            self._cache[key] = table
            while len(self._cache) > 1 and sum(t.nbytes for t in self._cache.values()) > self._cache_bytes:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        return table

    def png(self, key: str, row: int) -> bytes:
        """The PNG bytes of `key` at loaded row `row` (from the parquet cell, or the file its `path` names)."""
        f, g, i = int(self._row_file[row]), int(self._row_group[row]), int(self._row_offset[row])
        cell = self._group(f, g).column(key)[i].as_py() or {}
        where = f"{self.files[f].relative_to(self.root)} '{key}' row {row}"
        if cell.get("bytes") is not None:
            return cell["bytes"]
        if not cell.get("path"):
            raise DatasetFormatError(f"{where}: image has neither bytes nor path")
        path = fmt.resolve_inside(self.root, cell["path"], where)
        if not path.is_file():
            raise DatasetFormatError(f"{where}: image path {cell['path']!r} is not a file in the dataset")
        return path.read_bytes()


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
        image_cache_mb: embedded PNG data kept in memory (row groups most recently read); image features are
            otherwise read from the data files on demand.
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
        image_cache_mb: float = DEFAULT_IMAGE_CACHE_MB,
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
        self.episodes = self.meta.check_episodes(episodes) if episodes is not None else None
        self.delta_timestamps = dict(delta_timestamps) if delta_timestamps is not None else None
        self.delta_indices = (self.meta.delta_indices(self.delta_timestamps, self.tolerance_s)
                              if self.delta_timestamps else None)
        self._videos = VideoDecoderPool(max_open_files=max_open_video_files, threads=decoder_threads)
        self._load_data(int(image_cache_mb * 1024 * 1024))

    # ---------------------------------------------------------------- construction
    def _data_files(self) -> list[Path]:
        if self.episodes is None:
            paths = list(fmt.iter_sorted_files(self.root, "data/*/*.parquet"))
        else:
            wanted = {(self.meta.episodes[e].data_chunk_index, self.meta.episodes[e].data_file_index) for e in self.episodes}
            paths = sorted(self.meta.data_file(c, f) for c, f in wanted)
        if not paths:
            raise DatasetFormatError(f"{self.root}: no data files (data/chunk-*/file-*.parquet)")
        return paths

    def _load_data(self, image_cache_bytes: int) -> None:
        """Read every non-image column of the loaded rows; image features are read on demand (_EmbeddedImages)."""
        columns = fmt.data_feature_keys(self.features)
        image_keys = [k for k in columns if self.features[k]["dtype"] == "image"]
        eager = [k for k in columns if k not in image_keys]
        files = self._data_files()
        tables, row_file, row_in_file = [], [], []
        for f, path in enumerate(files):
            try:
                present = pq.read_schema(path).names
                missing = [c for c in columns if c not in present]
                if missing:
                    raise DatasetFormatError(f"{path}: missing data columns {missing}")
                table = pq.read_table(path, columns=eager)
            except (pa.ArrowException, OSError) as exc:
                raise DatasetFormatError(f"{path}: unreadable parquet ({exc})") from None
            rows = np.arange(table.num_rows)
            if self.episodes is not None:
                mask = np.isin(table.column("episode_index").to_numpy(), self.episodes)
                table, rows = table.filter(pa.array(mask)), rows[mask]
            tables.append(table)
            row_file.append(np.full(len(rows), f, dtype=np.int32))
            row_in_file.append(rows)
        table = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
        self._num_rows = table.num_rows

        self._numeric: dict[str, np.ndarray] = {}
        self._strings: dict[str, list[str]] = {}
        for key in eager:
            ft = self.features[key]
            col = table.column(key)
            if ft["dtype"] in ("string", "language"):
                self._strings[key] = col.to_pylist()
            else:
                self._numeric[key] = column_to_numpy(col, key, ft)
        self._images = _EmbeddedImages(self.root, image_keys, files, np.concatenate(row_file),
                                       np.concatenate(row_in_file), image_cache_bytes) if image_keys else None

        # Absolute `index` -> row: identity for the full dataset (row == index is a v3.0 invariant);
        # a sorted lookup when only some episodes are loaded.
        self._abs_index = self._numeric["index"]
        self._ep_index = self._numeric["episode_index"]
        self._timestamps = self._numeric["timestamp"]
        if self._num_rows > 1 and not np.all(np.diff(self._abs_index) > 0):
            raise DatasetFormatError(f"{self.root}: data rows are not in increasing `index` order")
        if self.episodes is None and self._num_rows and (self._abs_index[0] != 0 or self._abs_index[-1] != self._num_rows - 1):
            raise DatasetFormatError(f"{self.root}: data rows hold index {self._abs_index[0]}..{self._abs_index[-1]} "
                                     f"for {self._num_rows} rows; row position must equal `index`")

    @property
    def _image_keys(self) -> list[str]:
        return self._images.keys if self._images is not None else []

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
        assert self._images is not None
        hwc = decode_image_frame(self._images.png(key, row), self.features[key], f"'{key}' row {row}")
        return np.ascontiguousarray(hwc.transpose(2, 0, 1))

    def _camera_out(self, chw_uint8: np.ndarray) -> np.ndarray:
        if self.return_uint8:
            return chw_uint8
        return chw_uint8.astype(np.float32) / 255  # float32 division, bit-identical to upstream's tensor / 255

    def _value(self, key: str, rows: Sequence[int] | int) -> Any:
        """Non-video value(s) of `key` at data row(s)."""
        if key in self._numeric:
            return np.array(self._numeric[key][rows])
        if key in self._image_keys:
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
        for key in self._image_keys:
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

