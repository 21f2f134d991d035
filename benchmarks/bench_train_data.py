#!/usr/bin/env python3
"""Training-data benchmark: OUR TrainingDataset + DataLoader vs UPSTREAM lerobot 0.4.4's LeRobotDataset +
DataLoader, measured in the same run on the same dataset and windows. Prints figures.

    python benchmarks/bench_train_data.py [--episodes 3] [--frames 150] [--samples 240] [--workers 0 2]
                                          [--batch-size 8] [--chunk 100] [--skip-upstream] [--keep DIR]

Workload (the issue's): one 640x480 AV1 camera + 6-dof state and action at 30 fps, written once by our writer;
an ACT-style window (`action` chunk of `--chunk` frames, current observation). Both sides draw frames in a
random order (ours: EpisodeAwareSampler(shuffle); upstream: DataLoader(shuffle=True), as 0.4.4 trains without
drop_n_last_frames) in batches of `--batch-size`, with `--workers` DataLoader worker processes (default start
method), and deliver float32 cameras in [0, 1] to the consumer (ours converts uint8 -> float in the consumer,
upstream in the worker). Samples/s count from after the first batch (worker start-up and file opening
excluded) to the last; each configuration runs in its own process (this file with `--worker ...`; upstream's
under .venv-oracle/bin/python), alternating ours/upstream, so both see the same machine load.

Sampler: construction time and peak Python allocation (tracemalloc) at 10 k and 10 M frames (episodes of 500
frames), for our EpisodeAwareSampler and upstream 0.4.4's (which materialises a list of every index), plus our
per-epoch permutation (torch.randperm(N): 8 bytes per frame while an epoch is iterated, as upstream v0.6).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

WS = Path(__file__).resolve().parents[1]
ORACLE_PYTHON = WS / ".venv-oracle" / "bin" / "python"
FPS = 30
HEIGHT, WIDTH = 480, 640
CAMERA = "observation.images.front"
MOTORS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
TASK = "pick the cube and place it in the bin"
RESULT_PREFIX = "BENCH_RESULT "
# (frames, frames per episode): memory should follow the number of episodes, not of frames.
SAMPLER_CASES = ((10_000, 500), (10_000_000, 500), (10_000_000, 5_000))


# ============================================================================================ dataset (our writer)
def camera_frames(n: int, seed: int = 0) -> list[np.ndarray]:
    """A window moving over a textured scene, plus per-frame noise (so the encoder has real work)."""
    rng = np.random.default_rng(seed)
    th, tw = HEIGHT + 64, WIDTH + 4 * n + 64
    y, x = np.mgrid[0:th, 0:tw].astype(np.float32)
    scene = np.empty((th, tw, 3), dtype=np.float32)
    scene[..., 0] = 90 + 60 * np.sin(x / 17) * np.cos(y / 23)
    scene[..., 1] = 110 + 50 * np.sin((x + y) / 31)
    scene[..., 2] = 100 + 70 * np.cos(x / 41 - y / 13)
    for (by, bx), color in zip(rng.integers(0, [th - 40, tw - 40], size=(60, 2)), rng.integers(0, 255, size=(60, 3))):
        scene[by : by + 24 + by % 16, bx : bx + 24 + bx % 20] = color
    frames = []
    for k in range(n):
        win = scene[16 + (k % 8) : 16 + (k % 8) + HEIGHT, 4 * k : 4 * k + WIDTH]
        frames.append(np.clip(win + rng.integers(-4, 5, size=win.shape), 0, 255).astype(np.uint8))
    return frames


def write_dataset(root: Path, episodes: int, frames: int) -> None:
    from lerobot_dataset.writer import LeRobotDatasetWriter

    names = [f"{m}.pos" for m in MOTORS]
    features = {
        "observation.state": {"dtype": "float32", "shape": (6,), "names": names},
        "action": {"dtype": "float32", "shape": (6,), "names": names},
        CAMERA: {"dtype": "video", "shape": (HEIGHT, WIDTH, 3), "names": ["height", "width", "channels"]},
    }
    writer = LeRobotDatasetWriter.create(root, fps=FPS, features=features, robot_type="so101_follower", fsync=False)
    bank = camera_frames(frames)
    try:
        for ep in range(episodes):
            for k in range(frames):
                t = k / FPS
                state = (30 * np.sin(0.7 * t + np.arange(6) + ep)).astype(np.float32)
                action = (state + 1.5 * np.cos(2.1 * t + np.arange(6))).astype(np.float32)
                writer.add_frame({"observation.state": state, "action": action, CAMERA: bank[k]}, task=TASK)
            writer.save_episode()
    finally:
        writer.close()


# ============================================================================================ workers
def _delta_timestamps(chunk: int) -> dict[str, list[float]]:
    return {"action": [i / FPS for i in range(chunk)]}


def _measure(loader: Any, samples: int, to_float: Any) -> dict[str, Any]:
    it = iter(loader)
    first = to_float(next(it))  # worker start-up, file opening: not counted
    got, checksum = 0, float(first[CAMERA][0, 0, 0, 0])
    t0 = time.perf_counter()
    while got < samples:
        try:
            batch = to_float(next(it))
        except StopIteration:
            it = iter(loader)
            continue
        got += int(batch["action"].shape[0])
        checksum += float(batch[CAMERA][0, 0, 0, 0])
    dt = time.perf_counter() - t0
    return {"samples": got, "seconds": dt, "samples_per_s": got / dt, "checksum": checksum}


def worker_ours(root: Path, workers: int, samples: int, batch_size: int, chunk: int) -> dict[str, Any]:
    import torch

    from lerobot_train.data.dataset import TrainingDataset, cameras_to_float
    from lerobot_train.data.sampler import EpisodeAwareSampler

    ds = TrainingDataset(root, delta_timestamps=_delta_timestamps(chunk))
    sampler = EpisodeAwareSampler(ds.meta.dataset_from_index, ds.meta.dataset_to_index, shuffle=True, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=workers)
    return _measure(loader, samples, lambda b: cameras_to_float(b, [CAMERA]))


def worker_upstream(root: Path, workers: int, samples: int, batch_size: int, chunk: int) -> dict[str, Any]:
    sys.path.insert(0, str(WS / "tests" / "oracle"))
    import oracle_shims  # noqa: F401  (before lerobot)
    import torch
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    ds = LeRobotDataset("bench/train", root=root, delta_timestamps=_delta_timestamps(chunk), video_backend="pyav")
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         generator=torch.Generator().manual_seed(0))
    return _measure(loader, samples, lambda b: b)


def _time_and_peak(build: Any) -> tuple[float, int]:
    """Seconds to build (untraced: tracemalloc slows allocation-heavy code many times) and the peak of Python
    allocations while building (traced, a second build)."""
    t0 = time.perf_counter()
    obj = build()
    dt = time.perf_counter() - t0
    del obj
    tracemalloc.start()
    obj = build()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del obj
    return dt, peak


def worker_sampler(kind: str) -> dict[str, Any]:
    out = {}
    for n, ep_len in SAMPLER_CASES:
        starts = np.arange(0, n, ep_len, dtype=np.int64)
        ends = np.minimum(starts + ep_len, n)
        if kind == "ours":
            from lerobot_train.data.sampler import EpisodeAwareSampler

            dt, peak = _time_and_peak(lambda: EpisodeAwareSampler(starts, ends, shuffle=True, seed=0))
            s = EpisodeAwareSampler(starts, ends, shuffle=True, seed=0)
            t0 = time.perf_counter()
            s.epoch_order(0)
            res = {"build_s": dt, "build_peak_bytes": peak, "epoch_order_s": time.perf_counter() - t0,
                   "epoch_order_bytes": 8 * n}
        else:
            sys.path.insert(0, str(WS / "tests" / "oracle"))
            import oracle_shims  # noqa: F401
            from lerobot.datasets.sampler import EpisodeAwareSampler as Upstream

            dt, peak = _time_and_peak(lambda: Upstream(starts.tolist(), ends.tolist(), shuffle=True))
            res = {"build_s": dt, "build_peak_bytes": peak}
        out[f"{n}/{ep_len}"] = res
    return out


# ============================================================================================ orchestration
def run_worker(python: Path, args: list[str], label: str) -> dict[str, Any]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TQDM_DISABLE="1", SVT_LOG="1", PYTHONUNBUFFERED="1")
    if python != Path(sys.executable):
        for var in ("PYTHONPATH", "VIRTUAL_ENV", "AMENT_PREFIX_PATH"):
            env.pop(var, None)
    proc = subprocess.run([str(python), str(Path(__file__).resolve()), *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{label} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)][-1]
    return json.loads(line[len(RESULT_PREFIX):])


def _mb(n: float) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--frames", type=int, default=150, help="frames per episode")
    p.add_argument("--samples", type=int, default=240, help="samples measured per configuration")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--chunk", type=int, default=100, help="action chunk length (frames)")
    p.add_argument("--skip-upstream", action="store_true")
    p.add_argument("--keep", type=Path, default=None, help="write the dataset here and keep it")
    p.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args()

    if a.worker:
        kind = a.worker[0]
        if kind == "sampler":
            res = worker_sampler(a.worker[1])
        else:
            fn = worker_ours if kind == "ours" else worker_upstream
            res = fn(Path(a.worker[1]), int(a.worker[2]), a.samples, a.batch_size, a.chunk)
        print(RESULT_PREFIX + json.dumps(res), flush=True)
        return

    os.environ.setdefault("SVT_LOG", "1")  # quiet libsvtav1 while writing the dataset
    upstream = not a.skip_upstream
    if upstream and not ORACLE_PYTHON.exists():
        print(f"note: {ORACLE_PYTHON} missing (run scripts/setup_oracle.sh); upstream comparison skipped")
        upstream = False
    tmp = Path(tempfile.mkdtemp(prefix="bench_train_data_"))
    root = a.keep or tmp / "dataset"
    try:
        t0 = time.perf_counter()
        if not (root / "meta" / "info.json").exists():
            write_dataset(root, a.episodes, a.frames)
        print(f"dataset: {a.episodes} episodes x {a.frames} frames, 1 camera {WIDTH}x{HEIGHT} AV1 + state/action "
              f"(written in {time.perf_counter() - t0:.1f} s); window: action chunk {a.chunk}; batch {a.batch_size}; "
              f"{a.samples} samples per run; CPUs: {os.cpu_count()}")
        print(f"\n{'workers':>7} | {'ours samples/s':>14} | {'upstream samples/s':>18} | {'ours/upstream':>13}")
        for w in a.workers:
            common = ["--samples", str(a.samples), "--batch-size", str(a.batch_size), "--chunk", str(a.chunk)]
            ours = run_worker(Path(sys.executable), ["--worker", "ours", str(root), str(w), *common], f"ours w={w}")
            theirs = (run_worker(ORACLE_PYTHON, ["--worker", "upstream", str(root), str(w), *common], f"upstream w={w}")
                      if upstream else None)
            up = f"{theirs['samples_per_s']:18.1f}" if theirs else f"{'-':>18}"
            ratio = f"{ours['samples_per_s'] / theirs['samples_per_s']:12.2f}x" if theirs else f"{'-':>13}"
            print(f"{w:>7} | {ours['samples_per_s']:14.1f} | {up} | {ratio}")

        print("\nsampler construction: time, peak Python allocation (and ours' per-epoch permutation)")
        ours_s = run_worker(Path(sys.executable), ["--worker", "sampler", "ours"], "sampler ours")
        theirs_s = run_worker(ORACLE_PYTHON, ["--worker", "sampler", "upstream"], "sampler upstream") if upstream else None
        for n, ep_len in SAMPLER_CASES:
            o = ours_s[f"{n}/{ep_len}"]
            line = (f"  {n:>10,} frames, episodes of {ep_len:>5}: ours {o['build_s'] * 1e3:7.2f} ms "
                    f"{_mb(o['build_peak_bytes']):>10} (permutation {o['epoch_order_s'] * 1e3:5.0f} ms, "
                    f"{_mb(o['epoch_order_bytes'])})")
            if theirs_s:
                t = theirs_s[f"{n}/{ep_len}"]
                line += f" | upstream 0.4.4 {t['build_s'] * 1e3:8.1f} ms {_mb(t['build_peak_bytes']):>10}"
            print(line)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
