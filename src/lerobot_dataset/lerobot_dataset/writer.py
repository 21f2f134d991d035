"""LeRobotDataset v3.0 writer with streaming video encoding and crash-safe episode commits.

Layout and values follow upstream lerobot (see `format.py`); a dataset written here loads with upstream
`LeRobotDataset`. Differences from upstream are in robustness only:

- Every file is closed after every episode. Data, tasks and meta/episodes files are rewritten to a
  temporary file and atomically renamed over the old one (the data parquet keeps one row group per episode;
  the current data file's episodes are cached in RAM so it is only written, not re-read).
- The commit point of an episode is the atomic replace of its meta/episodes file. Before touching anything,
  `save_episode` writes a journal (`.staging/journal.json`) and hard-links every file it will replace into
  `.staging/backup/`. If the process dies (or the disk fills up) before the commit, `open()` (or the failing
  `save_episode` itself) restores the backups and deletes the files the episode created; after the commit it
  rebuilds info.json and stats.json from meta/episodes. A SIGKILL at any instant loses at most the episode
  in progress.
- Video frames are encoded while recording (one thread per camera, bounded queue; a full queue blocks
  add_frame and is counted in `encoder_stalls`, frames are never dropped). At save time a camera segment that
  starts a new mp4 file is moved there at once; a segment that extends the current file is committed as
  durable pending work (`.staging/pending/<key>/episode-N.mp4`) and stream-copied onto the file by a
  per-camera background thread, so save_episode does not pay for rewriting a file of up to 200 MB. The append
  is idempotent (the file's frame count tells whether it happened); `wait_for_videos()` / `close()` wait for
  it and `open()` finishes appends a crash interrupted.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import format as F
from .stats import Stats, aggregate_stats, flat_episode_stats, stats_from_json, stats_to_json, unflatten_episode_stats, vector_stats
from .video import (
    EncoderError,
    PngImageWorker,
    VideoEncoderConfig,
    VideoSegmentWorker,
    WorkerResult,
    concat_segment,
    probe_video_info,
    video_frame_count,
)

log = logging.getLogger(__name__)

STAGING_DIR = ".staging"
JOURNAL_NAME = "journal.json"
MB = 1024**2
# Data and meta/episodes files are rewritten whole at every save (that is what makes them crash-safe), so a file
# stops taking episodes at this size even when data_files_size_in_mb allows more: it bounds save_episode's cost
# (~0.5 s) and the RAM cache. Smaller files are valid v3.0; upstream's size limit is only an upper bound.
DEFAULT_REWRITE_LIMIT_MB = 20.0


class FrameValidationError(ValueError):
    """A frame does not match the dataset features (the message lists every problem)."""


class EpisodeSaveError(RuntimeError):
    """save_episode failed; the episode was abandoned and the dataset left as it was before it."""


@dataclass
class EpisodeSummary:
    episode_index: int
    length: int
    tasks: list[str]
    dataset_from_index: int
    dataset_to_index: int
    data_chunk_index: int
    data_file_index: int
    video_files: dict[str, tuple[int, int]] = field(default_factory=dict)
    video_timestamps: dict[str, tuple[float, float]] = field(default_factory=dict)
    save_seconds: float = 0.0
    encoder_stalls: int = 0
    # seconds spent in each save stage (encoders_flushed, journal_written, data_written, videos_written, ...)
    stage_seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class _VideoCursor:
    chunk_index: int
    file_index: int
    frames_in_file: int  # committed frames (some may still be pending placement)
    bytes_in_file: int = 0  # size on disk + committed segments still pending


@dataclass
class _PendingVideo:
    """A committed episode's camera segment waiting (in .staging/pending) to be appended to its video file."""

    key: str
    episode_index: int
    chunk_index: int
    file_index: int
    from_frame: int
    num_frames: int


@dataclass
class _ImageLayout:
    """How a camera feature's shape maps to (H, W, C)."""

    height: int
    width: int
    channels: int
    channels_first: bool


def _image_layout(key: str, feature: Mapping[str, Any]) -> _ImageLayout:
    shape = tuple(feature["shape"])
    if len(shape) != 3:
        raise ValueError(f"feature '{key}': image/video shape must be (H, W, C) or (C, H, W), got {shape}")
    names = feature.get("names") or []
    if len(names) == 3 and names[0] in ("channel", "channels"):
        return _ImageLayout(shape[1], shape[2], shape[0], True)
    if len(names) == 3 and names[2] in ("channel", "channels"):
        return _ImageLayout(shape[0], shape[1], shape[2], False)
    if shape[2] in (1, 3, 4):
        return _ImageLayout(shape[0], shape[1], shape[2], False)
    if shape[0] in (1, 3, 4):
        return _ImageLayout(shape[1], shape[2], shape[0], True)
    raise ValueError(f"feature '{key}': cannot tell the channel axis of shape {shape}; set names to [height, width, channels]")


def _abandon_message(ep: int, exc: BaseException, what: str) -> str:
    cause: BaseException | None = exc
    while cause is not None and not (isinstance(cause, OSError) and cause.errno == errno.ENOSPC):
        cause = cause.__cause__
    if cause is not None:
        return f"episode {ep} abandoned: disk full while saving ({cause}); the dataset keeps {ep} episodes"
    return f"episode {ep} abandoned: {what}: {exc!r}; the dataset keeps {ep} episodes"


def _fsync_file(path: Path) -> None:
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tmp_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # no hard links here: copy, and only a complete copy gets the backup's name
        tmp = _tmp_for(dst)
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)


def _conform(table: pa.Table, schema: pa.Schema, path: Path) -> pa.Table:
    """Columns of `table` in `schema` order and types (files written by other tools may order/type them
    differently, e.g. upstream 0.4.4 stores int stats as int64)."""
    missing = [n for n in schema.names if n not in table.column_names]
    if missing:
        raise ValueError(f"{path}: columns {missing} are missing (expected the columns of the dataset features)")
    return table.select(schema.names).cast(schema)


