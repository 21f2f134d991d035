"""Dataset tools: delete episodes, merge, split, recompute stats, summarise (LeRobotDataset v3.0).

Every editing tool is one operation, `compose_dataset`: build a NEW dataset folder from an ordered list of source
episodes (possibly from several datasets). It
- renumbers episodes 0..K-1, re-bases `index`, remaps `task_index` to the union of the used tasks;
- rewrites the data parquet one row group per episode, rolling files at `data_files_size_in_mb`;
- moves each episode's video segment by remux (stream copy; every episode starts on a keyframe), re-encoding with
  the encoder from info.json only when a segment cannot be stream-copied, and recomputes from/to timestamps;
- keeps each episode's stats, except the renumbered columns (episode_index, index, task_index), which are
  recomputed from the rewritten rows, then aggregates stats.json from the per-episode stats.

The new dataset is written into `<dst>.partial-<pid>`, flushed to disk, and renamed to `<dst>` only when complete,
so a crash or a power loss never leaves a half-written dataset under the final name.

Sources are read under the dataset lock (shared: tools can read side by side, never next to a live writer) and a
source with unfinished work (a save journal, pending video segments: a crashed or live recording) is refused with
the command that repairs it (`lerobot-dataset recover`).

Editing in place (delete-episodes without an output path) follows upstream: the new dataset is built next to the
original, then the original is renamed to `<root>_old` (refused if that already exists) and the new one takes its
place. The two renames are journaled (recovery.replace_dataset_folder), so a crash between them is finished by the
next `recover` / `LeRobotDatasetWriter.open`. Nothing of the original is modified before the new dataset is
complete, and the original is held under an exclusive lock for the whole edit.
"""

from __future__ import annotations

import copy
import os
import shutil
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from . import durable_io
from . import stats as stats_mod
from .errors import DatasetToolError
from .format import (
    DEFAULT_FEATURES,
    VIDEO_PATH,
    data_file_path,
    data_schema,
    episodes_file_path,
    episodes_schema,
    image_keys,
    next_chunk_file,
    splits_for,
    check_relative_path,
    resolve_inside,
    stats_feature_keys,
    video_file_path,
    video_keys,
)
from .locking import dataset_lock
from .meta_episodes import EpisodesFileWriter, episode_stats_columns, write_episodes_file
from .meta_info import write_info
from .meta_stats import write_stats
from .meta_tasks import write_tasks
from .recovery import replace_dataset_folder, require_finished
from .source_dataset import EpisodeStats, SourceDataset, load_source
from .reader import decode_image_frame
from .video import SegmentEncoder, VideoEncoderConfig, probe_video_info
from .video_segments import VideoFileSink, decode_segment_frames

# Video info keys that describe the encoder settings, not the stream: they may differ between merged datasets.
VIDEO_ENCODER_INFO_KEYS = (
    "video.g",
    "video.crf",
    "video.preset",
    "video.fast_decode",
    "video.video_backend",
    "video.extra_options",
)
# Columns whose values change when episodes are renumbered; their per-episode stats are recomputed.
RENUMBERED_COLUMNS = ("episode_index", "index", "task_index")

__all__ = [
    "DatasetToolError",
    "EpisodeRef",
    "ComposeResult",
    "compose_dataset",
    "delete_episodes",
    "merge_datasets",
    "split_dataset",
    "fractions_to_episodes",
    "recompute_stats",
    "dataset_summary",
    "check_mergeable",
    "reading_source",
    "editing_in_place",
    "apply_edit",
    "EditPlan",
    "remove_saved_episode",
    "RemovedEpisode",
]


# ---------------------------------------------------------------------------------------------- access to sources
def _check_folder(root: Path | str) -> None:
    root = Path(root)
    if not root.exists():
        require_finished(root, "use it")  # an interrupted in-place edit may have it under another name
    if not root.is_dir():
        what = "it is a file, not a folder" if root.exists() else "the folder does not exist"
        raise DatasetToolError(f"{root} is not a LeRobot dataset: {what}")


@contextmanager
def reading_source(root: Path | str, action: str = "read it") -> Iterator[SourceDataset]:
    """A source dataset held under a shared lock (no writer can open it meanwhile); refused while a writer has
    it open or when it holds unfinished work."""
    _check_folder(root)
    with dataset_lock(root, shared=True, action=action):
        require_finished(root, action)
        yield load_source(root)


@contextmanager
def editing_in_place(root: Path | str, action: str) -> Iterator[SourceDataset]:
    """A dataset held under an exclusive lock for an edit that replaces it (no writer or other tool meanwhile)."""
    _check_folder(root)
    with dataset_lock(root, shared=False, action=action):
        require_finished(root, action)
        yield load_source(root)


