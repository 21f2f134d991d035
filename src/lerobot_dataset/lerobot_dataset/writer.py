"""LeRobotDataset v3.0 writer with streaming video encoding and crash-safe episode commits.

Layout and values follow upstream lerobot (see `format.py`); a dataset written here loads with upstream
`LeRobotDataset`. Differences from upstream are in robustness only:

- The dataset folder appears with the first saved episode. `create()` only checks that the folder is free (missing,
  empty, or an earlier dataset with no episode, which is reused); the folder is made when the first frame arrives,
  and a writer closed without a saved episode removes what it made, so an interrupted start leaves nothing behind.
- Every file is closed after every episode. Data, tasks and meta/episodes files are rewritten to a temporary file
  and atomically renamed over the old one (durable_io), with the folder flushed after each rename. The data parquet
  keeps one row group per episode (image episodes larger than IMAGE_ROW_GROUP_BYTES are split into several).
- The commit point of an episode is the atomic replace of its meta/episodes file. Before touching anything,
  `save_episode` hard-links every file it will replace into `.staging/backup/` (durably), then writes a journal
  (`.staging/journal.json`) listing the backups and the files it will create. If the process dies (or the disk
  fills up) before the commit, `open()` (or the failing `save_episode` itself) restores the backups and deletes the
  files the episode created; after the commit it rebuilds info.json and stats.json from meta/episodes
  (`recovery.py`). A SIGKILL or a power loss at any instant loses at most the episode in progress.
- Video frames are encoded while recording (one thread per camera, bounded queue; a full queue blocks add_frame
  and is counted in `encoder_stalls`, frames are never dropped). At save time a camera segment that starts a new
  mp4 file is moved there at once; a segment that extends the current file is committed as durable pending work
  (`.staging/pending/<key>/episode-N.mp4`) and stream-copied onto the file by a per-camera background thread, so
  save_episode does not pay for rewriting a file of up to 200 MB. `wait_for_videos()` / `close()` wait for it and
  `open()` finishes appends a crash interrupted.
- Image (PNG) features are encoded while recording into a spill file per episode, not kept in RAM.
"""

from __future__ import annotations

import errno
import logging
import shutil
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import durable_io, recovery
from . import format as F
from .errors import DatasetError, DatasetExistsError, DatasetFormatError
from .format import ChunkFile
from .locking import lock_dataset, release
from .meta_episodes import episode_stats_columns, episodes_files, write_episodes_file
from .meta_info import make_info, read_info, write_info
from .meta_stats import read_stats, write_stats
from .meta_tasks import read_tasks, write_tasks
from .recovery import STAGING_DIR, PendingVideo, pending_segment_path, place_pending_video, rebuild_info_and_stats, recover
from .stats import Stats, aggregate_stats, vector_stats
from .video import (
    EncoderError,
    EncoderHungError,
    PngImageWorker,
    VideoEncoderConfig,
    VideoSegmentWorker,
    WorkerResult,
    probe_video_info,
)

log = logging.getLogger(__name__)

MB = 1024**2
# Data and meta/episodes files are rewritten whole at every save (that is what makes them crash-safe), so a file
# stops taking episodes at this size even when data_files_size_in_mb allows more: it bounds save_episode's cost
# (~0.5 s) and the RAM cache. Smaller files are valid v3.0; upstream's size limit is only an upper bound.
DEFAULT_REWRITE_LIMIT_MB = 20.0
# An image episode is written in row groups of at most this many PNG bytes, read back from its spill file one
# group at a time, so saving a long image episode never holds it whole in memory.
IMAGE_ROW_GROUP_BYTES = 64 * MB


class FrameValidationError(DatasetError, ValueError):
    """A frame does not match the dataset features (the message lists every problem)."""


class EpisodeSaveError(DatasetError, RuntimeError):
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
    """The mp4 file a camera appends to, and how much it holds."""

    file: ChunkFile
    frames_in_file: int  # committed frames (some may still be pending placement)
    bytes_in_file: int = 0  # size on disk + committed segments still pending


@dataclass
class _ImageLayout:
    """How a camera feature's shape maps to (H, W, C)."""

    height: int
    width: int
    channels: int
    channels_first: bool


