"""Shared pieces of the training-loop tests: a tiny dataset, a tiny ACT on the command line, file comparisons."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from oracle import synthetic_episodes as syn

WS = Path(__file__).resolve().parents[3]
CAMERA = "observation.images.front"
CAMERA_HW = (32, 40)
EPISODE_LENGTHS = (11, 9, 13)  # 33 frames: batches of 4 do not divide an epoch, so epochs end mid-batch
TASK = "reach the cube"

# Every part of ACT (camera backbone, state, VAE with its noise, dropout) at a size that trains in well under a
# second per step on a busy 2-core machine.
TINY_ACT_FLAGS = [
    "--policy.type=act", "--policy.push_to_hub=false", "--policy.device=cpu",
    "--policy.pretrained_backbone_weights=null", "--policy.dim_model=16", "--policy.n_heads=2",
    "--policy.dim_feedforward=32", "--policy.n_encoder_layers=1", "--policy.n_decoder_layers=1",
    "--policy.n_vae_encoder_layers=1", "--policy.latent_dim=4", "--policy.chunk_size=4",
    "--policy.n_action_steps=4",
]

_session: dict[str, Path] = {}


def _session_dir() -> Path:
    if "dir" not in _session:
        _session["dir"] = Path(tempfile.mkdtemp(prefix="lerobot-train-tests-"))
        atexit.register(shutil.rmtree, _session["dir"], True)
    return _session["dir"]


def tiny_dataset() -> Path:
    """3 episodes, one 32x40 PNG camera, 6-dof state/action in degrees (written once per session; read-only)."""
    if "dataset" in _session:
        return _session["dataset"]
    from lerobot_dataset.writer import LeRobotDatasetWriter

    names = [f"{m}.pos" for m in syn.MOTORS]
    features = {
        "observation.state": {"dtype": "float32", "shape": (6,), "names": names},
        "action": {"dtype": "float32", "shape": (6,), "names": names},
        CAMERA: {"dtype": "image", "shape": (*CAMERA_HW, 3), "names": ["height", "width", "channels"]},
    }
    root = _session_dir() / "tiny_dataset"
    writer = LeRobotDatasetWriter.create(root, fps=syn.FPS, features=features, robot_type="so_follower", fsync=False)
    try:
        for ep, length in enumerate(EPISODE_LENGTHS):
            for f in range(length):
                state, action = syn.joint_values(ep, f)
                writer.add_frame({"observation.state": state, "action": action,
                                  CAMERA: syn.camera_frame(0, ep, f, CAMERA_HW)}, task=TASK)
            writer.save_episode()
    finally:
        writer.close()
    _session["dataset"] = root
    return root


def train_flags(output_dir: Path, *extra: str, steps: int = 6, save_freq: int = 3) -> list[str]:
    """The tiny run's flags; `extra` flags replace defaults of the same name."""
    flags = [f"--dataset.root={tiny_dataset()}", *TINY_ACT_FLAGS, f"--steps={steps}", f"--save_freq={save_freq}",
             "--batch_size=4", "--num_workers=0", "--log_freq=1", f"--output_dir={output_dir}", "--seed=7", *extra]
    merged: dict[str, str] = {}
    for flag in flags:
        merged[flag.split("=", 1)[0]] = flag
    return list(merged.values())


def run_train_in_process(argv: list[str]) -> Path | None:
    from lerobot_train.train import run_training
    from lerobot_train.train_config import parse_train_args

    return run_training(parse_train_args(argv))


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(TQDM_DISABLE="1", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    return env


def run_cli(args: list[str], timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=cli_env(),
                          cwd=str(WS), **kwargs)


def tensors(path: Path) -> dict[str, np.ndarray]:
    return load_file(str(path))


def assert_same_tensors(a: Path, b: Path) -> None:
    ta, tb = tensors(a), tensors(b)
    assert sorted(ta) == sorted(tb), f"{a} and {b} hold different tensor names"
    for name in ta:
        assert ta[name].dtype == tb[name].dtype and ta[name].shape == tb[name].shape, name
        assert np.array_equal(ta[name], tb[name]), f"{name} differs between {a} and {b}"
