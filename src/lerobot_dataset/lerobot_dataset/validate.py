"""Check a LeRobotDataset v3.0 folder against the format, and say exactly where each problem is.

`validate_dataset(root)` returns a `ValidationReport`: a list of `Problem`s, each naming the check that failed,
the file (relative to the root), and the episode and global frame index when one applies. `report.ok` is True
only when no error was found; a CLI prints `report.format()` and exits with `0 if report.ok else 1`.

What is checked (the invariants upstream LeRobot's loader relies on):
- meta/info.json: required keys and types, features (dtype, shape, names), the 5 default features;
- meta/tasks.parquet: task_index 0..n-1 in row order, unique task strings, total_tasks;
- meta/episodes: row i is episode i, lengths, contiguous [dataset_from_index, dataset_to_index) ranges,
  data/video (chunk, file) references that exist, video spans, tasks that exist;
- data parquet: columns and Arrow types against the features, row position == `index`, index continuity,
  rows of each episode inside its range and in the file its episode row points to, `frame_index` restarting
  at 0, `timestamp == frame_index / fps`, `task_index` valid, embedded images decodable with the feature shape;
- videos: resolution, a frame at every `from_timestamp + k/fps` of every episode (within tolerance), frame
  count of each episode span, span duration vs length, spans inside the stream;
- meta/stats.json and the per-episode stats columns: present for every non-string feature, with the right shapes;
- safety: every path built from the metadata (templates, feature keys, embedded image paths) stays inside the
  folder; unfinished work (a save journal, pending video segments, an interrupted in-place edit) is reported.

The validator reads untrusted datasets: whatever a file holds (a one-packet video, a template with unknown fields,
an episode index of 10**12, an image header declaring a huge size), it reports a problem and never raises.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import format as fmt
from .errors import DatasetFormatError, DatasetVersionError
from .locking import is_locked
from .reader import check_v3_layout
from .recovery import unfinished_work
from .video import png_size

REQUIRED_STATS = ("min", "max", "mean", "std", "count")
MAX_PROBLEMS_PER_CHECK = 20  # per-frame checks stop listing after this many (a count follows)
TIMESTAMP_TOLERANCE_S = 1e-4
KNOWN_DTYPES = ("image", "video", "string", "language")


@dataclass(frozen=True)
class Problem:
    check: str  # which rule, e.g. "data.timestamp"
    message: str
    file: str | None = None  # relative to the dataset root
    episode: int | None = None
    index: int | None = None  # global frame index (the `index` column)
    severity: str = "error"  # "error" or "warning"

    def location(self) -> str:
        parts = [self.file or "<dataset>"]
        if self.episode is not None:
            parts.append(f"episode {self.episode}")
        if self.index is not None:
            parts.append(f"index {self.index}")
        return ", ".join(parts)

    def __str__(self) -> str:
        return f"[{self.severity}] {self.check} @ {self.location()}: {self.message}"


@dataclass
class ValidationReport:
    root: Path
    problems: list[Problem] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def by_check(self, check: str) -> list[Problem]:
        """Problems of one check, or of a family with a trailing '.' / '*' (e.g. 'video.')."""
        if check.endswith((".", "*")):
            prefix = check.rstrip("*")
            return [p for p in self.problems if p.check.startswith(prefix)]
        return [p for p in self.problems if p.check == check]

    def format(self) -> str:
        head = f"{self.root}: {'VALID' if self.ok else 'INVALID'}"
        if self.summary:
            head += " (" + ", ".join(f"{k}={v}" for k, v in self.summary.items()) + ")"
        lines = [head] + [f"  {p}" for p in self.problems]
        if self.problems:
            lines.append(f"  {len(self.errors)} error(s), {len(self.warnings)} warning(s)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


class _Collector:
    """Appends problems, capping how many of one check are listed so a broken column does not flood the report."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        self._counts: dict[str, int] = {}

    def add(self, check: str, message: str, file: str | None = None, episode: int | None = None,
            index: int | None = None, severity: str = "error") -> None:
        n = self._counts.get(check, 0) + 1
        self._counts[check] = n
        if n <= MAX_PROBLEMS_PER_CHECK:
            self.report.problems.append(Problem(check, message, file, episode, index, severity))

    def count_unlisted(self, check: str, n: int) -> None:
        """Record n more problems of `check` that the caller did not list one by one."""
        if n > 0:
            self._counts[check] = self._counts.get(check, 0) + n

    def finish(self) -> None:
        for check, n in self._counts.items():
            if n > MAX_PROBLEMS_PER_CHECK:
                self.report.problems.append(
                    Problem(check, f"{n - MAX_PROBLEMS_PER_CHECK} more problem(s) of this kind not listed")
                )


