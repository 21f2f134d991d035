"""Oracle for the dataset-tools tests, run with .venv-oracle/bin/python (upstream lerobot 0.4.4).

    tools_oracle.py load ROOT OUT.npz        load ROOT with upstream LeRobotDataset (video_backend="pyav") and dump
                                             every frame's values (`<index>/<key>` arrays, cameras as uint8 CHW)
                                             plus a JSON summary (`__summary__`: episodes, frames, tasks, ranges)
    tools_oracle.py write ROOT [--episodes N] [--frames F] [--seed S]
                                             record a small dataset with upstream's writer: 2 video cameras, one
                                             image feature, 6-dof state/action, 2 tasks (input for our tools)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import oracle_shims  # noqa: E402,F401  (before lerobot)
import numpy as np  # noqa: E402


def _to_uint8_chw(t) -> np.ndarray:
    arr = t.numpy()
    return np.round(arr * 255.0).clip(0, 255).astype(np.uint8)


def cmd_load(root: Path, out: Path) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    ds = LeRobotDataset("local/tools_oracle", root=root, video_backend="pyav")
    arrays: dict[str, np.ndarray] = {}
    camera_keys = set(ds.meta.camera_keys)
    for i in range(len(ds)):
        item = ds[i]
        for key, value in item.items():
            if key == "task":
                continue
            if key in camera_keys:
                arrays[f"{i}/{key}"] = _to_uint8_chw(value)
            else:
                arrays[f"{i}/{key}"] = value.numpy()
        arrays[f"{i}/task"] = np.array(item["task"])
    eps = ds.meta.episodes
    summary = {
        "num_episodes": ds.num_episodes,
        "num_frames": ds.num_frames,
        "tasks": [str(t) for t in ds.meta.tasks.index],
        "from": [int(x) for x in eps["dataset_from_index"]],
        "to": [int(x) for x in eps["dataset_to_index"]],
        "fps": ds.fps,
        "stats_keys": sorted(ds.meta.stats.keys()),
    }
    arrays["__summary__"] = np.array(json.dumps(summary))
    np.savez(out, **arrays)


def cmd_write(root: Path, episodes: int, frames: int, seed: int) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    h, w = 48, 64
    features = {
        "observation.state": {"dtype": "float32", "shape": (6,), "names": [f"j{i}.pos" for i in range(6)]},
        "action": {"dtype": "float32", "shape": (6,), "names": [f"j{i}.pos" for i in range(6)]},
        "observation.images.front": {"dtype": "video", "shape": (h, w, 3), "names": ["height", "width", "channels"]},
        "observation.images.wrist": {"dtype": "video", "shape": (h, w, 3), "names": ["height", "width", "channels"]},
        "observation.images.top": {"dtype": "image", "shape": (h, w, 3), "names": ["height", "width", "channels"]},
    }
    ds = LeRobotDataset.create("local/tools_oracle_src", fps=30, features=features, root=root, robot_type="so101")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    for ep in range(episodes):
        for f in range(frames + 3 * ep):
            base = ((xx * 4 + yy * 2 + f * 6 + ep * 40) % 256).astype(np.uint8)
            img = np.stack([base, np.roll(base, 7, axis=1), 255 - base], axis=-1)
            ds.add_frame(
                {
                    "observation.state": rng.normal(size=6).astype(np.float32),
                    "action": rng.normal(size=6).astype(np.float32),
                    "observation.images.front": img,
                    "observation.images.wrist": np.ascontiguousarray(img[::-1]),
                    "observation.images.top": np.ascontiguousarray(img[:, ::-1]),
                    "task": ["pick the cube", "place the cube"][ep % 2],
                }
            )
        ds.save_episode()
    ds.finalize()


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    lo = sub.add_parser("load")
    lo.add_argument("root", type=Path)
    lo.add_argument("out", type=Path)
    wr = sub.add_parser("write")
    wr.add_argument("root", type=Path)
    wr.add_argument("--episodes", type=int, default=3)
    wr.add_argument("--frames", type=int, default=12)
    wr.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.cmd == "load":
        cmd_load(a.root, a.out)
    else:
        cmd_write(a.root, a.episodes, a.frames, a.seed)


if __name__ == "__main__":
    main()