def swap_in(src_root: Path, staged: Path, backup: Path | None) -> None:
    """Put the complete dataset `staged` in place of `src_root` (journaled); the original goes to `backup`, or is
    deleted when `backup` is None."""
    old = backup if backup is not None else src_root.with_name(f".{src_root.name}.replaced-{os.getpid()}")
    replace_dataset_folder(src_root, staged, old, keep_old=backup is not None)


@dataclass(frozen=True)
class EpisodeRef:
    """One source episode to write into the new dataset."""

    source: SourceDataset
    episode_index: int
    task: str | None = None  # every frame gets this task (modify-tasks); None keeps the episode's own tasks


@dataclass
class ComposeResult:
    root: Path
    total_episodes: int
    total_frames: int
    tasks: list[str]
    reencoded_segments: int = 0
    backup: Path | None = None  # set when an in-place edit moved the original away


# ---------------------------------------------------------------------------------------------- data side
class _DataFileSink:
    """data/chunk-XXX/file-XXX.parquet writer: one row group per episode, upstream's size-based rollover."""

    def __init__(self, root: Path, features: Mapping[str, Any], chunks_size: int, file_size_mb: float):
        self.root = root
        self.schema = data_schema(features)
        self.chunks_size = chunks_size
        self.limit_mb = float(file_size_mb)
        self.chunk, self.file = 0, 0
        self._sink: Any = None
        self._writer: pq.ParquetWriter | None = None
        self._frames = 0

    def add_episode(self, table: pa.Table) -> tuple[int, int]:
        n = table.num_rows
        if self._writer is not None and self._frames > 0:
            size_mb = self._sink.tell() / (1024 * 1024)
            if size_mb + size_mb / self._frames * n >= self.limit_mb:
                self._close()
                self.chunk, self.file = next_chunk_file(self.chunk, self.file, self.chunks_size)
        if self._writer is None:
            path = data_file_path(self.root, self.chunk, self.file)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._sink = pa.OSFile(str(path), "wb")
            self._writer = pq.ParquetWriter(self._sink, self.schema, compression="snappy", use_dictionary=True)
            self._frames = 0
        self._writer.write_table(table, row_group_size=max(1, n))
        self._frames += n
        return self.chunk, self.file

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer, self._sink = None, None

    def close(self) -> None:
        self._close()


class _SourceDataCache:
    """Reads a source's data file once while its episodes are consumed in order."""

    def __init__(self) -> None:
        self._key: tuple[Path, int, int] | None = None
        self._table: pa.Table | None = None

    def episode_table(self, src: SourceDataset, ep: int) -> pa.Table:
        row = src.episodes[ep]
        key = (src.root, int(row["data/chunk_index"]), int(row["data/file_index"]))
        if key != self._key:
            path = src.data_file(ep)
            if not path.is_file():
                raise DatasetToolError(f"{src.root}: episode {ep} points at missing data file {path}")
            self._table = pq.read_table(path)
            self._key = key
        assert self._table is not None
        table = self._table.filter(pc.equal(self._table["episode_index"], ep))
        if table.num_rows != int(row["length"]):
            raise DatasetToolError(
                f"{src.root}: episode {ep} has {table.num_rows} data rows in {key[1:]}, meta/episodes says "
                f"length={row['length']}"
            )
        return table.sort_by("frame_index")


def _renumbered_table(
    table: pa.Table, schema: pa.Schema, new_ep: int, first_index: int, task_map: Mapping[int, int],
    task_override: int | None = None,
) -> pa.Table:
    """The episode's rows with the output's columns, renumbered: episode_index, index from `first_index`, and
    task_index through `task_map` (or all set to `task_override`)."""
    n = table.num_rows
    if task_override is not None:
        new_tasks = np.full(n, task_override, dtype=np.int64)
    else:
        old_tasks = table["task_index"].to_numpy()
        unmapped = sorted({int(t) for t in old_tasks} - set(task_map))
        if unmapped:
            raise DatasetToolError(
                f"episode rows use task_index {unmapped}, which are not among the episode's tasks in meta/episodes"
            )
        new_tasks = np.fromiter((task_map[int(t)] for t in old_tasks), dtype=np.int64, count=n)
    columns = {name: table[name] for name in schema.names if name in table.column_names}
    missing = [name for name in schema.names if name not in columns]
    if missing:
        raise DatasetToolError(f"source data lacks columns {missing}")
    columns["episode_index"] = pa.array(np.full(n, new_ep, dtype=np.int64))
    columns["index"] = pa.array(np.arange(first_index, first_index + n, dtype=np.int64))
    columns["task_index"] = pa.array(new_tasks)
    arrays = [columns[name].cast(schema.field(name).type) for name in schema.names]
    return pa.Table.from_arrays(arrays, schema=schema)


