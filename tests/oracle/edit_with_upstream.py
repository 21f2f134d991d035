"""Run UPSTREAM lerobot 0.4.4's dataset editing operations (run with the .venv-oracle python), so that tests can
compare `lerobot-dataset remove-feature / modify-tasks / convert-images-to-video` with lerobot-edit-dataset's.

    python tests/oracle/edit_with_upstream.py SRC OUT JOB.json

JOB.json: {"remove_feature": [keys] | null, "modify_tasks": {"new_task": str | null, "episode_tasks": {ep: task}}
| null, "convert_image_to_video": {"vcodec": str, "crf": int, "g": int} | null}. Each operation runs on its own
copy of SRC and writes OUT/remove_feature, OUT/modify_tasks (edited in place, as upstream does) and
OUT/convert_image_to_video.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import oracle_shims  # noqa: F401,E402  (before lerobot)
from lerobot.datasets import dataset_tools  # noqa: E402
from lerobot.datasets.lerobot_dataset import LeRobotDataset  # noqa: E402


def load(root: Path) -> LeRobotDataset:
    return LeRobotDataset("oracle/under_test", root=root, video_backend="pyav")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("src", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("job", type=Path)
    args = parser.parse_args()
    job = json.loads(args.job.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    if job.get("remove_feature"):
        dataset_tools.remove_feature(load(args.src), job["remove_feature"], output_dir=args.out / "remove_feature",
                                     repo_id="oracle/removed")
    if job.get("modify_tasks"):
        copy = args.out / "modify_tasks"
        shutil.copytree(args.src, copy)
        spec = job["modify_tasks"]
        episode_tasks = {int(k): v for k, v in (spec.get("episode_tasks") or {}).items()} or None
        dataset_tools.modify_tasks(load(copy), new_task=spec.get("new_task"), episode_tasks=episode_tasks)
    if job.get("convert_image_to_video"):
        spec = job["convert_image_to_video"]
        dataset_tools.convert_image_to_video_dataset(
            load(args.src), output_dir=args.out / "convert_image_to_video", repo_id="oracle/converted",
            vcodec=spec["vcodec"], crf=spec["crf"], g=spec["g"], num_workers=1,
        )
    print("done")


if __name__ == "__main__":
    main()
