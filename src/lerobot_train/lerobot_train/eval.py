"""`lerobot-eval`: roll a checkpoint out in a simulated environment; also the evaluation behind `--eval_freq`.

    lerobot-eval --policy.path=outputs/train/act_reach/checkpoints/last/pretrained_model --env.type=so101_reach \
        --eval.n_episodes=20 --eval.batch_size=10 --output_dir=outputs/eval/act_reach

prints the success rate, the mean sum of rewards and the mean episode length, writes them with every episode's
outcome to `<output_dir>/eval_info.json`, and saves the first `--max_episodes_rendered` rollouts as MP4 videos
under `<output_dir>/videos/` (PyAV, H.264).

The policy runs exactly as on a robot: the observation (dataset units) goes through the checkpoint's pre-processor,
`select_action` (the policy's own action queue), and the post-processor back to dataset units. `eval.batch_size`
environments step together as one policy batch; an episode that ended waits (its actions are dropped) until the
whole batch is done, as upstream does.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from lerobot_train.envs.configs import EnvConfig
from lerobot_train.envs.factory import EnvError, env_task, make_envs, observation_to_batch

log = logging.getLogger(__name__)
EVAL_INFO = "eval_info.json"


# ------------------------------------------------------------------------------------------------ policy side
class PolicyRunner:
    """A policy with its processors: dataset-unit numpy observations in, dataset-unit numpy actions out."""

    def __init__(self, policy: Any, preprocessor: Any, postprocessor: Any, device: str | torch.device = "cpu",
                 autocast_dtype: torch.dtype | None = None):
        self.policy = policy
        self.preprocessor = preprocessor
        self.postprocessor = postprocessor
        self.device = torch.device(device)
        self.autocast_dtype = autocast_dtype
        self._checked = False

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | None = None, use_amp: bool | None = None,
                        config_overrides: Any = None) -> "PolicyRunner":
        """Load a checkpoint folder or Hub repo id (weights, config.json, processors)."""
        from lerobot_train.policies.config import PreTrainedConfig
        from lerobot_train.policies.factory import get_policy_class, make_pre_post_processors

        config = config_overrides if config_overrides is not None else PreTrainedConfig.from_pretrained(path)
        if device is not None:
            config.device = device
        policy = get_policy_class(config.type).from_pretrained(path, config=config)
        policy.to(config.device).eval()
        pre, post = make_pre_post_processors(config, pretrained_path=path,
                                             overrides={"device_processor": {"device": str(config.device)}})
        amp = config.use_amp if use_amp is None else use_amp
        return cls(policy, pre, post, config.device, autocast_dtype_for(config.device, amp))

    def reset(self) -> None:
        self.policy.reset()
        for pipeline in (self.preprocessor, self.postprocessor):
            reset = getattr(pipeline, "reset", None)
            if callable(reset):
                reset()

    def check_inputs(self, batch: dict[str, Any]) -> None:
        """Every input the policy was trained on is in the batch with the trained shape (an env whose camera size
        or state differs from the dataset's would otherwise run and fail silently)."""
        features = getattr(getattr(self.policy, "config", None), "input_features", None) or {}
        for key, feature in features.items():
            if key not in batch:
                raise EnvError(f"the policy needs {key!r}, the environment provides "
                               f"{sorted(k for k in batch if k != 'task')}")
            got = tuple(np.shape(batch[key])[1:])
            if got != tuple(feature.shape):
                raise EnvError(f"{key}: the environment gives shape {got}, the policy was trained on "
                               f"{tuple(feature.shape)} (for so101_reach set --env.image_height/--env.image_width "
                               f"to the dataset's camera size)")

    @torch.no_grad()
    def select_action(self, batch: dict[str, Any]) -> np.ndarray:
        if not self._checked:
            self.check_inputs(batch)
            self._checked = True
        tensors = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in batch.items()}
        processed = self.preprocessor(tensors)
        autocast = (torch.autocast(self.device.type, dtype=self.autocast_dtype) if self.autocast_dtype is not None
                    else nullcontext())
        with autocast:
            action = self.policy.select_action(processed)
        action = self.postprocessor(action.float())
        return action.detach().cpu().numpy()


def autocast_dtype_for(device: str | torch.device, use_amp: bool, amp_dtype: str = "bfloat16") -> torch.dtype | None:
    """The autocast dtype for a device, or None for plain fp32. float16 autocast exists on CUDA only."""
    if not use_amp:
        return None
    kind = torch.device(device).type
    dtype = torch.bfloat16 if amp_dtype == "bfloat16" else torch.float16
    if kind == "cpu" and dtype is torch.float16:
        raise ValueError("float16 autocast needs CUDA; use amp_dtype=bfloat16 on the CPU")
    return dtype if kind in ("cuda", "cpu") else None