# ---------------------------------------------------------------------------------------------- compose
def _used_task_indices(src: SourceDataset, ep: int) -> list[int]:
    names = src.episodes[ep].get("tasks") or []
    lookup = {t: i for i, t in enumerate(src.tasks)}
    unknown = [t for t in names if t not in lookup]
    if unknown:
        raise DatasetToolError(f"{src.root}: episode {ep} lists tasks {unknown} that are not in meta/tasks.parquet")
    return sorted(lookup[t] for t in names)


@dataclass
class _TaskPlan:
    """The new dataset's tasks and how each source's task_index maps onto them."""

    tasks: list[str]
    maps: dict[int, dict[int, int]]  # per source (by id): old task_index -> new task_index

    def index_of(self, task: str) -> int:
        return self.tasks.index(task)


def _plan_tasks(refs: Sequence[EpisodeRef], sorted_tasks: bool = False) -> _TaskPlan:
    """Union of the used tasks: per source in order of first appearance, each by its task_index, no duplicates
    (alphabetical with `sorted_tasks`, as upstream's modify_tasks numbers them). Every source task whose string is
    used gets a mapping, so data rows whose task is missing from the episode's `tasks` list are still mapped."""
    used_names: list[str] = []
    seen_sources: list[SourceDataset] = []
    used: dict[int, set[int]] = {}
    for ref in refs:
        if id(ref.source) not in used:
            seen_sources.append(ref.source)
            used[id(ref.source)] = set()
        if ref.task is None:
            used[id(ref.source)].update(_used_task_indices(ref.source, ref.episode_index))
    for ref in refs:
        if ref.task is not None:
            used_names.append(ref.task)
    names: list[str] = []
    for src in seen_sources:
        names += [src.tasks[old] for old in sorted(used[id(src)])]
    names += used_names
    tasks = sorted(set(names)) if sorted_tasks else list(dict.fromkeys(names))
    position = {name: i for i, name in enumerate(tasks)}
    maps = {id(src): {i: position[name] for i, name in enumerate(src.tasks) if name in position} for src in seen_sources}
    return _TaskPlan(tasks, maps)


def _partial_dir(dst: Path) -> Path:
    return dst.with_name(f"{dst.name}.partial-{os.getpid()}")


def _check_new_output(dst: Path) -> None:
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise DatasetToolError(f"output {dst} already exists and is not empty; choose a new path")


def compose_dataset(
    refs: Sequence[EpisodeRef],
    dst: Path | str,
    base_info: Mapping[str, Any],
    *,
    force_reencode: bool = False,
    progress: bool = True,
    desc: str = "episodes",
    sorted_tasks: bool = False,
    images_to_video: Mapping[str, VideoEncoderConfig] | None = None,
    extra_files: Mapping[str, Path] | None = None,
) -> ComposeResult:
    """Write a new dataset at `dst` made of `refs` in order (see the module docstring). `base_info` describes the
    output: features missing from it are dropped; `images_to_video` names image features of the sources that are
    video features in `base_info`, encoded with the given settings; `extra_files` maps a path inside the new
    dataset to a file copied there (files the format does not know, e.g. the recorder's meta/robot_interface.yaml),
    so they are part of the dataset before it appears under its name."""
    dst = Path(dst)
    if not refs:
        raise DatasetToolError("no episodes to write")
    _check_new_output(dst)
    work = _partial_dir(dst)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        composer = _Composer(work, base_info, _plan_tasks(refs, sorted_tasks), force_reencode, dict(images_to_video or {}))
        try:
            for new_ep, ref in enumerate(tqdm(refs, desc=desc, unit="ep", disable=not progress)):
                composer.add(new_ep, ref)
        finally:
            composer.close_files()
        result = composer.finish()
        for relative, source in (extra_files or {}).items():
            target = work / check_relative_path(relative, "extra_files")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        durable_io.fsync_tree(work)  # durable before it appears under its final name
        if dst.exists():
            dst.rmdir()  # empty (checked above)
        durable_io.replace(work, dst)
        result.root = dst
        return result
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


