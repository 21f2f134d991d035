"""Map-style torch dataset for training: one or more LeRobotDataset v3.0 folders, windows, lazy decoding.

`TrainingDataset(roots)[i]` is upstream's `LeRobotDataset(..., delta_timestamps=...)[i]` with one deliberate
difference: cameras come back as **uint8** CHW tensors ((T, C, H, W) with a window), 4x less to copy from
DataLoader workers; `cameras_to_float(batch)` turns them into float32 in [0, 1] on the consumer side
(bit-identical to upstream's `frame / 255`). When `image_transforms` are given they run in the worker on the
float image (as upstream), so those items already hold float32 cameras; `cameras_to_float` leaves float
tensors alone, so the consumer code is the same either way.

Everything else is as upstream: floating features float32, integer features int64, shape-(1,) features 0-d
tensors, `<key>_is_pad` bool masks where the window runs past the episode (padded positions hold copies of
the edge frame), `task` (the string), `index`, `episode_index`, `frame_index`, `timestamp`, `task_index`.
With several datasets the item also has `dataset_index` (as upstream's MultiLeRobotDataset).

Positions: item i of this dataset is the i-th frame of the selected episodes, dataset after dataset, in
dataset order. `meta.dataset_from_index` / `meta.dataset_to_index` give every selected episode's range in
these positions, which is what `EpisodeAwareSampler` takes.

Fork- and spawn-safe: video decoders are opened lazily in each worker process (the dataset reader drops
decoders inherited through fork and ships only settings through pickle).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from lerobot_dataset.reader import LeRobotDatasetReader
from lerobot_dataset.stats import aggregate_stats
from lerobot_dataset.video_decode import DEFAULT_TOLERANCE_S

logger = logging.getLogger(__name__)

# Keys of `info.features[k]["info"]` that describe how a video was encoded, not what it holds: datasets
# encoded differently can still be trained on together (upstream's merge ignores them too).
_ENCODER_INFO_PREFIX = "video."


@dataclass(frozen=True)
class EpisodeRef:
    """One selected episode: which dataset (position in the roots list) and its episode_index there."""

    dataset_index: int
    episode_index: int


@dataclass
class TrainingDatasetMeta:
    """What the trainer needs to know about the data: features, fps, stats, episode ranges, robot type."""

    fps: int
    features: dict[str, dict[str, Any]]
    stats: dict[str, dict[str, np.ndarray]]
    robot_type: str | None
    roots: list[Path]
    tasks: list[list[str]]  # per dataset, indexed by task_index
    episodes: list[EpisodeRef]
    # [from, to) of each selected episode in TrainingDataset positions (for EpisodeAwareSampler)
    dataset_from_index: np.ndarray = field(repr=False)
    dataset_to_index: np.ndarray = field(repr=False)

    @property
    def camera_keys(self) -> list[str]:
        return [k for k, f in self.features.items() if f["dtype"] in ("image", "video")]

    @property
    def video_keys(self) -> list[str]:
        return [k for k, f in self.features.items() if f["dtype"] == "video"]

    @property
    def image_keys(self) -> list[str]:
        return [k for k, f in self.features.items() if f["dtype"] == "image"]

    @property
    def total_episodes(self) -> int:
        return len(self.episodes)

    @property
    def total_frames(self) -> int:
        return int(self.dataset_to_index[-1]) if len(self.dataset_to_index) else 0


# ==================================================================================== helpers
def _comparable_feature(ft: Mapping[str, Any]) -> dict[str, Any]:
    info = {k: v for k, v in (ft.get("info") or {}).items() if not str(k).startswith(_ENCODER_INFO_PREFIX)}
    names = ft.get("names")
    return {"dtype": ft["dtype"], "shape": list(ft["shape"]), "names": names, "info": info or None}


def check_features_match(readers: Sequence[LeRobotDatasetReader]) -> None:
    """Datasets trained on together must share fps and features (dtype, shape, names); raise naming the first
    difference."""
    first = readers[0]
    for other in readers[1:]:
        if other.fps != first.fps:
            raise ValueError(f"datasets differ in fps: {first.root} has {first.fps}, {other.root} has {other.fps}")
        a, b = first.features, other.features
        only_a = [k for k in a if k not in b]
        only_b = [k for k in b if k not in a]
        if only_a or only_b:
            raise ValueError(
                f"datasets differ in features: only in {first.root}: {only_a}; only in {other.root}: {only_b}"
            )
        for key in a:
            fa, fb = _comparable_feature(a[key]), _comparable_feature(b[key])
            if fa != fb:
                diff = {k: (fa[k], fb[k]) for k in fa if fa[k] != fb[k]}
                raise ValueError(f"feature '{key}' differs between {first.root} and {other.root}: {diff}")


def _merged_stats(readers: Sequence[LeRobotDatasetReader]) -> dict[str, dict[str, np.ndarray]]:
    if len(readers) == 1:
        return {k: dict(v) for k, v in readers[0].meta.stats.items()}
    per_dataset = [r.meta.stats for r in readers]
    for r, stats in zip(readers, per_dataset):
        lacking = [k for k, s in stats.items() if "count" not in s]
        if lacking:
            raise ValueError(f"{r.root}/meta/stats.json: features {lacking} have no 'count'; cannot combine stats of several datasets")
    return aggregate_stats(per_dataset)


# Upstream's `dataset.use_imagenet_stats` (default True): camera stats replaced by ImageNet's, shape (C, 1, 1).
IMAGENET_STATS = {
    "mean": [[[0.485]], [[0.456]], [[0.406]]],
    "std": [[[0.229]], [[0.224]], [[0.225]]],
}


def with_imagenet_stats(stats: Mapping[str, Mapping[str, np.ndarray]], camera_keys: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
    """A copy of `stats` whose cameras' mean/std are ImageNet's (for pretrained vision backbones), as upstream's
    make_dataset does with use_imagenet_stats; other stats (min, max, quantiles, count) are kept."""
    out = {k: dict(v) for k, v in stats.items()}
    for key in camera_keys:
        per = out.setdefault(key, {})
        for name, value in IMAGENET_STATS.items():
            per[name] = np.asarray(value, dtype=np.float32)
    return out


def cameras_to_float(batch: Mapping[str, Any], camera_keys: Sequence[str] | None = None) -> dict[str, Any]:
    """A copy of `batch` whose uint8 camera tensors are float32 in [0, 1] (`x / 255`, as upstream).

    Without `camera_keys`, every uint8 tensor is taken for a camera (no other feature is uint8: the reader
    returns integer features as int64). Float cameras (already transformed) pass through unchanged. Works on
    single items and on collated batches, on any device (move to the GPU first to convert there).
    """
    out = dict(batch)
    keys = camera_keys if camera_keys is not None else [k for k, v in batch.items() if isinstance(v, torch.Tensor)]
    for key in keys:
        value = out.get(key)
        if isinstance(value, torch.Tensor) and value.dtype == torch.uint8:
            out[key] = value.to(torch.float32) / 255
    return out


# ==================================================================================== dataset
class TrainingDataset(torch.utils.data.Dataset):
    """Frames of one or more datasets with a policy's windows.

    Args:
        roots_or_readers: a dataset folder, a `LeRobotDatasetReader`, or a list of them. A reader contributes its
            root and, unless `episodes` says otherwise, its episode subset and tolerance.
        delta_timestamps: `{feature: [seconds]}` windows (see `windows.delta_timestamps_for`).
        episodes: episode subset: a list of episode indices (one dataset), or one list (or None = all) per
            dataset.
        image_transforms: callable applied to each camera's float image (or (T, C, H, W) window), as upstream's
            `image_transforms` (e.g. `augment.ImageTransforms`).
        tolerance_s: allowed |frame time - query time| (upstream default 1e-4).
        max_open_video_files: decoders kept open per worker process.
    """

    def __init__(
        self,
        roots_or_readers: str | Path | LeRobotDatasetReader | Sequence[str | Path | LeRobotDatasetReader],
        delta_timestamps: Mapping[str, Sequence[float]] | None = None,
        episodes: Sequence[int] | Sequence[Sequence[int] | None] | None = None,
        image_transforms: Callable[[torch.Tensor], torch.Tensor] | None = None,
        tolerance_s: float | None = None,
        max_open_video_files: int = 16,
    ) -> None:
        sources = (
            [roots_or_readers]
            if isinstance(roots_or_readers, (str, Path, LeRobotDatasetReader))
            else list(roots_or_readers)
        )
        if not sources:
            raise ValueError("TrainingDataset needs at least one dataset root")
        per_dataset_episodes = self._split_episodes(episodes, len(sources))
        self.delta_timestamps = {k: list(v) for k, v in delta_timestamps.items()} if delta_timestamps else None
        self.image_transforms = image_transforms
        self.readers: list[LeRobotDatasetReader] = []
        for i, (src, eps) in enumerate(zip(sources, per_dataset_episodes)):
            if isinstance(src, LeRobotDatasetReader):
                root, eps = src.root, (eps if eps is not None else src.episodes)
                tol = tolerance_s if tolerance_s is not None else src.tolerance_s
            elif isinstance(src, (str, Path)):
                root, tol = Path(src), tolerance_s if tolerance_s is not None else DEFAULT_TOLERANCE_S
            else:
                raise TypeError(f"dataset {i}: expected a folder path or a LeRobotDatasetReader, got {type(src).__name__}")
            try:
                reader = LeRobotDatasetReader(
                    root, episodes=eps, delta_timestamps=self.delta_timestamps, tolerance_s=tol,
                    return_uint8=True, output="torch", max_open_video_files=max_open_video_files,
                )
            except ValueError as exc:
                raise ValueError(f"{root}: {exc}") from exc
            self.readers.append(reader)
        check_features_match(self.readers)
        self._offsets = np.cumsum([0] + [len(r) for r in self.readers])
        self.meta = self._build_meta()
        robot_types = {r.meta.robot_type for r in self.readers}
        if len(robot_types) > 1:
            logger.warning("training on datasets of different robot types %s; meta.robot_type is %r",
                           sorted(map(str, robot_types)), self.meta.robot_type)

    @staticmethod
    def _split_episodes(episodes: Any, n: int) -> list[Sequence[int] | None]:
        if episodes is None:
            return [None] * n
        episodes = list(episodes)
        if all(isinstance(e, (int, np.integer)) for e in episodes):
            if n != 1:
                raise ValueError(
                    f"episodes: a flat list of episode indices is ambiguous with {n} datasets; give one list (or None) per dataset"
                )
            return [episodes]
        if len(episodes) != n:
            raise ValueError(f"episodes: expected one list (or None) per dataset ({n}), got {len(episodes)}")
        return [None if e is None else [int(x) for x in e] for e in episodes]

    def _build_meta(self) -> TrainingDatasetMeta:
        refs: list[EpisodeRef] = []
        starts: list[int] = []
        ends: list[int] = []
        for d, reader in enumerate(self.readers):
            for ep in sorted(set(reader.episode_indices)):
                view = reader.episode(ep)
                first = int(self._offsets[d]) + view.first_row
                refs.append(EpisodeRef(d, ep))
                starts.append(first)
                ends.append(first + len(view))
        first_meta = self.readers[0].meta
        return TrainingDatasetMeta(
            fps=first_meta.fps,
            features={k: dict(v) for k, v in first_meta.features.items()},
            stats=_merged_stats(self.readers),
            robot_type=first_meta.robot_type,
            roots=[r.root for r in self.readers],
            tasks=[list(r.meta.tasks) for r in self.readers],
            episodes=refs,
            dataset_from_index=np.asarray(starts, dtype=np.int64),
            dataset_to_index=np.asarray(ends, dtype=np.int64),
        )

    # ---------------------------------------------------------------- access
    def __len__(self) -> int:
        return int(self._offsets[-1])

    @property
    def num_frames(self) -> int:
        return len(self)

    @property
    def num_episodes(self) -> int:
        return len(self.meta.episodes)

    @property
    def fps(self) -> int:
        return self.meta.fps

    def locate(self, idx: int) -> tuple[int, int]:
        """(dataset, row in that dataset's reader) of position `idx`."""
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"frame {idx} out of range for a training dataset of {n} frames")
        idx = int(idx) % n
        d = int(np.searchsorted(self._offsets, idx, side="right")) - 1
        return d, idx - int(self._offsets[d])

    def __getitem__(self, idx: int) -> dict[str, Any]:
        d, row = self.locate(idx)
        item = self.readers[d][row]
        if self.image_transforms is not None:
            for key in self.meta.camera_keys:
                item[key] = self.image_transforms(item[key].to(torch.float32) / 255)
        if len(self.readers) > 1:
            item["dataset_index"] = torch.tensor(d)
        return item

    def close(self) -> None:
        for r in self.readers:
            r.close()

    def __repr__(self) -> str:
        return (
            f"TrainingDataset(datasets={len(self.readers)}, episodes={self.num_episodes}, frames={len(self)}, "
            f"fps={self.fps}, windows={sorted(self.delta_timestamps or {})})"
        )
