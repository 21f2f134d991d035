"""Read LeRobotDatasets with UPSTREAM lerobot 0.4.4 and dump items to .npz files (run with the .venv-oracle python).

    python tests/oracle/read_with_upstream.py JOBS.json

JOBS.json is a list of {"root": dir, "out": file.npz, "spec": {...}}; one process serves them all because
importing torch + lerobot dominates the cost. spec (all optional): {"episodes": [..],
"delta_timestamps": {key: [s, ..]}, "indices": [..], "tolerance_s": 1e-4}. Without "indices" every item is dumped.
The npz holds `<i>|<key>` arrays for every tensor of `ds[i]`, `__len__`, `__num_episodes__`,
`__indices__`; strings (`task`, string features) go to OUT.npz.json as {"<i>|<key>": value}.
Uses video_backend="pyav" through tests/oracle/oracle_shims.py (PyAV stand-in for torchvision.io.VideoReader).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import oracle_shims  # noqa: F401,E402  (before lerobot)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from lerobot.datasets.lerobot_dataset import LeRobotDataset  # noqa: E402


def dump(root: Path, out: Path, spec: dict) -> None:
    ds = LeRobotDataset(
        "oracle/under_test",
        root=root,
        episodes=spec.get("episodes"),
        delta_timestamps=spec.get("delta_timestamps"),
        tolerance_s=spec.get("tolerance_s", 1e-4),
        video_backend="pyav",
    )
    indices = spec.get("indices", list(range(len(ds))))
    arrays: dict[str, np.ndarray] = {
        "__len__": np.array(len(ds)),
        "__num_episodes__": np.array(ds.num_episodes),
        "__indices__": np.array(indices, dtype=np.int64),
    }
    strings: dict[str, str] = {}
    for i in indices:
        item = ds[i]
        for key, value in item.items():
            if isinstance(value, torch.Tensor):
                arrays[f"{i}|{key}"] = value.numpy()
            elif isinstance(value, str):
                strings[f"{i}|{key}"] = value
            else:
                raise TypeError(f"item {i} key {key}: unexpected {type(value).__name__}")
    np.savez(out, **arrays)
    Path(str(out) + ".json").write_text(json.dumps(strings))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("jobs", type=Path)
    args = parser.parse_args()
    for job in json.loads(args.jobs.read_text()):
        dump(Path(job["root"]), Path(job["out"]), job.get("spec") or {})


if __name__ == "__main__":
    main()