class _Composer:
    """The files of the new dataset being written, one source episode at a time."""

    def __init__(self, out: Path, base_info: Mapping[str, Any], task_plan: _TaskPlan, force_reencode: bool,
                 images_to_video: dict[str, VideoEncoderConfig]):
        self.out = out
        self.info = copy.deepcopy(dict(base_info))
        self.features: dict[str, Any] = self.info["features"]
        self.fps = int(self.info["fps"])
        chunks_size = int(self.info.get("chunks_size", 1000))
        data_mb = float(self.info.get("data_files_size_in_mb", 100))
        video_mb = float(self.info.get("video_files_size_in_mb", 200))
        self.video_keys = video_keys(self.features)
        self.task_plan = task_plan
        self.images_to_video = images_to_video
        self.data_sink = _DataFileSink(out, self.features, chunks_size, data_mb)
        self.video_sinks = {
            k: VideoFileSink(out, k, self.fps, chunks_size, video_mb, self.features[k].get("info") or {}, force_reencode)
            for k in self.video_keys
        }
        self.meta_writer = EpisodesFileWriter(out, self.features, chunks_size, data_mb, fsync=False)  # flushed at the end
        self.cache = _SourceDataCache()
        self.all_stats: list[EpisodeStats] = []
        self.total_frames = 0
        self.episodes = 0

    def add(self, new_ep: int, ref: EpisodeRef) -> None:
        src, old_ep = ref.source, ref.episode_index
        length = int(src.episodes[old_ep]["length"])
        source_table = self.cache.episode_table(src, old_ep)
        override = self.task_plan.index_of(ref.task) if ref.task is not None else None
        table = _renumbered_table(source_table, self.data_sink.schema, new_ep, self.total_frames,
                                  self.task_plan.maps[id(src)], override)
        chunk, file = self.data_sink.add_episode(table)
        keep = set(stats_feature_keys(self.features))
        ep_stats = {k: v for k, v in copy.deepcopy(src.episode_stats[old_ep]).items() if k in keep}
        for col in RENUMBERED_COLUMNS:
            ep_stats[col] = stats_mod.vector_stats(table[col].to_numpy())
        row: dict[str, Any] = {
            "episode_index": new_ep,
            "tasks": [self.task_plan.tasks[i] for i in sorted(set(table["task_index"].to_pylist()))],
            "length": length,
            "data/chunk_index": chunk,
            "data/file_index": file,
            "dataset_from_index": self.total_frames,
            "dataset_to_index": self.total_frames + length,
        }
        for key in self.video_keys:
            placed = self._place_video(key, src, old_ep, source_table, length)
            row[f"videos/{key}/chunk_index"] = placed.chunk_index
            row[f"videos/{key}/file_index"] = placed.file_index
            row[f"videos/{key}/from_timestamp"] = placed.from_timestamp
            row[f"videos/{key}/to_timestamp"] = placed.to_timestamp
        row.update(episode_stats_columns(ep_stats, self.features))
        self.meta_writer.add(row)
        self.all_stats.append(ep_stats)
        self.total_frames += length
        self.episodes += 1

    def _place_video(self, key: str, src: SourceDataset, old_ep: int, source_table: pa.Table, length: int) -> Any:
        """Copy the episode's segment of a source video, or encode it from a source image feature."""
        if key in self.images_to_video:
            segment = self.out / ".segments" / f"{key}.mp4"
            encoder = None
            try:
                where = f"{src.root}: '{key}' episode {old_ep}"
                for cell in source_table[key].to_pylist():
                    rgb = decode_image_frame(_png_bytes(src, cell, key, old_ep), src.features[key], where)
                    if rgb.shape[2] != 3:
                        raise DatasetToolError(f"{src.root}: '{key}' has {rgb.shape[2]}-channel images; video needs RGB")
                    if encoder is None:
                        encoder = SegmentEncoder(segment, self.fps, rgb.shape[1], rgb.shape[0], self.images_to_video[key])
                    encoder.add(rgb)
                assert encoder is not None
                encoder.finish()
                return self.video_sinks[key].add_episode(segment, 0.0, length / self.fps, length)
            finally:
                shutil.rmtree(segment.parent, ignore_errors=True)
        src_video = src.video_file(old_ep, key)
        if not src_video.is_file():
            raise DatasetToolError(f"{src.root}: episode {old_ep} camera {key}: missing {src_video}")
        src_row = src.episodes[old_ep]
        return self.video_sinks[key].add_episode(src_video, float(src_row[f"videos/{key}/from_timestamp"]),
                                                 float(src_row[f"videos/{key}/to_timestamp"]), length)

    def close_files(self) -> None:
        self.data_sink.close()
        for sink in self.video_sinks.values():
            sink.close()

    def finish(self) -> ComposeResult:
        self.meta_writer.close()
        write_tasks(self.out, self.task_plan.tasks, fsync=False)
        agg = stats_mod.aggregate_stats(self.all_stats)
        write_stats(self.out, {k: agg[k] for k in self.features if k in agg}, fsync=False)
        for key, config in self.images_to_video.items():
            first = video_file_path(self.out, key, 0, 0)
            self.features[key]["info"] = {**probe_video_info(first), **config.info_fields()}
        self.info.update(
            {
                "total_episodes": self.episodes,
                "total_frames": self.total_frames,
                "total_tasks": len(self.task_plan.tasks),
                "splits": splits_for(self.episodes),
                # as upstream's tools: a dataset without video features has no video path template
                "video_path": VIDEO_PATH if self.video_keys else None,
            }
        )
        for legacy in ("total_chunks", "total_videos"):
            self.info.pop(legacy, None)
        write_info(self.out, self.info, fsync=False)
        return ComposeResult(
            root=self.out,
            total_episodes=self.episodes,
            total_frames=self.total_frames,
            tasks=self.task_plan.tasks,
            reencoded_segments=sum(s.reencoded_segments for s in self.video_sinks.values()),
        )


