"""`lerobot-train`: offline training of a policy on a LeRobotDataset v3.0, with upstream LeRobot's flags and files.

    lerobot-train --dataset.root=data/so101_reach --policy.type=act --policy.push_to_hub=false \
        --steps=20000 --batch_size=8 --output_dir=outputs/train/act_reach
    lerobot-train --resume=true --config_path=outputs/train/act_reach          # continue (to the sample)
    torchrun --nproc_per_node 4 -m lerobot_train.train <same flags>           # data-parallel on 4 GPUs

Read top to bottom: `build_run` assembles the run (data, policy, processors, optimizer, resume), `train_step` is
one optimizer update (gradient accumulation, autocast, clipping, EMA), `save_checkpoint` writes upstream's layout,
`run_training` is the loop. One step = one optimizer update = `gradient_accumulation_steps` micro-batches of
`batch_size` samples on each process.

Reproducibility: the data order is a pure function of (seed, epoch) (`EpisodeAwareSampler`), the DataLoader draws
its worker seeds from its own generator and evaluation runs under a forked RNG, so the global generators are used
by the model (dropout, noise) and, with `num_workers=0`, by image augmentation only. A run resumed from a
checkpoint (model, optimizer, scheduler, RNG, sampler position) therefore ends with the same weights as the
uninterrupted run on a CPU. With image augmentation in DataLoader workers the augmentation draws differ after a
resume (workers seed themselves per process).

Data parallelism: every process trains a replica on its own share of each global batch (`EpisodeAwareSampler`
with rank/world size), DistributedDataParallel averages the gradients, the logged loss is averaged across ranks,
and only rank 0 writes checkpoints, metrics and curves.
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import random
import shutil
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from lerobot_train.train_config import CliError, TrainPipelineConfig, help_text, parse_train_args

log = logging.getLogger("lerobot_train.train")

# Set to a folder to record which frames each process trains on (rank<r>.jsonl: {"step", "micro", "index"}):
# a debugging aid for data parallelism and resume, off by default.
SAMPLE_LOG_ENV = "LEROBOT_TRAIN_SAMPLE_LOG"


class TrainingError(RuntimeError):
    """The run cannot start or continue (bad dataset, finished run, diverged loss): one clear line to the user."""


# ------------------------------------------------------------------------------------------------ processes
@dataclass
class DistributedContext:
    """This process's place in a torchrun launch (or a single process) and its compute device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls, device_name: str) -> "DistributedContext":
        """Read torchrun's RANK / WORLD_SIZE / LOCAL_RANK and join the process group (nccl on CUDA, gloo on CPU)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device(device_name)
        if device.type == "cuda":
            device = torch.device("cuda", local_rank if world > 1 else (device.index or 0))
            torch.cuda.set_device(device)
        if world > 1:
            import torch.distributed as dist

            # ranks wait for rank 0 while it saves and evaluates: allow long evaluations before timing out
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                    timeout=datetime.timedelta(hours=2))
        return cls(rank=rank, world_size=world, local_rank=local_rank, device=device)

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The average of `value` over all processes (itself in a single process)."""
        if not self.distributed:
            return value
        import torch.distributed as dist

        value = value.detach().clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value / self.world_size

    def close(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


class forked_rng:
    """Run a block (evaluation) without moving the python / numpy / torch generators of the training run."""

    def __enter__(self) -> None:
        self._py, self._np = random.getstate(), np.random.get_state()
        self._torch = torch.random.fork_rng(devices=list(range(torch.cuda.device_count())))
        self._torch.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._torch.__exit__(*exc)
        random.setstate(self._py)
        np.random.set_state(self._np)


# ------------------------------------------------------------------------------------------------ data
def resolve_dataset_root(cfg: TrainPipelineConfig, ctx: DistributedContext) -> Path:
    """The local dataset folder: --dataset.root, or $HF_LEROBOT_HOME/<repo_id> (downloaded once, by rank 0)."""
    if cfg.dataset.root:
        root = Path(cfg.dataset.root).expanduser()
        if not (root / "meta" / "info.json").is_file():
            raise TrainingError(f"--dataset.root {root}: not a LeRobotDataset (no meta/info.json)")
        return root
    from huggingface_hub.constants import HF_HOME

    home = Path(os.environ.get("HF_LEROBOT_HOME", Path(HF_HOME) / "lerobot")).expanduser()
    root = home / cfg.dataset.repo_id
    if ctx.is_main and not (root / "meta" / "info.json").is_file():
        from lerobot_dataset.hub import pull_dataset

        log.info("downloading dataset %s to %s", cfg.dataset.repo_id, root)
        pull_dataset(cfg.dataset.repo_id, root, revision=cfg.dataset.revision)
    ctx.barrier()  # every rank, always: the others read the copy rank 0 made
    return root


def make_dataset(cfg: TrainPipelineConfig, ctx: DistributedContext) -> Any:
    """The training dataset with the policy's observation/action windows and augmentations: map-style over a
    local copy, or (--dataset.streaming) an episode pool streamed from a local folder or a Hub repo."""
    from lerobot_dataset.format import read_info
    from lerobot_train.data.augment import ImageTransforms
    from lerobot_train.data.dataset import TrainingDataset
    from lerobot_train.data.windows import delta_timestamps_for

    transforms = ImageTransforms(cfg.dataset.image_transforms) if cfg.dataset.image_transforms.enable else None
    try:
        if cfg.dataset.streaming:
            from lerobot_train.data.streaming import DatasetFiles, StreamingEpisodeDataset

            source = cfg.dataset.root or cfg.dataset.repo_id
            info = read_info(DatasetFiles(source, revision=cfg.dataset.revision).local_meta_root())
            windows = delta_timestamps_for(cfg.policy, info["fps"], features=info["features"])
            return StreamingEpisodeDataset(source, delta_timestamps=windows, episodes=cfg.dataset.episodes,
                                           seed=cfg.seed or 0, rank=ctx.rank, world_size=ctx.world_size,
                                           image_transforms=transforms, tolerance_s=cfg.tolerance_s,
                                           revision=cfg.dataset.revision)
        root = resolve_dataset_root(cfg, ctx)
        info = read_info(root)
        windows = delta_timestamps_for(cfg.policy, info["fps"], features=info["features"])
        return TrainingDataset(root, delta_timestamps=windows, episodes=cfg.dataset.episodes,
                               image_transforms=transforms, tolerance_s=cfg.tolerance_s)
    except (ValueError, KeyError, OSError) as exc:
        raise TrainingError(f"dataset {cfg.dataset.root or cfg.dataset.repo_id}: {exc}") from None


def is_streaming(dataset: Any) -> bool:
    return isinstance(dataset, torch.utils.data.IterableDataset)


def num_episodes(dataset: Any) -> int:
    return len(dataset.episodes) if is_streaming(dataset) else dataset.num_episodes


def normalization_stats(cfg: TrainPipelineConfig, meta: Any) -> dict[str, dict[str, np.ndarray]]:
    """The dataset's statistics, with ImageNet's mean/std for the cameras when --dataset.use_imagenet_stats."""
    from lerobot_train.data.dataset import with_imagenet_stats

    stats = {k: dict(v) for k, v in meta.stats.items()}
    return with_imagenet_stats(stats, meta.camera_keys) if cfg.dataset.use_imagenet_stats else stats


def endless_batches(run: "Run") -> Iterator[dict[str, Any]]:
    """Batches across epochs. Map-style: each pass over the loader is one epoch of the sampler (it advances
    itself). Streaming: the dataset is told each epoch before the pass (`iterate_epochs`)."""
    if is_streaming(run.dataset):
        from lerobot_train.data.streaming import iterate_epochs

        for _, batch in iterate_epochs(run.loader, run.dataset, start_epoch=run.start_epoch):
            yield batch
    else:
        while True:
            yield from run.loader


# ------------------------------------------------------------------------------------------------ the run
@dataclass
class Run:
    """Everything the loop touches. `model` is the policy, or its DistributedDataParallel wrapper."""

    cfg: TrainPipelineConfig
    ctx: DistributedContext
    dataset: Any
    policy: Any
    model: Any
    preprocessor: Any
    postprocessor: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    sampler: Any  # EpisodeAwareSampler; None for a streaming dataset (it orders itself)
    loader: torch.utils.data.DataLoader
    start_step: int = 0
    start_epoch: int = 0  # streaming datasets: the epoch a resumed run continues in
    ema: Any = None
    scaler: Any = None
    autocast_dtype: torch.dtype | None = None
    monitor: Any = None
    robot_interface: dict[str, Any] | None = None
    eval_envs: list[Any] = field(default_factory=list)
    sample_log: Path | None = None


# where the recorder keeps the robot interface file a dataset was recorded with (upstream ignores the file)
DATASET_INTERFACE_FILE = "meta/robot_interface.yaml"


def load_robot_interface(cfg: TrainPipelineConfig, dataset: Any) -> dict[str, Any] | None:
    """The robot interface stored in each checkpoint's robot_interface.json: --robot_interface, else the dataset's
    own meta/robot_interface.yaml (written by the recorder), else None (a dataset recorded elsewhere)."""
    import yaml

    if cfg.robot_interface:
        path = Path(cfg.robot_interface).expanduser()
        if not path.is_file():
            raise TrainingError(f"--robot_interface {path}: no such file")
    else:
        roots = getattr(dataset.meta, "roots", None) or [dataset.meta.root]
        path = Path(roots[0]) / DATASET_INTERFACE_FILE
        if not path.is_file():
            return None
        log.info("robot interface from the dataset: %s", path)
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise TrainingError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None


def make_policy_and_processors(cfg: TrainPipelineConfig, dataset: Any, ctx: DistributedContext) -> tuple[Any, Any, Any]:
    """Fresh, fine-tuned (--policy.path) or resumed policy, and its pre/post-processors.

    Resuming takes the checkpoint's weights (strictly) and its saved processors (their statistics win over the
    dataset's, as upstream); fine-tuning takes the checkpoint's weights and processor layout with this dataset's
    statistics; a fresh policy gets default processors with the dataset's statistics.
    """
    from lerobot_train.policies.factory import get_policy_class, make_policy, make_pre_post_processors

    stats = normalization_stats(cfg, dataset.meta)
    device_override = {"device_processor": {"device": str(ctx.device)}}
    if cfg.resume:
        pretrained = Path(cfg.checkpoint_path) / "pretrained_model"
        policy = get_policy_class(cfg.policy.type).from_pretrained(pretrained, config=cfg.policy, strict=True)
        pre, post = make_pre_post_processors(cfg.policy, pretrained_path=pretrained, overrides=device_override)
    elif cfg.policy.pretrained_path:
        policy = make_policy(cfg.policy, dataset.meta)
        overrides = dict(device_override)
        if cfg.rename_map:
            overrides["rename_observations_processor"] = {"rename_map": dict(cfg.rename_map)}
        pre, post = make_pre_post_processors(cfg.policy, dataset_stats=stats, pretrained_path=cfg.policy.pretrained_path,
                                             overrides=overrides)
    else:
        if cfg.rename_map:
            raise TrainingError("--rename_map needs a pretrained policy (--policy.path): a fresh policy takes its "
                                "feature names from the dataset")
        policy = make_policy(cfg.policy, dataset.meta)
        pre, post = make_pre_post_processors(cfg.policy, dataset_stats=stats)
    policy.to(ctx.device)
    policy.train()
    return policy, pre, post


def _make_sampler_and_loader(cfg: TrainPipelineConfig, dataset: Any, ctx: DistributedContext) -> tuple[Any, Any]:
    from lerobot_train.data.sampler import EpisodeAwareSampler

    workers = cfg.num_workers
    common = dict(batch_size=cfg.batch_size, num_workers=workers, pin_memory=ctx.device.type == "cuda",
                  prefetch_factor=cfg.prefetch_factor if workers > 0 else None,
                  # worker seeds come from this generator, never from the global one the model uses
                  generator=torch.Generator().manual_seed((cfg.seed or 0) + 7919 * ctx.rank))
    if is_streaming(dataset):
        # workers get a copy of the dataset (and its epoch) at each pass: no persistent workers
        return None, torch.utils.data.DataLoader(dataset, persistent_workers=False, **common)
    sampler = EpisodeAwareSampler(
        dataset.meta.dataset_from_index, dataset.meta.dataset_to_index,
        drop_n_last_frames=int(getattr(cfg.policy, "drop_n_last_frames", 0) or 0), shuffle=True,
        seed=cfg.seed or 0, rank=ctx.rank, world_size=ctx.world_size, batch_size=cfg.batch_size)
    loader = torch.utils.data.DataLoader(dataset, sampler=sampler, drop_last=False, persistent_workers=workers > 0,
                                         **common)
    return sampler, loader


def _resume_training_state(run: Run) -> None:
    """Optimizer, scheduler, EMA, grad scaler, RNG and the sampler position from the checkpoint being resumed."""
    from lerobot_train.data.sampler import TrainingStepRecord, resume_sampler_state
    from lerobot_train.training_state import ResumableParts, load_grad_scaler_state, load_training_state

    cfg = run.cfg
    checkpoint = Path(cfg.checkpoint_path)
    record = load_training_state(checkpoint, ResumableParts(run.optimizer, run.scheduler, run.ema))
    if run.scaler is not None:
        load_grad_scaler_state(run.scaler, checkpoint)
    if record.step >= cfg.steps:
        raise TrainingError(f"the checkpoint {checkpoint} is at step {record.step} and --steps is {cfg.steps}: "
                            f"nothing left to train (raise --steps to continue)")
    accum = record.grad_accum_steps or cfg.gradient_accumulation_steps
    if accum != cfg.gradient_accumulation_steps:
        log.warning("the checkpoint used gradient_accumulation_steps=%d, this run %d: the data order resumes at the "
                    "right position but the batches differ from the interrupted run", accum,
                    cfg.gradient_accumulation_steps)
    if record.dp_world_size is None:
        log.warning("%s records no world size / batch size (written by upstream 0.4.4?): the data position is "
                    "computed with this run's (%d processes, batch %d); upstream 0.4.4 itself shuffled with the "
                    "global RNG, so the sample order differs from its run", checkpoint, run.ctx.world_size,
                    cfg.batch_size)
    micro_steps = TrainingStepRecord(step=record.step * accum, dp_world_size=record.dp_world_size,
                                     batch_size=record.batch_size, grad_accum_steps=record.grad_accum_steps)
    run.start_step = record.step
    if run.sampler is None:  # streaming: replay the episode pool's draws up to the checkpoint
        if (record.dp_world_size or run.ctx.world_size) != run.ctx.world_size:
            log.warning("resuming a streaming run with world size %d but the checkpoint was written with %d: "
                        "the episodes are dealt to the ranks differently from the interrupted run",
                        run.ctx.world_size, record.dp_world_size)
        epoch, batches = run.dataset.locate_batches(micro_steps.step, cfg.batch_size, cfg.num_workers)
        run.dataset.fast_forward(batches, cfg.batch_size)
        run.start_epoch = epoch
        log.info("resumed from %s at step %d (epoch %d, batch %d)", checkpoint, record.step, epoch, batches)
        return
    run.sampler.load_state_dict(resume_sampler_state(micro_steps, run.sampler.num_frames, cfg.batch_size,
                                                     run.ctx.world_size))
    log.info("resumed from %s at step %d (sampler %s)", checkpoint, record.step, run.sampler.state_dict())


def build_run(cfg: TrainPipelineConfig) -> Run:
    """Processes, seed, dataset, policy, processors, optimizer, EMA, resume state, DDP wrapper, loader, monitor."""
    from lerobot_train.eval import autocast_dtype_for
    from lerobot_train.optim import ExponentialMovingAverage, make_optimizer_and_scheduler

    ctx = DistributedContext.from_env(cfg.policy.device or "cpu")
    if cfg.seed is not None:
        set_seed(cfg.seed)
    if ctx.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
    dataset = make_dataset(cfg, ctx)
    policy, pre, post = make_policy_and_processors(cfg, dataset, ctx)
    optimizer, scheduler = make_optimizer_and_scheduler(cfg.optimizer, cfg.scheduler, policy, cfg.steps,
                                                        cfg.use_policy_training_preset)
    try:
        autocast_dtype = autocast_dtype_for(ctx.device, cfg.policy.use_amp, cfg.amp_dtype)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    scaler = torch.amp.GradScaler("cuda") if autocast_dtype is torch.float16 else None
    ema = ExponentialMovingAverage(policy, cfg.ema) if cfg.ema.enable else None
    sampler, loader = _make_sampler_and_loader(cfg, dataset, ctx)
    model = policy
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel

        # find_unused_parameters: some policies skip modules in some batches (as upstream's accelerate setup)
        model = DistributedDataParallel(policy, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
                                        find_unused_parameters=True)
    run = Run(cfg=cfg, ctx=ctx, dataset=dataset, policy=policy, model=model, preprocessor=pre, postprocessor=post,
              optimizer=optimizer, scheduler=scheduler, sampler=sampler, loader=loader, ema=ema, scaler=scaler,
              autocast_dtype=autocast_dtype, robot_interface=load_robot_interface(cfg, dataset))
    if os.environ.get(SAMPLE_LOG_ENV):
        run.sample_log = Path(os.environ[SAMPLE_LOG_ENV]) / f"rank{ctx.rank}.jsonl"
        run.sample_log.parent.mkdir(parents=True, exist_ok=True)
    if cfg.resume:
        _resume_training_state(run)
    if ctx.is_main and cfg.env is not None and cfg.eval_freq > 0:
        from lerobot_train.envs.factory import make_envs

        run.eval_envs = make_envs(cfg.env, cfg.eval.batch_size)
    return run


# ------------------------------------------------------------------------------------------------ one update
def prepare_batch(run: Run, batch: dict[str, Any]) -> dict[str, Any]:
    """Device transfer (uint8 cameras: 4x fewer bytes), cameras to float in [0, 1], then the pre-processor."""
    from lerobot_train.data.dataset import cameras_to_float

    non_blocking = run.ctx.device.type == "cuda"
    moved = {k: v.to(run.ctx.device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v
             for k, v in batch.items()}
    return run.preprocessor(cameras_to_float(moved, run.dataset.meta.camera_keys))


def _log_samples(run: Run, step: int, micro: int, batch: dict[str, Any]) -> None:
    import json

    with open(run.sample_log, "a") as f:
        f.write(json.dumps({"step": step, "micro": micro, "index": batch["index"].tolist()}) + "\n")


def train_step(run: Run, batches: Iterator[dict[str, Any]], step: int) -> dict[str, float]:
    """One optimizer update over `gradient_accumulation_steps` micro-batches; returns this update's metrics."""
    from lerobot_train.optim import clip_grad_norm, current_lr, trainable_parameters

    cfg, model = run.cfg, run.model
    accum = cfg.gradient_accumulation_steps
    timing = {"dataloading_s": 0.0, "preprocessing_s": 0.0, "update_s": 0.0}
    loss_sum = torch.zeros((), device=run.ctx.device)
    info_sums: dict[str, float] = {}
    model.train()
    run.optimizer.zero_grad(set_to_none=True)
    for micro in range(accum):
        t0 = time.perf_counter()
        raw = next(batches)
        t1 = time.perf_counter()
        if run.sample_log is not None:
            _log_samples(run, step, micro, raw)
        batch = prepare_batch(run, raw)
        t2 = time.perf_counter()
        # DDP: all-reduce the gradients once per update, on the last micro-batch
        sync = nullcontext() if micro == accum - 1 or not run.ctx.distributed else model.no_sync()
        autocast = (torch.autocast(run.ctx.device.type, dtype=run.autocast_dtype) if run.autocast_dtype is not None
                    else nullcontext())
        with sync:
            with autocast:
                loss, info = model(batch)
            scaled = loss / accum
            (run.scaler.scale(scaled) if run.scaler is not None else scaled).backward()
        loss_sum += loss.detach().float()
        for key, value in (info or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                info_sums[key] = info_sums.get(key, 0.0) + float(value)
        timing["dataloading_s"] += t1 - t0
        timing["preprocessing_s"] += t2 - t1
        timing["update_s"] += time.perf_counter() - t2
    t3 = time.perf_counter()
    if run.scaler is not None:
        run.scaler.unscale_(run.optimizer)
    grad_norm = clip_grad_norm(trainable_parameters(run.optimizer), cfg.optimizer.grad_clip_norm)
    if run.scaler is not None:
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        run.optimizer.step()
    if run.scheduler is not None:
        run.scheduler.step()
    update_hook = getattr(run.policy, "update", None)
    if callable(update_hook):  # policies with internal buffers to refresh after a step (upstream's hook)
        update_hook()
    if run.ema is not None:
        run.ema.update(run.policy)
    loss_mean = run.ctx.mean(loss_sum / accum)
    metrics = {"loss": float(loss_mean.item()), "grad_norm": float(grad_norm.item()), "lr": current_lr(run.optimizer),
               **{k: v / accum for k, v in info_sums.items() if k != "loss"}}
    timing["update_s"] += time.perf_counter() - t3
    metrics.update(timing)
    if run.ctx.device.type == "cuda":
        metrics["gpu_mem_gb"] = torch.cuda.max_memory_allocated(run.ctx.device) / 1e9
    if not math.isfinite(metrics["loss"]):
        raise TrainingError(f"the loss became {metrics['loss']} (learning rate {metrics['lr']:.2e}, gradient norm "
                            f"{metrics['grad_norm']:.3g}): lower --optimizer.lr or check the dataset statistics")
    return metrics


# ------------------------------------------------------------------------------------------------ checkpoints
def _write_pretrained(run: Run, directory: Path) -> None:
    """A pretrained_model/ folder: weights + config.json, processors, train_config.json, robot_interface.json."""
    from lerobot_train.policies.checkpoint_files import write_robot_interface

    run.policy.save_pretrained(directory)
    run.cfg.save(directory)
    run.preprocessor.save_pretrained(directory)
    run.postprocessor.save_pretrained(directory)
    meta = run.dataset.meta
    write_robot_interface(directory, fps=meta.fps, robot_type=meta.robot_type, features=meta.features,
                          interface=run.robot_interface)


def save_checkpoint(run: Run, step: int) -> Path:
    """checkpoints/<step>/ (assembled in a hidden folder, renamed when complete), `last` moved to it."""
    from lerobot_train.data.sampler import TrainingStepRecord
    from lerobot_train.training_state import (PRETRAINED_MODEL_DIR, PRETRAINED_MODEL_EMA_DIR, ResumableParts,
                                              commit_checkpoint, partial_checkpoint_dir, save_grad_scaler_state,
                                              save_training_state, step_checkpoint_dir)

    cfg = run.cfg
    final = step_checkpoint_dir(cfg.output_dir, cfg.steps, step)
    partial = partial_checkpoint_dir(final)
    if partial.exists():
        shutil.rmtree(partial)
    _write_pretrained(run, partial / PRETRAINED_MODEL_DIR)
    if run.ema is not None:
        with run.ema.applied_to(run.policy):
            _write_pretrained(run, partial / PRETRAINED_MODEL_EMA_DIR)
    record = TrainingStepRecord(step=step, dp_world_size=run.ctx.world_size, batch_size=cfg.batch_size,
                                grad_accum_steps=cfg.gradient_accumulation_steps)
    save_training_state(partial, record, ResumableParts(run.optimizer, run.scheduler, run.ema))
    if run.scaler is not None:
        save_grad_scaler_state(run.scaler, partial)
    commit_checkpoint(partial, final)
    log.info("checkpoint after step %d: %s", step, final)
    if cfg.save_checkpoint_to_hub:
        from lerobot_train.hub import upload_checkpoint

        upload_checkpoint(final, cfg.policy.repo_id, private=cfg.policy.private)
    return final


def evaluate_now(run: Run, step: int) -> dict[str, float]:
    """Roll the current policy out in --env (rank 0), without touching the training RNG."""
    from lerobot_train.eval import PolicyRunner, evaluate
    from lerobot_train.training_state import step_identifier

    cfg = run.cfg
    runner = PolicyRunner(run.policy, run.preprocessor, run.postprocessor, run.ctx.device, run.autocast_dtype)
    videos = Path(cfg.output_dir) / "eval" / f"videos_step_{step_identifier(step, cfg.steps)}"
    with forked_rng():
        info = evaluate(cfg.env, runner, cfg.eval.n_episodes, cfg.eval.batch_size, start_seed=cfg.seed,
                        videos_dir=videos, max_episodes_rendered=4, envs=run.eval_envs, progress=False)
    overall = info["overall"]
    keys = ("pc_success", "avg_sum_reward", "avg_max_reward", "avg_episode_length", "eval_s")
    return {k: float(overall[k]) for k in keys}


def publish(run: Run, last_checkpoint: Path | None) -> None:
    """Push the final model, processors, train config and a model card to --policy.repo_id (rank 0)."""
    from lerobot_train.hub import push_trained_model
    from lerobot_train.training_state import PRETRAINED_MODEL_DIR

    cfg = run.cfg
    with tempfile.TemporaryDirectory(prefix="lerobot-final-") as tmp:
        if last_checkpoint is not None:
            pretrained = last_checkpoint / PRETRAINED_MODEL_DIR
        else:
            pretrained = Path(tmp) / PRETRAINED_MODEL_DIR
            _write_pretrained(run, pretrained)
        push_trained_model(pretrained, cfg.policy.repo_id, policy_type=cfg.policy.type,
                           dataset_repo_id=cfg.dataset.repo_id, private=cfg.policy.private, license=cfg.policy.license,
                           tags=cfg.policy.tags, steps=cfg.steps)


# ------------------------------------------------------------------------------------------------ the loop
def _describe(run: Run) -> None:
    cfg, ds = run.cfg, run.dataset
    learnable = sum(p.numel() for p in run.policy.parameters() if p.requires_grad)
    log.info("output dir: %s", cfg.output_dir)
    log.info("dataset: %d frames, %d episodes at %d fps%s; policy %s with %s learnable parameters", ds.num_frames,
             num_episodes(ds), ds.meta.fps, " (streaming)" if is_streaming(ds) else "", cfg.policy.type,
             f"{learnable:,}")
    log.info("effective batch size: %d x %d accumulation x %d processes = %d; %d steps", cfg.batch_size,
             cfg.gradient_accumulation_steps, run.ctx.world_size,
             cfg.batch_size * cfg.gradient_accumulation_steps * run.ctx.world_size, cfg.steps)


def run_training(cfg: TrainPipelineConfig) -> Path | None:
    """Train to `cfg.steps`; returns the last checkpoint folder (None when checkpoints are off)."""
    from lerobot_train.metrics import RunCounters, TrainingMonitor

    run = build_run(cfg)
    ctx = run.ctx
    last_checkpoint = None
    try:
        if ctx.is_main:
            Path(cfg.output_dir).mkdir(parents=True, exist_ok=True)
            _describe(run)
            counters = RunCounters(cfg.batch_size, ctx.world_size, cfg.gradient_accumulation_steps,
                                   run.dataset.num_frames, num_episodes(run.dataset))
            run.monitor = TrainingMonitor(Path(cfg.output_dir), counters, cfg.steps, run.start_step,
                                          title=cfg.job_name if cfg.job_name == cfg.policy.type
                                          else f"{cfg.job_name} ({cfg.policy.type})")
        batches = endless_batches(run)
        for step in range(run.start_step + 1, cfg.steps + 1):
            metrics = train_step(run, batches, step)
            if run.monitor is not None:
                run.monitor.record_update(metrics)
                if cfg.is_log_step(step):
                    run.monitor.log(step)
            if cfg.is_saving_step(step):
                if ctx.is_main:
                    last_checkpoint = save_checkpoint(run, step)
                    run.monitor.plot()
                ctx.barrier()
            if cfg.is_eval_step(step):
                if ctx.is_main:
                    run.monitor.log_eval(step, evaluate_now(run, step))
                ctx.barrier()
        if ctx.is_main:
            run.monitor.close()
            log.info("end of training; metrics in %s", Path(cfg.output_dir) / "metrics.csv")
            if cfg.policy.push_to_hub:
                publish(run, last_checkpoint)
        ctx.barrier()
    finally:
        if run.monitor is not None:
            run.monitor.bar.close()
        for env in run.eval_envs:
            env.close()
        ctx.close()
    return last_checkpoint


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        print(help_text(argv))
        return 0
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format="%(levelname)s %(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        cfg = parse_train_args(argv)
        run_training(cfg)
    except CliError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except TrainingError as exc:
        print(f"lerobot-train: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lerobot-train: interrupted (the last complete checkpoint is checkpoints/last)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
