"""LeRobotDataset v3.0 on-disk format: paths, numbering, default features, Arrow types, info.json.

This module is the single source of truth for the layout shared by the writer, the reader and the tools.
Names are stable: add new helpers, never rename existing ones.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

import numpy as np
import pyarrow as pa

from .errors import DatasetFormatError, UnsafePathError

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


@dataclass(frozen=True, order=True)
class ChunkFile:
    """The (chunk, file) numbers of one data, video or meta/episodes file."""

    chunk_index: int
    file_index: int

    def next(self, chunks_size: int) -> "ChunkFile":
        return ChunkFile(*next_chunk_file(self.chunk_index, self.file_index, chunks_size))


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


# ---------------------------------------------------------------------------------------------- safe paths
# A dataset from the Hub is untrusted input: every path built from its metadata (the data_path/video_path templates,
# feature keys inside them, the `path` of an embedded image) goes through these two functions, which refuse
# anything that would read or write outside the dataset folder.
TEMPLATE_FIELDS = frozenset({"chunk_index", "file_index", "video_key"})
_FORMATTER = string.Formatter()


def check_path_template(template: Any, name: str) -> str:
    """Raise DatasetFormatError unless `template` is a relative path template whose only fields are
    {chunk_index}, {file_index} and {video_key} with plain integer format specs (e.g. `{chunk_index:03d}`)."""
    where = f"{INFO_PATH}: '{name}'"
    if not isinstance(template, str) or not template:
        raise DatasetFormatError(f"{where} must be a path template string, got {template!r}")
    try:
        parts = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise DatasetFormatError(f"{where} is not a valid template ({exc}): {template!r}") from None
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS or conversion is not None or not re.fullmatch(r"0?\d{0,2}d?", spec or ""):
            raise DatasetFormatError(
                f"{where}: field {{{field}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}} is not "
                f"allowed in {template!r}; expected only {{chunk_index}}, {{file_index}}, {{video_key}} with specs like :03d"
            )
        if field == "video_key" and spec:
            raise DatasetFormatError(f"{where}: {{video_key}} takes no format spec in {template!r}")
    check_relative_path(template, where)
    return template


def check_relative_path(relative: str, what: str) -> PurePosixPath:
    """The path as a PurePosixPath; UnsafePathError if it is absolute or climbs out with `..`."""
    rel = PurePosixPath(str(relative).replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts or str(relative).startswith("~"):
        raise UnsafePathError(f"{what}: path {relative!r} must be relative to the dataset folder, without '..'")
    return rel


def resolve_inside(root: Path | str, relative: str, what: str) -> Path:
    """`root / relative`, refusing absolute paths, `..` and symlinks whose target is outside `root` (for a
    snapshot in the Hugging Face Hub cache, outside its repo folder, whose blobs/ its files link to)."""
    root = Path(root)
    path = root / check_relative_path(relative, what)
    try:
        real = path.resolve()
        allowed = [root.resolve()]
    except (OSError, RuntimeError) as exc:  # symlink loops
        raise UnsafePathError(f"{what}: path {relative!r} cannot be resolved ({exc})") from None
    if allowed[0].parent.name == "snapshots" and allowed[0].parent.parent.name.startswith("datasets--"):
        allowed.append(allowed[0].parent.parent)
    if not any(real == base or base in real.parents for base in allowed):
        raise UnsafePathError(f"{what}: path {relative!r} leads outside the dataset folder (to {real})")
    return path


def fill_path_template(template: str, name: str, **fields: Any) -> str:
    """The relative path (POSIX) that `template` (an info.json key `name`) names for `fields`, checked: a valid
    template, int indices >= 0, and a result that stays relative without `..` (a feature key is untrusted too).
    For a dataset on a remote file system, where there is no local folder to resolve against."""
    check_path_template(template, name)
    for key in ("chunk_index", "file_index"):
        if key in fields and (not isinstance(fields[key], (int, np.integer)) or isinstance(fields[key], bool) or fields[key] < 0):
            raise DatasetFormatError(f"{name}: {key} must be an int >= 0, got {fields[key]!r}")
    try:
        relative = template.format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise DatasetFormatError(f"{INFO_PATH}: '{name}' {template!r} cannot be filled with {sorted(fields)}: {exc!r}") from None
    return check_relative_path(relative, f"{INFO_PATH} '{name}'").as_posix()


def format_path_template(root: Path | str, template: str, name: str, **fields: Any) -> Path:
    """The file that `template` (an info.json key `name`) names for `fields`, checked to stay inside `root`
    (symlinks included)."""
    return resolve_inside(root, fill_path_template(template, name, **fields), f"{INFO_PATH} '{name}'")


# ---------------------------------------------------------------------------------------------- info.json
# The readers and writers of each metadata file live in meta_info / meta_tasks / meta_stats / meta_episodes; these
# names stay here for code that imports them from the format module.
def write_json_atomic(path: Path | str, obj: Any, fsync: bool = True) -> None:
    """JSON (indent=4, ensure_ascii=False as upstream), replaced atomically and durably (durable_io.write_json)."""
    from .durable_io import write_json

    write_json(path, obj, fsync)


def fsync_dir(directory: Path | str) -> None:
    from .durable_io import fsync_dir as _fsync_dir

    _fsync_dir(directory)


def make_info(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """A fresh info dict (0 episodes) in lerobot 0.4.4 key order (meta_info.make_info)."""
    from .meta_info import make_info as _make_info

    return _make_info(*args, **kwargs)


def write_info(root: Path | str, info: Mapping[str, Any], fsync: bool = True) -> None:
    from .meta_info import write_info as _write_info

    _write_info(root, info, fsync)


def read_info(root: Path | str) -> dict[str, Any]:
    """meta/info.json with feature shapes as tuples (meta_info.read_info)."""
    from .meta_info import read_info as _read_info

    return _read_info(root)


def splits_for(total_episodes: int) -> dict[str, str]:
    return {"train": f"0:{total_episodes}"}


def iter_sorted_files(root: Path | str, pattern: str) -> list[Path]:
    """Sorted glob (as upstream load_nested_dataset: sorted path order == global order)."""
    return sorted(Path(root).glob(pattern))