def _png_bytes(src: SourceDataset, cell: Mapping[str, Any] | None, key: str, ep: int) -> bytes:
    """An embedded image's PNG bytes (or the file its path names inside the source dataset)."""
    cell = cell or {}
    if cell.get("bytes") is not None:
        return cell["bytes"]
    if not cell.get("path"):
        raise DatasetToolError(f"{src.root}: episode {ep} '{key}': an image has neither bytes nor path")
    path = resolve_inside(src.root, cell["path"], f"{src.root}: episode {ep} '{key}' image path")
    return path.read_bytes()


# ---------------------------------------------------------------------------------------------- delete
def _check_episode_indices(src: SourceDataset, episodes: Iterable[int], what: str) -> list[int]:
    episodes = [int(e) for e in episodes]
    bad = sorted({e for e in episodes if not 0 <= e < src.total_episodes})
    if bad:
        has = f"episodes 0..{src.total_episodes - 1}" if src.total_episodes else "no episodes"
        raise DatasetToolError(f"{what}: unknown episode index {bad} in {src.root}; it has {has}")
    return episodes


def _kept_episodes(src: SourceDataset, episodes: Iterable[int]) -> list[EpisodeRef]:
    to_delete = set(_check_episode_indices(src, episodes, "delete-episodes"))
    if not to_delete:
        raise DatasetToolError("delete-episodes: no episode index given")
    kept = [i for i in range(src.total_episodes) if i not in to_delete]
    if not kept:
        raise DatasetToolError(f"delete-episodes: would delete all {src.total_episodes} episodes of {src.root}")
    return [EpisodeRef(src, i) for i in kept]


@dataclass
class EditPlan:
    """What an edit writes: the source episodes in their new order and the new dataset's info."""

    refs: list[EpisodeRef]
    info: dict[str, Any]
    images_to_video: dict[str, VideoEncoderConfig] = field(default_factory=dict)  # see compose_dataset


def apply_edit(
    root: Path | str,
    output: Path | str | None,
    action: str,
    plan: Callable[[SourceDataset], EditPlan],
    *,
    keep_backup: bool = True,
    keep_files: Sequence[str] = (),
    **compose_options: Any,
) -> ComposeResult:
    """Run an edit that rebuilds a dataset: into `output` (the source only read, under a shared lock), or in place
    when `output` is None or `root` (exclusive lock; the original is kept as `<root>_old` with `keep_backup`, as
    upstream does, else deleted once the edited copy is in place; the swap is journaled). `keep_files`: paths
    inside the dataset, outside the format, copied unchanged into the result where the original has them."""
    root = Path(root)
    kept = {rel: resolve_inside(root, rel, "keep_files") for rel in keep_files}
    compose_options["extra_files"] = {rel: path for rel, path in kept.items() if path.is_file()}
    if output is not None and Path(output).resolve() != root.resolve():
        with reading_source(root, action) as src:
            edit = plan(src)
            return compose_dataset(edit.refs, Path(output), edit.info, images_to_video=edit.images_to_video,
                                   **compose_options)
    with editing_in_place(root, action) as src:
        edit = plan(src)
        backup = root.with_name(root.name + "_old") if keep_backup else None
        if backup is not None and backup.exists():
            raise DatasetToolError(
                f"in-place edit of {root} needs to move the original to {backup}, which already exists; "
                f"remove it or pass --output"
            )
        staged = root.with_name(f".{root.name}.edit-{os.getpid()}")
        result = compose_dataset(edit.refs, staged, edit.info, images_to_video=edit.images_to_video, **compose_options)
        swap_in(root, staged, backup)
    result.root = root
    result.backup = backup
    return result


def delete_episodes(
    root: Path | str,
    episodes: Iterable[int],
    output: Path | str | None = None,
    *,
    keep_backup: bool = True,
    keep_files: Sequence[str] = (),
    force_reencode: bool = False,
    progress: bool = True,
) -> ComposeResult:
    """Remove `episodes` from the dataset at `root`; write to `output`, or replace `root` (the original is kept as
    `<root>_old` with `keep_backup`, as upstream does, else deleted once the edited copy is in place).
    `keep_files`: see apply_edit."""
    episodes = list(episodes)
    return apply_edit(root, output, "delete episodes from it", lambda src: EditPlan(_kept_episodes(src, episodes), src.info),
                      keep_backup=keep_backup, keep_files=keep_files, force_reencode=force_reencode, progress=progress)


@dataclass
class RemovedEpisode:
    """What `remove_saved_episode` did: which episode went, and the writer to go on recording with."""

    episode_index: int
    writer: Any  # LeRobotDatasetWriter open on the dataset without the episode