@dataclass
class _EpisodeContent:
    """The episode in progress turned into what gets written: rows, statistics, tasks, camera results."""

    episode_index: int
    length: int
    first_index: int  # global `index` of its first frame
    episode_tasks: list[str]  # its tasks, in order of first use
    tasks_after: list[str]  # the dataset's task list once it is saved
    columns: dict[str, Any]  # every non-camera data column (defaults included), length rows each
    stats: dict[str, Stats]
    results: dict[str, WorkerResult]  # per camera / image feature
    new_video_info: dict[str, dict[str, Any]]  # features[key]["info"] of cameras saved for the first time


@dataclass
class _VideoTarget:
    """Where one camera's segment of the episode goes."""

    key: str
    file: ChunkFile
    frames_before: int  # frames the file holds before this segment
    bytes_before: int
    starts_file: bool  # True: the segment becomes the file now; False: it is appended in the background later
    segment: Path  # the encoded segment, in .staging/segments


@dataclass
class _CommitPlan:
    """Every file one save touches, decided before any is written (the journal is made from it)."""

    content: _EpisodeContent
    data_file: ChunkFile
    data_starts_file: bool
    videos: dict[str, _VideoTarget]
    meta_file: ChunkFile
    meta_starts_file: bool
    writes_tasks: bool
    writes_first_info: bool  # the dataset's first save also writes info.json before its commit
    # The episode's data rows, built once; None for image features (streamed from their spill files instead).
    episode_tables: list[pa.Table] | None = None
    replaced: list[Path] = field(default_factory=list)  # existing files rewritten (backed up first)
    created: list[Path] = field(default_factory=list)  # new files (deleted on rollback)


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


def _conform(table: pa.Table, schema: pa.Schema, path: Path) -> pa.Table:
    """Columns of `table` in `schema` order and types (files written by other tools may order/type them
    differently, e.g. upstream 0.4.4 stores int stats as int64)."""
    missing = [n for n in schema.names if n not in table.column_names]
    if missing:
        raise DatasetFormatError(f"{path}: columns {missing} are missing (expected the columns of the dataset features)")
    return table.select(schema.names).cast(schema)


# ---------------------------------------------------------------------------------------------- a new dataset's folder
def _holds_no_episode(root: Path) -> bool:
    """info.json says 0 episodes (or is absent) and there is no episode metadata or data."""
    if episodes_files(root) or any(root.glob("data/*/*.parquet")):
        return False
    if not F.info_path(root).exists():
        return True
    try:
        return int(read_info(root).get("total_episodes") or 0) == 0
    except (DatasetFormatError, TypeError, ValueError):
        return False


