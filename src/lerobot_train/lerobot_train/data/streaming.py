"""Streaming training data: an episode pool per consumer, for datasets that do not fit on local disk.

Every consumer (one per rank x DataLoader worker) works through its own share of the epoch's episodes:
1. The epoch's episode order is a permutation from `SeedSequence([seed, epoch])`, the same in every process;
   episodes are dealt to consumers in that order, each to the consumer with the fewest frames so far, so every
   frame belongs to exactly one consumer and the consumers' loads differ by less than one episode.
2. A consumer keeps `episode_pool_size` whole episodes' tabular rows (state, action, timestamps, PNG bytes of
   image features) in RAM and emits frames uniformly at random across the pool: it draws one of the frames not
   yet emitted, so each frame of the epoch is emitted exactly once. An emptied episode is replaced by the
   consumer's next one. The draws come from a generator seeded with (seed, epoch, rank, worker).
3. Windows (`delta_timestamps`) are slices of the episode's rows in RAM, padded at the episode's edges with
   copies of the edge frame and `<key>_is_pad` masks, exactly as the map-style dataset does. Video frames are
   decoded only for the sample being emitted.
4. Resume: `fast_forward(batches_consumed, batch_size)` replays the draws from metadata alone (episode
   lengths; no parquet read, no decode) up to the point the interrupted run reached. With DataLoader workers,
   batches come round-robin from the workers (a worker that runs out drops out of the rotation), so the
   number of batches each worker had delivered, and which worker was next, follow from the shares' sizes;
   the resumed workers take over the shares in that rotation order. Resume is sample-exact within an epoch
   when world size, worker count and batch size are unchanged.
5. Sources: a local dataset folder, or a Hub repo id read through `huggingface_hub`'s `HfFileSystem`
   (`datasets/<repo_id>@<revision>/...`). For a remote source, meta/ is copied once to `cache_dir`, an
   episode's rows are read from its parquet file with a row-group filter, and the video files of pooled
   (and the next `prefetch_episodes`) episodes are downloaded in the background into a per-consumer cache,
   reference-counted by the episodes that use them and deleted when none does.

Data parallelism: each rank's share differs from the others' by less than one episode, so ranks may deliver
a different number of batches per epoch; train for a number of steps (iterate_epochs never ends) rather than
"one epoch per rank", so DDP ranks never wait for each other at an epoch end.

Items are the same as `TrainingDataset`'s (uint8 cameras unless `image_transforms` are set; use
`dataset.cameras_to_float` on batches). Epochs: call `set_epoch(e)` before iterating a DataLoader over this
dataset (workers receive a copy of the dataset when the iteration starts, so use `persistent_workers=False`);
`iterate_epochs` does that for you.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import threading
from collections import deque
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from lerobot_dataset import format as fmt
from lerobot_dataset.reader import DatasetMeta, column_to_numpy, decode_image_frame
from lerobot_dataset.video_decode import DEFAULT_TOLERANCE_S, VideoDecoderPool

logger = logging.getLogger(__name__)


# ==================================================================================== schedule (pure functions)
def epoch_episode_order(episodes: Sequence[int], seed: int, epoch: int, shuffle: bool = True) -> list[int]:
    """The epoch's episode order: a permutation seeded by (seed, epoch), or the given order."""
    episodes = list(episodes)
    if not shuffle:
        return episodes
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch)]))
    return [episodes[i] for i in rng.permutation(len(episodes))]


def assign_episodes(order: Sequence[int], lengths: Mapping[int, int], num_consumers: int) -> list[list[int]]:
    """Deal episodes (in `order`) to consumers, each to the one with the fewest frames so far (lowest id on
    ties): every episode goes to exactly one consumer, loads differ by less than one episode's length."""
    if num_consumers < 1:
        raise ValueError(f"num_consumers must be >= 1, got {num_consumers}")
    shares: list[list[int]] = [[] for _ in range(num_consumers)]
    loads = [0] * num_consumers
    for ep in order:
        c = min(range(num_consumers), key=lambda k: (loads[k], k))
        shares[c].append(ep)
        loads[c] += int(lengths[ep])
    return shares


def consumer_rng(seed: int, epoch: int, rank: int, worker: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), int(rank), int(worker)]))


