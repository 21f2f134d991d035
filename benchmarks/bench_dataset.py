#!/usr/bin/env python3
"""Dataset benchmark: OUR writer/reader vs UPSTREAM lerobot 0.4.4's, measured in the same run. Prints figures.

    python benchmarks/bench_dataset.py [--seconds 60] [--read-samples 200] [--skip-upstream] [--keep DIR]

Workload: one episode of `--seconds` at 30 fps, 3 cameras 640x480 (video, AV1 by each side's default encoder
settings), 6-dof observation.state and action. Frames are synthetic: a textured scene seen through a moving
window plus per-frame noise, precomputed into a bank (`BANK_FRAMES` per camera) and cycled, so generating them
costs nothing during the measurement.

Each writer runs in its own subprocess (this file with `--worker ...`; upstream's under .venv-oracle/bin/python)
twice:
- throughput: frames are fed as fast as `add_frame` accepts them, then `save_episode` (+ `finalize` upstream);
  frames/s and real-time factor count everything from the first add_frame until the files are durable;
- real time: frames are fed on a 30 fps clock; reports frames that were late (add_frame returned after the next
  frame was due), frames missing from the saved dataset (dropped), and save_episode -> durable time
  (returned + every file of the dataset fsynced; upstream also needs `finalize()` to write the parquet footer).
CPU is user+system time of the worker's process tree during the writing phase (getrusage self + reaped children);
peak memory is the maximum RSS of the worker's process tree (psutil, sampled every 50 ms by this parent).
Reads: random-access `ds[i]` (all cameras decoded, float32 CHW) of our reader vs upstream LeRobotDataset
(video_backend="pyav") on the same datasets.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

WS = Path(__file__).resolve().parents[1]
ORACLE_PYTHON = WS / ".venv-oracle" / "bin" / "python"
FPS = 30
HEIGHT, WIDTH = 480, 640
CAMERAS = ["observation.images.front", "observation.images.wrist", "observation.images.top"]
MOTORS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
BANK_FRAMES = 30
TASK = "pick the cube and place it in the bin"
RESULT_PREFIX = "BENCH_RESULT "


# ============================================================================================ workload (numpy only)
def make_bank(camera: int, frames: int = BANK_FRAMES, seed: int = 0) -> list[np.ndarray]:
    """Frames of one camera: a window moving over a textured scene, plus fresh noise in every frame."""
    rng = np.random.default_rng(seed + camera)
    th, tw = HEIGHT + 64, WIDTH + 4 * frames + 64
    y, x = np.mgrid[0:th, 0:tw].astype(np.float32)
    scene = np.empty((th, tw, 3), dtype=np.float32)
    scene[..., 0] = 90 + 60 * np.sin(x / (17 + 3 * camera)) * np.cos(y / 23)
    scene[..., 1] = 110 + 50 * np.sin((x + y) / (31 + camera))
    scene[..., 2] = 100 + 70 * np.cos(x / 41 - y / (13 + camera))
    blobs = rng.integers(0, [th - 40, tw - 40], size=(60, 2))
    for (by, bx), color in zip(blobs, rng.integers(0, 255, size=(60, 3))):
        scene[by : by + 24 + by % 16, bx : bx + 24 + bx % 20] = color
    scene += rng.normal(0, 6, size=scene.shape).astype(np.float32)  # fine texture
    bank = []
    for k in range(frames):
        win = scene[16 + (k % 8) : 16 + (k % 8) + HEIGHT, 4 * k : 4 * k + WIDTH]
        noise = rng.integers(-4, 5, size=win.shape, dtype=np.int16)
        bank.append(np.clip(win + noise, 0, 255).astype(np.uint8))
    return bank


def joints(k: int) -> tuple[np.ndarray, np.ndarray]:
    t = k / FPS
    phase = np.arange(6)
    state = (30 * np.sin(0.7 * t + phase)).astype(np.float32)
    return state, (state + 1.5 * np.cos(2.1 * t + phase)).astype(np.float32)


def features() -> dict[str, Any]:
    names = [f"{m}.pos" for m in MOTORS]
    feats: dict[str, Any] = {
        "observation.state": {"dtype": "float32", "shape": (6,), "names": names},
        "action": {"dtype": "float32", "shape": (6,), "names": names},
    }
    for cam in CAMERAS:
        feats[cam] = {"dtype": "video", "shape": (HEIGHT, WIDTH, 3), "names": ["height", "width", "channels"]}
    return feats


def _cpu_s() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _fsync_tree(root: Path) -> None:
    for p in sorted(root.rglob("*")):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for d in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _count_video_frames(root: Path) -> dict[str, int]:
    import av

    out = {}
    for cam in CAMERAS:
        n = 0
        for f in sorted((root / "videos" / cam).rglob("*.mp4")):
            with av.open(str(f)) as c:
                n += sum(1 for p in c.demux(c.streams.video[0]) if p.size)
        out[cam] = n
    return out


def run_episode(
    add_frame: Callable[[dict[str, Any], int], None],
    save: Callable[[], None],
    finalize: Callable[[], None],
    root: Path,
    n_frames: int,
    realtime: bool,
) -> dict[str, Any]:
    """Feed one episode (as fast as possible or on the fps clock), save it, make it durable; time every phase."""
    banks = [make_bank(c) for c in range(len(CAMERAS))]
    late = 0
    max_lag = 0.0
    cpu0, t0 = _cpu_s(), time.perf_counter()
    for k in range(n_frames):
        if realtime:
            due = t0 + k / FPS
            now = time.perf_counter()
            if now < due:
                time.sleep(due - now)
            else:
                lag = now - due
                max_lag = max(max_lag, lag)
                if lag > 1.0 / FPS:
                    late += 1
        state, action = joints(k)
        frame = {"observation.state": state, "action": action}
        for c, cam in enumerate(CAMERAS):
            frame[cam] = banks[c][k % BANK_FRAMES]
        add_frame(frame, k)
    t_added = time.perf_counter()
    save()
    t_saved = time.perf_counter()
    finalize()
    _fsync_tree(root)
    t_durable = time.perf_counter()
    cpu = _cpu_s() - cpu0
    frames_on_disk = _count_video_frames(root)
    info = json.loads((root / "meta" / "info.json").read_text())
    total = t_durable - t0
    return {
        "frames": n_frames,
        "add_phase_s": t_added - t0,
        "save_call_s": t_saved - t_added,
        "save_to_durable_s": t_durable - t_added,
        "total_s": total,
        "frames_per_s": n_frames / total,
        "realtime_factor": (n_frames / FPS) / total,
        "cpu_s": cpu,
        "cpu_cores_avg": cpu / total,
        "late_frames": late,
        "max_lag_s": max_lag,
        "rows_saved": int(info["total_frames"]),
        "video_frames_saved": frames_on_disk,
        "dropped_frames": n_frames - min([int(info["total_frames"]), *frames_on_disk.values()]),
        "bytes": sum(p.stat().st_size for p in root.rglob("*") if p.is_file()),
    }


# ============================================================================================ workers
def worker_ours(root: Path, n_frames: int, realtime: bool) -> dict[str, Any]:
    sys.path.insert(0, str(WS / "src" / "lerobot_dataset"))
    from lerobot_dataset.writer import LeRobotDatasetWriter

    writer = LeRobotDatasetWriter.create(root, fps=FPS, features=features(), robot_type="so101")
    summary: dict[str, Any] = {}

    def save() -> None:
        s = writer.save_episode()
        summary["stalls"] = s.encoder_stalls

    res = run_episode(lambda f, k: writer.add_frame(f, task=TASK), save, writer.close, root, n_frames, realtime)
    res["encoder_stalls"] = summary.get("stalls")
    return res


def worker_upstream(root: Path, n_frames: int, realtime: bool, streaming: bool) -> dict[str, Any]:
    sys.path.insert(0, str(WS / "tests" / "oracle"))
    import oracle_shims  # noqa: F401  (before lerobot)
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    # lerobot-record's defaults: 4 image-writer threads per camera, PNG staging, encode at save_episode.
    ds = LeRobotDataset.create(
        "bench/upstream", fps=FPS, features=features(), root=root, robot_type="so101", use_videos=True,
        image_writer_threads=4 * len(CAMERAS), image_writer_processes=0, streaming_encoding=streaming,
    )

    def add(frame: dict[str, Any], k: int) -> None:
        frame = dict(frame, task=TASK)
        ds.add_frame(frame)

    return run_episode(add, ds.save_episode, ds.finalize, root, n_frames, realtime)


def worker_read(kind: str, root: Path, samples: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    if kind == "ours":
        sys.path.insert(0, str(WS / "src" / "lerobot_dataset"))
        from lerobot_dataset.reader import LeRobotDatasetReader

        ds: Any = LeRobotDatasetReader(root)
    else:
        sys.path.insert(0, str(WS / "tests" / "oracle"))
        import oracle_shims  # noqa: F401
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        ds = LeRobotDataset("bench/read", root=root, video_backend="pyav")
    n = len(ds)
    for i in rng.integers(0, n, size=5):  # warm-up: open files, build decoders
        ds[int(i)]
    idx = rng.integers(0, n, size=samples)
    cpu0, t0 = _cpu_s(), time.perf_counter()
    checksum = 0.0
    for i in idx:
        item = ds[int(i)]
        checksum += float(np.asarray(item[CAMERAS[0]])[0, 0, 0])
    dt = time.perf_counter() - t0
    return {"samples": samples, "seconds": dt, "items_per_s": samples / dt, "cpu_s": _cpu_s() - cpu0,
            "checksum": checksum}


# ============================================================================================ orchestration
class TreeSampler:
    """Peak RSS of a process and its descendants, sampled in a thread."""

    def __init__(self, pid: int, period: float = 0.05):
        import psutil

        self._proc = psutil.Process(pid)
        self.peak_rss = 0
        self._stop = threading.Event()
        self._period = period
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self._proc, *self._proc.children(recursive=True)]
                rss = 0
                for p in procs:
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak_rss = max(self.peak_rss, rss)
            except psutil.Error:
                return
            self._stop.wait(self._period)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_worker(python: Path, args: list[str], label: str) -> dict[str, Any]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TQDM_DISABLE="1", SVT_LOG="1", PYTHONUNBUFFERED="1")
    if python != Path(sys.executable):
        for var in ("PYTHONPATH", "VIRTUAL_ENV", "AMENT_PREFIX_PATH"):
            env.pop(var, None)
    cmd = [str(python), str(Path(__file__).resolve()), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    sampler = TreeSampler(proc.pid)
    out, err = proc.communicate()
    sampler.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"{label} worker failed ({proc.returncode}):\n{out[-3000:]}\n{err[-5000:]}")
    line = [ln for ln in out.splitlines() if ln.startswith(RESULT_PREFIX)][-1]
    res = json.loads(line[len(RESULT_PREFIX):])
    res["peak_rss_mb"] = sampler.peak_rss / 2**20
    return res


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def print_write_table(results: dict[str, dict[str, Any]]) -> None:
    rows = [
        ("frames/s (add..durable)", "frames_per_s", "{:.1f}"),
        ("real-time factor", "realtime_factor", "{:.2f}"),
        ("add_frame phase s", "add_phase_s", "{:.2f}"),
        ("save_episode call s", "save_call_s", "{:.2f}"),
        ("save_episode -> durable s", "save_to_durable_s", "{:.2f}"),
        ("CPU s (process tree)", "cpu_s", "{:.1f}"),
        ("CPU cores avg", "cpu_cores_avg", "{:.2f}"),
        ("peak RSS MB (tree)", "peak_rss_mb", "{:.0f}"),
        ("late frames", "late_frames", "{}"),
        ("max lag s", "max_lag_s", "{:.3f}"),
        ("dropped frames", "dropped_frames", "{}"),
        ("encoder stalls", "encoder_stalls", "{}"),
        ("dataset MB", "bytes", "{}"),
    ]
    names = list(results)
    print(f"{'':28}" + "".join(f"{n:>31}" for n in names))
    for label, key, fmt in rows:
        cells = []
        for n in names:
            v = results[n].get(key)
            if key == "bytes" and v is not None:
                v = f"{v / 2**20:.1f}"
                cells.append(f"{v:>31}")
            else:
                cells.append(f"{(fmt.format(v) if v is not None else '-'):>31}")
        print(f"{label:28}" + "".join(cells))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0, help="episode length in seconds (default 60)")
    p.add_argument("--read-samples", type=int, default=200)
    p.add_argument("--skip-upstream", action="store_true")
    p.add_argument("--upstream-streaming", action="store_true",
                   help="also run upstream with streaming_encoding=True (drops frames when its queue is full)")
    p.add_argument("--skip-realtime", action="store_true")
    p.add_argument("--keep", type=Path, default=None, help="keep the datasets in this folder")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--root", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--realtime", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--frames", type=int, default=None, help=argparse.SUPPRESS)
    a = p.parse_args()

    if a.worker:
        if a.worker == "ours":
            res = worker_ours(a.root, a.frames, a.realtime)
        elif a.worker in ("upstream", "upstream-streaming"):
            res = worker_upstream(a.root, a.frames, a.realtime, a.worker == "upstream-streaming")
        else:
            res = worker_read(a.worker.removeprefix("read-"), a.root, a.read_samples, seed=7)
        print(RESULT_PREFIX + json.dumps(res), flush=True)
        return

    n_frames = int(round(a.seconds * FPS))
    work = Path(tempfile.mkdtemp(prefix="bench_dataset_")) if a.keep is None else a.keep
    work.mkdir(parents=True, exist_ok=True)
    have_upstream = ORACLE_PYTHON.exists() and not a.skip_upstream
    if not ORACLE_PYTHON.exists() and not a.skip_upstream:
        print(f"note: {ORACLE_PYTHON} missing (run scripts/setup_oracle.sh); upstream comparison skipped")
    print(f"bench_dataset: {a.seconds:g} s episode = {n_frames} frames x {len(CAMERAS)} cameras "
          f"{WIDTH}x{HEIGHT} @ {FPS} fps + 6-dof state/action; cpu count {os.cpu_count()}; work dir {work}")
    writers = [("ours", Path(sys.executable), "ours")]
    if have_upstream:
        writers.append(("upstream", ORACLE_PYTHON, "upstream"))
        if a.upstream_streaming:
            writers.append(("upstream-streaming", ORACLE_PYTHON, "upstream-streaming"))
    modes = [("throughput", False)] + ([] if a.skip_realtime else [("realtime", True)])
    results: dict[str, dict[str, Any]] = {}
    try:
        for mode, realtime in modes:
            for name, python, worker in writers:
                root = work / f"{name}_{mode}"
                if root.exists():
                    shutil.rmtree(root)
                args = ["--worker", worker, "--root", str(root), "--frames", str(n_frames)]
                if realtime:
                    args.append("--realtime")
                print(f"  writing: {name} {mode} ...", flush=True)
                r = results[f"{name} {mode}"] = run_worker(python, args, f"{name} {mode}")
                print(f"    {r['frames_per_s']:.1f} frames/s, RTF {r['realtime_factor']:.2f}, "
                      f"save->durable {r['save_to_durable_s']:.2f} s, CPU {r['cpu_s']:.1f} s, "
                      f"peak RSS {r['peak_rss_mb']:.0f} MB, dropped {r['dropped_frames']}, late {r['late_frames']}",
                      flush=True)

        print("\n== write (one episode) ==")
        print_write_table(results)
        for ref in ("upstream", "upstream-streaming"):
            if f"{ref} throughput" not in results:
                continue
            ours, up = results["ours throughput"], results[f"{ref} throughput"]
            print(f"\nratios (ours / {ref}, throughput runs):")
            print(f"  writer throughput          {_ratio(ours['frames_per_s'], up['frames_per_s'])}   (target >= 1.5x)")
            print(f"  CPU seconds                {_ratio(ours['cpu_s'], up['cpu_s'])}")
            print(f"  peak RSS                   {_ratio(ours['peak_rss_mb'], up['peak_rss_mb'])}")
            print(f"  save_episode -> durable    {_ratio(ours['save_to_durable_s'], up['save_to_durable_s'])}")
        if "ours realtime" in results:
            rt = results["ours realtime"]
            print(f"\nours at real time: dropped {rt['dropped_frames']} (target 0), late {rt['late_frames']}, "
                  f"save_episode -> durable {rt['save_to_durable_s']:.2f} s (target < 1 s)")

        print("\n== random-access read: ds[i], all 3 cameras decoded ==")
        datasets = [("ours-written", work / "ours_throughput")]
        if have_upstream:
            datasets.append(("upstream-written", work / "upstream_throughput"))
        read: dict[tuple[str, str], dict[str, Any]] = {}
        for ds_name, root in datasets:
            readers = [("ours", Path(sys.executable))] + ([("upstream", ORACLE_PYTHON)] if have_upstream else [])
            for r_name, python in readers:
                res = run_worker(python, ["--worker", f"read-{r_name}", "--root", str(root),
                                          "--read-samples", str(a.read_samples)], f"read {r_name}")
                read[(ds_name, r_name)] = res
                print(f"  {ds_name:18} reader {r_name:9} {res['items_per_s']:7.1f} items/s "
                      f"({1000 / res['items_per_s']:.1f} ms/item, cpu {res['cpu_s']:.1f} s, "
                      f"peak RSS {res['peak_rss_mb']:.0f} MB)")
            if have_upstream:
                print(f"  {ds_name:18} read rate ratio ours/upstream "
                      f"{_ratio(read[(ds_name, 'ours')]['items_per_s'], read[(ds_name, 'upstream')]['items_per_s'])}"
                      f"   (target >= 1x)")
    finally:
        if a.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