def _read_parquet_table(path: Path) -> pa.Table:
    return pq.ParquetFile(path).read()


def _write_parquet_atomic(path: Path, tables: list[pa.Table], schema: pa.Schema, fsync: bool) -> None:
    """One row group per table, written to a temp file and renamed over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_for(path)
    try:
        with pq.ParquetWriter(tmp, schema, compression="snappy", use_dictionary=True) as w:
            for t in tables:
                w.write_table(t, row_group_size=max(1, t.num_rows))
        if fsync:
            _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_tasks_parquet(path: Path, tasks: list[str], fsync: bool = True) -> None:
    """meta/tasks.parquet: column task_index (int64) + pandas index 'task' (row order == task_index)."""
    df = pd.DataFrame({"task_index": np.arange(len(tasks), dtype=np.int64)}, index=pd.Index(tasks, name="task"))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_for(path)
    try:
        df.to_parquet(tmp)
        if fsync:
            _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_tasks_parquet(path: Path) -> list[str]:
    if not path.exists():
        return []
    df = pd.read_parquet(path)
    df = df.sort_values("task_index")
    if list(df["task_index"]) != list(range(len(df))):
        raise ValueError(f"{path}: task_index must be 0..{len(df) - 1}, got {list(df['task_index'])}")
    return [str(t) for t in df.index]


class LeRobotDatasetWriter:
    """Records episodes into a LeRobotDataset v3.0 folder.

    Use `create(...)` for a new dataset or `open(root)` to append to an existing one, then
    `add_frame(frame, task)` per frame, `save_episode()` or `discard_episode()` per episode, `close()`.
    Call these from one thread. Camera arrays are copied by add_frame, so callers may reuse their buffers.
    While the writer is open, the last episodes' mp4 appends may still be running (`videos_pending`); call
    `wait_for_videos()` before decoding those videos. `close()` waits for them.
    """

    # ------------------------------------------------------------------------------------------ construction
    def __init__(
        self,
        root: Path,
        info: dict[str, Any],
        video_encoder: VideoEncoderConfig,
        fsync: bool = True,
        rewrite_limit_mb: float = DEFAULT_REWRITE_LIMIT_MB,
    ):
        self.root = Path(root)
        self.info = info
        self.fps = int(info["fps"])
        self.features: dict[str, dict[str, Any]] = {k: dict(v) for k, v in info["features"].items()}
        for ft in self.features.values():
            ft["shape"] = tuple(ft["shape"])
        self.video_encoder = video_encoder
        self.fsync = fsync
        if rewrite_limit_mb <= 0:
            raise ValueError(f"rewrite_limit_mb must be > 0, got {rewrite_limit_mb}")
        self.rewrite_limit_mb = float(rewrite_limit_mb)
        self.chunks_size = int(info["chunks_size"])
        self.data_files_size_in_mb = float(info["data_files_size_in_mb"])
        self.video_files_size_in_mb = float(info["video_files_size_in_mb"])

        self._video_keys = F.video_keys(self.features)
        self._image_keys = F.image_keys(self.features)
        self._user_keys = [k for k in self.features if k not in F.DEFAULT_FEATURES]
        self._numeric_keys = [
            k for k in self._user_keys if self.features[k]["dtype"] not in ("image", "video", "string", "language")
        ]
        self._string_keys = [k for k in self._user_keys if self.features[k]["dtype"] in ("string", "language")]
        self._layouts = {k: _image_layout(k, self.features[k]) for k in self._video_keys + self._image_keys}
        self._numeric_dtypes = {k: np.dtype(self.features[k]["dtype"]) for k in self._numeric_keys}
        self._float_keys = {k for k in self._numeric_keys if np.issubdtype(self._numeric_dtypes[k], np.floating)}
        self._data_schema = F.data_schema(self.features)
        self._episodes_schema = F.episodes_schema(self.features)

        # Persistent state (mirrors what is committed on disk).
        self.tasks: list[str] = []
        self.total_episodes = 0
        self.total_frames = 0
        self.stats: dict[str, Stats] = {}
        self._data_cursor: tuple[int, int] | None = None  # (chunk, file) of the current data file
        self._data_tables: list[pa.Table] = []  # episodes of the current data file (one row group each)
        self._video_cursors: dict[str, _VideoCursor | None] = {k: None for k in self._video_keys}
        self._meta_cursor: tuple[int, int] | None = None
        self._meta_table: pa.Table | None = None  # rows of the current meta/episodes file

        # Episode in progress.
        self._buffers: dict[str, list[Any]] = {k: [] for k in self._numeric_keys + self._string_keys}
        self._frame_tasks: list[str] = []
        self._episode_length = 0
        self._closed = False
        self._stalls_at_episode_start = 0
        self._committed = False
        self._lock_fd: int | None = None  # flock on the dataset folder, held while the writer is open
        self._timings: dict[str, float] = {}
        self._stage_t = 0.0
        self._test_hook = None  # tests: callable(stage: str) run at each save stage

        self._workers: dict[str, VideoSegmentWorker | PngImageWorker] = {}
        for k in self._video_keys:
            lay = self._layouts[k]
            self._workers[k] = VideoSegmentWorker(k, self.fps, lay.width, lay.height, video_encoder)
        for k in self._image_keys:
            self._workers[k] = PngImageWorker(k, video_encoder.queue_maxsize, video_encoder.stall_timeout_s)
        # One single-thread executor per camera: that camera's episodes are appended in order.
        self._placers = {k: ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lerobot-place-{k}") for k in self._video_keys}
        self._placements: list[Future] = []
        self._placement_errors: list[BaseException] = []
        self._outstanding: dict[str, list[_PendingVideo]] = {k: [] for k in self._video_keys}
        self._outstanding_lock = threading.Lock()

    @classmethod
    def create(
        cls,
        root: str | Path,
        fps: int,
        features: Mapping[str, Mapping[str, Any]],
        robot_type: str | None = None,
        use_videos: bool = True,
        video_encoder: VideoEncoderConfig | None = None,
        data_files_size_in_mb: float = F.DEFAULT_DATA_FILE_SIZE_IN_MB,
        video_files_size_in_mb: float = F.DEFAULT_VIDEO_FILE_SIZE_IN_MB,
        chunks_size: int = F.DEFAULT_CHUNK_SIZE,
        fsync: bool = True,
        rewrite_limit_mb: float = DEFAULT_REWRITE_LIMIT_MB,
    ) -> "LeRobotDatasetWriter":
        """Create a new dataset folder (fails if `root` exists) and write meta/info.json."""
        root = Path(root)
        if not isinstance(fps, (int, np.integer)) or fps <= 0:
            raise ValueError(f"fps: expected a positive int, got {fps!r}")
        if rewrite_limit_mb <= 0:
            raise ValueError(f"rewrite_limit_mb must be > 0, got {rewrite_limit_mb}")
        if chunks_size <= 0 or data_files_size_in_mb <= 0 or video_files_size_in_mb <= 0:
            raise ValueError(
                f"chunks_size/data_files_size_in_mb/video_files_size_in_mb must be > 0, got "
                f"{chunks_size}/{data_files_size_in_mb}/{video_files_size_in_mb}"
            )
        feats = F.normalize_features(features)
        vkeys = F.video_keys(feats)
        if vkeys and not use_videos:
            raise ValueError(f"use_videos=False but features {vkeys} have dtype 'video'")
        for k in vkeys + F.image_keys(feats):
            lay = _image_layout(k, feats[k])
            if feats[k]["dtype"] == "video" and lay.channels != 3:
                raise ValueError(f"feature '{k}': video features need 3 channels (RGB), got shape {feats[k]['shape']}")
            if feats[k]["dtype"] == "image" and lay.channels not in (1, 3):
                raise ValueError(f"feature '{k}': image features need 1 or 3 channels, got shape {feats[k]['shape']}")
        encoder = video_encoder or VideoEncoderConfig()
        root.mkdir(parents=True, exist_ok=False)
        lock_fd = _lock_dataset(root)
        try:
            info = F.make_info(
                fps, feats, robot_type=robot_type, use_videos=use_videos, chunks_size=chunks_size,
                data_files_size_in_mb=data_files_size_in_mb, video_files_size_in_mb=video_files_size_in_mb,
            )
            F.write_info(root, info)
            w = cls(root, F.read_info(root), encoder, fsync=fsync, rewrite_limit_mb=rewrite_limit_mb)
        except BaseException:
            os.close(lock_fd)
            raise
        w._lock_fd = lock_fd
        return w

    @classmethod
    def open(
        cls,
        root: str | Path,
        video_encoder: VideoEncoderConfig | None = None,
        fsync: bool = True,
        rewrite_limit_mb: float = DEFAULT_REWRITE_LIMIT_MB,
    ) -> "LeRobotDatasetWriter":
        """Open an existing dataset to append episodes, first repairing an interrupted save or recording."""
        root = Path(root)
        if not F.info_path(root).exists():
            raise FileNotFoundError(f"{root}: not a LeRobotDataset (no {F.INFO_PATH})")
        lock_fd = _lock_dataset(root)  # before the repair: never repair under a live writer
        try:
            info = F.read_info(root)
            if info.get("codebase_version") != F.CODEBASE_VERSION:
                raise ValueError(
                    f"{root}: codebase_version {info.get('codebase_version')!r}, this writer needs {F.CODEBASE_VERSION}"
                )
            recover(root)
            info = F.read_info(root)
            if video_encoder is None:
                vinfo = next((f.get("info") for f in info["features"].values() if f["dtype"] == "video" and f.get("info")), None)
                video_encoder = VideoEncoderConfig.from_video_info(vinfo) if vinfo else VideoEncoderConfig()
            w = cls(root, info, video_encoder, fsync=fsync, rewrite_limit_mb=rewrite_limit_mb)
            w._lock_fd = lock_fd
        except BaseException:
            os.close(lock_fd)
            raise
        w._load_state()
        return w

    def _load_state(self) -> None:
        self.tasks = read_tasks_parquet(F.tasks_path(self.root))
        sp = F.stats_path(self.root)
        self.stats = stats_from_json(json.loads(sp.read_text())) if sp.exists() else {}
        meta_files = F.iter_sorted_files(self.root, "meta/episodes/*/*.parquet")
        if not meta_files:
            return
        last_meta = meta_files[-1]
        self._meta_table = _conform(_read_parquet_table(last_meta), self._episodes_schema, last_meta)
        last = self._meta_table.slice(self._meta_table.num_rows - 1).to_pylist()[0]
        self._meta_cursor = (int(last["meta/episodes/chunk_index"]), int(last["meta/episodes/file_index"]))
        self.total_episodes = int(last["episode_index"]) + 1
        self.total_frames = int(last["dataset_to_index"])
        self._data_cursor = (int(last["data/chunk_index"]), int(last["data/file_index"]))
        pf_path = F.data_file_path(self.root, *self._data_cursor)
        pf = pq.ParquetFile(pf_path)
        self._data_tables = [_conform(pf.read_row_group(i), self._data_schema, pf_path) for i in range(pf.num_row_groups)]
        for k in self._video_keys:
            frames = int(round(float(last[f"videos/{k}/to_timestamp"]) * self.fps))
            c, f = int(last[f"videos/{k}/chunk_index"]), int(last[f"videos/{k}/file_index"])
            size = F.video_file_path(self.root, k, c, f).stat().st_size
            self._video_cursors[k] = _VideoCursor(c, f, frames, size)

    # ------------------------------------------------------------------------------------------ properties
    @property
    def episode_length(self) -> int:
        """Frames recorded so far in the episode in progress."""
        return self._episode_length

    @property
    def encoder_backlog(self) -> int:
        """Frames queued in the camera/image workers, not yet encoded."""
        return sum(w.backlog for w in self._workers.values())

    @property
    def encoder_stalls(self) -> int:
        """How many times add_frame had to wait because a worker queue was full (since the writer opened)."""
        return sum(w.stalls for w in self._workers.values())

    @property
    def encoder_stall_seconds(self) -> float:
        return sum(w.stall_seconds for w in self._workers.values())

    @property
    def video_keys(self) -> list[str]:
        return list(self._video_keys)

    @property
    def image_keys(self) -> list[str]:
        return list(self._image_keys)

    # ------------------------------------------------------------------------------------------ recording
    def add_frame(self, frame: Mapping[str, Any], task: str | None = None) -> None:
        """Validate one frame against the features and append it to the episode in progress.

        `frame` holds every user feature (not the 5 default ones). Numeric values are numpy arrays of the exact
        dtype and shape; cameras are uint8 (H, W, C) or (C, H, W) arrays (float in [0, 1] is converted).
        The task is given as `task=` or as frame["task"].
        """
        if self._closed:
            raise RuntimeError("writer is closed")
        task = self._validate(frame, task)
        n = self._episode_length
        if n == 0:
            self._begin_episode()
        for k in self._numeric_keys:
            self._buffers[k].append(np.array(frame[k], copy=True))
        for k in self._string_keys:
            self._buffers[k].append(frame[k])
        try:
            for k, worker in self._workers.items():
                worker.put_frame(self._to_hwc_uint8(k, frame[k]))
        except EncoderError as exc:
            self.discard_episode()
            raise EpisodeSaveError(f"episode {self.total_episodes} abandoned: {exc}") from exc
        self._frame_tasks.append(task)
        self._episode_length = n + 1

    def _begin_episode(self) -> None:
        ep = self.total_episodes
        self._stalls_at_episode_start = self.encoder_stalls
        for k, worker in self._workers.items():
            if k in self._video_keys:
                worker.begin(self._segment_path(k, ep))
            else:
                worker.begin(None)

    def _segment_path(self, key: str, episode_index: int) -> Path:
        return self.root / STAGING_DIR / "segments" / key / f"episode-{episode_index:06d}.mp4"

    def _to_hwc_uint8(self, key: str, value: np.ndarray) -> np.ndarray:
        lay = self._layouts[key]
        arr = value
        if arr.shape != (lay.height, lay.width, lay.channels):  # validated: it is (C, H, W)
            arr = np.transpose(arr, (1, 2, 0))
        if arr.dtype != np.uint8:
            arr = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
            return np.ascontiguousarray(arr)
        # Copy: the caller may reuse its buffer while the worker still holds this frame.
        return np.array(arr, copy=True, order="C")

    def _validate(self, frame: Mapping[str, Any], task: str | None) -> str:
        if not isinstance(frame, Mapping):
            raise FrameValidationError(f"frame: expected a dict of feature -> value, got {type(frame).__name__}")
        errors: list[str] = []
        frame_task = frame.get("task")
        if task is None:
            task = frame_task
        elif frame_task is not None and frame_task != task:
            errors.append(f"task: given both as argument ({task!r}) and in the frame ({frame_task!r})")
        if not isinstance(task, str) or not task:
            errors.append(f"task: expected a non-empty str, got {task!r}")
        keys = set(frame) - {"task"}
        expected = set(self._user_keys)
        missing = sorted(expected - keys)
        extra = sorted(keys - expected)
        if missing:
            errors.append(f"missing features: {missing}")
        for k in extra:
            if k in F.DEFAULT_FEATURES:
                errors.append(f"feature '{k}' is set by the writer and must not be in the frame")
            else:
                errors.append(f"unknown feature '{k}' (dataset features: {self._user_keys})")
        for k in self._numeric_keys:
            if k not in frame:
                continue
            v = frame[k]
            ft = self.features[k]
            if not isinstance(v, np.ndarray):
                errors.append(f"feature '{k}': expected numpy.ndarray of dtype {ft['dtype']} and shape {ft['shape']}, got {type(v).__name__}")
                continue
            if v.dtype != self._numeric_dtypes[k]:
                errors.append(f"feature '{k}': expected dtype {ft['dtype']}, got {v.dtype}")
            if v.shape != ft["shape"]:
                errors.append(f"feature '{k}': expected shape {ft['shape']}, got {v.shape}")
            elif k in self._float_keys and not np.isfinite(v).all():
                bad = "NaN" if np.isnan(v).any() else "inf"
                errors.append(f"feature '{k}': expected finite values, got {bad} in {v.tolist()}")
        for k in self._string_keys:
            if k in frame and not isinstance(frame[k], str):
                errors.append(f"feature '{k}': expected str, got {type(frame[k]).__name__}")
        for k in self._video_keys + self._image_keys:
            if k not in frame:
                continue
            v = frame[k]
            lay = self._layouts[k]
            hwc, chw = (lay.height, lay.width, lay.channels), (lay.channels, lay.height, lay.width)
            if not isinstance(v, np.ndarray):
                errors.append(f"feature '{k}': expected numpy.ndarray uint8 of shape {hwc} (or {chw}), got {type(v).__name__}")
                continue
            if v.shape not in (hwc, chw):
                errors.append(f"feature '{k}': expected shape {hwc} (or {chw}), got {v.shape}")
            if v.dtype != np.uint8:
                if not np.issubdtype(v.dtype, np.floating):
                    errors.append(f"feature '{k}': expected dtype uint8 (or float in [0, 1]), got {v.dtype}")
                elif not (np.isfinite(v).all() and v.min() >= 0.0 and v.max() <= 1.0):
                    errors.append(f"feature '{k}': float images must be finite and in [0, 1], got range [{v.min()}, {v.max()}]")
        if errors:
            raise FrameValidationError("invalid frame: " + "; ".join(errors))
        return task  # type: ignore[return-value]

    def discard_episode(self) -> None:
        """Throw away the episode in progress (frames, encoded segments)."""
        for w in self._workers.values():
            w.abort()
        self._reset_episode()
        staging = self.root / STAGING_DIR / "segments"
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)

    def _reset_episode(self) -> None:
        for buf in self._buffers.values():
            buf.clear()
        self._frame_tasks = []
        self._episode_length = 0

    # ------------------------------------------------------------------------------------------ saving
    def _stage(self, name: str) -> None:
        now = time.monotonic()
        self._timings[name] = now - self._stage_t
        self._stage_t = now
        if self._test_hook is not None:
            self._test_hook(name)

    def save_episode(self) -> EpisodeSummary:
        """Write the episode in progress (data, videos, tasks, episode metadata, info, stats) and commit it."""
        if self._closed:
            raise RuntimeError("writer is closed")
        n = self._episode_length
        if n == 0:
            raise ValueError("save_episode: the episode has no frames (call add_frame first)")
        t0 = time.monotonic()
        self._timings, self._stage_t = {}, t0
        ep = self.total_episodes
        try:
            # All cameras flush in parallel (each worker drains its queue and its encoder's lookahead).
            futures = {k: w.request_end() for k, w in self._workers.items()}
            results = {k: f.result() for k, f in futures.items()}
            self._stage("encoders_flushed")
        except BaseException as exc:
            self.discard_episode()
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise EpisodeSaveError(_abandon_message(ep, exc, "a camera worker failed")) from exc
        for k, r in results.items():
            if r.num_frames != n:
                self.discard_episode()
                raise EpisodeSaveError(f"episode {ep} abandoned: '{k}' encoded {r.num_frames} frames, expected {n}")
        self._committed = False
        try:
            summary = self._commit_episode(ep, n, results)
        except BaseException as exc:
            if self._committed:
                # The episode is in meta/episodes; only info.json/stats.json may be stale. The journal stays,
                # so open() (or the next successful save) brings them up to date.
                self._reset_episode()
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                raise EpisodeSaveError(
                    f"episode {ep} was saved, but updating info.json/stats.json failed: {exc!r} "
                    "(LeRobotDatasetWriter.open() repairs them)"
                ) from exc
            try:
                rollback(self.root)
            except Exception as rb_exc:  # noqa: BLE001 - open() will retry the rollback from the journal
                log.error("rollback of episode %d failed (open() will retry): %r", ep, rb_exc)
            self.discard_episode()
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise EpisodeSaveError(_abandon_message(ep, exc, "saving failed")) from exc
        self._reset_episode()
        for sub in ("segments", "backup"):
            shutil.rmtree(self.root / STAGING_DIR / sub, ignore_errors=True)
        summary.save_seconds = time.monotonic() - t0
        summary.encoder_stalls = self.encoder_stalls - self._stalls_at_episode_start
        summary.stage_seconds = dict(self._timings)
        return summary

    def _commit_episode(self, ep: int, n: int, results: dict[str, WorkerResult]) -> EpisodeSummary:
        root = self.root
        # ---- tasks
        new_tasks = list(self.tasks)
        ep_tasks: list[str] = []
        for t in self._frame_tasks:
            if t not in ep_tasks:
                ep_tasks.append(t)
        for t in ep_tasks:
            if t not in new_tasks:
                new_tasks.append(t)
        task_to_index = {t: i for i, t in enumerate(new_tasks)}
        task_index = np.fromiter((task_to_index[t] for t in self._frame_tasks), dtype=np.int64, count=n)

        # ---- columns
        frame_index = np.arange(n, dtype=np.int64)
        columns: dict[str, np.ndarray | list] = {}
        for k in self._numeric_keys:
            columns[k] = np.stack(self._buffers[k])
        for k in self._string_keys:
            columns[k] = list(self._buffers[k])
        columns["timestamp"] = (frame_index / self.fps).astype(np.float32)
        columns["frame_index"] = frame_index
        columns["episode_index"] = np.full(n, ep, dtype=np.int64)
        columns["index"] = np.arange(self.total_frames, self.total_frames + n, dtype=np.int64)
        columns["task_index"] = task_index

        # ---- stats (numeric + default features here, cameras from their workers)
        ep_stats: dict[str, Stats] = {}
        for k in F.stats_feature_keys(self.features):
            if k in results:
                stats = results[k].stats
                assert stats is not None
                ep_stats[k] = stats
            else:
                arr = columns[k]
                ep_stats[k] = vector_stats(np.asarray(arr).reshape(n, -1) if self.features[k]["shape"] == (1,) else np.asarray(arr))
        ep_table = self._episode_table(n, columns, results)

        # ---- features[key]["info"] of cameras seen for the first time (probed on the segment, as upstream probes
        # the first episode's file)
        new_video_info: dict[str, dict[str, Any]] = {}
        for k in self._video_keys:
            if not self.features[k].get("info"):
                seg = results[k].segment_path
                assert seg is not None
                new_video_info[k] = {**probe_video_info(seg), **self.video_encoder.info_fields()}

        # ---- plan files
        staged: list[Path] = []  # files replaced in place (hard-linked to a backup first)
        created: list[Path] = []
        data_cursor, data_tables = self._plan_data(ep_table)
        data_path = F.data_file_path(root, *data_cursor)
        (staged if data_path.exists() else created).append(data_path)
        video_plan: dict[str, tuple[_VideoCursor, bool, float, float]] = {}
        for k in self._video_keys:
            seg = results[k].segment_path
            assert seg is not None
            cur = self._video_cursors[k]
            seg_mb = seg.stat().st_size / MB
            if cur is None:
                target, new_file = _VideoCursor(0, 0, 0), True
            elif cur.frames_in_file > 0 and cur.bytes_in_file / MB + seg_mb >= self.video_files_size_in_mb:
                c, f = F.next_chunk_file(cur.chunk_index, cur.file_index, self.chunks_size)
                target, new_file = _VideoCursor(c, f, 0), True
            else:
                target, new_file = cur, False
            # A segment that starts a file is moved there now (instant); one that extends a file is appended
            # in the background after the commit.
            if new_file:
                created.append(F.video_file_path(root, k, target.chunk_index, target.file_index))
            else:
                created.append(_pending_path(root, k, ep))
            from_ts = target.frames_in_file / self.fps
            to_ts = (target.frames_in_file + n) / self.fps
            video_plan[k] = (target, new_file, from_ts, to_ts)
        tasks_file = F.tasks_path(root)
        if new_tasks != self.tasks:
            (staged if tasks_file.exists() else created).append(tasks_file)
        meta_cursor, meta_new = self._plan_meta()
        meta_path = F.episodes_file_path(root, *meta_cursor)
        (created if meta_new else staged).append(meta_path)

        # ---- journal + backups, then modify files (any failure before the meta replace rolls back)
        staging = root / STAGING_DIR
        journal = {
            "episode_index": ep,
            "backups": [[str(p.relative_to(root)), str(_backup_path(root, p).relative_to(root))] for p in staged],
            "created": [str(p.relative_to(root)) for p in created],
        }
        F.write_json_atomic(staging / JOURNAL_NAME, journal)
        for p in staged:
            _link_or_copy(p, _backup_path(root, p))
        self._stage("journal_written")

        _write_parquet_atomic(data_path, data_tables, self._data_schema, self.fsync)
        self._stage("data_written")

        # Segments become durable pending work; they are appended to the video files in the background
        # once the episode is committed (see _place_pending_video), so save_episode never waits for a remux.
        for k in self._video_keys:
            seg = results[k].segment_path
            assert seg is not None
            target, new_file, _, _ = video_plan[k]
            dst = F.video_file_path(root, k, target.chunk_index, target.file_index) if new_file else _pending_path(root, k, ep)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(seg, dst)
            if self.fsync:
                F.fsync_dir(dst.parent)
        self._stage("segments_staged")

        if new_tasks != self.tasks:
            write_tasks_parquet(tasks_file, new_tasks, self.fsync)
        self._stage("tasks_written")

        row: dict[str, Any] = {
            "episode_index": ep,
            "tasks": ep_tasks,
            "length": n,
            "data/chunk_index": data_cursor[0],
            "data/file_index": data_cursor[1],
            "dataset_from_index": self.total_frames,
            "dataset_to_index": self.total_frames + n,
        }
        for k in self._video_keys:
            target, _, from_ts, to_ts = video_plan[k]
            row[f"videos/{k}/chunk_index"] = target.chunk_index
            row[f"videos/{k}/file_index"] = target.file_index
            row[f"videos/{k}/from_timestamp"] = from_ts
            row[f"videos/{k}/to_timestamp"] = to_ts
        row.update(flat_episode_stats(ep_stats))
        row["meta/episodes/chunk_index"] = meta_cursor[0]
        row["meta/episodes/file_index"] = meta_cursor[1]
        row_table = pa.Table.from_pylist([row], schema=self._episodes_schema)
        meta_table = row_table if meta_new or self._meta_table is None else pa.concat_tables([self._meta_table, row_table])
        _write_parquet_atomic(meta_path, [meta_table], self._episodes_schema, self.fsync)
        if self.fsync:
            F.fsync_dir(meta_path.parent)
        # ======== COMMITTED: the episode is in meta/episodes. Everything below is re-derivable by recover().
        self._committed = True

        self.tasks = new_tasks
        self.total_episodes = ep + 1
        self.total_frames += n
        self.stats = aggregate_stats([self.stats, ep_stats]) if self.stats else ep_stats
        self._data_cursor, self._data_tables = data_cursor, data_tables
        pending: list[_PendingVideo] = []
        for k in self._video_keys:
            target, new_file, _, _ = video_plan[k]
            placed = F.video_file_path(root, k, target.chunk_index, target.file_index) if new_file else _pending_path(root, k, ep)
            seg_bytes = placed.stat().st_size
            self._video_cursors[k] = _VideoCursor(
                target.chunk_index, target.file_index, target.frames_in_file + n, target.bytes_in_file + seg_bytes
            )
            if not new_file:
                pending.append(_PendingVideo(k, ep, target.chunk_index, target.file_index, target.frames_in_file, n))
        self._meta_cursor, self._meta_table = meta_cursor, meta_table
        for job in pending:  # at once, so that no later failure can leave a committed segment unscheduled
            self._submit_placement(job)
        for k, vinfo in new_video_info.items():
            self.features[k]["info"] = vinfo
        self._stage("meta_written")

        self._write_info_and_stats()
        self._stage("info_written")
        for p in staged:
            _backup_path(root, p).unlink(missing_ok=True)
        (staging / JOURNAL_NAME).unlink(missing_ok=True)

        return EpisodeSummary(
            episode_index=ep,
            length=n,
            tasks=ep_tasks,
            dataset_from_index=row["dataset_from_index"],
            dataset_to_index=row["dataset_to_index"],
            data_chunk_index=data_cursor[0],
            data_file_index=data_cursor[1],
            video_files={k: (video_plan[k][0].chunk_index, video_plan[k][0].file_index) for k in self._video_keys},
            video_timestamps={k: (video_plan[k][2], video_plan[k][3]) for k in self._video_keys},
        )

    def _submit_placement(self, job: _PendingVideo) -> None:
        with self._outstanding_lock:
            self._outstanding[job.key].append(job)
        self._placements.append(self._placers[job.key].submit(self._place_outstanding, job.key))
        self._placements = [f for f in self._placements if not f.done()]

    def _place_outstanding(self, key: str) -> None:
        """Append this camera's outstanding segments in episode order (earlier failures are retried first)."""
        while True:
            with self._outstanding_lock:
                if not self._outstanding[key]:
                    return
                job = self._outstanding[key][0]
            try:
                place_pending_video(self.root, job, self.fsync)
            except BaseException as exc:
                log.error("%s: appending episode %d to its video file failed (retried later): %r", key, job.episode_index, exc)
                self._placement_errors.append(exc)
                return
            with self._outstanding_lock:
                self._outstanding[key].pop(0)

    @property
    def videos_pending(self) -> int:
        """Committed camera segments not yet appended to their video files."""
        with self._outstanding_lock:
            return sum(len(v) for v in self._outstanding.values())

    def wait_for_videos(self, timeout: float | None = None) -> None:
        """Block until every saved episode's video is in place (retrying failed appends once);
        raises EpisodeSaveError if some append still fails (the segments stay pending for open())."""
        for f in list(self._placements):
            f.exception(timeout)
        with self._outstanding_lock:
            retry = [k for k, v in self._outstanding.items() if v]
        if retry and not self._closed:
            self._placement_errors = []
            for f in [self._placers[k].submit(self._place_outstanding, k) for k in retry]:
                f.exception(timeout)
        elif retry:
            for k in retry:
                self._place_outstanding(k)
        self._placements = []
        if self.videos_pending:
            errs, self._placement_errors = self._placement_errors or [RuntimeError("unknown")], []
            raise EpisodeSaveError(
                f"{len(errs)} video append(s) failed, first: {errs[0]!r}. The segments are kept in "
                f"{self.root / STAGING_DIR / 'pending'}; LeRobotDatasetWriter.open() finishes them."
            ) from errs[0]

    def _write_info_and_stats(self) -> None:
        self.info["features"] = self.features
        self.info["total_episodes"] = self.total_episodes
        self.info["total_frames"] = self.total_frames
        self.info["total_tasks"] = len(self.tasks)
        self.info["splits"] = F.splits_for(self.total_episodes)
        F.write_json_atomic(F.stats_path(self.root), stats_to_json(self._ordered_stats(self.stats)))
        F.write_info(self.root, self.info)

    def _ordered_stats(self, stats: Mapping[str, Stats]) -> dict[str, Stats]:
        return {k: stats[k] for k in self.features if k in stats}

    def _episode_table(self, n: int, columns: Mapping[str, Any], results: Mapping[str, WorkerResult]) -> pa.Table:
        arrays = []
        for fld in self._data_schema:
            k = fld.name
            ft = self.features[k]
            if ft["dtype"] == "image":
                pngs = results[k].png_frames
                assert pngs is not None
                arrays.append(
                    pa.StructArray.from_arrays(
                        [pa.array(pngs, pa.binary()), pa.array([F.IMAGE_FRAME_NAME.format(frame_index=i) for i in range(n)], pa.string())],
                        fields=list(fld.type),
                    )
                )
            elif ft["dtype"] in ("string", "language"):
                arrays.append(pa.array(columns[k], pa.string()))
            elif pa.types.is_fixed_size_list(fld.type):
                values = np.ascontiguousarray(columns[k]).reshape(-1)
                arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(values, fld.type.value_type), fld.type.list_size))
            elif pa.types.is_list(fld.type):
                arrays.append(pa.array(np.asarray(columns[k]).tolist(), fld.type))
            else:
                arrays.append(pa.array(np.asarray(columns[k]).reshape(n), fld.type))
        return pa.Table.from_arrays(arrays, schema=self._data_schema)

    def _plan_data(self, ep_table: pa.Table) -> tuple[tuple[int, int], list[pa.Table]]:
        """Which data file the episode goes to (upstream's size estimate), and that file's row groups."""
        if self._data_cursor is None:
            return (0, 0), [ep_table]
        path = F.data_file_path(self.root, *self._data_cursor)
        frames = sum(t.num_rows for t in self._data_tables)
        size_mb = path.stat().st_size / MB if path.exists() else 0.0
        limit = min(self.data_files_size_in_mb, self.rewrite_limit_mb)
        if frames > 0 and size_mb + (size_mb / frames) * ep_table.num_rows >= limit:
            return F.next_chunk_file(*self._data_cursor, self.chunks_size), [ep_table]
        return self._data_cursor, self._data_tables + [ep_table]

    def _plan_meta(self) -> tuple[tuple[int, int], bool]:
        if self._meta_cursor is None or self._meta_table is None:
            return (0, 0), True
        path = F.episodes_file_path(self.root, *self._meta_cursor)
        rows = self._meta_table.num_rows
        size_mb = path.stat().st_size / MB if path.exists() else 0.0
        limit = min(self.data_files_size_in_mb, self.rewrite_limit_mb)
        if rows > 0 and size_mb + size_mb / rows >= limit:
            return F.next_chunk_file(*self._meta_cursor, self.chunks_size), True
        return self._meta_cursor, False

    # ------------------------------------------------------------------------------------------ closing
    def close(self) -> None:
        """Stop the workers. An unsaved episode in progress is discarded (with a warning)."""
        if self._closed:
            return
        if self._episode_length:
            log.warning("close(): discarding the unsaved episode in progress (%d frames)", self._episode_length)
            self.discard_episode()
        for w in self._workers.values():
            w.stop()
        for ex in self._placers.values():
            ex.shutdown(wait=True)
        self._closed = True
        try:
            self.wait_for_videos()
            staging = self.root / STAGING_DIR
            if not (staging / JOURNAL_NAME).exists() and not any((staging / "pending").glob("*/*.mp4")):
                shutil.rmtree(staging, ignore_errors=True)
        finally:
            self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def __enter__(self) -> "LeRobotDatasetWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # safety net: stop threads; never raise from a finalizer
        try:
            if not getattr(self, "_closed", True):
                for w in self._workers.values():
                    w.stop(timeout=1.0)
                self._release_lock()
        except Exception:  # noqa: BLE001
            pass


