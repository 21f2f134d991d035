"""Optimizer and learning-rate scheduler configs, with upstream LeRobot's names, JSON fields and formulas.

Each policy config returns its presets (`get_optimizer_preset()` / `get_scheduler_preset()`), the training loop
builds them. The JSON form (`{"type": "adamw", "lr": ..., ...}`) is the one upstream's `train_config.json` holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable

import torch

from lerobot_train.configs.json_codec import ConfigError, decode_fields, encode


class _Registry:
    """`type` name <-> dataclass for one family of configs (optimizers, schedulers)."""

    _choices: ClassVar[dict[str, type]]
    _choice_name: ClassVar[str]

    @classmethod
    def register_subclass(cls, name: str):
        def decorator(sub: type) -> type:
            cls._choices[name] = sub
            sub._choice_name = name
            return sub

        return decorator

    @property
    def type(self) -> str:
        return self._choice_name

    def to_dict(self) -> dict[str, Any]:
        return encode(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>"):
        if not isinstance(data, dict) or "type" not in data:
            raise ConfigError(f"{source}: expected an object with a 'type' (one of {sorted(cls._choices)})")
        name = data["type"]
        if name not in cls._choices:
            raise ConfigError(f"{source}: unknown type {name!r} (known: {sorted(cls._choices)})")
        sub = cls._choices[name]
        return sub(**decode_fields(sub, {k: v for k, v in data.items() if k != "type"}, source))


# ------------------------------------------------------------------------------------------------ optimizers
@dataclass
class OptimizerConfig(_Registry):
    _choices: ClassVar[dict[str, type]] = {}

    def build(self, params: Iterable[Any], fused: bool | None = None) -> torch.optim.Optimizer:
        raise NotImplementedError


def _fused_ok(params: list[Any]) -> bool:
    """torch's fused Adam(W) kernels: CPU (float32/64, bf16) and CUDA floating tensors. Same update maths as the
    for-loop implementation; it just does it in one kernel per parameter group."""
    tensors = [p for group in params for p in (group["params"] if isinstance(group, dict) else [group])]
    return bool(tensors) and all(t.is_floating_point() and t.device.type in ("cpu", "cuda") for t in tensors)


@OptimizerConfig.register_subclass("adam")
@dataclass
class AdamConfig(OptimizerConfig):
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip_norm: float = 10.0  # max global grad norm (the training loop clips with it)

    def build(self, params: Iterable[Any], fused: bool | None = None) -> torch.optim.Optimizer:
        params = list(params)
        fused = _fused_ok(params) if fused is None else fused
        return torch.optim.Adam(params, lr=self.lr, betas=self.betas, eps=self.eps, weight_decay=self.weight_decay,
                                fused=fused or None)


@OptimizerConfig.register_subclass("adamw")
@dataclass
class AdamWConfig(OptimizerConfig):
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 1e-2
    grad_clip_norm: float = 10.0

    def build(self, params: Iterable[Any], fused: bool | None = None) -> torch.optim.Optimizer:
        params = list(params)
        fused = _fused_ok(params) if fused is None else fused
        return torch.optim.AdamW(params, lr=self.lr, betas=self.betas, eps=self.eps, weight_decay=self.weight_decay,
                                 fused=fused or None)


# ------------------------------------------------------------------------------------------------ schedulers
@dataclass
class LRSchedulerConfig(_Registry):
    _choices: ClassVar[dict[str, type]] = {}

    def lr_lambda(self, num_training_steps: int):
        """step -> multiplier of each param group's base lr."""
        raise NotImplementedError

    def build(self, optimizer: torch.optim.Optimizer, num_training_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, self.lr_lambda(num_training_steps), -1)


@LRSchedulerConfig.register_subclass("diffuser")
@dataclass
class DiffuserSchedulerConfig(LRSchedulerConfig):
    """diffusers' `get_scheduler(name, num_warmup_steps, num_training_steps)` formulas, written here."""

    name: str = "cosine"  # cosine | linear | constant | constant_with_warmup
    num_warmup_steps: int | None = None

    def lr_lambda(self, num_training_steps: int):
        warmup = self.num_warmup_steps
        if self.name == "constant":
            return lambda step: 1.0
        if warmup is None:
            raise ValueError(f"scheduler {self.name!r} needs num_warmup_steps")

        def warm(step: int) -> float | None:
            return step / max(1, warmup) if step < warmup else None

        if self.name == "constant_with_warmup":
            return lambda step: w if (w := warm(step)) is not None else 1.0
        if self.name == "linear":
            return lambda step: w if (w := warm(step)) is not None else max(
                0.0, (num_training_steps - step) / max(1, num_training_steps - warmup))
        if self.name == "cosine":
            def cosine(step: int) -> float:
                if (w := warm(step)) is not None:
                    return w
                progress = (step - warmup) / max(1, num_training_steps - warmup)
                return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))
            return cosine
        raise ValueError(f"unknown diffuser scheduler name {self.name!r} (cosine, linear, constant, constant_with_warmup)")


@LRSchedulerConfig.register_subclass("cosine_decay_with_warmup")
@dataclass
class CosineDecayWithWarmupSchedulerConfig(LRSchedulerConfig):
    """Linear warm-up from peak_lr/(warmup+1) to peak_lr, then cosine decay to decay_lr over num_decay_steps.
    Both spans shrink proportionally when the run is shorter than num_decay_steps (as upstream)."""

    num_warmup_steps: int = 1000
    num_decay_steps: int = 30000
    peak_lr: float = 2.5e-5
    decay_lr: float = 2.5e-6

    def lr_lambda(self, num_training_steps: int):
        warmup, decay = self.num_warmup_steps, self.num_decay_steps
        if num_training_steps < decay:
            warmup, decay = int(warmup * num_training_steps / decay), num_training_steps
        alpha = self.decay_lr / self.peak_lr

        def schedule(step: int) -> float:
            if step < warmup:
                if step <= 0:
                    return 1 / (warmup + 1)
                return (1 / (warmup + 1) - 1) * (1 - step / warmup) + 1
            cosine = 0.5 * (1 + math.cos(math.pi * min(step, decay) / decay))
            return (1 - alpha) * cosine + alpha

        return schedule

