"""LeRobotDataset v3.0 on-disk format: paths, numbering, default features, Arrow types, info.json.

This module is the single source of truth for the layout shared by the writer, the reader and the tools.
Names are stable: add new helpers, never rename existing ones.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pyarrow as pa

CODEBASE_VERSION = "v3.0"

# ---------------------------------------------------------------------------------------------- paths
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
# Upstream-style aliases (the same strings).
DEFAULT_TASKS_PATH = TASKS_PATH
DEFAULT_EPISODES_PATH = EPISODES_PATH
DEFAULT_DATA_PATH = DATA_PATH
DEFAULT_VIDEO_PATH = VIDEO_PATH

# ---------------------------------------------------------------------------------------------- limits
DEFAULT_CHUNK_SIZE = 1000  # maximum number of FILES per chunk directory
DEFAULT_DATA_FILE_SIZE_IN_MB = 100
DEFAULT_VIDEO_FILE_SIZE_IN_MB = 200

DEFAULT_QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_KEYS = tuple(f"q{int(q * 100):02d}" for q in DEFAULT_QUANTILES)  # q01 q10 q50 q90 q99
STAT_KEYS = ("min", "max", "mean", "std", "count") + QUANTILE_KEYS

# ---------------------------------------------------------------------------------------------- features
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": (1,), "names": None},
    "frame_index": {"dtype": "int64", "shape": (1,), "names": None},
    "episode_index": {"dtype": "int64", "shape": (1,), "names": None},
    "index": {"dtype": "int64", "shape": (1,), "names": None},
    "task_index": {"dtype": "int64", "shape": (1,), "names": None},
}
VISUAL_DTYPES = ("image", "video")
NON_NUMERIC_DTYPES = ("image", "video", "string", "language")

# Image features are embedded as PNG bytes under this file name pattern (as upstream's embed_images does).
IMAGE_FRAME_NAME = "frame-{frame_index:06d}.png"


def next_chunk_file(chunk_index: int, file_index: int, chunks_size: int) -> tuple[int, int]:
    """Advance rule for (chunk, file) numbering: a chunk holds at most `chunks_size` files."""
    if file_index == chunks_size - 1:
        return chunk_index + 1, 0
    return chunk_index, file_index + 1


# Upstream name for the same rule.
update_chunk_file_indices = next_chunk_file


def data_file_path(root: Path | str, chunk_index: int, file_index: int) -> Path:
    return Path(root) / DATA_PATH.format(chunk_index=chunk_index, file_index=file_index)


def video_file_path(root: Path | str, video_key: str, chunk_index: int, file_index: int) -> Path:
    return Path(root) / VIDEO_PATH.format(video_key=video_key, chunk_index=chunk_index, file_index=file_index)


def episodes_file_path(root: Path | str, chunk_index: int, file_index: int) -> Path:
    return Path(root) / EPISODES_PATH.format(chunk_index=chunk_index, file_index=file_index)


def info_path(root: Path | str) -> Path:
    return Path(root) / INFO_PATH


def stats_path(root: Path | str) -> Path:
    return Path(root) / STATS_PATH


def tasks_path(root: Path | str) -> Path:
    return Path(root) / TASKS_PATH


def validate_feature_names(features: Mapping[str, Any]) -> None:
    bad = [k for k in features if "/" in k]
    if bad:
        raise ValueError(f"feature names must not contain '/': {bad}")


def normalize_features(features: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Copy user features, turning shapes into tuples and appending DEFAULT_FEATURES last (as upstream create())."""
    validate_feature_names(features)
    out: dict[str, dict[str, Any]] = {}
    for key, ft in features.items():
        if key in DEFAULT_FEATURES:
            continue
        if "dtype" not in ft or "shape" not in ft:
            raise ValueError(f"feature '{key}': expected keys 'dtype' and 'shape', got {sorted(ft)}")
        f = dict(ft)
        f["shape"] = tuple(int(s) for s in ft["shape"])
        f.setdefault("names", None)
        if f["dtype"] not in NON_NUMERIC_DTYPES:
            try:
                np.dtype(f["dtype"])
            except TypeError as exc:
                raise ValueError(f"feature '{key}': unknown dtype {f['dtype']!r}") from exc
        out[key] = f
    for key, ft in DEFAULT_FEATURES.items():
        out[key] = {"dtype": ft["dtype"], "shape": tuple(ft["shape"]), "names": None}
    return out