def remove_saved_episode(writer: Any, episode_index: int = -1, keep_files: Sequence[str] = ()) -> RemovedEpisode:
    """Remove a saved episode from the dataset that `writer` (a LeRobotDatasetWriter) has open: -1 is the last one;
    later episodes are renumbered as LeRobot's delete_episodes does. `writer` is closed; the returned writer (of
    the same class) appends to the result. Removing the only episode removes the dataset folder (a dataset with no
    episode is no folder, see LeRobotDatasetWriter.create) and returns a writer that creates it again with the
    same features. `keep_files` (paths inside the dataset the format does not know) survive the rebuild.

    The dataset is rebuilt without the episode next to the original and swapped in with a journal: a crash at any
    point leaves either the original or the edited dataset under `root`, never neither (recover() finishes it).
    """
    writer_class = type(writer)
    root = Path(writer.root)
    total = int(writer.total_episodes)
    if total == 0:
        raise DatasetToolError("the dataset has no saved episode to remove")
    index = total - 1 if episode_index == -1 else int(episode_index)
    if not 0 <= index < total:
        raise DatasetToolError(f"episode {episode_index} does not exist; the dataset has episodes 0..{total - 1} (-1 = the last)")
    if writer.episode_length:
        raise DatasetToolError("an episode is being recorded; save or discard it first")
    encoder, info, fsync = writer.video_encoder, dict(writer.info), writer.fsync
    writer.close()
    if total > 1:
        delete_episodes(root, [index], keep_backup=False, keep_files=keep_files, progress=False)
        return RemovedEpisode(index, writer_class.open(root, video_encoder=encoder, fsync=fsync))
    with editing_in_place(root, "remove its only episode"):
        removed = root.with_name(f".{root.name}.removed-{os.getpid()}")
        durable_io.replace(root, removed, fsync)  # one atomic step: the dataset is gone, the rest is cleanup
    durable_io.remove_tree(removed, fsync)
    features = {k: v for k, v in info["features"].items() if k not in DEFAULT_FEATURES}
    for ft in features.values():
        ft.pop("info", None)
    new = writer_class.create(
        root, fps=int(info["fps"]), features=features, robot_type=info.get("robot_type"),
        use_videos=bool(video_keys(features)), video_encoder=encoder, chunks_size=int(info["chunks_size"]),
        data_files_size_in_mb=float(info["data_files_size_in_mb"]),
        video_files_size_in_mb=float(info["video_files_size_in_mb"]), fsync=fsync,
    )
    new.info.update({k: v for k, v in info.items() if k not in new.info})  # e.g. a repo_id the recorder stored
    return RemovedEpisode(index, new)


# ---------------------------------------------------------------------------------------------- merge
def _normalized_feature(ft: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in ft.items()}
    info = dict(out.get("info") or {})
    depth = info.pop("video.is_depth_map", info.get("is_depth_map", False))
    info["is_depth_map"] = bool(depth)
    out["info"] = {k: v for k, v in info.items() if k not in VIDEO_ENCODER_INFO_KEYS}
    return out


def check_mergeable(sources: Sequence[SourceDataset]) -> None:
    """fps, robot_type and features must match the first dataset (video encoder keys ignored); else raise naming
    the dataset and the differing field."""
    first = sources[0]
    for src in sources[1:]:
        if src.fps != first.fps:
            raise DatasetToolError(f"merge: fps differs: {first.root} has {first.fps}, {src.root} has {src.fps}")
        if src.info.get("robot_type") != first.info.get("robot_type"):
            raise DatasetToolError(
                f"merge: robot_type differs: {first.root} has {first.info.get('robot_type')!r}, "
                f"{src.root} has {src.info.get('robot_type')!r}"
            )
        a, b = first.features, src.features
        if set(a) != set(b):
            raise DatasetToolError(
                f"merge: features differ: only in {first.root}: {sorted(set(a) - set(b))}; "
                f"only in {src.root}: {sorted(set(b) - set(a))}"
            )
        for key in a:
            na, nb = _normalized_feature(a[key]), _normalized_feature(b[key])
            if na != nb:
                diff = sorted(k for k in set(na) | set(nb) if na.get(k) != nb.get(k))
                raise DatasetToolError(
                    f"merge: feature '{key}' differs in {diff}: {first.root} has "
                    f"{ {k: na.get(k) for k in diff} }, {src.root} has { {k: nb.get(k) for k in diff} }"
                )


def _merged_info(sources: Sequence[SourceDataset]) -> dict[str, Any]:
    """First dataset's info; per video key, encoder keys kept when all agree, else null ({} for extra_options)."""
    info = copy.deepcopy(sources[0].info)
    for key in video_keys(info["features"]):
        infos = [s.features[key].get("info") or {} for s in sources]
        merged = info["features"][key].setdefault("info", {})
        for enc_key in VIDEO_ENCODER_INFO_KEYS:
            values = [i.get(enc_key) for i in infos]
            if any(v != values[0] for v in values[1:]):
                merged[enc_key] = {} if enc_key == "video.extra_options" else None
    return info