def _rel(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _template_path(root: Path, info: Mapping[str, Any], name: str, out: "_Collector | None", ep: "_Episode | None" = None,
                   **fields: Any) -> Path | None:
    """The file a path template names, or None when the template or the values are unusable or the path would
    leave the dataset folder (reported to `out` unless it is None)."""
    try:
        return fmt.format_path_template(root, info[name], name, **fields)
    except DatasetFormatError as exc:
        if out is not None:
            out.add("layout.path", str(exc), ep.file if ep else fmt.INFO_PATH, ep.index if ep else None)
        return None


# ============================================================================================ info.json
def _check_info(info: Mapping[str, Any], out: _Collector) -> dict[str, dict[str, Any]] | None:
    where = fmt.INFO_PATH
    ints = {"fps": 1, "total_episodes": 0, "total_frames": 0, "total_tasks": 0, "chunks_size": 1}
    for key, low in ints.items():
        v = info.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            out.add("info.schema", f"'{key}' must be an int >= {low}, got {v!r}", where)
    for key in ("data_files_size_in_mb", "video_files_size_in_mb"):
        v = info.get(key)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
            out.add("info.schema", f"'{key}' must be a number > 0, got {v!r}", where)
    data_path = info.get("data_path")
    if not isinstance(data_path, str) or "{chunk_index" not in data_path or "{file_index" not in data_path:
        out.add("info.schema", f"'data_path' must be a template with {{chunk_index}} and {{file_index}}, got {data_path!r}", where)
    for name in ("data_path", "video_path"):
        if isinstance(info.get(name), str):
            try:
                fmt.check_path_template(info[name], name)
            except DatasetFormatError as exc:
                out.add("info.schema", str(exc), where)
    if "robot_type" in info and info["robot_type"] is not None and not isinstance(info["robot_type"], str):
        out.add("info.schema", f"'robot_type' must be a string or null, got {info['robot_type']!r}", where)
    if "splits" in info and not isinstance(info["splits"], dict):
        out.add("info.schema", f"'splits' must be an object, got {info['splits']!r}", where)

    features = info.get("features")
    if not isinstance(features, dict) or not features:
        out.add("info.features", f"'features' must be a non-empty object, got {type(features).__name__}", where)
        return None
    good = True
    for key, ft in features.items():
        loc = f"feature '{key}'"
        if "/" in key:
            out.add("info.features", f"{loc}: names must not contain '/'", where)
        if not isinstance(ft, dict):
            out.add("info.features", f"{loc}: expected an object, got {ft!r}", where)
            good = False
            continue
        dtype, shape = ft.get("dtype"), ft.get("shape")
        if dtype not in KNOWN_DTYPES:
            try:
                np.dtype(dtype)
            except TypeError:
                out.add("info.features", f"{loc}: unknown dtype {dtype!r}", where)
                good = False
        if not isinstance(shape, (list, tuple)) or not shape or not all(isinstance(s, int) and s > 0 for s in shape):
            out.add("info.features", f"{loc}: 'shape' must be a list of positive ints, got {shape!r}", where)
            good = False
            continue
        if "names" not in ft:
            out.add("info.features", f"{loc}: missing 'names' (list, object or null)", where, severity="warning")
        names = ft.get("names")
        if names is not None and not isinstance(names, (list, dict)):
            out.add("info.features", f"{loc}: 'names' must be a list, an object or null, got {names!r}", where)
        if isinstance(names, list) and len(shape) == 1 and dtype not in KNOWN_DTYPES and len(names) != shape[0]:
            out.add("info.features", f"{loc}: {len(names)} names for shape {list(shape)}", where)
        if dtype in fmt.VISUAL_DTYPES and len(shape) != 3:
            out.add("info.features", f"{loc}: {dtype} features need a 3-D shape (H, W, C), got {list(shape)}", where)
            good = False
    for key, expected in fmt.DEFAULT_FEATURES.items():
        ft = features.get(key)
        if ft is None:
            out.add("info.features", f"default feature '{key}' is missing", where)
            good = False
        elif isinstance(ft, dict) and (ft.get("dtype") != expected["dtype"] or tuple(ft.get("shape") or ()) != (1,)):
            out.add("info.features", f"default feature '{key}': expected dtype {expected['dtype']} shape [1], "
                    f"got dtype {ft.get('dtype')} shape {ft.get('shape')}", where)
            good = False
    has_video = any(isinstance(f, dict) and f.get("dtype") == "video" for f in features.values())
    video_path = info.get("video_path")
    if has_video and (not isinstance(video_path, str) or "{video_key" not in video_path):
        out.add("info.schema", f"'video_path' must be a template with {{video_key}} when there are video features, got {video_path!r}", where)
        good = False
    if not good:
        return None
    return {k: {**v, "shape": tuple(v["shape"])} for k, v in features.items()}


# ============================================================================================ tasks
def _check_tasks(root: Path, info: Mapping[str, Any], out: _Collector) -> list[str] | None:
    path = fmt.tasks_path(root)
    where = fmt.TASKS_PATH
    if not path.exists():
        out.add("tasks.file", "missing", where)
        return None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable parquet is one problem
        out.add("tasks.file", f"unreadable parquet: {exc}", where)
        return None
    names = table.column_names
    text_col = next((c for c in ("task", "__index_level_0__") if c in names), None)
    if text_col is None or "task_index" not in names:
        out.add("tasks.schema", f"expected columns 'task_index' and 'task' (or '__index_level_0__'), got {names}", where)
        return None
    texts = [str(t) for t in table.column(text_col).to_pylist()]
    idx = table.column("task_index").to_pylist()
    for row, ti in enumerate(idx):
        if ti != row:
            out.add("tasks.order", f"row {row} has task_index {ti}; row order must equal task_index", where)
    seen: dict[str, int] = {}
    for row, text in enumerate(texts):
        if text in seen:
            out.add("tasks.unique", f"task {text!r} appears in rows {seen[text]} and {row}", where)
        seen.setdefault(text, row)
    if info.get("total_tasks") != len(texts):
        out.add("info.totals", f"total_tasks is {info.get('total_tasks')} but {fmt.TASKS_PATH} has {len(texts)} tasks", fmt.INFO_PATH)
    return texts


# ============================================================================================ episodes
@dataclass
class _Episode:
    index: int
    length: int
    start: int
    end: int
    data_ref: tuple[int, int]
    tasks: list[str]
    videos: dict[str, tuple[int, int, float, float]]
    file: str


def _check_episodes(root: Path, info: Mapping[str, Any], features: Mapping[str, Any], tasks: list[str] | None,
                    out: _Collector) -> list[_Episode] | None:
    paths = list(fmt.iter_sorted_files(root, "meta/episodes/*/*.parquet"))
    if not paths:
        out.add("episodes.file", "no meta/episodes/chunk-*/file-*.parquet files", "meta/episodes")
        return None
    video_keys = fmt.video_keys(features)
    required = ["episode_index", "tasks", "length", "data/chunk_index", "data/file_index", "dataset_from_index", "dataset_to_index"]
    for vk in video_keys:
        required += [f"videos/{vk}/{c}" for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")]
    episodes: list[_Episode] = []
    stats_cols: dict[str, set[str]] = {}
    for path in paths:
        rel = _rel(root, path)
        try:
            table = pq.read_table(path)
        except Exception as exc:  # noqa: BLE001
            out.add("episodes.file", f"unreadable parquet: {exc}", rel)
            return None
        missing = [c for c in required if c not in table.column_names]
        if missing:
            out.add("episodes.schema", f"missing columns {missing}", rel)
            return None
        stats_cols[rel] = {c for c in table.column_names if c.startswith("stats/")}
        cols = {c: table.column(c).to_pylist() for c in required}
        meta_ref = None
        if "meta/episodes/chunk_index" in table.column_names and "meta/episodes/file_index" in table.column_names:
            meta_ref = list(zip(table.column("meta/episodes/chunk_index").to_pylist(), table.column("meta/episodes/file_index").to_pylist()))
        for r in range(table.num_rows):
            ep = cols["episode_index"][r]
            if meta_ref is not None:
                c, f = meta_ref[r]
                if c is None or f is None or fmt.episodes_file_path(root, c, f) != path:
                    out.add("episodes.meta_ref", f"meta/episodes/chunk_index,file_index = ({c}, {f}) do not name this file", rel, ep)
            episodes.append(_Episode(
                index=ep, length=cols["length"][r], start=cols["dataset_from_index"][r], end=cols["dataset_to_index"][r],
                data_ref=(cols["data/chunk_index"][r], cols["data/file_index"][r]), tasks=list(cols["tasks"][r] or []),
                videos={vk: tuple(cols[f"videos/{vk}/{c}"][r] for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp"))
                        for vk in video_keys},
                file=rel,
            ))

    fps = info.get("fps") or 0
    expected_start = 0
    for row, ep in enumerate(episodes):
        if ep.index != row:
            out.add("episodes.order", f"row {row} holds episode_index {ep.index}; rows must be episodes 0..N-1 in order", ep.file, ep.index)
        if not isinstance(ep.length, int) or ep.length <= 0:
            out.add("episodes.length", f"length must be > 0, got {ep.length}", ep.file, ep.index)
        if ep.start != expected_start:
            out.add("episodes.range", f"dataset_from_index is {ep.start}, expected {expected_start} (end of the previous episode)", ep.file, ep.index, ep.start)
        if ep.end - ep.start != ep.length:
            out.add("episodes.range", f"dataset_to_index - dataset_from_index = {ep.end - ep.start} but length = {ep.length}", ep.file, ep.index, ep.start)
        expected_start = ep.end
        data_file = _template_path(root, info, "data_path", out, ep, chunk_index=ep.data_ref[0], file_index=ep.data_ref[1])
        if data_file is not None and not data_file.is_file():
            out.add("episodes.data_ref", f"data file {_rel(root, data_file)} does not exist", ep.file, ep.index)
        if tasks is not None:
            for t in ep.tasks:
                if t not in tasks:
                    out.add("episodes.tasks", f"task {t!r} is not in {fmt.TASKS_PATH}", ep.file, ep.index)
        for vk, (c, f, t0, t1) in ep.videos.items():
            vpath = _template_path(root, info, "video_path", out, ep, video_key=vk, chunk_index=c, file_index=f)
            if vpath is not None and not vpath.is_file():
                out.add("episodes.video_ref", f"video file {_rel(root, vpath)} for '{vk}' does not exist", ep.file, ep.index)
            if t0 is None or t1 is None or t0 < 0 or t1 <= t0:
                out.add("episodes.video_span", f"'{vk}': from_timestamp {t0} / to_timestamp {t1} is not a span", ep.file, ep.index)
            elif fps and abs((t1 - t0) - ep.length / fps) > 0.5 / fps:
                out.add("episodes.video_span", f"'{vk}': span {t1 - t0:.6f} s does not match length {ep.length} at {fps} fps "
                        f"({ep.length / fps:.6f} s)", ep.file, ep.index)
    if info.get("total_episodes") != len(episodes):
        out.add("info.totals", f"total_episodes is {info.get('total_episodes')} but meta/episodes has {len(episodes)} rows", fmt.INFO_PATH)
    if episodes and info.get("total_frames") != episodes[-1].end:
        out.add("info.totals", f"total_frames is {info.get('total_frames')} but the last episode ends at index {episodes[-1].end}", fmt.INFO_PATH)

    # Per-episode stats columns (upstream writes stats/<feature>/<stat> for every non-string feature).
    for rel, cols in stats_cols.items():
        for key in fmt.stats_feature_keys(features):
            missing = [s for s in REQUIRED_STATS if f"stats/{key}/{s}" not in cols]
            if missing:
                out.add("episodes.stats", f"per-episode stats of '{key}' lack {missing}", rel)
    return episodes


# ============================================================================================ data
def _arrow_type_problem(ft: Mapping[str, Any], typ: pa.DataType) -> str | None:
    dtype, shape = ft["dtype"], tuple(ft["shape"])
    if dtype == "image":
        if not pa.types.is_struct(typ) or typ.get_field_index("bytes") < 0:
            return f"image column must be struct<bytes, path>, got {typ}"
        return None
    if dtype in ("string", "language"):
        return None if (pa.types.is_string(typ) or pa.types.is_large_string(typ)) else f"expected string, got {typ}"
    dims: list[int | None] = []
    inner = typ
    while pa.types.is_list(inner) or pa.types.is_large_list(inner) or pa.types.is_fixed_size_list(inner):
        dims.append(inner.list_size if pa.types.is_fixed_size_list(inner) else None)
        inner = inner.value_type
    want = [] if shape == (1,) else list(shape)
    if len(dims) != len(want) or any(d is not None and d != w for d, w in zip(dims, want)):
        return f"Arrow type {typ} does not hold shape {list(shape)}"
    try:
        if inner != pa.from_numpy_dtype(np.dtype(dtype)):
            return f"element type {inner} but the feature dtype is {dtype}"
    except (TypeError, pa.ArrowNotImplementedError):
        return f"cannot map dtype {dtype}"
    return None


def _check_data(root: Path, info: Mapping[str, Any], features: Mapping[str, Any], episodes: list[_Episode] | None,
                tasks: list[str] | None, out: _Collector) -> None:
    paths = list(fmt.iter_sorted_files(root, "data/*/*.parquet"))
    if not paths:
        out.add("data.file", "no data/chunk-*/file-*.parquet files", "data")
        return
    expected_cols = fmt.data_feature_keys(features)
    fps = int(info["fps"])
    ep_by_index = {e.index: e for e in episodes if isinstance(e.index, int)} if episodes else {}
    row0 = 0  # global row position of the first row of the current file
    image_keys = fmt.image_keys(features)
    for path in paths:
        rel = _rel(root, path)
        try:
            pf = pq.ParquetFile(path)
            table = pf.read()
        except Exception as exc:  # noqa: BLE001
            out.add("data.file", f"unreadable parquet (a missing footer means the writer was killed): {exc}", rel)
            return
        missing = [c for c in expected_cols if c not in table.column_names]
        extra = [c for c in table.column_names if c not in expected_cols]
        if missing:
            out.add("data.columns", f"missing columns {missing}", rel)
        if extra:
            out.add("data.columns", f"columns that are not features: {extra}", rel)
        for key in expected_cols:
            if key in table.column_names:
                problem = _arrow_type_problem(features[key], table.schema.field(key).type)
                if problem:
                    out.add("data.types", f"column '{key}': {problem}", rel)
        if any(c not in table.column_names for c in fmt.DEFAULT_FEATURES):
            row0 += table.num_rows
            continue
        n = table.num_rows
        index = table.column("index").to_numpy()
        ep_col = table.column("episode_index").to_numpy()
        frame_index = table.column("frame_index").to_numpy()
        ts = table.column("timestamp").to_numpy().astype(np.float64)
        task_index = table.column("task_index").to_numpy()
        rows = np.arange(row0, row0 + n)
        this_ref = _data_ref_of(path, root, info)
        for r in np.flatnonzero(index != rows):
            out.add("data.index", f"row {row0 + r} (row {r} of this file) holds index {index[r]}; row position must equal index "
                    f"(rows missing, duplicated or out of order)", rel, int(ep_col[r]), int(index[r]))
        # Per-row rules, vectorised: a million-frame dataset is checked in numpy, and only failing rows
        # reach Python (capped by the collector).
        # Episode ranges looked up by sorted episode id (an episode_index of 10**12 in a hostile file must not size
        # an array).
        ids = np.array(sorted(ep_by_index), dtype=np.int64)
        id_starts = np.array([ep_by_index[e].start for e in ids.tolist()], dtype=np.int64)
        id_ends = np.array([ep_by_index[e].end for e in ids.tolist()], dtype=np.int64)
        pos = np.clip(np.searchsorted(ids, ep_col), 0, max(len(ids) - 1, 0))
        known = (ids[pos] == ep_col) if len(ids) else np.zeros(n, dtype=bool)
        starts = np.where(known, id_starts[pos] if len(ids) else 0, -1)
        ends = np.where(known, id_ends[pos] if len(ids) else 0, -1)

        def add_rows(check: str, mask: np.ndarray, message) -> None:
            bad = np.flatnonzero(mask)
            for r in bad[:MAX_PROBLEMS_PER_CHECK].tolist():
                out.add(check, message(r), rel, int(ep_col[r]), int(index[r]))
            out.count_unlisted(check, len(bad) - min(len(bad), MAX_PROBLEMS_PER_CHECK))

        if episodes is not None:
            add_rows("data.episode", ~known, lambda r: f"row {row0 + r}: episode_index {ep_col[r]} is not in meta/episodes")
        ep_start, ep_end = starts, ends
        add_rows("data.episode", known & ((index < ep_start) | (index >= ep_end)),
                 lambda r: f"index {index[r]} is outside episode {ep_col[r]}'s range [{ep_start[r]}, {ep_end[r]})")
        for e in np.unique(ep_col[known]).tolist():
            if ep_by_index[e].data_ref != this_ref:
                r = int(np.flatnonzero(ep_col == e)[0])
                out.add("data.episode", f"episode {e}'s rows are in {rel} but meta/episodes points at data file "
                        f"{ep_by_index[e].data_ref}", rel, e, int(index[r]))
        add_rows("data.frame_index", known & (frame_index != index - ep_start),
                 lambda r: f"frame_index {frame_index[r]}, expected {index[r] - ep_start[r]} (restarts at 0 per episode)")
        add_rows("data.timestamp", np.abs(ts - frame_index / fps) > TIMESTAMP_TOLERANCE_S,
                 lambda r: f"timestamp {ts[r]:.6f} != frame_index/fps = {frame_index[r] / fps:.6f}")
        if tasks is not None:
            invalid = (task_index < 0) | (task_index >= len(tasks))
            add_rows("data.task_index", invalid,
                     lambda r: f"task_index {task_index[r]} does not exist (tasks 0..{len(tasks) - 1})")
            pairs = np.unique(np.stack([ep_col[known & ~invalid], task_index[known & ~invalid]], axis=1), axis=0)
            for e, ti in pairs.tolist():
                if ep_by_index[e].tasks and tasks[ti] not in ep_by_index[e].tasks:
                    mask = (ep_col == e) & (task_index == ti)
                    add_rows("data.task_index", mask, lambda r, ti=ti, e=e: f"task {tasks[ti]!r} (task_index {ti}) is not "
                             f"among episode {e}'s tasks {ep_by_index[e].tasks}")
        for key in image_keys:
            if key in table.column_names:
                _check_images(table.column(key), key, features[key], rel, ep_col, index, out)
        row0 += n
    if episodes:
        expected_rows = episodes[-1].end
        if row0 != expected_rows:
            out.add("data.rows", f"data files hold {row0} rows but meta/episodes covers {expected_rows} frames", "data")
        _check_episode_rows_present(paths, episodes, out)


def _data_ref_of(path: Path, root: Path, info: Mapping[str, Any]) -> tuple[int, int] | None:
    try:
        c = int(path.parent.name.split("-")[-1])
        f = int(path.stem.split("-")[-1])
    except ValueError:
        return None
    try:
        expected = fmt.format_path_template(root, info["data_path"], "data_path", chunk_index=c, file_index=f)
    except DatasetFormatError:  # reported by the info and episodes checks
        return None
    return (c, f) if expected == path else None


def _check_episode_rows_present(paths: list[Path], episodes: list[_Episode], out: _Collector) -> None:
    """Every episode has exactly `length` rows (rows of deleted frames would otherwise go unnoticed per file)."""
    counts: dict[int, int] = {}
    for path in paths:
        try:
            col = pq.read_table(path, columns=["episode_index"]).column("episode_index").to_numpy()
        except Exception:  # noqa: BLE001 - already reported by _check_data
            continue
        ids, n = np.unique(col, return_counts=True)
        for e, c in zip(ids.tolist(), n.tolist()):
            counts[e] = counts.get(e, 0) + c
    for ep in episodes:
        got = counts.get(ep.index, 0)
        if got != ep.length:
            out.add("data.episode_rows", f"{got} data rows for an episode of length {ep.length}", ep.file, ep.index, ep.start)


def _check_images(column: pa.ChunkedArray, key: str, ft: Mapping[str, Any], rel: str, ep_col: np.ndarray,
                  index: np.ndarray, out: _Collector) -> None:
    arr = column.combine_chunks()
    blobs = arr.field("bytes")
    paths = arr.field("path") if arr.type.get_field_index("path") >= 0 else None
    first_of_episode = np.flatnonzero(np.r_[True, ep_col[1:] != ep_col[:-1]])
    for r in range(len(arr)):
        if blobs[r].is_valid:
            continue
        path = paths[r].as_py() if paths is not None and paths[r].is_valid else None
        if not path:
            out.add("data.image", f"'{key}': no image bytes and no path", rel, int(ep_col[r]), int(index[r]))
            continue
        try:
            fmt.check_relative_path(path, f"'{key}' image path")
        except DatasetFormatError as exc:
            out.add("data.image", str(exc), rel, int(ep_col[r]), int(index[r]))
    try:
        import cv2
    except ImportError:
        return
    shape = tuple(ft["shape"])
    for r in first_of_episode:  # decoding every PNG is slow; one per episode catches wrong sizes and garbage
        blob = blobs[int(r)].as_py()
        if blob is None:
            continue
        declared = png_size(blob)
        if declared is not None and declared not in (shape[:2], shape[1:]):  # checked before decoding: a hostile
            out.add("data.image", f"'{key}': PNG header declares {declared[1]}x{declared[0]} but the feature shape is "
                    f"{list(shape)}", rel, int(ep_col[r]), int(index[r]))  # header can declare gigapixels
            continue
        try:
            img = cv2.imdecode(np.frombuffer(blob, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        except cv2.error as exc:  # e.g. a header declaring an image too large to decode
            out.add("data.image", f"'{key}': image bytes do not decode ({str(exc).strip().splitlines()[-1]})", rel,
                    int(ep_col[r]), int(index[r]))
            continue
        if img is None:
            out.add("data.image", f"'{key}': image bytes do not decode", rel, int(ep_col[r]), int(index[r]))
            continue
        hwc = img.shape if img.ndim == 3 else (*img.shape, 1)
        if hwc != shape and (hwc[2], hwc[0], hwc[1]) != shape:
            out.add("data.image", f"'{key}': image is {list(hwc)} (H, W, C) but the feature shape is {list(shape)}", rel,
                    int(ep_col[r]), int(index[r]))


# ============================================================================================ videos
def _probe_pts(path: Path) -> tuple[np.ndarray, dict[str, Any], str | None]:
    """Presentation times (s) of the packets that can be demuxed, stream facts, and the read error that stopped
    demuxing early (a truncated file still yields the packets before the cut)."""
    import av

    pts: list[float] = []
    error = None
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        facts = {
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "duration_s": float(stream.duration * tb) if stream.duration is not None else None,
            "codec": stream.codec_context.name,
        }
        try:
            for packet in container.demux(stream):
                if packet.pts is not None and packet.size > 0:
                    pts.append(float(packet.pts * tb))
        except av.FFmpegError as exc:
            error = f"read error after {len(pts)} frames: {exc}"
    return np.asarray(sorted(pts), dtype=np.float64), facts, error


def _check_videos(root: Path, info: Mapping[str, Any], features: Mapping[str, Any], episodes: list[_Episode],
                  out: _Collector) -> int:
    fps = int(info["fps"])
    files_checked = 0
    for vk in fmt.video_keys(features):
        by_file: dict[tuple[int, int], list[_Episode]] = {}
        for ep in episodes:
            by_file.setdefault(ep.videos[vk][:2], []).append(ep)
        h, w = features[vk]["shape"][:2]
        names = features[vk].get("names") or []
        if len(names) == 3 and names[0] in ("channel", "channels"):
            h, w = features[vk]["shape"][1:]
        for (c, f), eps in sorted(by_file.items(), key=lambda item: str(item[0])):
            path = _template_path(root, info, "video_path", None,
                                  video_key=vk, chunk_index=c, file_index=f)  # problems reported by the episodes check
            if path is None or not path.is_file():
                continue
            rel = _rel(root, path)
            files_checked += 1
            ep_list = [e.index for e in eps]
            try:
                pts, facts, read_error = _probe_pts(path)
            except Exception as exc:  # noqa: BLE001 - corrupt containers raise various av errors
                out.add("video.file", f"cannot be opened ({exc}); holds episodes {ep_list} of '{vk}'", rel, eps[0].index)
                continue
            if read_error:
                out.add("video.file", f"{read_error} (file holds episodes {ep_list} of '{vk}')", rel, eps[0].index)
            if (facts["height"], facts["width"]) != (h, w):
                out.add("video.resolution", f"{facts['width']}x{facts['height']} but feature '{vk}' is {w}x{h}", rel)
            vinfo = features[vk].get("info") or {}
            if vinfo.get("video.fps") not in (None, fps):
                out.add("video.info", f"features['{vk}'].info video.fps={vinfo.get('video.fps')} but fps={fps}", fmt.INFO_PATH)
            prev_end = 0.0
            for ep in sorted(eps, key=lambda e: e.videos[vk][2] or 0.0):
                t0, t1 = ep.videos[vk][2], ep.videos[vk][3]
                if t0 is None or t1 is None:
                    continue
                if t0 < prev_end - TIMESTAMP_TOLERANCE_S:
                    out.add("video.overlap", f"'{vk}': span starts at {t0:.6f} s, before the previous episode ends ({prev_end:.6f} s)", rel, ep.index)
                prev_end = max(prev_end, t1)
                expected = t0 + np.arange(max(int(ep.length), 0)) / fps
                if len(pts):
                    after = np.clip(np.searchsorted(pts, expected), 0, len(pts) - 1)
                    before = np.clip(after - 1, 0, len(pts) - 1)
                    nearest = np.minimum(np.abs(pts[after] - expected), np.abs(pts[before] - expected))
                    missing = np.flatnonzero(nearest >= TIMESTAMP_TOLERANCE_S).tolist()
                else:
                    missing = list(range(len(expected)))
                for k in missing[:3]:
                    out.add("video.frames", f"'{vk}': no frame at {expected[k]:.6f} s (from_timestamp + {k}/{fps})", rel, ep.index, ep.start + k)
                if missing:
                    out.add("video.frames", f"'{vk}': {len(missing)} of {ep.length} frames missing from the span "
                            f"[{t0:.6f}, {t1:.6f}) s (video truncated or too short)", rel, ep.index)
                in_span = int(np.count_nonzero((pts >= t0 - TIMESTAMP_TOLERANCE_S) & (pts < t1 - TIMESTAMP_TOLERANCE_S)))
                if not missing and in_span != ep.length:
                    out.add("video.frames", f"'{vk}': {in_span} frames in span [{t0:.6f}, {t1:.6f}) s but the episode has {ep.length}", rel, ep.index)
            end_of_stream = (pts[-1] + 1.0 / fps) if len(pts) else 0.0
            if prev_end > end_of_stream + TIMESTAMP_TOLERANCE_S:
                out.add("video.duration", f"'{vk}': episodes extend to {prev_end:.6f} s but the stream ends at {end_of_stream:.6f} s", rel)
    return files_checked


# ============================================================================================ stats
def _expected_stat_shape(ft: Mapping[str, Any]) -> tuple[int, ...]:
    shape = tuple(ft["shape"])
    if ft["dtype"] in fmt.VISUAL_DTYPES:
        names = ft.get("names") or []
        channels = shape[0] if len(names) == 3 and names[0] in ("channel", "channels") else shape[-1]
        return (channels, 1, 1)
    return shape


def _check_stats(root: Path, features: Mapping[str, Any], out: _Collector) -> None:
    path = fmt.stats_path(root)
    where = fmt.STATS_PATH
    if not path.exists():
        out.add("stats.file", "missing", where)
        return
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        out.add("stats.file", f"not valid JSON: {exc}", where)
        return
    for key in fmt.stats_feature_keys(features):
        per = stats.get(key)
        if not isinstance(per, dict):
            out.add("stats.missing", f"no stats for feature '{key}'", where)
            continue
        missing = [s for s in REQUIRED_STATS if s not in per]
        if missing:
            out.add("stats.missing", f"'{key}' lacks {missing}", where)
        want = _expected_stat_shape(features[key])
        for name, value in per.items():
            try:
                arr = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                out.add("stats.shape", f"'{key}'.{name} is not numeric: {value!r}", where)
                continue
            expected = (1,) if name == "count" else want
            if arr.shape != expected:
                out.add("stats.shape", f"'{key}'.{name} has shape {list(arr.shape)}, expected {list(expected)}", where)
            elif not np.all(np.isfinite(arr)):
                out.add("stats.values", f"'{key}'.{name} has non-finite values", where)
        if "min" in per and "max" in per:
            try:
                if np.any(np.asarray(per["min"], dtype=np.float64) > np.asarray(per["max"], dtype=np.float64)):
                    out.add("stats.values", f"'{key}': min > max", where)
            except (TypeError, ValueError):
                pass
    unknown = [k for k in stats if k not in features]
    if unknown:
        out.add("stats.unknown", f"stats for features that do not exist: {unknown}", where, severity="warning")


# ============================================================================================ entry point
class _Guard:
    """Runs one check; an exception it raises (a hostile file can break any assumption) becomes a problem naming
    the check, and the checks that depend on its result are skipped."""

    def __init__(self, out: _Collector) -> None:
        self.out = out

    def __call__(self, check: str, fn: Any, *args: Any, default: Any = None) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - the validator reports, it never raises
            self.out.add(f"{check}.unchecked", f"this check stopped on unexpected content: {type(exc).__name__}: "
                         f"{str(exc)[:300]}")
            return default


def _check_layout(root: Path, out: _Collector) -> bool:
    """The folder itself: a v3.0 dataset, no unfinished work, not open in a writer. False stops validation."""
    if not root.is_dir():
        what = "is a file, not a dataset folder" if root.exists() else "does not exist"
        out.add("layout", f"{root} {what}", str(root))
        return False
    work = unfinished_work(root)
    if work:
        out.add("layout.unfinished", f"the folder holds {work}; run `lerobot-dataset recover {root}` first")
    if is_locked(root):
        out.add("layout.busy", "the dataset is open in a LeRobotDatasetWriter (recording?); what is checked may "
                "change while it is saved", severity="warning")
    try:
        check_v3_layout(root)
    except DatasetVersionError as exc:
        out.add("layout.version", str(exc), fmt.INFO_PATH)
        return False
    except ValueError as exc:
        out.add("layout", str(exc), fmt.INFO_PATH)
        return False
    return True


def validate_dataset(root: Path | str, check_videos: bool = True) -> ValidationReport:
    """Validate the dataset folder `root`; never raises for a bad dataset (problems go into the report)."""
    root = Path(root)
    report = ValidationReport(root=root)
    out = _Collector(report)
    guard = _Guard(out)
    episodes = tasks = None
    videos = 0
    if guard("layout", _check_layout, root, out, default=False):
        info = json.loads(fmt.info_path(root).read_text(encoding="utf-8"))
        features = guard("info", _check_info, info, out)
        tasks = guard("tasks", _check_tasks, root, info, out)
        if features is not None:
            if "data_path" in info:
                episodes = guard("episodes", _check_episodes, root, info, features, tasks, out)
            if "data_path" in info and isinstance(info.get("fps"), int) and info["fps"] > 0:
                guard("data", _check_data, root, info, features, episodes, tasks, out)
            if check_videos and episodes and fmt.video_keys(features) and isinstance(info.get("video_path"), str):
                videos = guard("video", _check_videos, root, info, features, episodes, out, default=0)
            guard("stats", _check_stats, root, features, out)
        staging = root / "images"
        if staging.is_dir() and any(staging.iterdir()):
            out.add("layout.staging", "leftover image staging folder (frames of an episode that was never saved?); "
                    "it is not part of the dataset and upstream's push_to_hub ignores it", "images", severity="warning")
    out.finish()
    report.summary = {
        "episodes": len(episodes) if episodes else 0,
        "frames": episodes[-1].end if episodes and isinstance(episodes[-1].end, int) else 0,
        "tasks": len(tasks) if tasks else 0,
        "video_files": videos,
    }
    return report
