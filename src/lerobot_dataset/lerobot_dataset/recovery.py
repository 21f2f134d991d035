"""Bring a dataset folder back to a consistent state after a crash or a power loss.

Three kinds of unfinished work can be found, all described by files our writer and tools leave on purpose:

- a save journal, `.staging/journal.json`: an episode save was interrupted. Its files were backed up (hard links in
  `.staging/backup/`, made durable BEFORE the journal is written) and the files it would create are listed. The
  commit point is the episode's row in meta/episodes: if the row is there the save is finished (info.json and
  stats.json are rebuilt from meta/episodes), otherwise every backup is restored and every created file deleted.
  A backup that is missing is an error, never skipped: the file it protected may hold half an episode.
- pending video segments, `.staging/pending/<camera>/episode-N.mp4`: camera segments of committed episodes not yet
  appended to their mp4 (the writer appends in the background). Appending is idempotent (the file's frame count
  says whether it happened).
- an in-place replacement journal, `<parent>/.<name>.replace.json`: a tool (delete-episodes in place, the
  recorder's episode removal, modify-tasks) was swapping a rebuilt copy in for the original. The copy was complete
  and durable before the journal was written, so the swap is finished (rolled forward), never lost.

After repairing, the data rows of the file the writer appends to (and of every file the journal touched) are
checked against meta/episodes, so a dataset whose files disagree is reported instead of being appended to.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import durable_io
from . import format as F
from .errors import DatasetBusyError, DatasetFormatError
from .meta_episodes import committed_episode_indices, episode_stats_from_row, episodes_files, read_episode_rows
from .meta_info import read_info, write_info
from .meta_stats import write_stats
from .meta_tasks import read_tasks
from .stats import aggregate_stats
from .video import VideoEncoderConfig, concat_segment, probe_video_info, video_frame_count

log = logging.getLogger(__name__)

STAGING_DIR = ".staging"
JOURNAL_NAME = "journal.json"
PENDING_DIR = "pending"
BACKUP_DIR = "backup"
SEGMENTS_DIR = "segments"

__all__ = [
    "PendingVideo",
    "STAGING_DIR",
    "complete_pending_videos",
    "check_data_matches_metadata",
    "finish_interrupted_replace",
    "rebuild_info_and_stats",
    "recover",
    "replace_dataset_folder",
    "rollback",
    "unfinished_work",
]


# ---------------------------------------------------------------------------------------------- staging layout
def staging_dir(root: Path) -> Path:
    return Path(root) / STAGING_DIR


def journal_path(root: Path) -> Path:
    return staging_dir(root) / JOURNAL_NAME


def pending_segment_path(root: Path, key: str, episode_index: int) -> Path:
    return staging_dir(root) / PENDING_DIR / key / f"episode-{episode_index:06d}.mp4"


def backup_path(root: Path, path: Path) -> Path:
    return staging_dir(root) / BACKUP_DIR / Path(path).relative_to(root)


def replace_journal_path(root: Path) -> Path:
    root = Path(root)
    return root.parent / f".{root.name}.replace.json"


def unfinished_work(root: Path | str) -> str | None:
    """What is unfinished in the folder (a save journal, pending video segments, an in-place swap), or None."""
    root = Path(root)
    found = []
    if replace_journal_path(root).exists():
        found.append(f"an interrupted in-place edit ({replace_journal_path(root).name})")
    if journal_path(root).exists():
        found.append(f"an interrupted episode save ({STAGING_DIR}/{JOURNAL_NAME})")
    pending = staging_dir(root) / PENDING_DIR
    segments = sorted(pending.glob("*/*.mp4")) if pending.is_dir() else []
    if segments:
        found.append(f"{len(segments)} video segment(s) of saved episodes not yet appended ({STAGING_DIR}/{PENDING_DIR})")
    return "; ".join(found) or None


def require_finished(root: Path | str, action: str) -> None:
    """DatasetBusyError naming the unfinished work, if any (callers hold the dataset lock, so no writer is live)."""
    work = unfinished_work(root)
    if work:
        raise DatasetBusyError(
            f"{root}: refusing to {action}: it holds {work}. Run `lerobot-dataset recover {root}` (or open it with "
            f"LeRobotDatasetWriter.open) to finish or roll back that work first"
        )


def _journal_file(root: Path, relative: str) -> Path:
    """A path listed in a journal, which must stay inside the dataset (a downloaded dataset could carry a hostile
    `.staging/journal.json`)."""
    return F.resolve_inside(root, relative, f"{STAGING_DIR}/{JOURNAL_NAME}")


# ---------------------------------------------------------------------------------------------- pending videos
@dataclass(frozen=True)
class PendingVideo:
    """A committed episode's camera segment waiting (in .staging/pending) to be appended to its video file."""

    key: str
    episode_index: int
    chunk_index: int
    file_index: int
    from_frame: int  # frames the video file holds before this segment
    num_frames: int