def merge_datasets(
    roots: Sequence[Path | str],
    output: Path | str,
    *,
    force_reencode: bool = False,
    progress: bool = True,
) -> ComposeResult:
    if len(roots) < 2:
        raise DatasetToolError(f"merge: give at least 2 datasets, got {len(roots)}")
    resolved = [Path(r).resolve() for r in roots]
    if len(set(resolved)) != len(resolved):
        raise DatasetToolError(f"merge: a dataset is listed twice: {[str(r) for r in roots]}")
    if Path(output).resolve() in resolved:
        raise DatasetToolError(f"merge: output {output} is one of the inputs; write to a new path")
    with ExitStack() as held:
        sources = [held.enter_context(reading_source(r, "merge it")) for r in roots]
        check_mergeable(sources)
        refs = [EpisodeRef(s, i) for s in sources for i in range(s.total_episodes)]
        return compose_dataset(
            refs, Path(output), _merged_info(sources), force_reencode=force_reencode, progress=progress, desc="merge"
        )


# ---------------------------------------------------------------------------------------------- split
def fractions_to_episodes(total_episodes: int, fractions: Mapping[str, float]) -> dict[str, list[int]]:
    """Consecutive episode ranges: split k gets int(total*fraction) episodes, and the last split also takes the
    rounding remainder. Every episode must land in a split: fractions that leave some out (a sum below 1) are
    refused, naming how many would be left."""
    if not fractions:
        raise DatasetToolError("split: no splits given")
    bad = {k: v for k, v in fractions.items() if not 0 < v <= 1}
    if bad:
        raise DatasetToolError(f"split: fractions must be in (0, 1], got {bad}")
    total_fraction = sum(fractions.values())
    if total_fraction > 1 + 1e-9:
        raise DatasetToolError(f"split: fractions sum to {total_fraction:.6g} > 1: {dict(fractions)}")
    if total_fraction < 1 - 1e-9:
        left = total_episodes - sum(int(total_episodes * f + 1e-9) for f in fractions.values())
        raise DatasetToolError(
            f"split: fractions {dict(fractions)} sum to {total_fraction:.6g}, which would leave {left} of "
            f"{total_episodes} episodes in no split; make them sum to 1 (e.g. add rest={1 - total_fraction:.6g})"
        )
    out: dict[str, list[int]] = {}
    start = 0
    names = list(fractions)
    for name in names:
        count = int(total_episodes * fractions[name] + 1e-9)
        end = start + count
        if name == names[-1]:
            end = total_episodes
        out[name] = list(range(start, end))
        start = end
    empty = [k for k, v in out.items() if not v]
    if empty:
        raise DatasetToolError(
            f"split: {empty} would get no episode out of {total_episodes} with fractions {dict(fractions)}"
        )
    return out


def split_dataset(
    root: Path | str,
    splits: Mapping[str, Sequence[int] | float],
    output_dir: Path | str,
    *,
    force_reencode: bool = False,
    progress: bool = True,
) -> dict[str, ComposeResult]:
    """One dataset per split under `output_dir/<split>`; splits are episode lists or fractions (not mixed)."""
    if not splits:
        raise DatasetToolError("split: no splits given")
    with reading_source(root, "split it") as src:
        return _split(src, splits, Path(output_dir), force_reencode, progress)


def _split(src: SourceDataset, splits: Mapping[str, Sequence[int] | float], output_dir: Path, force_reencode: bool,
           progress: bool) -> dict[str, ComposeResult]:
    kinds = {isinstance(v, float) for v in splits.values()}
    if kinds == {True}:
        plan = fractions_to_episodes(src.total_episodes, {k: float(v) for k, v in splits.items()})  # type: ignore[arg-type]
    elif kinds == {False}:
        plan = {k: _check_episode_indices(src, v, f"split '{k}'") for k, v in splits.items()}  # type: ignore[arg-type]
    else:
        raise DatasetToolError(f"split: give either fractions or episode lists for every split, got {dict(splits)}")
    seen: dict[int, str] = {}
    for name, eps in plan.items():
        if not eps:
            raise DatasetToolError(f"split '{name}' has no episodes")
        for e in eps:
            if e in seen:
                raise DatasetToolError(f"split: episode {e} is in both '{seen[e]}' and '{name}'")
            seen[e] = name
    for name in plan:
        if "/" in name or name in ("", ".", ".."):
            raise DatasetToolError(f"split: bad split name {name!r}")
        _check_new_output(output_dir / name)
    results: dict[str, ComposeResult] = {}
    for name, eps in plan.items():
        refs = [EpisodeRef(src, e) for e in sorted(eps)]
        results[name] = compose_dataset(
            refs, output_dir / name, src.info, force_reencode=force_reencode, progress=progress, desc=f"split {name}"
        )
    return results


