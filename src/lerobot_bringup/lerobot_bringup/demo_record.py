"""Stage 1 of the demo: record demonstrations on the simulated SO-101 with the scripted operator.

Starts config/bringup/sim_so101_demo_record.yaml (servo-bus simulators for follower and leader, their arm drivers,
leader -> follower teleop, the simulated camera looking straight down, the scripted operator and the recorder,
with the demo's robot interface), sends one RecordEpisode goal per episode (the recorder's reset period runs
between them while the operator brings the arm home and the scene moves the cube to a random place), stops
everything (the recorder closes the dataset, the drivers switch torque off) and validates the dataset.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lerobot_bringup.demo_config import RECORD_INTERFACE, TASK, DemoConfig
from lerobot_bringup.demo_console import DemoConsole

RECORD_BRINGUP = "sim_so101_demo_record"


class DemoStageError(RuntimeError):
    """A stage of the demo failed; the message says which step and where the processes' output is."""


@dataclass(frozen=True)
class RecordedDataset:
    root: Path
    episodes: int
    frames: int
    fps: int
    seconds: float  # wall time of the stage


def bringup_watchdog(runner, log_path: Path):
    """`alive()` for DemoConsole: raises when a required process of the bringup has exited."""

    def alive() -> None:
        ended = runner.exited()
        if ended:
            raise DemoStageError(f"process {ended[0]} exited with code {ended[1]}; see {log_path}")

    return alive


def record_demonstrations(config: DemoConfig) -> RecordedDataset:
    from lerobot_bringup.cli import BringupRunner
    from lerobot_dataset.validate import validate_dataset

    started = time.monotonic()
    root = config.dataset_root.resolve()
    if root.exists():
        print(f"  removing the previous demo dataset at {root}", flush=True)
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    log_path = root.parent / "record_processes.log"
    sim_dir = tempfile.mkdtemp(prefix="lerobot_sim_")
    width, height = config.camera_size(RECORD_INTERFACE)
    overrides = {"sim_dir": sim_dir, "dataset_root": str(root), "reset_time_s": str(config.reset_time_s),
                 "interface": RECORD_INTERFACE, "camera_width": str(width), "camera_height": str(height),
                 "vcodec": config.vcodec}
    runner = BringupRunner(RECORD_BRINGUP, overrides, log_path=log_path)
    print(f"  starting {len(runner.bringup.processes)} processes of {runner.bringup.path.name} "
          f"(their output: {log_path})", flush=True)
    console = None
    results = []
    try:
        runner.start()
        console = DemoConsole(bringup_watchdog(runner, log_path), with_leader=True)
        print("  waiting for the simulated robot (arm drivers, camera, recorder) ...", flush=True)
        console.wait_for_robot(120.0, str(log_path))
        console.wait_for_recorder(120.0, str(log_path))
        for index in range(config.episodes):
            future = console.start_episode(TASK, config.episode_time_s)
            result = console.episode_result(future, config.episode_time_s + config.reset_time_s + 120.0)
            results.append(result)
            print(f"  episode {index + 1}/{config.episodes}: {result.frames} frames, "
                  f"{'saved' if result.saved else 'discarded'} ({result.reason})", flush=True)
    finally:
        if console is not None:
            console.close()
        print("  stopping the processes (the recorder closes the dataset, drivers switch torque off) ...", flush=True)
        runner.stop()
        shutil.rmtree(sim_dir, ignore_errors=True)

    if not (root / "meta" / "info.json").exists():
        raise DemoStageError(f"no episode was saved, so there is no dataset at {root}; see {log_path}")
    report = validate_dataset(root)
    info = json.loads((root / "meta" / "info.json").read_text())
    saved = sum(1 for r in results if r.saved)
    if not report.ok:
        raise DemoStageError(f"the recorded dataset {root} does not validate:\n{report.format()}")
    if saved != config.episodes or info["total_episodes"] != config.episodes:
        raise DemoStageError(f"{saved}/{config.episodes} episodes saved ({info['total_episodes']} in {root}); "
                             f"see {log_path}")
    return RecordedDataset(root, info["total_episodes"], info["total_frames"], info["fps"],
                           time.monotonic() - started)
