"""Edits that keep every episode but change what is stored: remove features, change tasks, store image features
as video. They are `lerobot-edit-dataset`'s remove_feature, modify_tasks and convert_image_to_video operations,
built on `tools.compose_dataset` (so they renumber nothing, keep the per-episode stats of what they do not change,
write a new folder atomically and edit in place through the same journaled swap as delete-episodes).

Where the result differs from upstream lerobot 0.4.4 it is on purpose and said here:
- remove_feature also drops the removed features' per-episode stats and video columns from meta/episodes
  (upstream copies meta/episodes unchanged);
- modify_tasks keeps an episode's own tasks when neither `new_task` nor `episode_tasks` names it (upstream collapses
  it to its first task) and recomputes the task_index statistics (upstream leaves them stale);
- convert_image_to_video keeps each camera's statistics, computed from the same frames before encoding, as the video
  feature's statistics (upstream drops them from stats.json and meta/episodes), and rolls video files over by size
  like the writer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

from .errors import DatasetToolError
from .format import DEFAULT_FEATURES, VIDEO_PATH, image_keys
from .source_dataset import SourceDataset
from .tools import ComposeResult, EditPlan, EpisodeRef, _check_episode_indices, apply_edit
from .video import VideoEncoderConfig

__all__ = ["convert_images_to_video", "modify_tasks", "remove_features"]


def remove_features(
    root: Path | str,
    feature_names: Iterable[str],
    output: Path | str | None = None,
    *,
    keep_backup: bool = True,
    progress: bool = True,
) -> ComposeResult:
    """A dataset without `feature_names` (their data columns, videos and statistics); into `output`, or in place
    (the original kept as `<root>_old`). The 5 default features cannot be removed."""
    names = list(dict.fromkeys(feature_names))
    if not names:
        raise DatasetToolError("remove-feature: no feature name given")
    required = [n for n in names if n in DEFAULT_FEATURES]
    if required:
        raise DatasetToolError(f"remove-feature: {required} cannot be removed (every dataset has {list(DEFAULT_FEATURES)})")

    def plan(src: SourceDataset) -> EditPlan:
        unknown = [n for n in names if n not in src.features]
        if unknown:
            raise DatasetToolError(f"remove-feature: {src.root} has no feature {unknown}; it has {list(src.features)}")
        info = dict(src.info)
        info["features"] = {k: v for k, v in src.features.items() if k not in names}
        return EditPlan([EpisodeRef(src, e) for e in range(src.total_episodes)], info)

    return apply_edit(root, output, "remove features from it", plan, keep_backup=keep_backup, progress=progress)


def modify_tasks(
    root: Path | str,
    new_task: str | None = None,
    episode_tasks: Mapping[int, str] | None = None,
    output: Path | str | None = None,
    *,
    progress: bool = True,
) -> ComposeResult:
    """Give episodes new tasks: `episode_tasks` {episode: task} first, else `new_task` for every other episode,
    else the episode keeps its tasks. Tasks are numbered in sorted order, as upstream. Into `output`, or in place
    (as upstream, no backup is kept)."""
    episode_tasks = dict(episode_tasks or {})
    if new_task is None and not episode_tasks:
        raise DatasetToolError("modify-tasks: give a new task for every episode, or tasks for some episodes")
    for task in [new_task, *episode_tasks.values()]:
        if task is not None and (not isinstance(task, str) or not task.strip()):
            raise DatasetToolError(f"modify-tasks: a task must be a non-empty string, got {task!r}")

    def plan(src: SourceDataset) -> EditPlan:
        _check_episode_indices(src, episode_tasks, "modify-tasks")
        refs = [EpisodeRef(src, e, episode_tasks.get(e, new_task)) for e in range(src.total_episodes)]
        return EditPlan(refs, src.info)

    return apply_edit(root, output, "modify its tasks", plan, keep_backup=False, progress=progress, sorted_tasks=True)


def convert_images_to_video(
    root: Path | str,
    output: Path | str,
    *,
    video_encoder: VideoEncoderConfig | None = None,
    episodes: Iterable[int] | None = None,
    progress: bool = True,
) -> ComposeResult:
    """A new dataset at `output` with every image (PNG) feature stored as a video feature, encoded with
    `video_encoder` (upstream's defaults: AV1 via SVT, g=2, crf=30); only `episodes` when given."""
    if output is None or Path(output).resolve() == Path(root).resolve():
        raise DatasetToolError("convert-images-to-video: give a new --output folder (the image dataset is kept)")
    config = video_encoder or VideoEncoderConfig()

    def plan(src: SourceDataset) -> EditPlan:
        keys = image_keys(src.features)
        if not keys:
            raise DatasetToolError(f"convert-images-to-video: {src.root} has no image features")
        selected = _check_episode_indices(src, episodes, "convert-images-to-video") if episodes is not None else range(src.total_episodes)
        info = dict(src.info)
        info["features"] = {k: ({**v, "dtype": "video"} if k in keys else v) for k, v in src.features.items()}
        for key in keys:
            info["features"][key].pop("info", None)
        if not info.get("video_path"):
            info["video_path"] = VIDEO_PATH
        return EditPlan([EpisodeRef(src, e) for e in sorted(set(selected))], info, {k: config for k in keys})

    return apply_edit(root, output, "convert its images to video", plan, progress=progress)