class EpisodePool:
    """The draw order of one consumer: which (episode, frame) comes next.

    Needs only episode lengths, so the same object drives both the real iteration and a resume's replay.
    With `shuffle=False` episodes and frames come in order (one episode at a time).
    """

    def __init__(self, episodes: Sequence[int], lengths: Mapping[int, int], pool_size: int,
                 rng: np.random.Generator, shuffle: bool = True) -> None:
        if pool_size < 1:
            raise ValueError(f"episode_pool_size must be >= 1, got {pool_size}")
        self._queue = deque(int(e) for e in episodes)
        self._lengths = lengths
        self._pool_size = pool_size if shuffle else 1
        self._rng = rng
        self._shuffle = shuffle
        self._episodes: list[int] = []       # pooled episodes
        self._orders: list[np.ndarray] = []  # their frames in draw order
        self._cursors: list[int] = []        # frames drawn so far from each
        self.version = 0                     # changes whenever the pooled set changes
        self._fill()

    def _fill(self) -> None:
        while len(self._episodes) < self._pool_size and self._queue:
            ep = self._queue.popleft()
            n = int(self._lengths[ep])
            if n <= 0:
                continue
            self._episodes.append(ep)
            self._orders.append(self._rng.permutation(n) if self._shuffle else np.arange(n))
            self._cursors.append(0)
            self.version += 1

    @property
    def pooled(self) -> list[int]:
        return list(self._episodes)

    def upcoming(self, n: int) -> list[int]:
        return list(self._queue)[:n]

    def draw(self) -> tuple[int, int] | None:
        """The next (episode, frame), or None when the consumer's share is exhausted."""
        if not self._episodes:
            return None
        if self._shuffle and len(self._episodes) > 1:
            remaining = np.array([len(o) - c for o, c in zip(self._orders, self._cursors)], dtype=np.int64)
            pick = int(self._rng.integers(int(remaining.sum())))
            k = int(np.searchsorted(np.cumsum(remaining), pick, side="right"))
        else:
            k = 0
        ep = self._episodes[k]
        frame = int(self._orders[k][self._cursors[k]])
        self._cursors[k] += 1
        if self._cursors[k] == len(self._orders[k]):
            del self._episodes[k], self._orders[k], self._cursors[k]
            self.version += 1
            self._fill()
        return ep, frame


def batches_taken_per_worker(frames_per_worker: Sequence[int], batch_size: int, batches_consumed: int) -> list[int]:
    """How many batches each DataLoader worker had delivered after `batches_consumed` batches of an epoch."""
    return dataloader_position(frames_per_worker, batch_size, batches_consumed)[0]


