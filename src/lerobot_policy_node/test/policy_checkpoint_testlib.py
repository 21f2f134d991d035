"""A real flow_chunk checkpoint for the policy node's graph tests (and the benchmark's quick mode).

`sim_interface` writes the built-in simulated SO-101 interface with a small camera; `write_reaching_dataset`
writes a small LeRobotDataset v3.0 with that interface's features (lerobot_dataset's writer): the follower moves
from a start pose towards a target pose with a minimum-jerk profile, the action (the leader) leading the state by
a few frames, the camera a fixed grey picture; `train_checkpoint` trains the flow_chunk policy on it for a few
steps with lerobot_train's own training loop (`run_training`), so the checkpoint has everything a real one has:
config.json, weights, processors, train_config.json (naming the dataset) and robot_interface.json (carrying
the interface).
"""
from __future__ import annotations

import atexit
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

WS = Path(__file__).resolve().parents[3]
CAMERA_WIDTH, CAMERA_HEIGHT = 64, 48
# The simulated follower's start pose in LeRobot units (servo simulator defaults, identity calibration; measured).
SIM_START = (0.04, -65.71, 74.95, 22.20, 0.04, 51.28)
REACH = (35.0, 20.0, -25.0, 10.0, 0.0, -30.0)  # how far each joint moves in a demonstration

TINY_FLOW_FLAGS = [
    "--policy.type=flow_chunk", "--policy.push_to_hub=false", "--policy.device=cpu", "--policy.chunk_size=16",
    "--policy.n_action_steps=8", "--policy.image_resize_shape=[24,32]", "--policy.vision_channels=[8,16]",
    "--policy.spatial_softmax_num_keypoints=8", "--policy.image_feature_dim=32", "--policy.state_feature_dim=32",
    "--policy.hidden_dim=64", "--policy.channel_hidden_dim=128", "--policy.token_hidden_dim=32",
    "--policy.num_layers=2", "--policy.num_steps=5", "--policy.scheduler_warmup_steps=10",
]


def sim_interface(folder: Path, width: int = CAMERA_WIDTH, height: int = CAMERA_HEIGHT, name: str = "sim_so101",
                  max_age_s: float | None = None) -> Path:
    """config/robots/sim_so101.yaml with a width x height camera (and, with max_age_s, that staleness limit for the
    state and the camera instead of 2 and 3 frame periods: graph tests run on busy machines)."""
    text = (WS / "config/robots/sim_so101.yaml").read_text()
    text = re.sub(r"height: \d+", f"height: {height}", re.sub(r"width: \d+", f"width: {width}", text))
    if max_age_s is not None:
        text = text.replace("    transforms: {default: rad2deg, gripper: {scale: 100}}\n  images:",
                            f"    transforms: {{default: rad2deg, gripper: {{scale: 100}}}}\n    max_age_s: {max_age_s}\n"
                            "  images:", 1)
        text = text.replace(f"      width: {width}\n", f"      width: {width}\n      max_age_s: {max_age_s}\n", 1)
    path = Path(folder) / f"{name}_{width}x{height}{'_lenient' if max_age_s else ''}.yaml"
    path.write_text(text)
    return path


def demonstration(start, reach, frames: int = 60, fps: int = 30, lead_frames: int = 3, duration_s: float = 1.5):
    """(state, action) arrays (frames, 6) of one minimum-jerk reach; the action leads the state by lead_frames."""
    t = np.arange(frames + lead_frames) / fps
    s = np.clip(t / duration_s, 0.0, 1.0)
    profile = 10 * s**3 - 15 * s**4 + 6 * s**5
    path = np.asarray(start)[None, :] + profile[:, None] * np.asarray(reach)[None, :]
    return path[:frames].astype(np.float32), path[lead_frames:].astype(np.float32)


def write_reaching_dataset(root: Path, interface_path: Path, episodes: int = 3, frames: int = 60,
                           start=SIM_START, reach=REACH) -> Path:
    from lerobot_dataset.writer import LeRobotDatasetWriter
    from lerobot_recorder.interface import load_interface
    from lerobot_recorder.recording_dataset import interface_features

    interface = load_interface(interface_path)
    writer = LeRobotDatasetWriter.create(root, fps=interface.fps, features=interface_features(interface, False),
                                         robot_type=interface.robot_type, use_videos=False, fsync=False)
    camera = next(iter(interface.images.values()))
    picture = np.full((camera.height, camera.width, 3), 120, np.uint8)
    rng = np.random.default_rng(0)
    try:
        for episode in range(episodes):
            scale = 1.0 + 0.1 * (episode - episodes // 2)
            state, action = demonstration(np.asarray(start) + rng.normal(0, 0.5, 6), np.asarray(reach) * scale, frames)
            for f in range(frames):
                writer.add_frame({"observation.state": state[f], "action": action[f], camera.key: picture},
                                 task=interface.task.text)
            writer.save_episode()
    finally:
        writer.close()
    return root


def train_checkpoint(dataset_root: Path, interface_path: Path, output_dir: Path, steps: int = 150) -> Path:
    """Train the tiny flow_chunk policy on the dataset with lerobot_train's loop; returns pretrained_model/."""
    from lerobot_train.train import run_training
    from lerobot_train.train_config import parse_train_args

    flags = [f"--dataset.root={dataset_root}", *TINY_FLOW_FLAGS, f"--steps={steps}", f"--save_freq={steps}",
             "--batch_size=16", "--num_workers=0", "--log_freq=50", f"--output_dir={output_dir}", "--seed=1",
             f"--robot_interface={interface_path}", "--policy.optimizer_lr=1e-3"]
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is much faster on a busy 2-core machine
    try:
        run_training(parse_train_args(flags))
    finally:
        torch.set_num_threads(threads)
    pretrained = next(Path(output_dir).glob("checkpoints/*/pretrained_model"))
    return pretrained


_cache: dict[str, tuple[Path, Path]] = {}


def cached_checkpoint() -> tuple[Path, Path]:
    """(interface file, pretrained_model/) trained once per test process and shared by the modules that need it
    (read-only); removed when the process exits."""
    if "checkpoint" not in _cache:
        folder = Path(tempfile.mkdtemp(prefix="policy-node-checkpoint-"))
        atexit.register(shutil.rmtree, folder, True)
        interface = sim_interface(folder)
        dataset = write_reaching_dataset(folder / "dataset", interface)
        _cache["checkpoint"] = (interface, train_checkpoint(dataset, interface, folder / "train"))
    return _cache["checkpoint"]
