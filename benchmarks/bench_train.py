#!/usr/bin/env python3
"""Training-loop benchmark: OUR `lerobot-train` vs UPSTREAM lerobot 0.4.4's `lerobot-train`, in the same run, on the
same dataset, ACT config, batch size and seed. Prints figures (steps/s, samples/s, data vs update time, ratios).

    python benchmarks/bench_train.py [--steps 12] [--warmup 4] [--batch-size 8] [--workers 0 2]
                                     [--image 96x128] [--policy small|default] [--device cpu|cuda]
                                     [--skip-upstream] [--keep DIR]

Workload: one AV1 camera (`--image`, H x W) + 6-dof state/action at 30 fps (8 episodes x 60 frames, written once
by our writer), ACT (`small`: dim_model 128, feed-forward 512, 2 encoder layers, chunk 20; `default`: upstream's
defaults, chunk 100) without pretrained backbone weights (no network here), AdamW preset, `--batch-size`,
`--workers` DataLoader processes. Both trainers run as their own CLI processes, one after the other, each for
`--warmup + --steps` steps with a log line per step; the figures are the mean over the last `--steps` steps of
the time each trainer reports per step: upstream's `data_s` (DataLoader wait + preprocessor) + `updt_s`
(forward, backward, clip, optimizer step) and ours' `dataloading_s` + `preprocessing_s` + `update_s` (the same
spans). `wall` is the whole command, start-up and checkpoint writing included.

CUDA (`--device cuda`): our trainer only (the oracle venv has a CPU torch), fp32 and `--use_amp` (bf16
autocast), printing samples/s and the share of each step spent waiting for data. Written, but NOT run here:
no GPU on the development machines.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WS = Path(__file__).resolve().parents[1]
ORACLE_PYTHON = WS / ".venv-oracle" / "bin" / "python"
FPS = 30
EPISODES, FRAMES = 8, 60
CAMERA = "observation.images.front"
MOTORS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
POLICIES = {
    "small": ["--policy.dim_model=128", "--policy.dim_feedforward=512", "--policy.n_encoder_layers=2",
              "--policy.n_heads=4", "--policy.chunk_size=20", "--policy.n_action_steps=20"],
    "default": [],
}
UPSTREAM_LINE = re.compile(r"step:(\S+) .*updt_s:([\d.]+) data_s:([\d.]+)")


def write_dataset(root: Path, height: int, width: int) -> Path:
    from lerobot_dataset.video import VideoEncoderConfig
    from lerobot_dataset.writer import LeRobotDatasetWriter

    names = [f"{m}.pos" for m in MOTORS]
    features = {
        "observation.state": {"dtype": "float32", "shape": (6,), "names": names},
        "action": {"dtype": "float32", "shape": (6,), "names": names},
        CAMERA: {"dtype": "video", "shape": (height, width, 3), "names": ["height", "width", "channels"]},
    }
    writer = LeRobotDatasetWriter.create(root, fps=FPS, features=features, robot_type="so_follower",
                                         video_encoder=VideoEncoderConfig(), fsync=False)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    try:
        for ep in range(EPISODES):
            for f in range(FRAMES):
                t = f / FPS
                state = (30 * np.sin(2 * np.pi * 0.3 * t + np.arange(6) + ep)).astype(np.float32)
                image = np.stack([(x * 2 + f * 3) % 256, (y * 2 + ep * 40) % 256,
                                  rng.integers(0, 40, (height, width))], axis=-1).astype(np.uint8)
                writer.add_frame({"observation.state": state, "action": state + 1.0, CAMERA: image},
                                 task="reach the cube")
            writer.save_episode()
    finally:
        writer.close()
    return root


@dataclass
class Result:
    name: str
    workers: int
    step_s: float
    data_s: float
    wall_s: float
    batch_size: int

    @property
    def samples_per_s(self) -> float:
        return self.batch_size / self.step_s

    @property
    def data_share(self) -> float:
        return self.data_s / self.step_s


def common_flags(dataset: Path, args: argparse.Namespace, workers: int, output_dir: Path) -> list[str]:
    return [f"--dataset.root={dataset}", "--dataset.repo_id=bench/reach", "--policy.type=act",
            "--policy.push_to_hub=false", "--policy.pretrained_backbone_weights=null", f"--policy.device={args.device}",
            *POLICIES[args.policy], f"--steps={args.warmup + args.steps}", f"--batch_size={args.batch_size}",
            f"--num_workers={workers}", "--log_freq=1", "--save_freq=1000000", "--seed=1000", f"--output_dir={output_dir}"]


def run(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(WS))
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc, wall


def run_ours(dataset: Path, args: argparse.Namespace, workers: int, tmp: Path, extra: list[str] = (),
             label: str = "ours") -> Result:
    out = tmp / f"ours_{workers}_{len(extra)}"
    env = {**os.environ, "TQDM_DISABLE": "1"}
    _, wall = run([sys.executable, "-m", "lerobot_train.train", *common_flags(dataset, args, workers, out), *extra], env)
    with open(out / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) > args.warmup]
    data = [float(r["dataloading_s"]) + float(r["preprocessing_s"]) for r in rows]
    step = [d + float(r["update_s"]) for d, r in zip(data, rows)]
    return Result(label, workers, statistics.mean(step), statistics.mean(data), wall, args.batch_size)


def run_upstream(dataset: Path, args: argparse.Namespace, workers: int, tmp: Path) -> Result:
    out = tmp / f"upstream_{workers}"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "AMENT_PREFIX_PATH")}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp / "hf"), TQDM_DISABLE="1")
    proc, wall = run([str(ORACLE_PYTHON), str(WS / "tests" / "oracle" / "upstream_train.py"), "train",
                      *common_flags(dataset, args, workers, out), "--dataset.video_backend=pyav"], env)
    steps = []
    for line in (proc.stdout + proc.stderr).splitlines():
        m = UPSTREAM_LINE.search(line)
        if m and int(float(m.group(1).rstrip("K"))) > args.warmup:
            steps.append((float(m.group(2)), float(m.group(3))))
    if len(steps) < args.steps:
        raise SystemExit(f"upstream logged {len(steps)} measured steps, expected {args.steps}")
    step_s = statistics.mean(update + data for update, data in steps)
    data_s = statistics.mean(data for _, data in steps)
    return Result("upstream 0.4.4", workers, step_s, data_s, wall, args.batch_size)


def print_table(results: list[Result]) -> None:
    print(f"\n{'trainer':<16}{'workers':>8}{'step ms':>10}{'steps/s':>9}{'samples/s':>11}{'data ms':>9}"
          f"{'data %':>8}{'wall s':>8}")
    for r in results:
        print(f"{r.name:<16}{r.workers:>8}{1000 * r.step_s:>10.1f}{1 / r.step_s:>9.2f}{r.samples_per_s:>11.1f}"
              f"{1000 * r.data_s:>9.1f}{100 * r.data_share:>7.1f}%{r.wall_s:>8.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=12, help="measured steps per run")
    p.add_argument("--warmup", type=int, default=4, help="steps run before measuring")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--image", default="96x128", help="camera H x W")
    p.add_argument("--policy", choices=sorted(POLICIES), default="small")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--skip-upstream", action="store_true")
    p.add_argument("--keep", type=Path, default=None, help="keep the dataset and runs in this folder")
    args = p.parse_args()
    try:
        height, width = (int(v) for v in args.image.lower().split("x"))
    except ValueError:
        p.error(f"--image must be HxW (e.g. 96x128), got {args.image!r}")
    if args.device == "cpu" and not args.skip_upstream and not ORACLE_PYTHON.exists():
        p.error(f"{ORACLE_PYTHON} is missing: run scripts/setup_oracle.sh or pass --skip-upstream")
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="bench-train-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        dataset = tmp / "dataset"
        if not (dataset / "meta" / "info.json").exists():
            write_dataset(dataset, height, width)
        print(f"dataset: {EPISODES} episodes x {FRAMES} frames, {height}x{width} AV1 camera; ACT {args.policy}; "
              f"batch {args.batch_size}; {args.warmup} warm-up + {args.steps} measured steps; device {args.device}; "
              f"{os.cpu_count()} CPUs")
        results: list[Result] = []
        if args.device == "cuda":
            for workers in args.workers:
                results.append(run_ours(dataset, args, workers, tmp, label="ours fp32"))
                results.append(run_ours(dataset, args, workers, tmp, ["--use_amp=true", "--amp_dtype=bfloat16"],
                                        label="ours bf16"))
            print_table(results)
            return
        for workers in args.workers:
            ours = run_ours(dataset, args, workers, tmp)
            results.append(ours)
            if not args.skip_upstream:
                upstream = run_upstream(dataset, args, workers, tmp)
                results.append(upstream)
        print_table(results)
        if not args.skip_upstream:
            print()
            for workers in args.workers:
                ours, up = (next(r for r in results if r.workers == workers and r.name.startswith(n))
                            for n in ("ours", "upstream"))
                print(f"workers={workers}: ours / upstream samples/s = {ours.samples_per_s / up.samples_per_s:.2f}x "
                      f"(target >= 1.0x); data share ours {100 * ours.data_share:.1f} % vs upstream "
                      f"{100 * up.data_share:.1f} % (target < 10 % with 2 workers)")
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