def place_pending_video(root: Path, job: PendingVideo, fsync: bool = True) -> None:
    """Append (or move) a committed episode's segment to its video file. Idempotent: safe to redo after a crash."""
    seg = pending_segment_path(root, job.key, job.episode_index)
    if not seg.exists():
        return
    target = F.video_file_path(root, job.key, job.chunk_index, job.file_index)
    durable_io.make_dirs(target.parent, fsync)
    have = video_frame_count(target) if target.exists() else 0
    if have == job.from_frame + job.num_frames:  # appended before an interruption; only the cleanup was lost
        seg.unlink()
        return
    if have != job.from_frame:
        raise DatasetFormatError(
            f"{target}: holds {have} frames, expected {job.from_frame} before appending episode {job.episode_index} "
            f"({job.num_frames} frames)"
        )
    if not target.exists():
        durable_io.replace(seg, target, fsync)
        return
    with durable_io.atomic_output(target, fsync) as tmp:
        concat_segment(target, seg, tmp)
    seg.unlink()
    if fsync:
        durable_io.fsync_dir(seg.parent)


def complete_pending_videos(root: Path, fsync: bool = True) -> int:
    """Place every pending segment of a committed episode (in episode order). Returns how many were placed."""
    root = Path(root)
    base = staging_dir(root) / PENDING_DIR
    segs = sorted(base.glob("*/episode-*.mp4")) if base.is_dir() else []
    if not segs:
        return 0
    info = read_info(root)
    rows = {int(r["episode_index"]): r for r in read_episode_rows(root, expected=0)}
    fps = int(info["fps"])
    video_keys = set(F.video_keys(info["features"]))
    done = 0
    for seg in sorted(segs, key=lambda p: (p.parent.name, p.name)):
        key = seg.parent.name
        try:
            ep = int(seg.stem.split("-")[1])
        except (IndexError, ValueError):
            ep = -1
        row = rows.get(ep)
        if row is None or key not in video_keys:  # not a committed episode's segment (a rollback removes these)
            seg.unlink()
            continue
        job = PendingVideo(
            key, ep, int(row[f"videos/{key}/chunk_index"]), int(row[f"videos/{key}/file_index"]),
            int(round(float(row[f"videos/{key}/from_timestamp"]) * fps)), int(row["length"]),
        )
        place_pending_video(root, job, fsync)
        done += 1
    log.warning("%s: appended %d pending episode segment(s) to their video files", root, done)
    return done


# ---------------------------------------------------------------------------------------------- save journal
def rollback(root: Path, fsync: bool = True) -> bool:
    """Finish (committed) or undo (not committed) the save described by the journal. Returns True if there was one.

    Idempotent: backups are restored by linking, and removed only after the journal is gone, so a crash during a
    rollback is rolled back again. Raises DatasetFormatError when a backup needed to undo the save is missing.
    """
    root = Path(root)
    jpath = journal_path(root)
    if not jpath.exists():
        return False
    try:
        journal = json.loads(jpath.read_text(encoding="utf-8"))
        ep = int(journal["episode_index"])
        backups = [(_journal_file(root, orig), _journal_file(root, backup)) for orig, backup in journal["backups"]]
        created = [_journal_file(root, rel) for rel in journal["created"]]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DatasetFormatError(f"{jpath}: unreadable save journal ({exc!r}); the dataset needs a manual check") from None
    if ep in committed_episode_indices(root):
        log.warning("%s: episode %d was committed before the interruption; rebuilding info.json and stats.json", root, ep)
    else:
        missing = [str(b.relative_to(root)) for _, b in backups if not b.exists()]
        if missing:
            raise DatasetFormatError(
                f"{root}: cannot undo the interrupted save of episode {ep}: backup(s) {missing} are missing, so "
                f"{[str(o.relative_to(root)) for o, b in backups if not b.exists()]} may hold part of that episode. "
                f"Nothing was changed; check the dataset with `lerobot-dataset validate {root}`"
            )
        for orig, backup in backups:
            if orig.exists() and orig.samefile(backup):  # never replaced (a rename between links is a no-op)
                continue
            durable_io.link_or_copy(backup, durable_io.tmp_path_for(orig), fsync)
            durable_io.replace(durable_io.tmp_path_for(orig), orig, fsync)
        for path in created:
            if path.exists():
                path.unlink()
                if fsync:
                    durable_io.fsync_dir(path.parent)
        log.warning("%s: rolled back the interrupted save of episode %d", root, ep)
    if F.info_path(root).exists():  # absent only when the interrupted save was the dataset's first
        rebuild_info_and_stats(root, fsync)
    jpath.unlink()
    if fsync:
        durable_io.fsync_dir(jpath.parent)
    shutil.rmtree(staging_dir(root) / BACKUP_DIR, ignore_errors=True)
    return True


