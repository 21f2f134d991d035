"""Relative-action statistics the way upstream HEAD defines them, on upstream 0.4.4's own data loading and
statistics class (run with the .venv-oracle python).

    python tests/oracle/relative_action_stats_upstream.py DATASET_ROOT CHUNK_SIZE OUT.json [EXCLUDE ...]

Upstream HEAD's definition (`compute_stats.compute_relative_action_stats`), restated: read the `action`,
`observation.state` and `episode_index` columns of the dataset's rows; a start row s is valid when the rows s and
s + CHUNK_SIZE - 1 belong to the same episode; a joint is kept absolute when an EXCLUDE token equals or is
contained in its lower-cased action name; each chunk contributes the rows action[s + k] - state[s] (converted
joints only); statistics come from `RunningQuantileStats` fed all rows at once. 0.4.4 has that class (HEAD's
own function needs Python >= 3.12, which this machine does not have). Writes {stat: list}.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import oracle_shims  # noqa: F401,E402  (before lerobot)
import numpy as np  # noqa: E402
from lerobot.datasets.compute_stats import RunningQuantileStats  # noqa: E402
from lerobot.datasets.lerobot_dataset import LeRobotDataset  # noqa: E402


def main() -> None:
    root, chunk, out = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    exclude = [t.lower() for t in sys.argv[4:]]
    ds = LeRobotDataset("oracle/under_test", root=root, video_backend="pyav")
    hf = ds.hf_dataset.with_format(None)
    actions = np.array(hf["action"], dtype=np.float32)
    states = np.array(hf["observation.state"], dtype=np.float32)
    episodes = np.array(hf["episode_index"])
    names = [str(n).lower() for n in ds.meta.features["action"]["names"]]
    mask = np.array([not any(t == n or t in n for t in exclude) for n in names], dtype=np.float32)
    starts = np.arange(len(episodes) - chunk + 1)
    starts = starts[episodes[starts] == episodes[starts + chunk - 1]]
    rows = actions[starts[:, None] + np.arange(chunk)[None, :]].copy()
    rows -= states[starts][:, None, : actions.shape[1]] * mask[None, None, :]
    stats = RunningQuantileStats()
    stats.update(rows.reshape(-1, actions.shape[1]))
    result = {k: np.asarray(v).tolist() for k, v in stats.get_statistics().items()}
    result["__num_chunks__"] = int(len(starts))
    out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
