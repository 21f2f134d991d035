"""A finished dataset as the editing tools read it: info, task strings, one dict per episode row (stats parsed).

The tools never keep a dataset open for appending: they read a finished source (under a shared lock, refusing a
dataset with unfinished work) and write a new folder. Every file the tools open is found through
`SourceDataset.data_file` / `video_file`, which keep paths inside the dataset folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DatasetFormatError, DatasetToolError
from .format import INFO_PATH, format_path_template, video_keys
from .meta_episodes import episode_stats_from_row, read_episode_rows
from .meta_info import read_info
from .meta_tasks import read_tasks
from .recovery import require_finished

EpisodeStats = dict[str, dict[str, np.ndarray]]

__all__ = ["DatasetToolError", "EpisodeStats", "SourceDataset", "load_source", "read_tasks"]


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

    def data_file(self, episode_index: int) -> Path:
        row = self.episodes[episode_index]
        return format_path_template(self.root, self.info["data_path"], "data_path",
                                    chunk_index=int(row["data/chunk_index"]), file_index=int(row["data/file_index"]))

    def video_file(self, episode_index: int, key: str) -> Path:
        row = self.episodes[episode_index]
        return format_path_template(self.root, self.info.get("video_path") or "", "video_path", video_key=key,
                                    chunk_index=int(row[f"videos/{key}/chunk_index"]),
                                    file_index=int(row[f"videos/{key}/file_index"]))


def load_source(root: Path | str) -> SourceDataset:
    """Read a finished dataset's metadata; DatasetToolError naming the file when it is not a usable v3.x dataset."""
    root = Path(root)
    if not root.exists():
        require_finished(root, "read it")  # an interrupted in-place edit may have it under another name
    if not (root / INFO_PATH).is_file():
        what = "is a file, not a dataset folder" if root.is_file() else "is not a LeRobot dataset"
        raise DatasetToolError(f"{root} {what}: {INFO_PATH} is missing")
    try:
        info = read_info(root)
        version = info.get("codebase_version")
        if not str(version).startswith("v3."):
            raise DatasetToolError(f"{root}: codebase_version {version!r} is not supported; expected v3.x")
        if not isinstance(info.get("fps"), int) or not isinstance(info.get("features"), dict):
            raise DatasetToolError(f"{root}: {INFO_PATH} needs an int 'fps' and a 'features' object")
        total = info.get("total_episodes")
        rows = read_episode_rows(root, expected=total)
        tasks = read_tasks(root, missing_ok=not rows)
    except DatasetFormatError as exc:
        raise DatasetToolError(str(exc)) from None
    if len(rows) != total:
        raise DatasetToolError(f"{root}: info.json total_episodes={total} but meta/episodes has {len(rows)} rows")
    stats = [episode_stats_from_row(r, info["features"]) for r in rows]
    return SourceDataset(root=root, info=info, tasks=tasks, episodes=rows, episode_stats=stats)
