"""From configs to the objects the training loop steps: optimizer, learning-rate scheduler, gradient clipping, EMA.

The optimizer and scheduler *configs* (types "adam"/"adamw", "diffuser"/"cosine_decay_with_warmup", their fields
and formulas) live with the policy configs in `lerobot_train.policies.optim`, because each policy names its presets
there. This module turns a training config into the running objects, as upstream's `make_optimizer_and_scheduler`:
the policy's parameter groups (e.g. ACT's separate backbone learning rate) when the policy presets are used, all
parameters otherwise; the scheduler's horizon is the run's `steps`, so warm-up and decay fit the run.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import torch
from torch import nn


def make_optimizer_and_scheduler(
    optimizer_config: Any,
    scheduler_config: Any | None,
    policy: nn.Module,
    num_training_steps: int,
    use_policy_training_preset: bool = True,
) -> tuple[torch.optim.Optimizer, Any | None]:
    """The optimizer over the policy's parameters and the scheduler (or None) over `num_training_steps` updates."""
    if optimizer_config is None:
        raise ValueError("no optimizer configured: use the policy preset (--use_policy_training_preset=true) or "
                         "set --optimizer.type and its fields")
    get_groups = getattr(policy, "get_optim_params", None)
    if use_policy_training_preset and callable(get_groups):
        params = get_groups()
    else:
        params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = optimizer_config.build(params)
    scheduler = scheduler_config.build(optimizer, num_training_steps) if scheduler_config is not None else None
    return optimizer, scheduler


def trainable_parameters(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def clip_grad_norm(parameters: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Clip the global L2 norm of the gradients to `max_norm` (0 or less: no clipping) and return the norm before
    clipping, as upstream logs it (`grdn`). A non-finite norm is returned, never raised: the caller decides."""
    params = [p for p in parameters if p.grad is not None]
    limit = max_norm if max_norm and max_norm > 0 else math.inf
    if not params:
        return torch.zeros(())
    return torch.nn.utils.clip_grad_norm_(params, limit, error_if_nonfinite=False)


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The first parameter group's learning rate (upstream logs that one)."""
    return float(optimizer.param_groups[0]["lr"])


# ------------------------------------------------------------------------------------------------ EMA
@dataclass
class EMAConfig:
    """Exponential moving average of the weights, evaluated and saved next to the raw weights
    (`pretrained_model_ema/`). It never feeds back into training, so it is free to compare."""

    enable: bool = False
    # ema <- decay * ema + (1 - decay) * weights after every optimizer update
    decay: float = 0.999
    # ramp the decay up as min(decay, (1 + n) / (10 + n)) over the first updates n, so early EMA weights are not
    # dominated by the random initialisation (the formula diffusers' EMAModel uses with use_ema_warmup=False)
    warmup: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.decay < 1.0:
            raise ValueError(f"ema.decay must be in [0, 1), got {self.decay}")


class ExponentialMovingAverage:
    """Shadow copies of a module's floating-point parameters and buffers, updated after each optimizer step.

    Buffers (BatchNorm running statistics) are copied, not averaged. state_dict() maps the module's own names to
    tensors plus `num_updates`, so it is saved with safetensors and restored on resume.
    """

    def __init__(self, module: nn.Module, config: EMAConfig):
        self.config = config
        self.num_updates = 0
        self.params = {n: p.detach().clone() for n, p in module.named_parameters() if p.is_floating_point()}
        self.buffers = {n: b.detach().clone() for n, b in module.named_buffers() if b.is_floating_point()}

    def current_decay(self) -> float:
        if not self.config.warmup:
            return self.config.decay
        return min(self.config.decay, (1 + self.num_updates) / (10 + self.num_updates))

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        decay = self.current_decay()
        live = dict(module.named_parameters())
        names = list(self.params)
        torch._foreach_lerp_([self.params[n] for n in names], [live[n].detach() for n in names], 1.0 - decay)
        for n, b in module.named_buffers():
            if n in self.buffers:
                self.buffers[n].copy_(b)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        for n, p in module.named_parameters():
            if n in self.params:
                p.copy_(self.params[n])
        for n, b in module.named_buffers():
            if n in self.buffers:
                b.copy_(self.buffers[n])

    @contextmanager
    def applied_to(self, module: nn.Module) -> Iterator[nn.Module]:
        """Temporarily put the EMA weights into `module` (to save or evaluate it), then restore the raw ones."""
        backup = {n: t.detach().clone() for n, t in module.state_dict().items()}
        self.copy_to(module)
        try:
            yield module
        finally:
            module.load_state_dict(backup)

    def state_dict(self) -> dict[str, torch.Tensor]:
        out = {f"params.{n}": t for n, t in self.params.items()}
        out.update({f"buffers.{n}": t for n, t in self.buffers.items()})
        out["num_updates"] = torch.tensor([self.num_updates], dtype=torch.int64)
        return out

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        expected = set(self.state_dict())
        if set(state) != expected:
            missing, extra = sorted(expected - set(state))[:5], sorted(set(state) - expected)[:5]
            raise ValueError(f"EMA state does not fit this policy (missing {missing}, unexpected {extra})")
        for n in self.params:
            self.params[n].copy_(state[f"params.{n}"])
        for n in self.buffers:
            self.buffers[n].copy_(state[f"buffers.{n}"])
        self.num_updates = int(state["num_updates"].item())