def _remove_temp_files(root: Path) -> None:
    for sub in ("data", "videos", "meta"):
        base = root / sub
        if base.exists():
            for p in base.rglob(".*.tmp"):
                p.unlink(missing_ok=True)


def rebuild_info_and_stats(root: Path, fsync: bool = True) -> None:
    """Recompute info.json counters, video info and stats.json from meta/episodes and tasks.parquet."""
    info = read_info(root)
    rows = read_episode_rows(root, expected=0)  # [] when the interrupted save was the first
    tasks = read_tasks(root, missing_ok=not rows)
    info["total_episodes"] = len(rows)
    info["total_frames"] = int(rows[-1]["dataset_to_index"]) if rows else 0
    info["total_tasks"] = len(tasks)
    info["splits"] = F.splits_for(len(rows)) if rows else {}
    features = info["features"]
    if rows:
        for key, ft in features.items():
            if ft["dtype"] == "video" and not ft.get("info"):
                first = F.video_file_path(root, key, int(rows[0][f"videos/{key}/chunk_index"]), int(rows[0][f"videos/{key}/file_index"]))
                if not first.exists():
                    first = pending_segment_path(root, key, 0)
                video_info = probe_video_info(first)
                video_info.update(VideoEncoderConfig.from_video_info(video_info).info_fields())
                ft["info"] = video_info
        stats = aggregate_stats([episode_stats_from_row(r, features) for r in rows])
        write_stats(root, {k: stats[k] for k in features if k in stats}, fsync)
    else:
        F.stats_path(root).unlink(missing_ok=True)
    write_info(root, info, fsync)


# ---------------------------------------------------------------------------------------------- consistency check
def check_data_matches_metadata(root: Path, data_files: list[tuple[int, int]] | None = None) -> None:
    """Raise DatasetFormatError unless each given data file (default: the last episode's) holds exactly the rows
    meta/episodes says: the episodes that point at it, `length` rows each, `index` = their ranges. Also checks the
    last episode's video files hold the frames meta/episodes counts (pending segments appended first)."""
    root = Path(root)
    files = episodes_files(root)
    if not files:
        return
    info = read_info(root)
    video_keys = F.video_keys(info["features"])
    columns = ["episode_index", "length", "data/chunk_index", "data/file_index", "dataset_from_index", "dataset_to_index"]
    columns += [f"videos/{k}/{c}" for k in video_keys for c in ("chunk_index", "file_index", "to_timestamp")]
    try:
        rows = pa.concat_tables([pq.read_table(p, columns=columns) for p in files], promote_options="default").to_pylist()
    except (pa.ArrowException, OSError, KeyError) as exc:
        raise DatasetFormatError(f"{root}: meta/episodes cannot be read ({exc})") from None
    if not rows:
        return
    last = rows[-1]
    wanted = set(data_files or []) | {(int(last["data/chunk_index"]), int(last["data/file_index"]))}
    for chunk, file in sorted(wanted):
        path = F.data_file_path(root, chunk, file)
        expected = {int(r["episode_index"]): r for r in rows if (int(r["data/chunk_index"]), int(r["data/file_index"])) == (chunk, file)}
        if not expected:
            continue
        rel = path.relative_to(root)
        try:
            table = pq.read_table(path, columns=["episode_index", "index"])
        except (pa.ArrowException, OSError) as exc:
            raise DatasetFormatError(f"{root}: {rel} (episodes {sorted(expected)}) is unreadable: {exc}") from None
        episodes = table.column("episode_index").to_numpy()
        index = table.column("index").to_numpy()
        found = dict(zip(*np.unique(episodes, return_counts=True)))
        problems = [f"episode {e}: {found.get(e, 0)} rows, meta/episodes says {int(r['length'])}"
                    for e, r in expected.items() if found.get(e, 0) != int(r["length"])]
        strays = sorted(int(e) for e in found if int(e) not in expected)
        if strays:
            problems.append(f"rows of episodes {strays} that meta/episodes does not place in this file")
        if not problems:
            for e, r in expected.items():
                got = index[episodes == e]
                if not np.array_equal(got, np.arange(int(r["dataset_from_index"]), int(r["dataset_to_index"]))):
                    problems.append(f"episode {e}: index values are not {r['dataset_from_index']}..{int(r['dataset_to_index']) - 1}")
        if problems:
            raise DatasetFormatError(
                f"{root}: {rel} does not match meta/episodes ({'; '.join(problems)}). The dataset is inconsistent "
                f"(a power loss on a file system that reorders writes?); inspect it with `lerobot-dataset validate {root}`"
            )
    fps = int(info["fps"])
    for key in video_keys:
        path = F.video_file_path(root, key, int(last[f"videos/{key}/chunk_index"]), int(last[f"videos/{key}/file_index"]))
        want = int(round(float(last[f"videos/{key}/to_timestamp"]) * fps))
        have = video_frame_count(path) if path.exists() else 0
        if have != want:
            raise DatasetFormatError(
                f"{root}: {path.relative_to(root)} holds {have} frames but meta/episodes places episode "
                f"{last['episode_index']} up to frame {want}; inspect it with `lerobot-dataset validate {root}`"
            )