# ------------------------------------------------------------------------------------------------ rollouts
@dataclass
class EpisodeOutcome:
    episode_ix: int
    seed: int | None
    sum_reward: float
    max_reward: float
    success: bool
    length: int
    video_path: str | None = None


def _write_video(frames: list[np.ndarray], path: Path, fps: int) -> Path:
    """RGB frames -> H.264 MP4 (PyAV). Odd sizes are cropped by one pixel (yuv420p needs even dimensions)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    h2, w2 = h - h % 2, w - w % 2
    with av.open(str(path), "w") as container:
        stream = container.add_stream("h264", rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = w2, h2, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        for frame in frames:
            rgb = np.ascontiguousarray(frame[:h2, :w2, :3])
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def rollout_batch(envs: Sequence[Any], runner: Any, seeds: Sequence[int | None], task: str,
                  max_steps: int, render: Sequence[bool]) -> tuple[list[dict[str, Any]], list[list[np.ndarray]]]:
    """Run one episode in each env together; return per-env stats and the rendered frames of envs to render."""
    observations = [env.reset(seed=seed)[0] for env, seed in zip(envs, seeds)]
    runner.reset()
    n = len(envs)
    done = [False] * n
    stats = [{"sum_reward": 0.0, "max_reward": -np.inf, "success": False, "length": 0} for _ in range(n)]
    frames: list[list[np.ndarray]] = [[env.render()] if r else [] for env, r in zip(envs, render)]
    for _ in range(max_steps):
        actions = runner.select_action(observation_to_batch(observations, task))
        for i, env in enumerate(envs):
            if done[i]:
                continue
            observation, reward, terminated, truncated, info = env.step(actions[i])
            observations[i] = observation
            s = stats[i]
            s["sum_reward"] += float(reward)
            s["max_reward"] = max(s["max_reward"], float(reward))
            s["success"] = s["success"] or bool(info.get("is_success", False))
            s["length"] += 1
            if render[i]:
                frames[i].append(env.render())
            done[i] = bool(terminated or truncated)
        if all(done):
            break
    return stats, frames


def evaluate(env_config: EnvConfig, runner: Any, n_episodes: int, batch_size: int,
             start_seed: int | None = 0, videos_dir: Path | None = None, max_episodes_rendered: int = 0,
             envs: Sequence[Any] | None = None, progress: bool = True) -> dict[str, Any]:
    """Roll out `n_episodes` (in batches of `batch_size` envs) and aggregate upstream's eval metrics.

    `runner` is a PolicyRunner or anything with `reset()` and `select_action(batch) -> (B, action_dim)` array.
    """
    from tqdm import tqdm

    envs = list(envs) if envs is not None else make_envs(env_config, batch_size)
    task = env_task(envs[0], env_config)
    outcomes: list[EpisodeOutcome] = []
    started = time.perf_counter()
    policy = getattr(runner, "policy", None)  # a scripted controller has no torch module
    policy_was_training = bool(getattr(policy, "training", False))
    if policy is not None:
        policy.eval()
    try:
        with tqdm(total=n_episodes, desc="Evaluating", unit="episode", disable=not progress, leave=False) as bar:
            while len(outcomes) < n_episodes:
                k = min(batch_size, n_episodes - len(outcomes))
                first = len(outcomes)
                seeds = [None if start_seed is None else start_seed + first + i for i in range(k)]
                render = [videos_dir is not None and first + i < max_episodes_rendered for i in range(k)]
                stats, frames = rollout_batch(envs[:k], runner, seeds, task, env_config.episode_length, render)
                for i, (s, f) in enumerate(zip(stats, frames)):
                    video = None
                    if f:
                        video = str(_write_video(f, Path(videos_dir) / f"eval_episode_{first + i}.mp4", env_config.fps))
                    outcomes.append(EpisodeOutcome(first + i, seeds[i], s["sum_reward"], s["max_reward"],
                                                   s["success"], s["length"], video))
                bar.update(k)
    finally:
        if policy_was_training:
            policy.train()
    elapsed = time.perf_counter() - started
    overall = {
        "avg_sum_reward": float(np.mean([o.sum_reward for o in outcomes])),
        "avg_max_reward": float(np.mean([o.max_reward for o in outcomes])),
        "pc_success": 100.0 * float(np.mean([o.success for o in outcomes])),
        "avg_episode_length": float(np.mean([o.length for o in outcomes])),
        "n_episodes": len(outcomes),
        "eval_s": elapsed,
        "eval_ep_s": elapsed / len(outcomes),
        "video_paths": [o.video_path for o in outcomes if o.video_path],
    }
    return {"per_episode": [asdict(o) for o in outcomes], "overall": overall}


# ------------------------------------------------------------------------------------------------ CLI
@dataclass
class EvalPipelineConfig:
    env: EnvConfig | None = None
    eval: Any = None  # train_config.EvalConfig (imported lazily: it pulls the policy registry)
    output_dir: Path | None = None
    job_name: str | None = None
    # seeds the environments: episode i is reset with seed + i
    seed: int | None = 1000
    # how many rollouts are saved as videos
    max_episodes_rendered: int = 10
    policy_overrides: dict[str, str] = field(default_factory=dict)


def parse_eval_args(argv: Sequence[str]) -> tuple[EvalPipelineConfig, str, Any]:
    """(config, policy path, policy config with --policy.* overrides applied)."""
    import datetime as dt

    from lerobot_train.configs.json_codec import ConfigError
    from lerobot_train.policies.config import PreTrainedConfig
    from lerobot_train.train_config import CliError, EvalConfig, apply_overrides, split_args

    program = "lerobot-eval"
    flags = split_args(argv, program)
    policy_path = flags.pop("policy.path", None)
    if policy_path is None:
        raise CliError(f"{program}: --policy.path is required (a pretrained_model/ folder or a Hub repo id)")
    policy_flags = {k[len("policy."):]: v for k, v in flags.items() if k.startswith("policy.")}
    other = {k: v for k, v in flags.items() if not k.startswith("policy.")}
    cfg = apply_overrides(EvalPipelineConfig(eval=EvalConfig()), other, "", program)
    if cfg.env is None:
        raise CliError(f"{program}: --env.type is required (one of {EnvConfig.choices()})")
    if cfg.max_episodes_rendered < 0:
        raise CliError(f"{program}: --max_episodes_rendered must be >= 0, got {cfg.max_episodes_rendered}")
    try:
        policy_config = PreTrainedConfig.from_pretrained(policy_path)
    except (ConfigError, OSError, ValueError) as exc:
        raise CliError(f"{program}: --policy.path {policy_path}: {' '.join(str(exc).split())}") from None
    policy_config = apply_overrides(policy_config, policy_flags, "policy.", program)
    if cfg.job_name is None:
        cfg.job_name = f"{cfg.env.type}_{policy_config.type}"
    if cfg.output_dir is None:
        now = dt.datetime.now()
        cfg.output_dir = Path("outputs/eval") / f"{now:%Y-%m-%d}" / f"{now:%H-%M-%S}_{cfg.job_name}"
    return cfg, policy_path, policy_config


def eval_main(argv: Sequence[str]) -> dict[str, Any]:
    cfg, policy_path, policy_config = parse_eval_args(argv)
    if cfg.seed is not None:
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
    runner = PolicyRunner.from_pretrained(policy_path, config_overrides=policy_config)
    output_dir = Path(cfg.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    info = evaluate(cfg.env, runner, cfg.eval.n_episodes, cfg.eval.batch_size, start_seed=cfg.seed,
                    videos_dir=output_dir / "videos" if cfg.max_episodes_rendered > 0 else None,
                    max_episodes_rendered=cfg.max_episodes_rendered)
    (output_dir / EVAL_INFO).write_text(json.dumps(info, indent=2) + "\n")
    o = info["overall"]
    print(f"success rate: {o['pc_success']:.1f} % of {o['n_episodes']} episodes | mean sum of rewards: "
          f"{o['avg_sum_reward']:.3f} | mean episode length: {o['avg_episode_length']:.1f} steps | "
          f"{o['eval_ep_s']:.2f} s/episode")
    print(f"results: {output_dir / EVAL_INFO}" + (f", videos: {output_dir / 'videos'}" if o["video_paths"] else ""))
    return info


HELP = """usage: lerobot-eval --policy.path=CHECKPOINT --env.type=TYPE [--env.<field>=...] [--eval.n_episodes=N]
                    [--eval.batch_size=B] [--seed=S] [--output_dir=DIR] [--max_episodes_rendered=K]
                    [--policy.device=cuda] [--policy.use_amp=true] [--policy.<field>=...]

Rolls a policy checkpoint (a pretrained_model/ folder or a Hub repo id) out in a simulated environment and prints
the success rate, mean sum of rewards and mean episode length; writes eval_info.json and rollout videos.
Environments: so101_reach (the simulated SO-101 reaching a cube; --env.image_height/--env.image_width must match
the camera the policy was trained with) and gym (--env.gym_id=<registered id>, e.g. gym_pusht/PushT-v0).
`lerobot-train --env.type=TYPE --help` lists an environment's fields."""


def main(argv: Sequence[str] | None = None) -> int:
    from lerobot_train.train_config import CliError

    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        print(HELP)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        eval_main(argv)
    except CliError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (EnvError, OSError, ValueError) as exc:
        print(f"lerobot-eval: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lerobot-eval: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
