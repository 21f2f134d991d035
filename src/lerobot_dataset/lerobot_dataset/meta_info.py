"""meta/info.json: read, write and create the dataset's description (fps, features, counts, path templates).

Serialised as upstream LeRobot does (`json.dump(indent=4, ensure_ascii=False)`); shapes are JSON lists on disk and
tuples in memory. Readers do not depend on key order, and unknown keys (e.g. v2.x `total_chunks`) are kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import durable_io
from .errors import DatasetFormatError
from .format import (
    CODEBASE_VERSION,
    DATA_PATH,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_DATA_FILE_SIZE_IN_MB,
    DEFAULT_VIDEO_FILE_SIZE_IN_MB,
    INFO_PATH,
    VIDEO_PATH,
    info_path,
    splits_for,
)

__all__ = ["make_info", "read_info", "splits_for", "write_info"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def make_info(
    fps: int,
    features: Mapping[str, Mapping[str, Any]],
    robot_type: str | None = None,
    use_videos: bool = True,
    chunks_size: int = DEFAULT_CHUNK_SIZE,
    data_files_size_in_mb: float = DEFAULT_DATA_FILE_SIZE_IN_MB,
    video_files_size_in_mb: float = DEFAULT_VIDEO_FILE_SIZE_IN_MB,
) -> dict[str, Any]:
    """A fresh info dict (0 episodes) in lerobot 0.4.4 key order."""
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": 0,
        "total_frames": 0,
        "total_tasks": 0,
        "chunks_size": chunks_size,
        "data_files_size_in_mb": data_files_size_in_mb,
        "video_files_size_in_mb": video_files_size_in_mb,
        "fps": int(fps),
        "splits": {},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if use_videos else None,
        "features": {k: dict(v) for k, v in features.items()},
    }


def read_info(root: Path | str) -> dict[str, Any]:
    """meta/info.json as a dict; feature shapes come back as tuples (as upstream load_info).

    Raises DatasetFormatError when the file is missing, is not JSON, or is not a JSON object with a features
    object (the other keys are checked by whoever needs them, and in full by `validate_dataset`).
    """
    path = info_path(root)
    if not path.is_file():
        raise DatasetFormatError(f"{root}: not a LeRobotDataset (missing {INFO_PATH})")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetFormatError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(info, dict):
        raise DatasetFormatError(f"{path}: expected a JSON object, got {type(info).__name__}")
    features = info.get("features", {})
    if not isinstance(features, dict):
        raise DatasetFormatError(f"{path}: 'features' must be an object, got {type(features).__name__}")
    for key, ft in features.items():
        if isinstance(ft, dict) and isinstance(ft.get("shape"), list):
            ft["shape"] = tuple(ft["shape"])
    return info


def write_info(root: Path | str, info: Mapping[str, Any], fsync: bool = True) -> None:
    """Replace meta/info.json atomically and durably."""
    durable_io.write_json(info_path(root), _jsonable(dict(info)), fsync)