# ---------------------------------------------------------------------------------------------- in-place swap
def replace_dataset_folder(root: Path, new_root: Path, old_root: Path, keep_old: bool, fsync: bool = True) -> None:
    """Swap the complete, durable dataset `new_root` in for `root`; the original goes to `old_root` (kept when
    `keep_old`, else deleted). A journal next to `root` makes the two renames one step: after a crash,
    `finish_interrupted_replace(root)` (run by recover) completes the swap."""
    root, new_root, old_root = Path(root), Path(new_root), Path(old_root)
    for p in (new_root, old_root):
        if p.parent != root.parent:
            raise ValueError(f"{p} must be in the same folder as {root}")
    journal = replace_journal_path(root)
    durable_io.write_json(journal, {"new": new_root.name, "old": old_root.name, "keep_old": bool(keep_old)}, fsync)
    _finish_replace(root, new_root, old_root, keep_old, journal, fsync)


def _finish_replace(root: Path, new_root: Path, old_root: Path, keep_old: bool, journal: Path, fsync: bool) -> None:
    if new_root.exists():
        if root.exists():
            durable_io.replace(root, old_root, fsync)
        durable_io.replace(new_root, root, fsync)
    elif not root.exists() and old_root.exists():  # the new copy vanished (removed by hand): keep the original
        durable_io.replace(old_root, root, fsync)
    if not keep_old and old_root.exists():
        shutil.rmtree(old_root)
    journal.unlink(missing_ok=True)
    if fsync:
        durable_io.fsync_dir(root.parent)


def finish_interrupted_replace(root: Path | str, fsync: bool = True) -> bool:
    """Complete an in-place swap a crash interrupted (see replace_dataset_folder). Returns True if there was one."""
    root = Path(root)
    journal = replace_journal_path(root)
    if not journal.exists():
        return False
    try:
        entry: dict[str, Any] = json.loads(journal.read_text(encoding="utf-8"))
        names = (str(entry["new"]), str(entry["old"]))
        keep_old = bool(entry["keep_old"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DatasetFormatError(f"{journal}: unreadable replacement journal ({exc!r})") from None
    if any("/" in n or n in ("", ".", "..") for n in names):
        raise DatasetFormatError(f"{journal}: folder names {list(names)} must be plain names next to {root.name}")
    new_root, old_root = root.parent / names[0], root.parent / names[1]
    log.warning("%s: finishing an interrupted in-place edit (the edited copy replaces the original)", root)
    _finish_replace(root, new_root, old_root, keep_old, journal, fsync)
    return True


# ---------------------------------------------------------------------------------------------- entry point
def recover(root: str | Path, fsync: bool = True) -> bool:
    """Bring a dataset folder back to its last committed episode (the caller holds the dataset lock).
    Returns True if anything was repaired; raises DatasetFormatError when the folder cannot be made consistent."""
    root = Path(root)
    repaired = finish_interrupted_replace(root, fsync)
    if not root.is_dir():
        return repaired
    _remove_temp_files(root)
    touched: list[tuple[int, int]] = []
    jpath = journal_path(root)
    if jpath.exists():
        try:
            for rel in [*(o for o, _ in json.loads(jpath.read_text())["backups"]), *json.loads(jpath.read_text())["created"]]:
                parts = Path(rel).parts
                if parts[:1] == ("data",) and len(parts) == 3:
                    touched.append((int(parts[1].split("-")[-1]), int(parts[2].split("-")[-1].split(".")[0])))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, IndexError):
            pass  # rollback() reports an unreadable journal
    repaired = rollback(root, fsync) or repaired
    repaired = complete_pending_videos(root, fsync) > 0 or repaired
    staging = staging_dir(root)
    if staging.exists():
        repaired = True
        log.warning("%s: removing the staging folder of an interrupted episode", root)
        shutil.rmtree(staging, ignore_errors=True)
    if F.info_path(root).exists():
        check_data_matches_metadata(root, [t for t in touched if F.data_file_path(root, *t).exists()])
    return repaired
