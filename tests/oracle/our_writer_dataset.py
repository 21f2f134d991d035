"""Write the synthetic episodes (synthetic_episodes.py) with OUR writer (main venv), mirroring
write_upstream_dataset.py: same features, tasks, fps and tiny file-size limits so files roll over."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synthetic_episodes as syn  # noqa: E402


def write_with_our_writer(root: Path, vcodec: str = "libsvtav1", data_mb: float = 0.02, video_mb: float = 0.01,
                          chunks_size: int = 2) -> Path:
    from lerobot_dataset.video import VideoEncoderConfig
    from lerobot_dataset.writer import LeRobotDatasetWriter

    writer = LeRobotDatasetWriter.create(
        root,
        fps=syn.FPS,
        features=syn.features("video"),
        robot_type="so101_follower",
        video_encoder=VideoEncoderConfig(vcodec=vcodec),
        data_files_size_in_mb=data_mb,
        video_files_size_in_mb=video_mb,
        chunks_size=chunks_size,
        fsync=False,
    )
    try:
        for ep, (length, task) in enumerate(zip(syn.EPISODE_LENGTHS, syn.EPISODE_TASKS)):
            for f in range(length):
                writer.add_frame(syn.frame_dict(ep, f), task=syn.TASKS[task])
            writer.save_episode()
    finally:
        writer.close()
    return root


# delta_timestamps used when comparing upstream's reading of our datasets with ours.
WINDOWS = {
    "observation.state": [-2 / syn.FPS, -1 / syn.FPS, 0.0],
    "action": [i / syn.FPS for i in range(8)],
    "observation.images.front": [-1 / syn.FPS, 0.0, 1 / syn.FPS],
    "observation.images.overhead": [0.0, 1 / syn.FPS],
}


def upstream_read_jobs(root: Path) -> dict:
    """The reads of our dataset that the oracle tests ask upstream for (for oracle_env.read_many_with_upstream)."""
    return {"plain": (root, None), "windows": (root, {"delta_timestamps": WINDOWS})}
