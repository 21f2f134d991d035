"""`make demo`: the whole loop on the simulated SO-101: record demonstrations, train a policy, deploy and evaluate it.

1. record   the scripted operator demonstrates reaching the cube (at random places) on the leader arm; the
            recorder writes a LeRobotDataset v3.0 (demo_record.py)
2. train    lerobot-train trains a policy on it on the CPU (demo_train.py)
3. deploy   the policy node serves the checkpoint on the same simulated robot: arm driver + camera, no leader, no
            operator; the policy sees only the camera image and the joint state (demo_evaluate.py)
4. evaluate evaluation episodes on new cube positions, each recorded into an eval_ dataset; the same cubes for the
            scripted operator (live) and a do-nothing baseline (scene model); a success table

Every stage prints its progress; the processes' output goes to <output>/*.log. Later stages can be rerun on the
earlier stages' outputs with --from-stage.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

from lerobot_bringup.demo_config import POLICY_TYPES, DemoConfig

STAGES = ("record", "train", "evaluate")
REACH_PNG = "policy_reaching.png"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lerobot-demo", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    defaults = DemoConfig()
    helps = {
        "output": "folder of everything the demo writes", "episodes": "demonstrations to record",
        "episode_time_s": "seconds per demonstration", "reset_time_s": "seconds between demonstrations",
        "vcodec": "video codec of video cameras (the demo's camera is stored as PNG frames)",
        "policy_type": f"policy to train ({', '.join(POLICY_TYPES)})", "steps": "training steps",
        "batch_size": "training batch size (all processes together)", "num_workers": "data loader workers",
        "train_processes": "data-parallel training processes (torchrun)", "seed": "training seed",
        "chunk_size": "actions per chunk", "n_action_steps": "actions executed per chunk (sync mode)",
        "eval_episodes": "evaluation episodes", "eval_episode_time_s": "seconds before an episode counts as failed",
        "eval_seed": "seed of the evaluation cube positions", "policy_mode": "policy node mode: sync, async or rtc",
        "evaluate_scripted": "also measure the scripted operator live on the evaluation cubes",
    }
    for field in dataclasses.fields(DemoConfig):
        default = getattr(defaults, field.name)
        kind = {bool: None, int: int, float: float, Path: Path}.get(type(default), str)
        if isinstance(default, bool):
            parser.add_argument(_flag(field.name), action=argparse.BooleanOptionalAction, default=default,
                                help=helps[field.name])
        else:
            parser.add_argument(_flag(field.name), type=kind, default=default,
                                help=f"{helps[field.name]} (default: {default})")
    parser.add_argument("--from-stage", choices=STAGES, default="record",
                        help="start here, reusing the earlier stages' outputs in --output (default: record)")
    return parser


def _stage(number: int, title: str) -> float:
    print(f"\n[{number}/4] {title}", flush=True)
    return time.monotonic()


def run(config: DemoConfig, from_stage: str = "record") -> int:
    from lerobot_bringup.demo_evaluate import evaluate
    from lerobot_bringup.demo_record import record_demonstrations
    from lerobot_bringup.demo_train import CURVES_PNG, train_policy
    from lerobot_bringup.evaluation import format_table, render_reach

    # One intra-op thread for torch in every process the demo starts (lerobot-train, the policy node): these models
    # are small, and on two cores shared with the robot's processes torch's OpenMP threads spin-wait for each other.
    # Measured here on a loaded 2-core machine: one flow_chunk training step of batch 32 took 0.07 s of CPU with one
    # thread and 1.2 s with two (inference: 19 ms vs 370 ms). Set OMP_NUM_THREADS yourself to override.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    started = time.monotonic()
    timings: dict[str, float] = {}
    config.output.mkdir(parents=True, exist_ok=True)
    print(f"lerobot-demo: record {config.episodes} demonstrations, train {config.policy_type} for {config.steps} "
          f"steps, evaluate on {config.eval_episodes} new cube positions; output in {config.output.resolve()}",
          flush=True)

    first = STAGES.index(from_stage)
    if first <= 0:
        _stage(1, f"record: {config.episodes} episodes of {config.episode_time_s:g} s with the scripted operator")
        recorded = record_demonstrations(config)
        timings["record"] = recorded.seconds
        print(f"  dataset {recorded.root}: {recorded.episodes} episodes, {recorded.frames} frames at {recorded.fps} "
              f"fps; validation OK", flush=True)
    elif not (config.dataset_root / "meta" / "info.json").is_file():
        raise FileNotFoundError(f"--from-stage {from_stage}: no recorded dataset at {config.dataset_root}")
    if first <= 1:
        _stage(2, f"train: lerobot-train --policy.type={config.policy_type}, {config.steps} steps of batch "
                  f"{config.batch_size} on the CPU")
        trained = train_policy(config, config.dataset_root)
        timings["train"] = trained.seconds
    elif not (config.checkpoint / "config.json").is_file():
        raise FileNotFoundError(f"--from-stage {from_stage}: no checkpoint at {config.checkpoint}")
    checkpoint = config.checkpoint.resolve()
    print(f"  checkpoint {checkpoint}", flush=True)

    _stage(3, f"deploy and 4. evaluate: the policy node ({config.policy_mode}) drives the simulated SO-101 for "
              f"{config.eval_episodes} episodes (at most {config.eval_episode_time_s:g} s each)")
    evaluation = evaluate(config, checkpoint)
    timings["deploy + evaluate"] = evaluation.seconds

    picture = None
    reaches = [o for o in evaluation.outcomes["trained policy"] if o.joints_at_reach is not None]
    if reaches:
        picture = config.output.resolve() / REACH_PNG
        render_reach(reaches[0], picture)

    curves = config.train_dir.resolve() / CURVES_PNG
    print(f"\nresults on {config.eval_episodes} evaluation cube positions (seed {config.eval_seed}; a cube counts "
          f"as reached when the fingertips come within 4 cm of its top centre):\n")
    print(format_table(evaluation.summaries))
    print()
    print(f"dataset:          {config.dataset_root.resolve()}")
    print(f"checkpoint:       {checkpoint}")
    print(f"training curves:  {curves if curves.is_file() else '(none written)'}")
    print(f"eval dataset:     {evaluation.eval_dataset} ({evaluation.eval_episodes_saved} episode(s), "
          "validation OK)")
    if picture is not None:
        print(f"a reach:          {picture}")
    print("time:             " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in timings.items())
          + f"; total {(time.monotonic() - started) / 60:.1f} min", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from lerobot_bringup.demo_console import ConsoleError
    from lerobot_bringup.demo_record import DemoStageError
    from lerobot_bringup.runner import BringupError

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(DemoConfig)}
    try:
        config = DemoConfig(**values)
    except ValueError as error:
        print(f"lerobot-demo: {error}", file=sys.stderr)
        return 2
    try:
        return run(config, args.from_stage)
    except (DemoStageError, ConsoleError, BringupError, FileNotFoundError) as error:
        print(f"lerobot-demo: failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lerobot-demo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
