"""Dataset side of a recording session, shared by the recorder node and the bag converter.

`open_dataset_writer` creates (or, with append, opens) the dataset with the features of a robot interface, and
checks that an existing dataset has exactly those features, fps and robot type. A new dataset's folder appears
with its first saved episode (the writer's rule), so a recording or conversion that saves nothing leaves nothing
behind. `validate_saved_episode` is the fast post-save check of one episode (metadata row, data rows, timestamps,
video spans). `remove_saved_episode` rebuilds the dataset without one episode (the recorder's ~/discard_episode) through
the dataset package's crash-safe removal.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lerobot_dataset.format import DEFAULT_FEATURES
from lerobot_recorder.interface import RobotInterface


def interface_features(interface: RobotInterface, use_videos: bool) -> dict[str, dict[str, Any]]:
    """The interface's dataset features; with use_videos=False cameras are stored as PNG images."""
    features = {k: dict(v) for k, v in interface.dataset_features().items()}
    if not use_videos:
        for feature in features.values():
            if feature["dtype"] == "video":
                feature["dtype"] = "image"
    return features


def _check_same_features(root: Path, info: dict[str, Any], wanted: dict[str, dict[str, Any]], fps: int,
                         append_hint: str = "append:=true") -> None:
    problems = []
    if int(info["fps"]) != fps:
        problems.append(f"fps {info['fps']} (interface: {fps})")
    existing = {k: v for k, v in info["features"].items() if k not in DEFAULT_FEATURES}
    for key, feature in wanted.items():
        if key not in existing:
            problems.append(f"no feature {key!r}")
            continue
        have = existing[key]
        if have["dtype"] != feature["dtype"] or tuple(have["shape"]) != tuple(feature["shape"]):
            problems.append(f"{key}: {have['dtype']} {tuple(have['shape'])} (interface: {feature['dtype']} "
                            f"{tuple(feature['shape'])})")
        elif feature.get("names") is not None and list(have.get("names") or []) != list(feature["names"]):
            problems.append(f"{key}: names {have.get('names')} (interface: {feature['names']})")
    extra = sorted(set(existing) - set(wanted))
    if extra:
        problems.append(f"features not in the interface: {extra}")
    if problems:
        raise ValueError(f"cannot record into {root} ({append_hint} or an empty dataset): it does not match the robot "
                         "interface: " + "; ".join(problems))


# The robot interface file the dataset was recorded with, kept in the dataset (upstream ignores the extra file): a
# policy trained on it stores it in its checkpoint, and the policy node compares it with the robot it serves.
INTERFACE_FILE = "meta/robot_interface.yaml"


def write_interface_file(root: Path, interface: RobotInterface) -> None:
    """Write (atomically) the interface's YAML text to <root>/meta/robot_interface.yaml, unless already there."""
    from lerobot_dataset.durable_io import atomic_output

    path = Path(root) / INTERFACE_FILE
    if interface.source_text and not (path.exists() and path.read_text(encoding="utf-8") == interface.source_text):
        with atomic_output(path) as tmp:
            tmp.write_text(interface.source_text, encoding="utf-8")


def _interface_writer_class(interface: RobotInterface):
    """The dataset writer class whose saves also write the interface file: the dataset folder only exists from
    the first saved episode on, so that is when the file can go in."""
    from lerobot_dataset import LeRobotDatasetWriter

    class InterfaceDatasetWriter(LeRobotDatasetWriter):
        def save_episode(self):
            summary = super().save_episode()
            write_interface_file(self.root, interface)
            return summary

    return InterfaceDatasetWriter


@dataclass
class OpenedDataset:
    writer: Any  # lerobot_dataset.LeRobotDatasetWriter
    next_episode_index: int