def video_keys(features: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return [k for k, f in features.items() if f["dtype"] == "video"]


def image_keys(features: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return [k for k, f in features.items() if f["dtype"] == "image"]


def stats_feature_keys(features: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Features that get stats: everything except string/language (defaults included)."""
    return [k for k, f in features.items() if f["dtype"] not in ("string", "language")]


def data_feature_keys(features: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Columns of the data parquet, in features order (video features have no column)."""
    return [k for k, f in features.items() if f["dtype"] != "video"]


# ---------------------------------------------------------------------------------------------- Arrow types
IMAGE_ARROW_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def _arrow_scalar(dtype: str) -> pa.DataType:
    if dtype == "string":
        return pa.string()
    return pa.from_numpy_dtype(np.dtype(dtype))


def feature_arrow_type(feature: Mapping[str, Any]) -> pa.DataType:
    """pyarrow type of a feature's data column, matching HF datasets' encoding of lerobot features.

    shape (1,) -> scalar; (D,) -> fixed_size_list<element>[D]; 2-D..5-D -> nested lists (datasets ArrayND storage);
    image -> struct<bytes: binary, path: string>.
    """
    dtype = feature["dtype"]
    shape = tuple(feature["shape"])
    if dtype == "image":
        return IMAGE_ARROW_TYPE
    if dtype == "video":
        raise ValueError("video features have no data column")
    if dtype == "string":
        return pa.string()
    scalar = _arrow_scalar(dtype)
    if shape == (1,):
        return scalar
    if len(shape) == 1:
        return pa.list_(pa.field("element", scalar), shape[0])
    t = scalar
    for _ in shape:
        t = pa.list_(t)
    return t


def hf_feature_dict(feature: Mapping[str, Any]) -> dict[str, Any]:
    """The datasets-4.x `Features.to_dict()` form of one lerobot feature (for the parquet 'huggingface' metadata)."""
    dtype = feature["dtype"]
    shape = tuple(feature["shape"])
    if dtype == "image":
        return {"_type": "Image"}
    if dtype == "string":
        return {"dtype": "string", "_type": "Value"}
    if shape == (1,):
        return {"dtype": dtype, "_type": "Value"}
    if len(shape) == 1:
        return {"feature": {"dtype": dtype, "_type": "Value"}, "length": shape[0], "_type": "List"}
    return {"shape": list(shape), "dtype": dtype, "_type": f"Array{len(shape)}D"}


def data_schema(features: Mapping[str, Mapping[str, Any]]) -> pa.Schema:
    """Arrow schema of data/chunk-XXX/file-XXX.parquet including the 'huggingface' schema metadata."""
    keys = data_feature_keys(features)
    fields = [pa.field(k, feature_arrow_type(features[k])) for k in keys]
    hf = {"info": {"features": {k: hf_feature_dict(features[k]) for k in keys}}}
    return pa.schema(fields, metadata={b"huggingface": json.dumps(hf).encode()})


def episodes_stat_arrow_type(feature: Mapping[str, Any], stat: str) -> pa.DataType:
    """Arrow type of the meta/episodes column stats/<feature>/<stat>."""
    elem = pa.int64() if stat == "count" else pa.float64()
    if feature["dtype"] in VISUAL_DTYPES:
        if stat == "count":
            return pa.list_(pa.int64())
        return pa.list_(pa.list_(pa.list_(elem)))
    return pa.list_(elem)


def episodes_schema(features: Mapping[str, Mapping[str, Any]]) -> pa.Schema:
    """Arrow schema (column order as upstream) of meta/episodes/chunk-XXX/file-XXX.parquet."""
    fields: list[pa.Field] = [
        pa.field("episode_index", pa.int64()),
        pa.field("tasks", pa.list_(pa.string())),
        pa.field("length", pa.int64()),
        pa.field("data/chunk_index", pa.int64()),
        pa.field("data/file_index", pa.int64()),
        pa.field("dataset_from_index", pa.int64()),
        pa.field("dataset_to_index", pa.int64()),
    ]
    for vk in video_keys(features):
        fields += [
            pa.field(f"videos/{vk}/chunk_index", pa.int64()),
            pa.field(f"videos/{vk}/file_index", pa.int64()),
            pa.field(f"videos/{vk}/from_timestamp", pa.float64()),
            pa.field(f"videos/{vk}/to_timestamp", pa.float64()),
        ]
    for fk in stats_feature_keys(features):
        for stat in STAT_KEYS:
            fields.append(pa.field(f"stats/{fk}/{stat}", episodes_stat_arrow_type(features[fk], stat)))
    fields += [
        pa.field("meta/episodes/chunk_index", pa.int64()),
        pa.field("meta/episodes/file_index", pa.int64()),
    ]
    return pa.schema(fields)


# ---------------------------------------------------------------------------------------------- JSON I/O
def write_json_atomic(path: Path | str, obj: Any) -> None:
    """Write JSON (indent=4, ensure_ascii=False as upstream) via tmp + fsync + os.replace + dir fsync."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=4, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path | str) -> None:
    fd = os.open(str(directory), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
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


def write_info(root: Path | str, info: Mapping[str, Any]) -> None:
    write_json_atomic(info_path(root), _jsonable(dict(info)))


def read_info(root: Path | str) -> dict[str, Any]:
    """Read meta/info.json; feature shapes come back as tuples (as upstream load_info)."""
    with open(info_path(root), encoding="utf-8") as f:
        info = json.load(f)
    for ft in info.get("features", {}).values():
        if "shape" in ft:
            ft["shape"] = tuple(ft["shape"])
    return info


def splits_for(total_episodes: int) -> dict[str, str]:
    return {"train": f"0:{total_episodes}"}


def iter_sorted_files(root: Path | str, pattern: str) -> Iterable[Path]:
    """Sorted glob (as upstream load_nested_dataset: sorted path order == global order)."""
    return sorted(Path(root).glob(pattern))
