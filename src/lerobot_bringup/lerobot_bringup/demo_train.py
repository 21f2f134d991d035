"""Stage 2 of the demo: train a policy on the recorded dataset with `lerobot-train`, on the CPU.

Runs `lerobot-train` as its own process with LeRobot's flags (the command is printed, so a user can run it by
hand), its progress bar passing through. The checkpoint carries the recording's robot interface
(`--robot_interface`: the dataset's meta/robot_interface.yaml), so the policy node can check it against the
robot it is deployed on.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lerobot_bringup.demo_config import DemoConfig
from lerobot_bringup.demo_record import DemoStageError

CURVES_PNG = "training_curves.png"

# Per policy type: the policy flags the demo sets beyond chunk size and the executed rows. ACT's defaults
# (ResNet-18 backbone, 4+1 layers of 512) would take far longer than the demo's budget on a CPU; this is a small
# ACT with a ResNet-18 backbone trained from scratch (no pretrained weights are downloaded).
POLICY_FLAGS = {
    "flow_chunk": [],
    "act": ["--policy.dim_model=128", "--policy.dim_feedforward=512", "--policy.n_encoder_layers=2",
            "--policy.n_heads=4", "--policy.pretrained_backbone_weights=null", "--policy.use_vae=false",
            "--policy.optimizer_lr=3e-4", "--policy.optimizer_lr_backbone=3e-4"],
}


@dataclass(frozen=True)
class TrainedPolicy:
    checkpoint: Path  # .../checkpoints/last/pretrained_model
    curves_png: Path | None
    command: list[str]
    seconds: float


def train_command(config: DemoConfig, dataset_root: Path) -> list[str]:
    """The `lerobot-train` command line of the demo (LeRobot's flags)."""
    interface = dataset_root / "meta" / "robot_interface.yaml"
    command = [
        "lerobot-train", f"--dataset.root={dataset_root}", f"--policy.type={config.policy_type}",
        "--policy.push_to_hub=false", "--policy.device=cpu", f"--policy.chunk_size={config.chunk_size}",
        f"--policy.n_action_steps={config.n_action_steps}", *POLICY_FLAGS[config.policy_type],
        f"--steps={config.steps}", f"--batch_size={config.batch_size}", f"--num_workers={config.num_workers}",
        f"--seed={config.seed}", f"--save_freq={config.steps}", f"--log_freq={max(1, min(100, config.steps // 10))}",
        f"--output_dir={config.train_dir}",
    ]
    if interface.is_file():
        command.append(f"--robot_interface={interface}")
    return command


def train_policy(config: DemoConfig, dataset_root: Path) -> TrainedPolicy:
    started = time.monotonic()
    train_dir = config.train_dir.resolve()
    if train_dir.exists():
        print(f"  removing the previous training run at {train_dir}", flush=True)
        shutil.rmtree(train_dir)
    command = train_command(config, dataset_root.resolve())
    print(f"  $ {shlex.join(command)}", flush=True)
    # Leave a core to the rest of the machine's work only when there are many; torch uses all cores by default.
    env = dict(os.environ)
    code = subprocess.call(command, env=env, stdout=sys.stdout, stderr=sys.stderr)
    if code != 0:
        raise DemoStageError(f"lerobot-train failed (exit code {code}); its output is above")
    checkpoint = config.checkpoint.resolve()
    if not (checkpoint / "config.json").is_file():
        raise DemoStageError(f"lerobot-train ended but wrote no checkpoint at {checkpoint}")
    curves = train_dir / CURVES_PNG
    return TrainedPolicy(checkpoint, curves if curves.is_file() else None, command, time.monotonic() - started)
