"""Checkpoint directories and the resumable training state, in upstream LeRobot's layout (no pickle anywhere).

```
<output_dir>/checkpoints/
    000200/                         step, zero-padded to max(6, len(str(total_steps)))
        pretrained_model/           config.json, model.safetensors, processors, train_config.json, robot_interface.json
        pretrained_model_ema/       (with --ema.enable) the same, with the EMA weights
        training_state/
            training_step.json      {"step", "dp_world_size", "batch_size", "grad_accum_steps", "parallelism"}
            optimizer_state.safetensors   optimizer.state_dict()["state"] flattened with "/" (e.g. "state/0/exp_avg")
            optimizer_param_groups.json   optimizer.state_dict()["param_groups"]
            scheduler_state.json          scheduler.state_dict() (when there is a scheduler)
            rng_state.safetensors         python / numpy / torch (/ cuda) generators, upstream's key names
            ema_state.safetensors         (with --ema.enable) the EMA weights and their update count
    last -> 000200                  relative symlink, moved only after a checkpoint is complete
```

A checkpoint is written into a hidden `.<step>.partial/` folder and renamed into place when complete, so a run
killed while saving never leaves a half-written checkpoint that `last` (or a resume) could point at.

`step` counts optimizer updates; each update consumed `grad_accum_steps` micro-batches of `batch_size` on each of
`dp_world_size` processes (upstream 0.4.4 had no accumulation, so its steps are the same thing). Upstream 0.4.4
wrote only `{"step": N}` in training_step.json; its checkpoints load here with the other fields None (the trainer
then assumes the current world size and batch size, and says so).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from lerobot_train.data.sampler import TrainingStepRecord

log = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"
LAST_CHECKPOINT_LINK = "last"
PRETRAINED_MODEL_DIR = "pretrained_model"
PRETRAINED_MODEL_EMA_DIR = "pretrained_model_ema"
TRAINING_STATE_DIR = "training_state"
TRAINING_STEP = "training_step.json"
OPTIMIZER_STATE = "optimizer_state.safetensors"
OPTIMIZER_PARAM_GROUPS = "optimizer_param_groups.json"
SCHEDULER_STATE = "scheduler_state.json"
RNG_STATE = "rng_state.safetensors"
EMA_STATE = "ema_state.safetensors"

# param_group keys that choose HOW torch runs the update (kernel flavour), not WHAT it computes: the running
# optimizer keeps its own values (a checkpoint written with fused kernels resumes on a machine without them).
_IMPLEMENTATION_KEYS = frozenset({"foreach", "fused", "capturable", "differentiable"})


class TrainingStateError(RuntimeError):
    """A training_state/ file is missing or does not fit the optimizer/scheduler being resumed (names the file)."""


# ------------------------------------------------------------------------------------------------ directories
def step_identifier(step: int, total_steps: int) -> str:
    """'000200': the checkpoint folder name, as upstream (at least 6 digits, more for longer runs)."""
    return f"{step:0{max(6, len(str(total_steps)))}d}"


def step_checkpoint_dir(output_dir: Path | str, total_steps: int, step: int) -> Path:
    return Path(output_dir) / CHECKPOINTS_DIR / step_identifier(step, total_steps)


def partial_checkpoint_dir(final_dir: Path) -> Path:
    """Where a checkpoint is assembled before it is renamed to `final_dir`."""
    return final_dir.parent / f".{final_dir.name}.partial"


def commit_checkpoint(partial_dir: Path, final_dir: Path) -> Path:
    """Rename a complete checkpoint into place (replacing an older one of the same step) and point `last` at it."""
    if final_dir.exists():
        shutil.rmtree(final_dir)
    os.replace(partial_dir, final_dir)
    update_last_checkpoint(final_dir)
    return final_dir


def update_last_checkpoint(checkpoint_dir: Path) -> Path:
    """Point `checkpoints/last` at `checkpoint_dir` with a relative symlink, atomically (rename over the old)."""
    link = checkpoint_dir.parent / LAST_CHECKPOINT_LINK
    tmp = checkpoint_dir.parent / f".{LAST_CHECKPOINT_LINK}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(checkpoint_dir.name)
    os.replace(tmp, link)
    return link


def last_checkpoint_dir(output_dir: Path | str) -> Path | None:
    """The checkpoint `last` points at, or None when the run has none yet."""
    link = Path(output_dir) / CHECKPOINTS_DIR / LAST_CHECKPOINT_LINK
    return link.resolve() if link.exists() else None


def list_checkpoints(output_dir: Path | str) -> list[Path]:
    """Complete step checkpoints of a run, oldest first (partial folders and `last` are not listed)."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and p.name.isdigit() and not p.is_symlink()),
                  key=lambda p: int(p.name))


# ------------------------------------------------------------------------------------------------ JSON files
def write_json(data: Any, path: Path) -> None:
    path.write_text(json.dumps(data, indent=4) + "\n")


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise TrainingStateError(f"{path} is missing: not a complete training checkpoint")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise TrainingStateError(f"{path}: not valid JSON ({exc})") from None