def dataloader_position(frames_per_worker: Sequence[int], batch_size: int,
                        batches_consumed: int) -> tuple[list[int], list[int]]:
    """(batches taken from each worker, workers still running in the order they deliver next) after
    `batches_consumed` batches of an epoch.

    torch's DataLoader takes batches from the workers of an IterableDataset in turn (0, 1, ..., K-1, 0, ...);
    a worker that has run out leaves the rotation and the others keep their cyclic order. This holds whatever
    the timing: the DataLoader notices a worker's end in task order.
    """
    totals = [math.ceil(int(f) / batch_size) for f in frames_per_worker]
    if batches_consumed > sum(totals):
        raise ValueError(f"batches_consumed={batches_consumed} exceeds the epoch's {sum(totals)} batches")
    taken = [0] * len(totals)
    left = int(batches_consumed)
    last_served = -1  # a full round ends with the highest-index running worker
    while left > 0:
        active = [w for w in range(len(totals)) if taken[w] < totals[w]]
        full_rounds = min(min(totals[w] - taken[w] for w in active), left // len(active))
        if full_rounds == 0:
            for w in active[:left]:
                taken[w] += 1
            last_served = active[left - 1]
            break
        for w in active:
            taken[w] += full_rounds
        left -= full_rounds * len(active)
    running = [w for w in range(len(totals)) if taken[w] < totals[w]]
    next_order = [w for w in running if w > last_served] + [w for w in running if w <= last_served]
    return taken, next_order


# ==================================================================================== file access
class DatasetFiles:
    """Where the dataset's files are: a local folder, or a repo on a (Hugging Face) fsspec file system."""

    def __init__(self, source: str | Path, revision: str | None = None, filesystem: Any = None,
                 cache_dir: str | Path | None = None) -> None:
        self.source = str(source)
        self.filesystem = filesystem
        if filesystem is None and Path(source).is_dir():
            self.root: Path | None = Path(source)
            self.revision = None
            self.cache_dir = Path(cache_dir) if cache_dir else None
            return
        parts = self.source.strip("/").split("/")
        if len(parts) != 2 or not all(parts):
            raise FileNotFoundError(
                f"{self.source!r} is neither a local dataset folder nor a Hub repo id of the form 'owner/name'"
            )
        self.root = None
        if self.filesystem is None:
            from huggingface_hub import HfFileSystem

            self.filesystem = HfFileSystem()
        self.revision = revision if revision is not None else self._default_revision()
        default_cache = Path(tempfile.gettempdir()) / "lerobot_train_streaming"
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache / f"{self.source.replace('/', '--')}@{quote(self.revision, safe='')}"

    def _default_revision(self) -> str:
        """The Hub tag to read (as `lerobot-dataset pull`): the codebase version or the newest compatible one."""
        from huggingface_hub import HfFileSystem

        if not isinstance(self.filesystem, HfFileSystem):
            return fmt.CODEBASE_VERSION
        from huggingface_hub import HfApi

        from lerobot_dataset.hub import resolve_pull_revision

        refs = HfApi().list_repo_refs(self.source, repo_type="dataset")
        return resolve_pull_revision(None, [r.name for r in (*refs.branches, *refs.tags)])

    @property
    def is_local(self) -> bool:
        return self.root is not None

    def remote_path(self, rel: str) -> str:
        rel = fmt.check_relative_path(rel, f"{self.source}@{self.revision}").as_posix()
        return f"datasets/{self.source}@{quote(self.revision or '', safe='')}/{rel}"

    def template_path(self, template: str, name: str, **fields: Any) -> str:
        """The file an info.json path template (`name`: data_path, video_path) names for `fields`, relative to the
        dataset root and checked to stay inside it (for a local folder, symlinks included): a dataset from the
        Hub is untrusted input. UnsafePathError / DatasetFormatError name the info.json key."""
        rel = fmt.fill_path_template(template, name, **fields)
        if self.root is not None:
            fmt.resolve_inside(self.root, rel, f"{fmt.INFO_PATH} '{name}'")
        return rel

    def local_meta_root(self) -> Path:
        """A folder whose meta/ is the dataset's (the dataset itself when local; a copy for a remote source)."""
        if self.root is not None:
            return self.root
        assert self.cache_dir is not None
        meta_root = self.cache_dir / "meta_copy"
        if (meta_root / fmt.INFO_PATH).is_file():
            return meta_root
        tmp = self.cache_dir / f".meta_copy.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        base = self.remote_path("meta")
        try:
            remote_files = [p for p in self.filesystem.find(base) if not p.endswith("/")]
        except FileNotFoundError:
            remote_files = []
        if not remote_files:
            raise FileNotFoundError(f"{self.source}@{self.revision}: no meta/ folder found at {base}")
        for rpath in remote_files:
            rel = fmt.check_relative_path(rpath[len(base) + 1 :], f"{self.source}@{self.revision}: meta/ listing")
            dst = tmp / "meta" / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            self.filesystem.get_file(rpath, str(dst))
        meta_root.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp, meta_root)
        except OSError:  # another process finished first: keep its copy
            shutil.rmtree(tmp, ignore_errors=True)
        return meta_root

    def read_episode_rows(self, rel: str, episode_index: int, columns: Sequence[str]) -> pa.Table:
        """The rows of one episode from a data file (row groups skipped by their episode_index statistics)."""
        filters = [("episode_index", "=", int(episode_index))]
        if self.root is not None:
            return pq.read_table(self.root / rel, columns=list(columns), filters=filters)
        return pq.read_table(self.remote_path(rel), columns=list(columns), filters=filters, filesystem=self.filesystem)


