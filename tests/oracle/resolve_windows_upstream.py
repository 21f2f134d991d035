"""Upstream lerobot 0.4.4's policy windows for a dataset (run with the .venv-oracle python).

    python tests/oracle/resolve_windows_upstream.py DATASET_ROOT OUT.json

For a few upstream policy configs (ACT, Diffusion with its defaults and with n_obs_steps/horizon changed),
writes {name: {"observation_delta_indices", "action_delta_indices", "reward_delta_indices",
"drop_n_last_frames", "delta_timestamps"}} where delta_timestamps is what upstream's
`datasets.factory.resolve_delta_timestamps(config, LeRobotDatasetMetadata(root))` returns (None -> null).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import oracle_shims  # noqa: F401,E402  (before lerobot)
from lerobot.datasets.factory import resolve_delta_timestamps  # noqa: E402
from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata  # noqa: E402
from lerobot.policies.act.configuration_act import ACTConfig  # noqa: E402
from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig  # noqa: E402

CONFIGS = {
    "act_default": lambda: ACTConfig(),
    "act_chunk_20": lambda: ACTConfig(chunk_size=20, n_action_steps=20),
    "diffusion_default": lambda: DiffusionConfig(),
    "diffusion_obs3_h8": lambda: DiffusionConfig(n_obs_steps=3, horizon=8, n_action_steps=4),
}


def main() -> None:
    root, out = Path(sys.argv[1]), Path(sys.argv[2])
    meta = LeRobotDatasetMetadata("oracle/under_test", root=root)
    result = {}
    for name, make in CONFIGS.items():
        cfg = make()
        result[name] = {
            "observation_delta_indices": cfg.observation_delta_indices,
            "action_delta_indices": cfg.action_delta_indices,
            "reward_delta_indices": cfg.reward_delta_indices,
            "drop_n_last_frames": getattr(cfg, "drop_n_last_frames", 0),
            "delta_timestamps": resolve_delta_timestamps(cfg, meta),
        }
    out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