def _new_dataset_leftovers(root: Path) -> list[Path]:
    """What a new dataset may replace in `root`: an info.json of a dataset with no episode (left by an interrupted
    start, or by upstream's create()) and the staging folder of a first episode that was never saved. Raises
    DatasetExistsError when the folder holds episodes or anything else."""
    if not root.exists():
        return []
    if not root.is_dir():
        raise DatasetExistsError(f"{root} is a file, not a folder; choose a new folder for the dataset")
    files = sorted(p for p in root.rglob("*") if not p.is_dir())
    interrupted_first_save = recovery.journal_path(root).exists() and not episodes_files(root)
    staging = root / STAGING_DIR
    others = []
    for p in files:
        if p.is_relative_to(staging) or interrupted_first_save:
            continue
        if p == F.info_path(root) and _holds_no_episode(root):
            continue
        others.append(p.relative_to(root).as_posix())
    if others:
        if F.info_path(root).exists() and not _holds_no_episode(root):
            raise DatasetExistsError(f"{root} already holds a dataset (with episodes, or an unreadable {F.INFO_PATH}); "
                                     f"append to it, or choose a new folder")
        listing = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise DatasetExistsError(f"{root} already exists and holds other files ({listing}); choose a new folder")
    return files


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
        self._data_cursor: ChunkFile | None = None  # the current data file
        # Row groups of the current data file, kept to rewrite it without reading it back; None = read them from
        # the file (datasets with image features, whose row groups are large).
        self._data_tables: list[pa.Table] | None = [] if not self._image_keys else None
        self._video_cursors: dict[str, _VideoCursor | None] = {k: None for k in self._video_keys}
        self._meta_cursor: ChunkFile | None = None
        self._meta_table: pa.Table | None = None  # rows of the current meta/episodes file

        # The folder: a writer from create() makes it with the first frame (see _claim_folder).
        self._folder_exists = True
        self._made_folder = False  # this writer created `root` (and removes it if no episode gets saved)

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
            self._workers[k] = PngImageWorker(k, video_encoder.queue_maxsize, video_encoder.stall_timeout_s,
                                              command_timeout_s=video_encoder.command_timeout_s)
        # One single-thread executor per camera: that camera's episodes are appended in order.
        self._placers = {k: ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lerobot-place-{k}") for k in self._video_keys}
        self._placements: list[Future] = []
        self._placement_errors: list[BaseException] = []
        self._outstanding: dict[str, list[PendingVideo]] = {k: [] for k in self._video_keys}
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
        """A writer for a new dataset at `root`. Nothing is written until the first frame: `root` must be missing,
        an empty folder, or a dataset folder with no episode (reused); anything else raises DatasetExistsError
        (a FileExistsError) now, and a folder another writer holds raises DatasetBusyError."""
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
        recovery.finish_interrupted_replace(root, fsync)
        _new_dataset_leftovers(root)
        if root.is_dir():
            release(lock_dataset(root, action="create a dataset in it"))  # busy now rather than at the first frame
        info = make_info(
            fps, feats, robot_type=robot_type, use_videos=use_videos, chunks_size=chunks_size,
            data_files_size_in_mb=data_files_size_in_mb, video_files_size_in_mb=video_files_size_in_mb,
        )
        w = cls(root, info, video_encoder or VideoEncoderConfig(), fsync=fsync, rewrite_limit_mb=rewrite_limit_mb)
        w._folder_exists = False
        return w

    @classmethod
    def open(
        cls,
        root: str | Path,
        video_encoder: VideoEncoderConfig | None = None,
        fsync: bool = True,
        rewrite_limit_mb: float = DEFAULT_REWRITE_LIMIT_MB,
    ) -> "LeRobotDatasetWriter":
        """Open an existing dataset to append episodes, first repairing an interrupted save, recording or
        in-place edit (recovery.recover)."""
        root = Path(root)
        recovery.finish_interrupted_replace(root, fsync)
        if not F.info_path(root).exists():
            raise FileNotFoundError(f"{root}: not a LeRobotDataset (no {F.INFO_PATH})")
        lock_fd = lock_dataset(root, action="append to it")  # before the repair: never repair under a live writer
        try:
            info = read_info(root)
            if info.get("codebase_version") != F.CODEBASE_VERSION:
                raise DatasetFormatError(
                    f"{root}: codebase_version {info.get('codebase_version')!r}, this writer needs {F.CODEBASE_VERSION}"
                )
            recover(root, fsync)
            info = read_info(root)
            if video_encoder is None:
                vinfo = next((f.get("info") for f in info["features"].values() if f["dtype"] == "video" and f.get("info")), None)
                video_encoder = VideoEncoderConfig.from_video_info(vinfo) if vinfo else VideoEncoderConfig()
            w = cls(root, info, video_encoder, fsync=fsync, rewrite_limit_mb=rewrite_limit_mb)
            w._lock_fd = lock_fd
        except BaseException:
            release(lock_fd)
            raise
        w._load_state()
        return w

    def _load_state(self) -> None:
        self.stats = read_stats(self.root)
        meta_files = episodes_files(self.root)
        self.tasks = read_tasks(self.root, missing_ok=not meta_files)
        if not meta_files:
            return
        last_meta = meta_files[-1]
        self._meta_table = _conform(pq.ParquetFile(last_meta).read(), self._episodes_schema, last_meta)
        last = self._meta_table.slice(self._meta_table.num_rows - 1).to_pylist()[0]
        self._meta_cursor = ChunkFile(int(last["meta/episodes/chunk_index"]), int(last["meta/episodes/file_index"]))
        self.total_episodes = int(last["episode_index"]) + 1
        self.total_frames = int(last["dataset_to_index"])
        self._data_cursor = ChunkFile(int(last["data/chunk_index"]), int(last["data/file_index"]))
        if self._data_tables is not None:
            pf_path = self._data_path(self._data_cursor)
            pf = pq.ParquetFile(pf_path)
            self._data_tables = [_conform(pf.read_row_group(i), self._data_schema, pf_path) for i in range(pf.num_row_groups)]
        for k in self._video_keys:
            frames = int(round(float(last[f"videos/{k}/to_timestamp"]) * self.fps))
            file = ChunkFile(int(last[f"videos/{k}/chunk_index"]), int(last[f"videos/{k}/file_index"]))
            size = self._video_path(k, file).stat().st_size
            self._video_cursors[k] = _VideoCursor(file, frames, size)

    def _data_path(self, file: ChunkFile) -> Path:
        return F.data_file_path(self.root, file.chunk_index, file.file_index)

    def _video_path(self, key: str, file: ChunkFile) -> Path:
        return F.video_file_path(self.root, key, file.chunk_index, file.file_index)

    def _claim_folder(self) -> None:
        """Make the folder of a new dataset (at its first frame), lock it, and clear what an interrupted earlier
        start left in it (an info.json of no episode, a staging folder, an uncommitted first save)."""
        existed = self.root.exists()
        durable_io.make_dirs(self.root, self.fsync)
        self._lock_fd = lock_dataset(self.root, action="create a dataset in it")
        try:
            if recovery.journal_path(self.root).exists():
                recover(self.root, self.fsync)  # an interrupted first save: rolled back (or found committed)
            for leftover in _new_dataset_leftovers(self.root):
                leftover.unlink(missing_ok=True)
            shutil.rmtree(self.root / STAGING_DIR, ignore_errors=True)
            durable_io.remove_empty_dirs(self.root)
        except BaseException:
            self._release_lock()
            raise
        self._folder_exists = True
        self._made_folder = not existed

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
            try:
                self._begin_episode()
            except EncoderError as exc:  # a hung worker: the episode cannot start
                self.discard_episode()
                raise EpisodeSaveError(f"episode {self.total_episodes} not started: {exc}") from exc
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
        if not self._folder_exists:
            self._claim_folder()
        ep = self.total_episodes
        self._stalls_at_episode_start = self.encoder_stalls
        for k, worker in self._workers.items():
            worker.begin(self._segment_path(k, ep))

    def _segment_path(self, key: str, episode_index: int) -> Path:
        """The staging file of a camera's segment (mp4) or an image feature's PNG frames for the episode."""
        suffix = "mp4" if key in self._video_keys else "pngs"
        return self.root / STAGING_DIR / recovery.SEGMENTS_DIR / key / f"episode-{episode_index:06d}.{suffix}"

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
            try:
                w.abort()
            except EncoderHungError as exc:  # bounded; the worker now refuses every call, which says why
                log.error("discarding episode %d: %s", self.total_episodes, exc)
        self._reset_episode()
        shutil.rmtree(self.root / STAGING_DIR / recovery.SEGMENTS_DIR, ignore_errors=True)

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
        results = self._flush_workers(ep, n)
        self._committed = False
        try:
            summary = self._commit_episode(self._episode_content(ep, n, results))
        except BaseException as exc:
            error = self._after_failed_commit(ep, exc)
            if error is None:  # KeyboardInterrupt, SystemExit: cleaned up, passed on as they are
                raise
            raise error from exc
        self._reset_episode()
        shutil.rmtree(self.root / STAGING_DIR / recovery.SEGMENTS_DIR, ignore_errors=True)
        summary.save_seconds = time.monotonic() - t0
        summary.encoder_stalls = self.encoder_stalls - self._stalls_at_episode_start
        summary.stage_seconds = dict(self._timings)
        return summary

    def _flush_workers(self, ep: int, n: int) -> dict[str, WorkerResult]:
        """End the episode in every camera worker (in parallel); any failure abandons the episode."""
        try:
            deadline = time.monotonic() + self.video_encoder.command_timeout_s  # the workers finish in parallel
            futures = {k: w.request_end() for k, w in self._workers.items()}
            results = {k: self._workers[k].wait_end(f, f"episode {ep}", deadline - time.monotonic())
                       for k, f in futures.items()}
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
        return results

    def _after_failed_commit(self, ep: int, exc: BaseException) -> EpisodeSaveError | None:
        """Clean up after a failed commit; returns the error to raise (None: re-raise `exc` as it is)."""
        passthrough = isinstance(exc, (KeyboardInterrupt, SystemExit))
        if self._committed:
            # The episode is in meta/episodes; only info.json/stats.json may be stale. The journal stays,
            # so open() (or the next successful save) brings them up to date.
            self._reset_episode()
            return None if passthrough else EpisodeSaveError(
                f"episode {ep} was saved, but updating info.json/stats.json failed: {exc!r} "
                "(LeRobotDatasetWriter.open() repairs them)"
            )
        try:
            recovery.rollback(self.root, self.fsync)
        except Exception as rb_exc:  # noqa: BLE001 - open() will retry the rollback from the journal
            log.error("rollback of episode %d failed (open() will retry): %r", ep, rb_exc)
        self.discard_episode()
        return None if passthrough else EpisodeSaveError(_abandon_message(ep, exc, "saving failed"))

    def _episode_content(self, ep: int, n: int, results: dict[str, WorkerResult]) -> _EpisodeContent:
        """Columns, tasks and statistics of the episode in progress (nothing is written yet)."""
        episode_tasks = list(dict.fromkeys(self._frame_tasks))
        tasks_after = self.tasks + [t for t in episode_tasks if t not in self.tasks]
        task_to_index = {t: i for i, t in enumerate(tasks_after)}
        frame_index = np.arange(n, dtype=np.int64)
        columns: dict[str, Any] = {k: np.stack(self._buffers[k]) for k in self._numeric_keys}
        columns.update({k: list(self._buffers[k]) for k in self._string_keys})
        columns["timestamp"] = (frame_index / self.fps).astype(np.float32)
        columns["frame_index"] = frame_index
        columns["episode_index"] = np.full(n, ep, dtype=np.int64)
        columns["index"] = np.arange(self.total_frames, self.total_frames + n, dtype=np.int64)
        columns["task_index"] = np.fromiter((task_to_index[t] for t in self._frame_tasks), dtype=np.int64, count=n)

        stats: dict[str, Stats] = {}
        for k in F.stats_feature_keys(self.features):
            if k in results:  # cameras: sampled by their workers while recording
                camera_stats = results[k].stats
                assert camera_stats is not None
                stats[k] = camera_stats
            else:
                values = np.asarray(columns[k])
                stats[k] = vector_stats(values.reshape(n, -1) if self.features[k]["shape"] == (1,) else values)

        # features[key]["info"] of cameras seen for the first time, probed on the segment (as upstream probes the
        # first episode's file).
        new_video_info = {
            k: {**probe_video_info(results[k].segment_path), **self.video_encoder.info_fields()}
            for k in self._video_keys
            if not self.features[k].get("info")
        }
        return _EpisodeContent(ep, n, self.total_frames, episode_tasks, tasks_after, columns, stats, results, new_video_info)

    def _commit_episode(self, content: _EpisodeContent) -> EpisodeSummary:
        """Write the episode's files in an order that a crash can always undo (before the meta/episodes row) or
        finish (after it); the stage names are where tests inject crashes."""
        plan = self._plan_commit(content)
        self._write_journal(plan)
        self._stage("journal_written")
        durable_io.write_parquet(self._data_path(plan.data_file), self._data_file_row_groups(plan), self._data_schema, self.fsync)
        self._stage("data_written")
        self._stage_segments(plan)
        self._stage("segments_staged")
        self._write_tasks_and_first_info(plan)
        self._stage("tasks_written")
        meta_table = self._write_episode_row(plan)
        # ======== COMMITTED: the episode is in meta/episodes. Everything below is re-derivable by recover().
        self._committed = True
        self._adopt(plan, meta_table)
        self._stage("meta_written")
        self._write_info_and_stats()
        self._stage("info_written")
        self._clear_journal(plan)
        return self._summary(plan)

    # ---- commit steps
    def _plan_commit(self, content: _EpisodeContent) -> _CommitPlan:
        data_file, data_starts_file = self._plan_data(content.length)
        videos = {k: self._plan_video(k, content) for k in self._video_keys}
        meta_file, meta_starts_file = self._plan_meta()
        plan = _CommitPlan(
            content=content, data_file=data_file, data_starts_file=data_starts_file, videos=videos,
            meta_file=meta_file, meta_starts_file=meta_starts_file, writes_tasks=content.tasks_after != self.tasks,
            writes_first_info=not F.info_path(self.root).exists(),
            episode_tables=None if self._image_keys else [self._episode_table(content, 0, content.length)],
        )
        data_path = self._data_path(data_file)
        (plan.replaced if data_path.exists() else plan.created).append(data_path)
        for target in videos.values():
            # A segment that starts a file is moved there now (instant); one that extends a file is appended in
            # the background after the commit.
            plan.created.append(self._video_path(target.key, target.file) if target.starts_file
                                else pending_segment_path(self.root, target.key, content.episode_index))
        tasks_file = F.tasks_path(self.root)
        if plan.writes_tasks:
            (plan.replaced if tasks_file.exists() else plan.created).append(tasks_file)
        if plan.writes_first_info:
            plan.created.append(F.info_path(self.root))
        meta_path = F.episodes_file_path(self.root, meta_file.chunk_index, meta_file.file_index)
        (plan.created if meta_starts_file else plan.replaced).append(meta_path)
        return plan

    def _plan_data(self, length: int) -> tuple[ChunkFile, bool]:
        """The data file the episode goes to (upstream's size estimate), and whether it starts that file."""
        if self._data_cursor is None:
            return ChunkFile(0, 0), True
        path = self._data_path(self._data_cursor)
        if self._data_tables is not None:
            frames = sum(t.num_rows for t in self._data_tables)
        else:
            frames = pq.ParquetFile(path).metadata.num_rows if path.exists() else 0
        size_mb = path.stat().st_size / MB if path.exists() else 0.0
        limit = min(self.data_files_size_in_mb, self.rewrite_limit_mb)
        if frames > 0 and size_mb + (size_mb / frames) * length >= limit:
            return self._data_cursor.next(self.chunks_size), True
        return self._data_cursor, False

    def _plan_video(self, key: str, content: _EpisodeContent) -> _VideoTarget:
        segment = content.results[key].segment_path
        assert segment is not None
        cursor = self._video_cursors[key]
        if cursor is None:
            return _VideoTarget(key, ChunkFile(0, 0), 0, 0, True, segment)
        if cursor.frames_in_file > 0 and (cursor.bytes_in_file + segment.stat().st_size) / MB >= self.video_files_size_in_mb:
            return _VideoTarget(key, cursor.file.next(self.chunks_size), 0, 0, True, segment)
        return _VideoTarget(key, cursor.file, cursor.frames_in_file, cursor.bytes_in_file, False, segment)

    def _plan_meta(self) -> tuple[ChunkFile, bool]:
        if self._meta_cursor is None or self._meta_table is None:
            return ChunkFile(0, 0), True
        path = F.episodes_file_path(self.root, self._meta_cursor.chunk_index, self._meta_cursor.file_index)
        rows = self._meta_table.num_rows
        size_mb = path.stat().st_size / MB if path.exists() else 0.0
        limit = min(self.data_files_size_in_mb, self.rewrite_limit_mb)
        if rows > 0 and size_mb + size_mb / rows >= limit:
            return self._meta_cursor.next(self.chunks_size), True
        return self._meta_cursor, False

    def _write_journal(self, plan: _CommitPlan) -> None:
        """Durable backups of the files about to be replaced, THEN the journal that lists them: a journal on
        disk always has its backups (recovery fails loudly otherwise)."""
        for path in plan.replaced:
            durable_io.link_or_copy(path, recovery.backup_path(self.root, path), self.fsync)
        journal = {
            "episode_index": plan.content.episode_index,
            "backups": [[p.relative_to(self.root).as_posix(), recovery.backup_path(self.root, p).relative_to(self.root).as_posix()]
                        for p in plan.replaced],
            "created": [p.relative_to(self.root).as_posix() for p in plan.created],
        }
        durable_io.write_json(recovery.journal_path(self.root), journal, self.fsync)

    def _data_file_row_groups(self, plan: _CommitPlan) -> Iterator[pa.Table]:
        """Row groups of the data file after the save: its existing episodes, then this one."""
        if not plan.data_starts_file:
            if self._data_tables is not None:
                yield from self._data_tables
            else:
                path = self._data_path(plan.data_file)
                existing = pq.ParquetFile(path)
                for i in range(existing.num_row_groups):
                    yield _conform(existing.read_row_group(i), self._data_schema, path)
        yield from self._episode_row_groups(plan)

    def _episode_row_groups(self, plan: _CommitPlan) -> Iterator[pa.Table]:
        """The episode's rows: one table, or for image features tables of at most IMAGE_ROW_GROUP_BYTES of PNG
        read back from the spill files one group at a time."""
        if plan.episode_tables is not None:
            yield from plan.episode_tables
            return
        content, n = plan.content, plan.content.length
        spills = [content.results[k].pngs for k in self._image_keys]
        start = 0
        while start < n:
            stop, size = start, 0
            while stop < n and (stop == start or size < IMAGE_ROW_GROUP_BYTES):
                size += sum(s.sizes[stop] for s in spills if s is not None)
                stop += 1
            yield self._episode_table(content, start, stop)
            start = stop

    def _episode_table(self, content: _EpisodeContent, start: int, stop: int) -> pa.Table:
        """Rows start..stop-1 of the episode as a data table."""
        n = stop - start
        arrays = []
        for fld in self._data_schema:
            k = fld.name
            ft = self.features[k]
            if ft["dtype"] == "image":
                spill = content.results[k].pngs
                assert spill is not None
                names = [F.IMAGE_FRAME_NAME.format(frame_index=i) for i in range(start, stop)]
                arrays.append(pa.StructArray.from_arrays(
                    [pa.array(spill.read(start, stop), pa.binary()), pa.array(names, pa.string())], fields=list(fld.type)))
            elif ft["dtype"] in ("string", "language"):
                arrays.append(pa.array(content.columns[k][start:stop], pa.string()))
            elif pa.types.is_fixed_size_list(fld.type):
                values = np.ascontiguousarray(content.columns[k][start:stop]).reshape(-1)
                arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(values, fld.type.value_type), fld.type.list_size))
            elif pa.types.is_list(fld.type):
                arrays.append(pa.array(np.asarray(content.columns[k][start:stop]).tolist(), fld.type))
            else:
                arrays.append(pa.array(np.asarray(content.columns[k][start:stop]).reshape(n), fld.type))
        return pa.Table.from_arrays(arrays, schema=self._data_schema)

    def _stage_segments(self, plan: _CommitPlan) -> None:
        """Camera segments become durable pending work (or a new video file); appends run after the commit."""
        for target in plan.videos.values():
            dst = (self._video_path(target.key, target.file) if target.starts_file
                   else pending_segment_path(self.root, target.key, plan.content.episode_index))
            durable_io.make_dirs(dst.parent, self.fsync)
            durable_io.replace(target.segment, dst, self.fsync)

    def _write_tasks_and_first_info(self, plan: _CommitPlan) -> None:
        if plan.writes_tasks:
            write_tasks(self.root, plan.content.tasks_after, self.fsync)
        if plan.writes_first_info:  # the committed episode needs its dataset description
            write_info(self.root, self.info, self.fsync)

    def _write_episode_row(self, plan: _CommitPlan) -> pa.Table:
        """The commit point: the meta/episodes file with this episode's row replaces the old one."""
        content = plan.content
        ep, n = content.episode_index, content.length
        row: dict[str, Any] = {
            "episode_index": ep,
            "tasks": content.episode_tasks,
            "length": n,
            "data/chunk_index": plan.data_file.chunk_index,
            "data/file_index": plan.data_file.file_index,
            "dataset_from_index": content.first_index,
            "dataset_to_index": content.first_index + n,
        }
        for k, target in plan.videos.items():
            row[f"videos/{k}/chunk_index"] = target.file.chunk_index
            row[f"videos/{k}/file_index"] = target.file.file_index
            row[f"videos/{k}/from_timestamp"] = target.frames_before / self.fps
            row[f"videos/{k}/to_timestamp"] = (target.frames_before + n) / self.fps
        row.update(episode_stats_columns(content.stats, self.features))
        row["meta/episodes/chunk_index"] = plan.meta_file.chunk_index
        row["meta/episodes/file_index"] = plan.meta_file.file_index
        row_table = pa.Table.from_pylist([row], schema=self._episodes_schema)
        meta_table = row_table if plan.meta_starts_file or self._meta_table is None else pa.concat_tables([self._meta_table, row_table])
        write_episodes_file(F.episodes_file_path(self.root, plan.meta_file.chunk_index, plan.meta_file.file_index), meta_table, self.fsync)
        return meta_table

    def _adopt(self, plan: _CommitPlan, meta_table: pa.Table) -> None:
        """In-memory state after the commit; the episode's pending video appends are scheduled at once, so that no
        later failure can leave a committed segment unscheduled."""
        content = plan.content
        ep, n = content.episode_index, content.length
        self.tasks = content.tasks_after
        self.total_episodes = ep + 1
        self.total_frames += n
        self.stats = aggregate_stats([self.stats, content.stats]) if self.stats else content.stats
        if self._data_tables is not None:
            self._data_tables = ([] if plan.data_starts_file else self._data_tables) + (plan.episode_tables or [])
        self._data_cursor = plan.data_file
        pending: list[PendingVideo] = []
        for k, target in plan.videos.items():
            placed = self._video_path(k, target.file) if target.starts_file else pending_segment_path(self.root, k, ep)
            self._video_cursors[k] = _VideoCursor(target.file, target.frames_before + n, target.bytes_before + placed.stat().st_size)
            if not target.starts_file:
                pending.append(PendingVideo(k, ep, target.file.chunk_index, target.file.file_index, target.frames_before, n))
        self._meta_cursor, self._meta_table = plan.meta_file, meta_table
        for job in pending:
            self._submit_placement(job)
        for k, video_info in content.new_video_info.items():
            self.features[k]["info"] = video_info

    def _clear_journal(self, plan: _CommitPlan) -> None:
        for path in plan.replaced:
            recovery.backup_path(self.root, path).unlink(missing_ok=True)
        recovery.journal_path(self.root).unlink(missing_ok=True)

    def _summary(self, plan: _CommitPlan) -> EpisodeSummary:
        content = plan.content
        return EpisodeSummary(
            episode_index=content.episode_index,
            length=content.length,
            tasks=content.episode_tasks,
            dataset_from_index=content.first_index,
            dataset_to_index=content.first_index + content.length,
            data_chunk_index=plan.data_file.chunk_index,
            data_file_index=plan.data_file.file_index,
            video_files={k: (t.file.chunk_index, t.file.file_index) for k, t in plan.videos.items()},
            video_timestamps={k: (t.frames_before / self.fps, (t.frames_before + content.length) / self.fps)
                              for k, t in plan.videos.items()},
        )

    # ------------------------------------------------------------------------------------------ background appends
    def _submit_placement(self, job: PendingVideo) -> None:
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
                f"{self.root / STAGING_DIR / recovery.PENDING_DIR}; LeRobotDatasetWriter.open() finishes them."
            ) from errs[0]

    def _write_info_and_stats(self) -> None:
        self.info["features"] = self.features
        self.info["total_episodes"] = self.total_episodes
        self.info["total_frames"] = self.total_frames
        self.info["total_tasks"] = len(self.tasks)
        self.info["splits"] = F.splits_for(self.total_episodes)
        write_stats(self.root, {k: self.stats[k] for k in self.features if k in self.stats}, self.fsync)
        write_info(self.root, self.info, self.fsync)

    # ------------------------------------------------------------------------------------------ closing
    def close(self) -> None:
        """Stop the workers. An unsaved episode in progress is discarded (with a warning). A new dataset that got
        no saved episode leaves nothing behind: the folder this writer made is removed again."""
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
            if recovery.unfinished_work(self.root) is None:
                shutil.rmtree(staging, ignore_errors=True)
            if self._lock_fd is not None and self.total_episodes == 0 and not F.info_path(self.root).exists():
                self._remove_unused_folder()
        finally:
            self._release_lock()

    def _remove_unused_folder(self) -> None:
        """Undo _claim_folder for a new dataset that saved nothing (only empty folders are left to remove)."""
        durable_io.remove_empty_dirs(self.root, keep_root=not self._made_folder)
        if self.fsync and self.root.parent.exists():
            durable_io.fsync_dir(self.root.parent)

    def _release_lock(self) -> None:
        release(self._lock_fd)
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


__all__ = [
    "EpisodeSaveError",
    "EpisodeSummary",
    "FrameValidationError",
    "LeRobotDatasetWriter",
    "VideoEncoderConfig",
    "EncoderError",
    "recover",
    "rebuild_info_and_stats",
]