class VideoFileCache:
    """Local copies of remote video files, downloaded in the background and deleted when no pooled episode
    uses them any more. For a local dataset it only maps relative paths to the folder's files."""

    def __init__(self, files: DatasetFiles, directory: Path | None, executor: ThreadPoolExecutor | None) -> None:
        self._files = files
        self._dir = directory
        self._executor = executor
        self._refs: dict[str, int] = {}
        self._downloads: dict[str, Future] = {}
        self._lock = threading.Lock()

    def acquire(self, rel: str) -> None:
        if self._files.is_local:
            return
        with self._lock:
            self._refs[rel] = self._refs.get(rel, 0) + 1
            if rel not in self._downloads:
                assert self._executor is not None
                self._downloads[rel] = self._executor.submit(self._download, rel)

    def _download(self, rel: str) -> Path:
        assert self._dir is not None
        dst = self._dir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.part")
        self._files.filesystem.get_file(self._files.remote_path(rel), str(tmp))
        os.replace(tmp, dst)
        return dst

    def path(self, rel: str) -> Path:
        """The local file (waits for its download)."""
        if self._files.is_local:
            assert self._files.root is not None
            return self._files.root / rel
        with self._lock:
            future = self._downloads.get(rel)
        if future is None:
            raise KeyError(f"video file {rel} was not acquired before use")
        return future.result()

    def release(self, rel: str) -> None:
        if self._files.is_local:
            return
        with self._lock:
            self._refs[rel] -= 1
            if self._refs[rel] > 0:
                return
            del self._refs[rel]
            future = self._downloads.pop(rel)
        try:
            local = future.result()
        except (Exception, CancelledError):  # nothing was written; a failure surfaced where the file was used
            return
        local.unlink(missing_ok=True)  # an open decoder keeps reading the unlinked file until it is closed

    @property
    def cached_files(self) -> list[str]:
        with self._lock:
            return sorted(self._refs)

    def close(self) -> None:
        with self._lock:
            rels = list(self._refs)
        for rel in rels:
            with self._lock:
                self._refs[rel] = 1
            self.release(rel)


# ==================================================================================== episode rows in RAM
@dataclass
class _PooledEpisode:
    """One episode's rows in RAM: numeric columns (length, ...), PNG bytes per image key, video segments."""

    episode_index: int
    length: int
    numeric: dict[str, np.ndarray]
    images: dict[str, list[bytes | None]]
    video_files: dict[str, str]        # camera -> file path relative to the dataset root
    video_from_timestamp: dict[str, float]


