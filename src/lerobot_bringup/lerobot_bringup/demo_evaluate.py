"""Stages 3 and 4 of the demo: deploy the trained policy on the simulated SO-101 and evaluate it.

Starts config/bringup/sim_so101_policy_record.yaml (servo-bus simulator, arm driver, simulated camera, the policy
node serving the checkpoint, robot_view and the recorder; no leader, no scripted operator). Each evaluation
episode: the arm is brought home (a JointTrajectory to the scripted operator's home pose), the cube is put at the
episode's position, the policy node is reset (~/reset), the recorder starts an episode of the eval_ dataset and the
policy runs (a RunPolicy goal) until the scene reports the cube reached or the episode time is up; then the run is
canceled (the arm holds) and the episode saved. The scripted operator is measured live on the same cubes (its
reaching plan sent to the follower as a JointTrajectory, no recording); the do-nothing baseline in the scene
model (the arm stays at home, so only geometry decides).
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lerobot_bringup.demo_config import ROLLOUT_INTERFACE, TASK, DemoConfig
from lerobot_bringup.demo_console import DemoConsole
from lerobot_bringup.demo_record import DemoStageError, bringup_watchdog
from lerobot_bringup.evaluation import (
    LIVE, SCENE_MODEL, EpisodeOutcome, MethodSummary, do_nothing_outcomes, evaluation_targets, home_joints,
    home_path, sample_path, scripted_reach_path, summarize,
)
from lerobot_drivers.sim.kinematics import JOINT_NAMES

POLICY_BRINGUP = "sim_so101_policy_record"
TRAJECTORY_RATE_HZ = 30.0
HOME_TOLERANCE = 0.03  # rad (and gripper fraction): close enough to home to start an episode
HOME_ATTEMPTS = 3  # trajectories sent home before the stage fails (a late one is rejected)
HOLD_AFTER_REACH_S = 0.5  # keep recording a moment after the reach, so the dataset shows it


@dataclass(frozen=True)
class Evaluation:
    summaries: list[MethodSummary]
    outcomes: dict[str, list[EpisodeOutcome]]
    eval_dataset: Path
    eval_episodes_saved: int
    seconds: float


def go_home(console: DemoConsole, attempts: int = HOME_ATTEMPTS) -> None:
    """Send the follower to the home pose along the scripted operator's homing path and wait until it is there.

    The trajectory starts when it is sent; one that reaches the driver later than its `max_late_start_s` is
    rejected, never executed late (seen once: 0.7 s, while the evaluation's processes were still starting on two
    cores). The arm then has not moved, and a new trajectory from where it is is sent.
    """
    for _ in range(attempts):
        current = console.follower_joints(JOINT_NAMES)
        times, positions = sample_path(home_path(current), TRAJECTORY_RATE_HZ)
        console.send_trajectory(JOINT_NAMES, times, positions)
        if console.wait_until_at(JOINT_NAMES, home_joints(), HOME_TOLERANCE, times[-1] + 10.0):
            return
    error = np.abs(console.follower_joints(JOINT_NAMES) - home_joints())
    raise DemoStageError(f"the arm did not reach home after {attempts} trajectories "
                         f"(joint errors {np.round(error, 3).tolist()})")


def _outcome(method: str, index: int, target, reached, started_ns: int) -> EpisodeOutcome:
    seconds = None if reached.at_ns is None else max(0.0, (reached.at_ns - started_ns) / 1e9)
    joints = None
    if reached.joints is not None and all(name in reached.joints for name in JOINT_NAMES):
        joints = tuple(reached.joints[name] for name in JOINT_NAMES)
    return EpisodeOutcome(method, index, (float(target[0]), float(target[1])), reached.at_ns is not None, seconds,
                          joints)


def policy_episode(console: DemoConsole, index: int, target, episode_time_s: float) -> EpisodeOutcome:
    go_home(console)
    console.set_target(*target)
    console.reset_policy()
    recording = console.start_episode(TASK, 0.0)  # until stopped
    console.wait_recording()
    reached = console.watch_reached()
    run = console.start_policy(TASK, episode_time_s)
    started = console.now_ns()
    if console.spin_until(lambda: reached.at_ns is not None, episode_time_s):
        console.sleep(HOLD_AFTER_REACH_S)
    console.stop_watching_reached()
    run_result = console.stop_policy(run)
    console.stop_episode()
    episode = console.episode_result(recording, 120.0)
    outcome = _outcome("trained policy", index, target, reached, started)
    print(f"  policy episode {index + 1}: cube at ({target[0]:.3f}, {target[1]:.3f}) m: "
          f"{'reached in %.2f s' % outcome.time_to_reach_s if outcome.reached else 'not reached'}; "
          f"{run_result.chunks} chunks, inference p50 {1e3 * run_result.latency_p50:.0f} ms "
          f"p95 {1e3 * run_result.latency_p95:.0f} ms, {run_result.stale_observations} stale observations; "
          f"recorded as episode {episode.episode_index} ({episode.frames} frames, "
          f"{'saved' if episode.saved else 'NOT saved: ' + episode.reason})", flush=True)
    return outcome


def scripted_episode(console: DemoConsole, index: int, target, episode_time_s: float) -> EpisodeOutcome:
    go_home(console)
    console.set_target(*target)
    reached = console.watch_reached()
    times, positions = sample_path(scripted_reach_path(console.follower_joints(JOINT_NAMES), target),
                                   TRAJECTORY_RATE_HZ)
    console.send_trajectory(JOINT_NAMES, times, positions)
    started = console.now_ns()
    console.spin_until(lambda: reached.at_ns is not None, episode_time_s)
    console.stop_watching_reached()
    outcome = _outcome("scripted operator", index, target, reached, started)
    print(f"  scripted episode {index + 1}: "
          f"{'reached in %.2f s' % outcome.time_to_reach_s if outcome.reached else 'not reached'}", flush=True)
    return outcome


def evaluate(config: DemoConfig, checkpoint: Path, bringup_overrides: dict[str, str] | None = None) -> Evaluation:
    """Deploy `checkpoint` and run the evaluation episodes; `bringup_overrides` go to the bringup file last."""
    from lerobot_bringup.cli import BringupRunner
    from lerobot_bringup.robot_view import share_urdf
    from lerobot_dataset.validate import validate_dataset

    started = time.monotonic()
    eval_root = config.eval_dataset_root.resolve()
    if eval_root.exists():
        print(f"  removing the previous evaluation dataset at {eval_root}", flush=True)
        shutil.rmtree(eval_root)
    log_path = eval_root.parent / "eval_processes.log"
    sim_dir = tempfile.mkdtemp(prefix="lerobot_sim_")
    width, height = config.camera_size(ROLLOUT_INTERFACE)
    overrides = {"sim_dir": sim_dir, "policy_path": str(checkpoint), "interface": ROLLOUT_INTERFACE,
                 "camera_width": str(width), "camera_height": str(height),
                 "mode": config.policy_mode, "run_on_activate": "false", "urdf": str(share_urdf("so101")),
                 "dataset_root": str(eval_root), "vcodec": config.vcodec, **(bringup_overrides or {})}
    runner = BringupRunner(POLICY_BRINGUP, overrides, log_path=log_path)
    targets = evaluation_targets(config.eval_seed, config.eval_episodes)
    print(f"  starting {len(runner.bringup.processes)} processes of {runner.bringup.path.name} "
          f"(their output: {log_path})", flush=True)
    outcomes: dict[str, list[EpisodeOutcome]] = {}
    console = None
    try:
        runner.start()
        console = DemoConsole(bringup_watchdog(runner, log_path), with_recorder=True, with_policy=True)
        print("  waiting for the simulated robot and the policy node (loading the checkpoint, warm-up) ...",
              flush=True)
        console.wait_for_robot(120.0, str(log_path))
        console.wait_for_recorder(120.0, str(log_path))
        console.wait_for_policy(180.0, str(log_path))
        outcomes["trained policy"] = [policy_episode(console, i, t, config.eval_episode_time_s)
                                      for i, t in enumerate(targets)]
        if config.evaluate_scripted:
            outcomes["scripted operator"] = [scripted_episode(console, i, t, config.eval_episode_time_s)
                                             for i, t in enumerate(targets)]
    finally:
        if console is not None:
            console.close()
        print("  stopping the processes (the recorder closes the evaluation dataset) ...", flush=True)
        runner.stop()
        shutil.rmtree(sim_dir, ignore_errors=True)
    outcomes["do nothing"] = do_nothing_outcomes(targets)

    if not (eval_root / "meta" / "info.json").exists():
        raise DemoStageError(f"no evaluation episode was saved, so there is no dataset at {eval_root}; see {log_path}")
    report = validate_dataset(eval_root)
    if not report.ok:
        raise DemoStageError(f"the evaluation dataset {eval_root} does not validate:\n{report.format()}")
    saved = json.loads((eval_root / "meta" / "info.json").read_text())["total_episodes"]
    summaries = [summarize("trained policy", LIVE, outcomes["trained policy"])]
    if "scripted operator" in outcomes:
        summaries.append(summarize("scripted operator", LIVE, outcomes["scripted operator"]))
    summaries.append(summarize("do nothing", SCENE_MODEL, outcomes["do nothing"]))
    return Evaluation(summaries, outcomes, eval_root, saved, time.monotonic() - started)
