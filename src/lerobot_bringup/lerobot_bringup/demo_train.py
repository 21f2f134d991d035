"""Stage 2 of the demo: train a policy on the recorded dataset with `lerobot-train`, on the CPU.

Runs `lerobot-train` with LeRobot's flags (the command is printed, so a user can run it by hand), data-parallel
on `train_processes` processes (`torchrun --nproc_per_node N -m lerobot_train.train`, the same trainer) with one
torch thread each, its progress bar passing through. The checkpoint carries the recording's robot interface
(`--robot_interface`: the dataset's meta/robot_interface.yaml), so the policy node can check it against the
robot it is deployed on.
"""
from __future__ import annotations

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

# Per policy type: the policy flags the demo sets beyond chunk size and the executed rows.
# flow_chunk: the 128x96 picture is resized to 64x48 inside the model with a lighter convolution stack (a fourth of
# the compute of the defaults; the cube is still a few pixels wide), and flow times drawn near t = 1 (pure noise):
# Beta(6, 1) instead of pi0's Beta(1.5, 1). Only near t = 1 does the velocity target depend on where the cube is
# without being masked by the noise, and with pi0's choice the policy ignored the camera for thousands of steps
# (measured on the demo's data and on a synthetic "turn towards the cube" task, where Beta(6, 1) learned it in
# ~1000 steps and Beta(1.5, 1) had not after 2500).
# act: ACT's defaults (ResNet-18 backbone, 4+1 layers of 512) would take far longer than the demo's budget on a CPU;
# this is a small ACT with a ResNet-18 backbone trained from scratch (no pretrained weights are downloaded).
POLICY_FLAGS = {
    "flow_chunk": ["--policy.image_resize_shape=[48,64]", "--policy.vision_channels=[16,32,32]",
                   "--policy.time_sampling_beta_alpha=6.0"],
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
    """The `lerobot-train` command line of the demo (LeRobot's flags; torchrun for several processes)."""
    interface = dataset_root / "meta" / "robot_interface.yaml"
    trainer = (["lerobot-train"] if config.train_processes == 1 else
               ["torchrun", "--standalone", f"--nproc_per_node={config.train_processes}", "-m", "lerobot_train.train"])
    command = [
        *trainer, f"--dataset.root={dataset_root}", f"--policy.type={config.policy_type}",
        "--policy.push_to_hub=false", "--policy.device=cpu", f"--policy.chunk_size={config.chunk_size}",
        f"--policy.n_action_steps={config.n_action_steps}", *POLICY_FLAGS[config.policy_type],
        f"--steps={config.steps}", f"--batch_size={config.batch_size // config.train_processes}",
        f"--num_workers={config.num_workers}",
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
    code = subprocess.call(command, stdout=sys.stdout, stderr=sys.stderr)
    if code != 0:
        raise DemoStageError(f"lerobot-train failed (exit code {code}); its output is above")
    checkpoint = config.checkpoint.resolve()
    if not (checkpoint / "config.json").is_file():
        raise DemoStageError(f"lerobot-train ended but wrote no checkpoint at {checkpoint}")
    curves = train_dir / CURVES_PNG
    return TrainedPolicy(checkpoint, curves if curves.is_file() else None, command, time.monotonic() - started)