class StreamingEpisodeDataset(torch.utils.data.IterableDataset):
    """Frames of a local or Hub dataset streamed through a per-consumer episode pool (see the module doc).

    Args:
        source: a local dataset folder or a Hub repo id ("owner/name").
        delta_timestamps: `{feature: [seconds]}` windows (see `windows.delta_timestamps_for`).
        episodes: episode subset (episode indices); None = all.
        episode_pool_size: whole episodes each consumer keeps in RAM.
        seed: the run's seed; shuffle: random episode order and draws (False: dataset order).
        rank, world_size: data-parallel position of this process.
        image_transforms: callable on float camera images (as `TrainingDataset`).
        tolerance_s: allowed |frame time - query time|.
        revision: Hub revision (default: the codebase version tag, resolved as `lerobot-dataset pull` does).
        filesystem: an fsspec file system to read a repo id from instead of `HfFileSystem` (paths are
            `datasets/<repo_id>@<revision>/...`, as on HfFileSystem).
        cache_dir: where meta/ and prefetched videos of a remote dataset go.
        prefetch_episodes: episodes beyond the pool whose rows and videos are fetched ahead.
    """

    def __init__(
        self,
        source: str | Path,
        delta_timestamps: Mapping[str, Sequence[float]] | None = None,
        episodes: Sequence[int] | None = None,
        episode_pool_size: int = 16,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        image_transforms: Callable[[torch.Tensor], torch.Tensor] | None = None,
        tolerance_s: float = DEFAULT_TOLERANCE_S,
        revision: str | None = None,
        filesystem: Any = None,
        cache_dir: str | Path | None = None,
        prefetch_episodes: int = 2,
        max_open_video_files: int = 16,
    ) -> None:
        super().__init__()
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        if episode_pool_size < 1:
            raise ValueError(f"episode_pool_size must be >= 1, got {episode_pool_size}")
        self.files = DatasetFiles(source, revision=revision, filesystem=filesystem, cache_dir=cache_dir)
        self.meta = DatasetMeta(self.files.local_meta_root())
        self.fps = self.meta.fps
        self.features = self.meta.features
        self.tolerance_s = float(tolerance_s)
        self.episode_pool_size = int(episode_pool_size)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.image_transforms = image_transforms
        self.prefetch_episodes = max(0, int(prefetch_episodes))
        self.episodes = (sorted(set(self.meta.check_episodes(episodes))) if episodes is not None
                         else list(range(self.meta.total_episodes)))
        self.lengths = {e: self.meta.episodes[e].length for e in self.episodes}
        self._data_files, self._video_files = self._episode_files()
        self.delta_indices = ({k: np.array(v, dtype=np.int64) for k, v in
                               self.meta.delta_indices(delta_timestamps, self.tolerance_s).items()}
                              if delta_timestamps else None)
        self.delta_timestamps = {k: list(v) for k, v in delta_timestamps.items()} if delta_timestamps else None
        self._numeric_keys = [k for k, f in self.features.items() if f["dtype"] not in ("image", "video", "string", "language")]
        self._string_keys = [k for k, f in self.features.items() if f["dtype"] in ("string", "language")]
        self._decoders = VideoDecoderPool(max_open_files=max_open_video_files)
        self._epoch = 0
        self._fast_forward: tuple[int, int, int] | None = None  # (batches_consumed, batch_size, prefetch_factor)

    # ---------------------------------------------------------------- epochs and resume
    @property
    def num_frames(self) -> int:
        """Frames in one epoch (all ranks)."""
        return sum(self.lengths.values())

    @property
    def epoch(self) -> int:
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch the next iteration runs; also forgets a pending fast_forward."""
        self._epoch = int(epoch)
        self._fast_forward = None

    def consumer_frames(self, epoch: int, num_workers: int) -> list[int]:
        """Frames each of this rank's workers emits in `epoch` (one entry when num_workers == 0)."""
        k = max(1, num_workers)
        shares = assign_episodes(
            epoch_episode_order(self.episodes, self.seed, epoch, self.shuffle), self.lengths, self.world_size * k
        )
        return [sum(self.lengths[e] for e in shares[self.rank * k + w]) for w in range(k)]

    def batches_in_epoch(self, epoch: int, batch_size: int, num_workers: int) -> int:
        """Batches this rank's DataLoader delivers in `epoch` (each worker's last batch may be short)."""
        return sum(math.ceil(f / batch_size) for f in self.consumer_frames(epoch, num_workers))

    def locate_batches(self, batches_consumed: int, batch_size: int, num_workers: int) -> tuple[int, int]:
        """(epoch, batches into that epoch) after `batches_consumed` batches of this rank since epoch 0."""
        epoch, left = 0, int(batches_consumed)
        while True:
            n = self.batches_in_epoch(epoch, batch_size, num_workers)
            if left < n:
                return epoch, left
            left -= n
            epoch += 1

    def fast_forward(self, batches_consumed: int, batch_size: int, prefetch_factor: int = 2) -> None:
        """Resume the current epoch after `batches_consumed` batches of `batch_size` (this rank's DataLoader),
        replaying draws without reading data. Applies to iterations of this epoch until `set_epoch`.
        (`prefetch_factor` is accepted for DataLoader symmetry; the resume point does not depend on it.)"""
        if batches_consumed < 0 or batch_size < 1:
            raise ValueError(f"need batches_consumed >= 0 and batch_size >= 1, got {batches_consumed}, {batch_size}")
        self._fast_forward = (int(batches_consumed), int(batch_size), int(prefetch_factor))

    def _resume_role(self, worker: int, num_workers: int, frames: Sequence[int]) -> tuple[int, int]:
        """(consumer share this DataLoader worker plays, samples of it already consumed).

        A resumed DataLoader starts its rotation at worker 0, while the interrupted one would have continued
        with some other worker: worker i therefore plays the i-th share in the interrupted run's coming
        rotation order; workers beyond the shares still running play finished shares and emit nothing."""
        if self._fast_forward is None:
            return worker, 0
        consumed, batch_size, _ = self._fast_forward
        taken, next_order = dataloader_position(frames, batch_size, consumed)
        roles = next_order + [w for w in range(num_workers) if w not in next_order]
        role = roles[worker]
        return role, min(taken[role] * batch_size, frames[role])

    # ---------------------------------------------------------------- iteration
    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        num_workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        epoch = self._epoch
        order = epoch_episode_order(self.episodes, self.seed, epoch, self.shuffle)
        shares = assign_episodes(order, self.lengths, self.world_size * num_workers)
        frames = [sum(self.lengths[e] for e in shares[self.rank * num_workers + w]) for w in range(num_workers)]
        role, skip = self._resume_role(worker, num_workers, frames)
        pool = EpisodePool(shares[self.rank * num_workers + role], self.lengths, self.episode_pool_size,
                           consumer_rng(self.seed, epoch, self.rank, role), self.shuffle)
        for _ in range(skip):
            pool.draw()  # replay from metadata only
        return self._emit(pool, worker)

    def _emit(self, pool: EpisodePool, worker: int) -> Iterator[dict[str, Any]]:
        executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="stream-prefetch")
        video_dir = None
        if not self.files.is_local:
            assert self.files.cache_dir is not None
            video_dir = self.files.cache_dir / f"videos-rank{self.rank}-worker{worker}-pid{os.getpid()}"
        videos = VideoFileCache(self.files, video_dir, executor)
        loading: dict[int, Future] = {}  # episode -> future of its _PooledEpisode (pooled or prefetched)
        seen_version = -1
        try:
            while True:
                if pool.version != seen_version:
                    self._sync_pool(pool, loading, videos, executor)
                    seen_version = pool.version
                drawn = pool.draw()
                if drawn is None:
                    return
                ep, frame = drawn
                yield self._item(loading[ep].result(), frame, videos)
        finally:
            for future in loading.values():
                future.cancel()
            executor.shutdown(wait=True, cancel_futures=True)
            videos.close()
            if video_dir is not None:
                shutil.rmtree(video_dir, ignore_errors=True)

    def _sync_pool(self, pool: EpisodePool, loading: dict[int, Future], videos: VideoFileCache,
                   executor: ThreadPoolExecutor) -> None:
        wanted = pool.pooled + pool.upcoming(self.prefetch_episodes)
        for ep in [e for e in loading if e not in wanted]:
            loading.pop(ep).cancel()
            for key in self.meta.video_keys:
                videos.release(self._video_rel(ep, key))
        for ep in wanted:
            if ep not in loading:
                for key in self.meta.video_keys:
                    videos.acquire(self._video_rel(ep, key))
                loading[ep] = executor.submit(self._load_episode, ep)

    def _episode_files(self) -> tuple[dict[int, str], dict[tuple[int, str], str]]:
        """Each selected episode's data file and (per camera) video file, relative to the dataset root. Filled
        from info.json's templates and checked here, once per file, so a hostile dataset is refused before any
        training step rather than in the middle of an epoch."""
        filled: dict[tuple[str, int, int], str] = {}

        def path(name: str, key: str, chunk_index: int, file_index: int) -> str:
            if (key, chunk_index, file_index) not in filled:
                fields = {"video_key": key} if name == "video_path" else {}
                filled[(key, chunk_index, file_index)] = self.files.template_path(
                    self.meta.info[name], name, chunk_index=chunk_index, file_index=file_index, **fields)
            return filled[(key, chunk_index, file_index)]

        data_files, video_files = {}, {}
        for ep in self.episodes:
            info = self.meta.episodes[ep]
            data_files[ep] = path("data_path", "", info.data_chunk_index, info.data_file_index)
            for key in self.meta.video_keys:
                span = info.videos[key]
                video_files[(ep, key)] = path("video_path", key, span.chunk_index, span.file_index)
        return data_files, video_files

    def _video_rel(self, ep: int, key: str) -> str:
        return self._video_files[(ep, key)]

    def _load_episode(self, ep: int) -> _PooledEpisode:
        info = self.meta.episodes[ep]
        rel = self._data_files[ep]
        columns = fmt.data_feature_keys(self.features)
        table = self.files.read_episode_rows(rel, ep, columns)
        if table.num_rows != info.length:
            raise ValueError(f"{rel}: episode {ep} has {table.num_rows} rows, meta/episodes says {info.length}")
        order = np.argsort(table.column("frame_index").to_numpy(), kind="stable")
        if not np.array_equal(order, np.arange(table.num_rows)):
            table = table.take(pa.array(order))
        numeric = {k: column_to_numpy(table.column(k), k, self.features[k]) for k in self._numeric_keys}
        images = {}
        for key in self.meta.image_keys:
            arr = table.column(key).combine_chunks()
            images[key] = arr.field("bytes").to_pylist()
        for key in self._string_keys:
            numeric[key] = np.array(table.column(key).to_pylist(), dtype=object)
        return _PooledEpisode(
            episode_index=ep, length=info.length, numeric=numeric, images=images,
            video_files={k: self._video_rel(ep, k) for k in self.meta.video_keys},
            video_from_timestamp={k: info.videos[k].from_timestamp for k in self.meta.video_keys},
        )

    # ---------------------------------------------------------------- one sample
    def _camera(self, data: _PooledEpisode, key: str, rows: np.ndarray, videos: VideoFileCache) -> np.ndarray:
        """(T, C, H, W) uint8 frames of camera `key` at episode rows `rows`."""
        if key in data.images:
            frames = []
            for r in rows.tolist():
                where = f"'{key}' episode {data.episode_index} frame {r}"
                blob = data.images[key][r]
                if blob is None:
                    raise ValueError(f"{where}: image has no embedded bytes")
                frames.append(decode_image_frame(blob, self.features[key], where).transpose(2, 0, 1))
            return np.ascontiguousarray(np.stack(frames))
        query = [data.video_from_timestamp[key] + float(t) for t in data.numeric["timestamp"][rows]]
        hwc = self._decoders.frames_at(videos.path(data.video_files[key]), query, self.tolerance_s)
        return np.ascontiguousarray(hwc.transpose(0, 3, 1, 2))

    def _item(self, data: _PooledEpisode, frame: int, videos: VideoFileCache) -> dict[str, Any]:
        item: dict[str, Any] = {}
        for key in self._numeric_keys:
            item[key] = torch.from_numpy(np.array(data.numeric[key][frame]))
        for key in self._string_keys:
            item[key] = str(data.numeric[key][frame])
        windows = self.delta_indices or {}
        for key, deltas in windows.items():
            positions = frame + deltas
            rows = np.clip(positions, 0, data.length - 1)
            item[f"{key}_is_pad"] = torch.from_numpy((positions < 0) | (positions >= data.length))
            if key in self.meta.camera_keys:
                item[key] = torch.from_numpy(self._camera(data, key, rows, videos))
                if len(deltas) == 1 and key in self.meta.video_keys:
                    item[key] = item[key][0]  # a one-frame video window is squeezed, as upstream
            elif key in self._string_keys:
                item[key] = [str(data.numeric[key][r]) for r in rows]
            else:
                item[key] = torch.from_numpy(np.ascontiguousarray(data.numeric[key][rows]))
        for key in self.meta.camera_keys:
            if key not in windows:
                item[key] = torch.from_numpy(self._camera(data, key, np.array([frame]), videos)[0])
        if self.image_transforms is not None:
            for key in self.meta.camera_keys:
                item[key] = self.image_transforms(item[key].to(torch.float32) / 255)
        item["task"] = self.meta.tasks[int(data.numeric["task_index"][frame])]
        return item

    def __repr__(self) -> str:
        return (
            f"StreamingEpisodeDataset(source={self.files.source!r}, episodes={len(self.episodes)}, "
            f"frames={self.num_frames}, pool={self.episode_pool_size}, rank={self.rank}/{self.world_size}, "
            f"epoch={self._epoch})"
        )


def iterate_epochs(loader: torch.utils.data.DataLoader, dataset: StreamingEpisodeDataset,
                   start_epoch: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    """(epoch, batch) forever: sets the dataset's epoch before each pass over the DataLoader. A fast_forward
    set before calling applies to the first epoch only."""
    epoch = start_epoch
    pending = dataset._fast_forward
    while True:
        dataset.set_epoch(epoch)
        if epoch == start_epoch and pending is not None:
            dataset._fast_forward = pending
        for batch in loader:
            yield epoch, batch
        epoch += 1