def _lock_dataset(root: Path) -> int:
    """Exclusive advisory lock (flock) on the dataset folder; the kernel drops it when the process dies."""
    fd = os.open(str(root), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(f"{root}: the dataset is open in another LeRobotDatasetWriter (this or another process)") from None
    return fd


# ---------------------------------------------------------------------------------------------- recovery
def _pending_path(root: Path, key: str, episode_index: int) -> Path:
    return root / STAGING_DIR / "pending" / key / f"episode-{episode_index:06d}.mp4"


def place_pending_video(root: Path, job: _PendingVideo, fsync: bool = True) -> None:
    """Append (or move) a committed episode's segment to its video file. Idempotent: safe to redo after a crash."""
    seg = _pending_path(root, job.key, job.episode_index)
    if not seg.exists():
        return
    target = F.video_file_path(root, job.key, job.chunk_index, job.file_index)
    target.parent.mkdir(parents=True, exist_ok=True)
    have = video_frame_count(target) if target.exists() else 0
    if have == job.from_frame + job.num_frames:  # appended before an interruption; only the cleanup was lost
        seg.unlink()
        return
    if have != job.from_frame:
        raise RuntimeError(
            f"{target}: holds {have} frames, expected {job.from_frame} before appending episode {job.episode_index} "
            f"({job.num_frames} frames)"
        )
    if not target.exists():
        os.replace(seg, target)
    else:
        tmp = _tmp_for(target)
        try:
            concat_segment(target, seg, tmp)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        seg.unlink()
    if fsync:
        F.fsync_dir(target.parent)


def complete_pending_videos(root: Path) -> int:
    """Place every pending segment of a committed episode (in episode order). Returns how many were placed."""
    root = Path(root)
    base = root / STAGING_DIR / "pending"
    segs = sorted(base.glob("*/episode-*.mp4")) if base.exists() else []
    if not segs:
        return 0
    rows = {}
    for p in F.iter_sorted_files(root, "meta/episodes/*/*.parquet"):
        for r in pq.read_table(p).to_pylist():
            rows[int(r["episode_index"])] = r
    fps = int(F.read_info(root)["fps"])
    done = 0
    for seg in sorted(segs, key=lambda p: (p.parent.name, p.name)):
        key = seg.parent.name
        ep = int(seg.stem.split("-")[1])
        r = rows.get(ep)
        if r is None:  # not committed (a rollback removes these; stay safe anyway)
            seg.unlink()
            continue
        job = _PendingVideo(
            key, ep, int(r[f"videos/{key}/chunk_index"]), int(r[f"videos/{key}/file_index"]),
            int(round(float(r[f"videos/{key}/from_timestamp"]) * fps)), int(r["length"]),
        )
        place_pending_video(root, job)
        done += 1
    log.warning("%s: appended %d pending episode segment(s) to their video files", root, done)
    return done


def _backup_path(root: Path, path: Path) -> Path:
    return root / STAGING_DIR / "backup" / path.relative_to(root)


def _committed_episode_indices(root: Path) -> set[int]:
    out: set[int] = set()
    for p in F.iter_sorted_files(root, "meta/episodes/*/*.parquet"):
        out.update(pq.read_table(p, columns=["episode_index"]).column(0).to_pylist())
    return out


def rollback(root: Path) -> bool:
    """Undo or finish the save described by the journal. Returns True if a journal was processed."""
    root = Path(root)
    jpath = root / STAGING_DIR / JOURNAL_NAME
    if not jpath.exists():
        return False
    journal = json.loads(jpath.read_text())
    ep = int(journal["episode_index"])
    committed = ep in _committed_episode_indices(root)
    if committed:
        for _, backup in journal["backups"]:
            (root / backup).unlink(missing_ok=True)
        log.warning("%s: episode %d was committed before the interruption; rebuilding info.json and stats.json", root, ep)
    else:
        for orig, backup in journal["backups"]:
            if (root / backup).exists():
                os.replace(root / backup, root / orig)
        for rel in journal["created"]:
            (root / rel).unlink(missing_ok=True)
        log.warning("%s: rolled back the interrupted save of episode %d", root, ep)
    rebuild_info_and_stats(root)
    jpath.unlink(missing_ok=True)
    return True


def _remove_temp_files(root: Path) -> None:
    for sub in ("data", "videos", "meta"):
        base = root / sub
        if base.exists():
            for p in base.rglob(".*.tmp"):
                p.unlink(missing_ok=True)


def recover(root: str | Path) -> bool:
    """Bring a dataset folder back to its last committed episode. Returns True if anything was repaired."""
    root = Path(root)
    _remove_temp_files(root)
    repaired = rollback(root)
    repaired = complete_pending_videos(root) > 0 or repaired
    staging = root / STAGING_DIR
    if staging.exists():
        repaired = True
        log.warning("%s: removing the staging folder of an interrupted episode", root)
        shutil.rmtree(staging, ignore_errors=True)
    return repaired


def rebuild_info_and_stats(root: Path) -> None:
    """Recompute info.json counters, video info and stats.json from meta/episodes and tasks.parquet."""
    info = F.read_info(root)
    meta_files = F.iter_sorted_files(root, "meta/episodes/*/*.parquet")
    rows: list[dict[str, Any]] = []
    for p in meta_files:
        rows += pq.read_table(p).to_pylist()
    tasks = read_tasks_parquet(F.tasks_path(root))
    info["total_episodes"] = len(rows)
    info["total_frames"] = int(rows[-1]["dataset_to_index"]) if rows else 0
    info["total_tasks"] = len(tasks)
    info["splits"] = F.splits_for(len(rows)) if rows else {}
    features = info["features"]
    if rows:
        for k, ft in features.items():
            if ft["dtype"] == "video" and not ft.get("info"):
                first = F.video_file_path(root, k, int(rows[0][f"videos/{k}/chunk_index"]), int(rows[0][f"videos/{k}/file_index"]))
                if not first.exists():
                    first = _pending_path(root, k, 0)
                vinfo = probe_video_info(first)
                vinfo.update(VideoEncoderConfig.from_video_info(vinfo).info_fields())
                ft["info"] = vinfo
        stats = aggregate_stats([unflatten_episode_stats(r) for r in rows])
        F.write_json_atomic(F.stats_path(root), stats_to_json({k: stats[k] for k in features if k in stats}))
    else:
        F.stats_path(root).unlink(missing_ok=True)
    F.write_info(root, info)


__all__ = [
    "EpisodeSaveError",
    "EpisodeSummary",
    "FrameValidationError",
    "LeRobotDatasetWriter",
    "VideoEncoderConfig",
    "EncoderError",
    "read_tasks_parquet",
    "recover",
    "rebuild_info_and_stats",
    "write_tasks_parquet",
]