# ------------------------------------------------------------------------------------------------ nested dicts
def flatten_dict(d: dict, parent_key: str = "", sep: str = "/") -> dict:
    """{"a": {"b": 1}} -> {"a/b": 1}: safetensors holds flat name -> tensor maps."""
    items: dict = {}
    for k, v in d.items():
        key = f"{parent_key}{sep}{k}" if parent_key else str(k)
        if isinstance(v, dict):
            items.update(flatten_dict(v, key, sep))
        else:
            items[key] = v
    return items


def unflatten_dict(d: dict, sep: str = "/") -> dict:
    out: dict = {}
    for key, value in d.items():
        node = out
        *parents, leaf = key.split(sep)
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


# ------------------------------------------------------------------------------------------------ RNG
def rng_state_tensors() -> dict[str, torch.Tensor]:
    """The global generators of python, numpy and torch as tensors, with upstream's rng_state.safetensors keys."""
    py_version, py_state, _ = random.getstate()
    np_kind, np_values, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    assert np_kind == "MT19937"
    out = {
        "py_rng_version": torch.tensor([py_version], dtype=torch.int64),
        "py_rng_state": torch.tensor(py_state, dtype=torch.int64),
        "np_rng_state_values": torch.tensor(np_values, dtype=torch.int64),
        "np_rng_state_index": torch.tensor([np_pos], dtype=torch.int64),
        "np_rng_has_gauss": torch.tensor([np_has_gauss], dtype=torch.int64),
        "np_rng_cached_gaussian": torch.tensor([np_gauss], dtype=torch.float32),
        "torch_rng_state": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        out["torch_cuda_rng_state"] = torch.cuda.get_rng_state()
    return out


def restore_rng_state(tensors: dict[str, torch.Tensor], source: str = "rng state") -> None:
    required = ("py_rng_version", "py_rng_state", "np_rng_state_values", "np_rng_state_index", "np_rng_has_gauss",
                "np_rng_cached_gaussian", "torch_rng_state")
    missing = [k for k in required if k not in tensors]
    if missing:
        raise TrainingStateError(f"{source}: missing {missing}")
    random.setstate((int(tensors["py_rng_version"].item()), tuple(tensors["py_rng_state"].tolist()), None))
    np.random.set_state(("MT19937", tensors["np_rng_state_values"].numpy().astype(np.uint32),
                         int(tensors["np_rng_state_index"].item()), int(tensors["np_rng_has_gauss"].item()),
                         float(tensors["np_rng_cached_gaussian"].item())))
    torch.set_rng_state(tensors["torch_rng_state"])
    if torch.cuda.is_available() and "torch_cuda_rng_state" in tensors:
        torch.cuda.set_rng_state(tensors["torch_cuda_rng_state"])


# ------------------------------------------------------------------------------------------------ optimizer
def save_optimizer_state(optimizer: torch.optim.Optimizer, save_dir: Path) -> None:
    state = optimizer.state_dict()
    param_groups = state.pop("param_groups")
    flat = {k: v.detach().contiguous().cpu() for k, v in flatten_dict(state).items()}
    save_file(flat, save_dir / OPTIMIZER_STATE)
    write_json(param_groups, save_dir / OPTIMIZER_PARAM_GROUPS)


def load_optimizer_state(optimizer: torch.optim.Optimizer, save_dir: Path) -> None:
    """Restore moments and param groups; errors name the file when the checkpoint's optimizer does not fit."""
    state_file, groups_file = save_dir / OPTIMIZER_STATE, save_dir / OPTIMIZER_PARAM_GROUPS
    if not state_file.is_file():
        raise TrainingStateError(f"{state_file} is missing: not a complete training checkpoint")
    nested = unflatten_dict(load_file(str(state_file)))
    loaded_state = {int(k): v for k, v in nested.get("state", {}).items()}
    saved_groups = read_json(groups_file)
    current = optimizer.state_dict()["param_groups"]
    if not isinstance(saved_groups, list) or len(saved_groups) != len(current):
        raise TrainingStateError(
            f"{groups_file}: {len(saved_groups) if isinstance(saved_groups, list) else '?'} parameter groups, the "
            f"policy being resumed has {len(current)} (a different policy type or optimizer preset?)")
    groups = []
    for i, (saved, now) in enumerate(zip(saved_groups, current)):
        if len(saved.get("params", [])) != len(now["params"]):
            raise TrainingStateError(
                f"{groups_file}: group {i} has {len(saved.get('params', []))} parameters, the policy being resumed "
                f"has {len(now['params'])} (a different policy configuration?)")
        missing = sorted(set(now) - set(saved) - _IMPLEMENTATION_KEYS)
        if missing:
            raise TrainingStateError(f"{groups_file}: group {i} lacks {missing}: it was written by another optimizer "
                                     f"type than the one being resumed ({type(optimizer).__name__})")
        if saved.get("decoupled_weight_decay", now.get("decoupled_weight_decay")) != now.get("decoupled_weight_decay"):
            written = "AdamW" if saved["decoupled_weight_decay"] else "Adam"
            raise TrainingStateError(f"{groups_file}: written by {written}, but the run being resumed uses "
                                     f"{type(optimizer).__name__} (set --optimizer.type to the checkpoint's)")
        group = {k: (tuple(saved[k]) if isinstance(v, tuple) else saved[k]) for k, v in now.items()
                 if k not in _IMPLEMENTATION_KEYS}
        groups.append({**now, **group})
    optimizer.load_state_dict({"state": loaded_state, "param_groups": groups})


# ------------------------------------------------------------------------------------------------ scheduler
def save_scheduler_state(scheduler: Any, save_dir: Path) -> None:
    write_json(scheduler.state_dict(), save_dir / SCHEDULER_STATE)


def load_scheduler_state(scheduler: Any, save_dir: Path) -> None:
    path = save_dir / SCHEDULER_STATE
    saved = read_json(path)
    current = scheduler.state_dict()
    if not isinstance(saved, dict) or not set(current) <= set(saved):
        raise TrainingStateError(f"{path}: expected the keys {sorted(current)} of a "
                                 f"{type(scheduler).__name__}, got {sorted(saved) if isinstance(saved, dict) else saved!r}")
    scheduler.load_state_dict({k: saved[k] for k in current})


# ------------------------------------------------------------------------------------------------ whole state
@dataclass
class ResumableParts:
    """What training_state/ restores into; `ema` is anything with state_dict()/load_state_dict() of tensors."""

    optimizer: torch.optim.Optimizer
    scheduler: Any | None = None
    ema: Any | None = None


def save_training_state(checkpoint_dir: Path, training_step: TrainingStepRecord, parts: ResumableParts,
                        rng_tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """Write training_state/ under `checkpoint_dir`. `rng_tensors` defaults to this process's generators."""
    save_dir = checkpoint_dir / TRAINING_STATE_DIR
    save_dir.mkdir(parents=True, exist_ok=True)
    write_json(training_step.to_json(), save_dir / TRAINING_STEP)
    save_file(rng_tensors if rng_tensors is not None else rng_state_tensors(), save_dir / RNG_STATE)
    save_optimizer_state(parts.optimizer, save_dir)
    if parts.scheduler is not None:
        save_scheduler_state(parts.scheduler, save_dir)
    if parts.ema is not None:
        save_file({k: v.contiguous() for k, v in parts.ema.state_dict().items()}, save_dir / EMA_STATE)
    return save_dir


def read_training_step(checkpoint_dir: Path) -> TrainingStepRecord:
    """training_step.json; fields an older writer did not record (upstream 0.4.4: all but `step`) are None."""
    path = Path(checkpoint_dir) / TRAINING_STATE_DIR / TRAINING_STEP
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("step"), int):
        raise TrainingStateError(f"{path}: expected an object with an integer 'step', got {data!r}")
    return TrainingStepRecord.from_json(data, str(path))


def load_training_state(checkpoint_dir: Path, parts: ResumableParts,
                        restore_rng: Callable[[dict[str, torch.Tensor], str], None] = restore_rng_state) -> TrainingStepRecord:
    """Restore RNG, optimizer, scheduler (and EMA) from `checkpoint_dir`/training_state; return training_step.json."""
    save_dir = Path(checkpoint_dir) / TRAINING_STATE_DIR
    if not save_dir.is_dir():
        raise TrainingStateError(f"{save_dir} is missing: {checkpoint_dir} is not a training checkpoint")
    training_step = read_training_step(checkpoint_dir)
    rng_file = save_dir / RNG_STATE
    if not rng_file.is_file():
        raise TrainingStateError(f"{rng_file} is missing: not a complete training checkpoint")
    restore_rng(load_file(str(rng_file)), str(rng_file))
    load_optimizer_state(parts.optimizer, save_dir)
    if parts.scheduler is not None:
        if (save_dir / SCHEDULER_STATE).is_file():
            load_scheduler_state(parts.scheduler, save_dir)
        else:
            log.warning("%s has no %s: the learning-rate schedule restarts at step 0 of its formula", save_dir,
                        SCHEDULER_STATE)
    if parts.ema is not None:
        ema_file = save_dir / EMA_STATE
        if ema_file.is_file():
            parts.ema.load_state_dict(load_file(str(ema_file)))
        else:
            log.warning("%s has no %s: EMA starts again from the resumed weights", save_dir, EMA_STATE)
    return training_step


# ------------------------------------------------------------------------------------------------ fp16 scaler
GRAD_SCALER_STATE = "grad_scaler_state.json"


def save_grad_scaler_state(scaler: Any, checkpoint_dir: Path) -> None:
    """The float16 gradient scaler's scale and growth tracker (only with --amp_dtype=float16 on CUDA)."""
    write_json(scaler.state_dict(), Path(checkpoint_dir) / TRAINING_STATE_DIR / GRAD_SCALER_STATE)


def load_grad_scaler_state(scaler: Any, checkpoint_dir: Path) -> None:
    path = Path(checkpoint_dir) / TRAINING_STATE_DIR / GRAD_SCALER_STATE
    if path.is_file():
        scaler.load_state_dict(read_json(path))
    else:
        log.warning("%s is missing: the float16 loss scale starts again from its initial value", path)
