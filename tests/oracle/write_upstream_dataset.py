"""Write a LeRobotDataset v3.0 with UPSTREAM lerobot 0.4.4 (run with the .venv-oracle python).

    python tests/oracle/write_upstream_dataset.py OUT_DIR:VCODEC [OUT_DIR:VCODEC ...]

(several datasets in one process, because importing torch + lerobot dominates the cost).

Several episodes and tasks (tests/oracle/synthetic_episodes.py), two video cameras, one image feature, 6-dof
state/action, and tiny data/video file size limits so that data and both video streams roll over to new files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import oracle_shims  # noqa: F401,E402  (before lerobot)
import synthetic_episodes as syn  # noqa: E402
from lerobot.datasets.lerobot_dataset import LeRobotDataset  # noqa: E402


def write(out: Path, vcodec: str, data_mb: float, video_mb: float, chunks_size: int) -> dict:
    ds = LeRobotDataset.create(
        repo_id="oracle/upstream_written",
        fps=syn.FPS,
        features=syn.features("video"),
        root=out,
        robot_type="so101_follower",
        use_videos=True,
        vcodec=vcodec,
    )
    # Tiny limits: a couple of episodes per file and two files per chunk, so readers must follow chunk/file references.
    ds.meta.update_chunk_settings(chunks_size=chunks_size, data_files_size_in_mb=data_mb, video_files_size_in_mb=video_mb)
    for ep, (length, task) in enumerate(zip(syn.EPISODE_LENGTHS, syn.EPISODE_TASKS)):
        for f in range(length):
            frame = syn.frame_dict(ep, f)
            frame["task"] = syn.TASKS[task]
            ds.add_frame(frame)
        ds.save_episode()
    ds.finalize()
    return {"root": str(out), "vcodec": vcodec, "frames": ds.meta.total_frames, "episodes": ds.meta.total_episodes}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("targets", nargs="+", help="OUT_DIR:VCODEC (vcodec as upstream: libsvtav1, h264, hevc)")
    parser.add_argument("--data-mb", type=float, default=0.02)
    parser.add_argument("--video-mb", type=float, default=0.01)
    parser.add_argument("--chunks-size", type=int, default=2)
    args = parser.parse_args()
    for target in args.targets:
        out, _, vcodec = target.rpartition(":")
        print(json.dumps(write(Path(out), vcodec, args.data_mb, args.video_mb, args.chunks_size)))


if __name__ == "__main__":
    main()