def open_dataset_writer(
    interface: RobotInterface,
    root: Path,
    repo_id: str | None = None,
    use_videos: bool = True,
    vcodec: str = "libsvtav1",
    append: bool = False,
    append_hint: str = "append:=true",
) -> OpenedDataset:
    """The writer for a recording into `root`.

    append=False: a new dataset. Nothing is written until the first saved episode, and a writer closed without one
    leaves nothing behind (the writer's rule); `root` may be missing, an empty folder or a dataset without episodes.
    append=True: an existing dataset with the interface's features (an interrupted save is repaired on open).
    `append_hint` is how the caller's user asks for appending (the node's `append:=true`, the CLI's `--append`),
    so errors name the caller's own flag."""
    from lerobot_dataset import VideoEncoderConfig
    from lerobot_dataset.recovery import finish_interrupted_replace

    writer_class = _interface_writer_class(interface)
    root = Path(root)
    finish_interrupted_replace(root)  # a removal a crash interrupted: the dataset may be under another name
    features = interface_features(interface, use_videos)
    if append:
        if not (root / "meta" / "info.json").exists():
            raise FileNotFoundError(
                f"{root} is not a dataset (no meta/info.json), so there is nothing to append to; drop {append_hint} "
                "to create it")
        writer = writer_class.open(root)
        try:
            _check_same_features(root, writer.info, features, interface.fps, append_hint)
        except ValueError:
            writer.close()
            raise
        return OpenedDataset(writer, int(writer.total_episodes))
    try:
        writer = writer_class.create(
            root, fps=interface.fps, features=features, robot_type=interface.robot_type,
            use_videos=any(f["dtype"] == "video" for f in features.values()),
            video_encoder=VideoEncoderConfig(vcodec=vcodec))
    except FileExistsError:
        raise FileExistsError(f"{root} already exists and holds saved episodes or other files: add episodes to it "
                              f"with {append_hint}, or choose a new folder") from None
    if repo_id:
        writer.info["repo_id"] = repo_id  # informational; upstream does not store it in info.json
    return OpenedDataset(writer, 0)


def validate_saved_episode(root: Path, episode_index: int) -> tuple[bool, str]:
    """Fast check of one saved episode: its meta row, its data rows (indices, timestamps = frame_index / fps,
    finite values) and, for videos, a span of the right length in an existing file."""
    import pyarrow.parquet as pq

    from lerobot_dataset.reader import DatasetMeta

    try:
        meta = DatasetMeta(root)
    except Exception as exc:
        return False, f"dataset metadata unreadable: {exc}"
    if not 0 <= episode_index < meta.total_episodes:
        return False, f"episode {episode_index} not in meta/episodes ({meta.total_episodes} episodes)"
    ep = meta.episodes[episode_index]
    n = ep.length
    problems = []
    if ep.dataset_to_index - ep.dataset_from_index != n:
        problems.append(f"index range {ep.dataset_from_index}..{ep.dataset_to_index} != length {n}")
    table = pq.read_table(meta.data_file(ep.data_chunk_index, ep.data_file_index))
    episode_col = table.column("episode_index").to_numpy()
    rows = table.filter(episode_col == episode_index)
    if rows.num_rows != n:
        problems.append(f"{rows.num_rows} data rows, meta says {n}")
    else:
        frame_index = rows.column("frame_index").to_numpy()
        if not np.array_equal(frame_index, np.arange(n)):
            problems.append("frame_index is not 0..n-1")
        index = rows.column("index").to_numpy()
        if not np.array_equal(index, np.arange(ep.dataset_from_index, ep.dataset_to_index)):
            problems.append("index does not match dataset_from_index..dataset_to_index")
        timestamps = rows.column("timestamp").to_numpy()
        if not np.allclose(timestamps, np.arange(n) / meta.fps, atol=1e-4):
            problems.append("timestamp != frame_index / fps")
        for key in ("observation.state", "action"):
            if key in rows.column_names:
                values = np.asarray(rows.column(key).to_pylist(), dtype=np.float64)
                if not np.isfinite(values).all():
                    problems.append(f"{key} has non-finite values")
    for key in meta.video_keys:
        span = ep.videos.get(key)
        if span is None:
            problems.append(f"no video span for {key}")
            continue
        if not meta.video_file(episode_index, key).exists():
            problems.append(f"{key}: video file missing")
        if abs((span.to_timestamp - span.from_timestamp) - n / meta.fps) > 1e-3:
            problems.append(f"{key}: video span {span.to_timestamp - span.from_timestamp:.4f} s for {n} frames")
    if problems:
        return False, f"episode {episode_index}: " + "; ".join(problems)
    return True, f"episode {episode_index}: {n} frames ok"


def remove_saved_episode(writer, root: Path, episode_index: int):
    """Remove a saved episode from the dataset the writer has open at `root` (-1 = the last one); later episodes
    are renumbered as LeRobot's delete_episodes does. Returns (a new writer open on the dataset, removed index).

    The dataset package does the work (lerobot_dataset.tools.remove_saved_episode): the dataset is rebuilt without
    the episode next to the original and swapped in through a journal that any later open of the dataset (or
    `lerobot-dataset recover`) finishes after a crash. The interface file goes along into the rebuilt dataset."""
    from lerobot_dataset.tools import remove_saved_episode as remove_episode

    if Path(root).resolve() != Path(writer.root).resolve():
        raise ValueError(f"the writer has {writer.root} open, not {root}")
    removed = remove_episode(writer, episode_index, keep_files=(INTERFACE_FILE,))
    return removed.writer, removed.episode_index