# ---------------------------------------------------------------------------------------------- recompute stats
def compute_episode_stats_from_files(src: SourceDataset, ep: int, table: pa.Table) -> EpisodeStats:
    """One episode's stats from its stored rows and decoded frames, as the writer computes them while recording:
    numeric columns over all frames, images/videos over `sample_indices` frames, downsampled, /255."""
    features = src.features
    out: EpisodeStats = {}
    n = table.num_rows
    picks = stats_mod.sample_indices(n)
    row = src.episodes[ep]
    for key in stats_feature_keys(features):
        ft = features[key]
        if ft["dtype"] == "video":
            path = src.video_file(ep, key)
            frames = decode_segment_frames(path, float(row[f"videos/{key}/from_timestamp"]), n, src.fps, keep=picks)
            samples = np.stack([stats_mod.auto_downsample_hwc(f) for f in frames])
            out[key] = stats_mod.image_stats(samples)
        elif ft["dtype"] == "image":
            cells = table[key].to_pylist()
            where = f"{src.root}: '{key}' episode {ep}"
            samples = np.stack([stats_mod.auto_downsample_hwc(decode_image_frame(_png_bytes(src, cells[i], key, ep), ft, where))
                                for i in picks])
            out[key] = stats_mod.image_stats(samples)
        else:
            column = table[key]
            if pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type):
                values = np.asarray(column.to_pylist(), dtype=np.dtype(ft["dtype"]))
            else:
                values = column.to_numpy()
            out[key] = stats_mod.vector_stats(values)
    return out


def recompute_stats(root: Path | str, *, progress: bool = True) -> Path:
    """Recompute every episode's stats from the stored data and decoded video frames, rewrite the stats columns of
    meta/episodes (same files, same rows) and stats.json, under the dataset's exclusive lock. Each file is
    replaced atomically and durably; an interruption between files leaves valid files with old or new stats."""
    with editing_in_place(root, "recompute its stats") as src:
        features = src.features
        new_rows: list[dict[str, Any]] = []
        all_stats: list[EpisodeStats] = []
        cache = _SourceDataCache()
        for ep in tqdm(range(src.total_episodes), desc="recompute stats", unit="ep", disable=not progress):
            table = cache.episode_table(src, ep)
            ep_stats = compute_episode_stats_from_files(src, ep, table)
            row = {k: v for k, v in src.episodes[ep].items() if not k.startswith("stats/")}
            row.update(episode_stats_columns(ep_stats, features))
            new_rows.append(row)
            all_stats.append(ep_stats)
        schema = episodes_schema(features)
        by_file: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for row in new_rows:
            by_file.setdefault((int(row["meta/episodes/chunk_index"]), int(row["meta/episodes/file_index"])), []).append(row)
        for (chunk, file), rows in by_file.items():
            write_episodes_file(episodes_file_path(src.root, chunk, file), pa.Table.from_pylist(rows, schema=schema))
        write_stats(src.root, stats_mod.aggregate_stats(all_stats))
        return src.root


# ---------------------------------------------------------------------------------------------- info
def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def dataset_summary(root: Path | str) -> dict[str, Any]:
    """Facts for `lerobot-dataset info`: fps, robot type, counts, tasks, features, files and sizes."""
    src = load_source(root)
    r = src.root
    lengths = [int(e["length"]) for e in src.episodes]
    files = {
        "data": [p.relative_to(r).as_posix() for p in sorted(r.glob("data/*/*.parquet"))],
        "videos": [p.relative_to(r).as_posix() for p in sorted(r.glob("videos/*/*/*.mp4"))],
        "meta/episodes": [p.relative_to(r).as_posix() for p in sorted(r.glob("meta/episodes/*/*.parquet"))],
    }
    return {
        "root": str(r),
        "codebase_version": src.info.get("codebase_version"),
        "fps": src.fps,
        "robot_type": src.info.get("robot_type"),
        "total_episodes": src.total_episodes,
        "total_frames": int(src.info.get("total_frames", sum(lengths))),
        "duration_s": sum(lengths) / src.fps,
        "episode_length": {"min": min(lengths), "max": max(lengths), "mean": float(np.mean(lengths))} if lengths else None,
        "tasks": src.tasks,
        "features": {
            k: {"dtype": f["dtype"], "shape": list(f["shape"]), **({"codec": (f.get("info") or {}).get("video.codec")} if f["dtype"] == "video" else {})}
            for k, f in src.features.items()
        },
        "cameras": {"video": video_keys(src.features), "image": image_keys(src.features)},
        "files": files,
        "sizes_bytes": {
            "data": _dir_size(r / "data"),
            "videos": _dir_size(r / "videos"),
            "meta": _dir_size(r / "meta"),
            "total": _dir_size(r),
        },
    }

