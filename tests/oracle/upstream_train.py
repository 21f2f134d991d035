"""Upstream lerobot 0.4.4's training side (run with the .venv-oracle python).

    python tests/oracle/upstream_train.py train --dataset.repo_id=... --policy.type=act ...   (upstream lerobot-train)
    python tests/oracle/upstream_train.py parse-config PATH/train_config.json OUT.json

`train` runs upstream's `lerobot-train` main with the given flags. `parse-config` reads a train_config.json with
upstream's `TrainPipelineConfig.from_pretrained` (draccus: unknown keys are errors) and writes what it understood.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import oracle_shims  # noqa: F401,E402  (before lerobot)


def parse_config(path: str, out: str) -> None:
    import lerobot.policies  # noqa: F401  (registers the policy config classes)
    from lerobot.configs.train import TrainPipelineConfig

    cfg = TrainPipelineConfig.from_pretrained(path)
    Path(out).write_text(json.dumps({
        "policy_type": cfg.policy.type,
        "steps": cfg.steps,
        "batch_size": cfg.batch_size,
        "optimizer": cfg.optimizer.type,
        "lr": cfg.optimizer.lr,
        "dataset_root": cfg.dataset.root,
        "chunk_size": cfg.policy.chunk_size,
    }))


def main() -> None:
    command, args = sys.argv[1], sys.argv[2:]
    if command == "train":
        from lerobot.scripts.lerobot_train import main as train_main

        sys.argv = ["lerobot-train", *args]
        train_main()
    elif command == "parse-config":
        parse_config(*args)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
