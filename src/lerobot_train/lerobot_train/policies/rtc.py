"""Real-Time Chunking (RTC) guidance for flow-matching chunk policies.

RTC (Black, Galliker, Levine, arXiv 2506.07339) generates the next action chunk while the robot still executes the
current one. The rows of the previous chunk that are not executed yet (the *prefix*, ``prev_chunk``) are in-painted
into the new chunk during sampling: every denoising step gets a pseudo-inverse (PiGDM) guidance term that pulls the
predicted clean chunk towards the prefix, with per-row weights from a soft mask.

Conventions (LeRobot's, so checkpoints and runtimes carry over):

* Time runs from ``t = 1`` (pure noise) to ``t = 0`` (actions); an Euler step is ``x <- x + dt * v`` with ``dt < 0``
  and ``v ~ noise - actions``. The paper's time is ``tau = 1 - t``.
* The predicted clean chunk is ``x1_hat = x_t - t * v(x_t)``.
* The guided velocity is ``v - w * J^T [(y - x1_hat) * W]`` where ``J = d x1_hat / d x_t`` (a vector-Jacobian
  product through the denoiser), ``W`` are the prefix weights and ``w = min(beta, c * inv_r2)`` with
  ``c = (1 - tau) / tau`` and ``inv_r2 = ((1 - tau)^2 + tau^2) / (1 - tau)^2``. The sign is the paper's flipped,
  because ``dt < 0``.
* ``execution_horizon`` is the END of the soft mask counted from the first row of the new chunk (the Kinetix
  reference's ``prefix_attention_horizon``), not the paper's ``s``.

Two forms of ``J``, chosen by ``jacobian`` (:class:`RTCGuidanceJacobian`, ``RTCConfig.guidance_jacobian``):

* ``vjp`` (the paper, the Kinetix reference): the real vector-Jacobian product through the denoiser.
* ``identity`` (upstream LeRobot's ``RTCProcessor.denoise_step``, 0.4.x and its later versions): the velocity is
  evaluated before ``x_t`` requires grad, so the "correction" is the weighted error itself (``J = I``).
  The two agree exactly when the velocity does not depend on ``x_t``. They differ most for a policy whose action
  distribution given the observation is narrow: its denoised chunk hardly depends on ``x_t`` (``J`` small), so
  the real VJP passes little of the error back and the new chunk keeps what the policy would have done alone.
  Measured on the benchmark's flow_chunk policy (benchmarks/bench_policy_node.py): ``|J^T e| / |e|`` on the frozen
  rows is 0.08-0.29 over the 10 Euler steps, the frozen rows miss the previous chunk by 1.8 deg with ``vjp``
  and by 0.14 deg with ``identity``.

``vjp`` needs autograd through the denoiser: call :func:`guided_velocity` under ``torch.no_grad()`` (it enables
grad for the one step itself), never under ``torch.inference_mode()``, whose tensors cannot enter autograd.
``identity`` needs no autograd (one forward per step, no backward).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import torch
from torch import Tensor

from lerobot_train.configs.types import RTCAttentionSchedule

__all__ = [
    "RTCAttentionSchedule",
    "RTCConfig",
    "RTCGuidanceJacobian",
    "guidance_weight",
    "guided_velocity",
    "pad_prefix",
    "prefix_weights",
]


# RTCAttentionSchedule (upstream's enum, its values are the config strings) shapes the soft mask:
#   ZEROS  hard mask: only the rows executed during inference (the delay) are frozen
#   ONES   every row up to execution_horizon is frozen
#   LINEAR frozen delay rows, then a linear ramp down to 0 at execution_horizon
#   EXP    as LINEAR, with the ramp bent by w * (e^w - 1) / (e - 1) (the paper's choice)


class RTCGuidanceJacobian(str, Enum):
    """How the guidance maps the error on the predicted clean chunk back to ``x_t`` (see the module docstring)."""

    VJP = "vjp"  # the real Jacobian of the denoiser (the paper, the Kinetix reference)
    IDENTITY = "identity"  # J = I, as upstream LeRobot's RTCProcessor computes it


@dataclass
class RTCConfig:
    """RTC settings a policy config carries (upstream's field names and defaults).

    The runtime passes ``inference_delay`` and the previous chunk per call; these are the fixed knobs."""

    # Switches the runtime between "replace the queue with the guided chunk" and plain chunk-by-chunk execution.
    enabled: bool = False
    # Soft-mask shape over the overlap between the previous chunk's left-over and the new chunk.
    prefix_attention_schedule: RTCAttentionSchedule = RTCAttentionSchedule.LINEAR
    # beta: the clip on the guidance weight. Upstream: 10 works for 10 flow steps; the Kinetix reference uses 5.
    max_guidance_weight: float = 10.0
    # End row (exclusive) of the soft mask, counted from the first row of the new chunk; upstream suggests 8-12.
    execution_horizon: int = 10
    # Not an upstream field (upstream always computes the identity form): the Jacobian in the guidance term.
    # The default keeps what configs and checkpoints without this field were made with (the paper's VJP).
    guidance_jacobian: RTCGuidanceJacobian = RTCGuidanceJacobian.VJP

    def __post_init__(self) -> None:
        self.prefix_attention_schedule = parse_schedule(self.prefix_attention_schedule)
        self.guidance_jacobian = parse_jacobian(self.guidance_jacobian)
        if not self.max_guidance_weight > 0:
            raise ValueError(f"RTCConfig.max_guidance_weight must be > 0, got {self.max_guidance_weight}")
        if self.execution_horizon < 0:
            raise ValueError(f"RTCConfig.execution_horizon must be >= 0, got {self.execution_horizon}")


def parse_schedule(schedule: RTCAttentionSchedule | str) -> RTCAttentionSchedule:
    """Accepts the enum or its name in any case ("exp", "EXP")."""
    if isinstance(schedule, RTCAttentionSchedule):
        return schedule
    try:
        return RTCAttentionSchedule(str(schedule).upper())
    except ValueError:
        names = ", ".join(s.value for s in RTCAttentionSchedule)
        raise ValueError(f"unknown RTC prefix_attention_schedule {schedule!r}; expected one of {names}") from None


def parse_jacobian(jacobian: RTCGuidanceJacobian | str) -> RTCGuidanceJacobian:
    """Accepts the enum or its value in any case ("vjp", "IDENTITY")."""
    if isinstance(jacobian, RTCGuidanceJacobian):
        return jacobian
    try:
        return RTCGuidanceJacobian(str(jacobian).lower())
    except ValueError:
        names = ", ".join(j.value for j in RTCGuidanceJacobian)
        raise ValueError(f"unknown RTC guidance_jacobian {jacobian!r}; expected one of {names}") from None


def prefix_weights(schedule: RTCAttentionSchedule | str, start: int, end: int, total: int) -> Tensor:
    """Per-row guidance weights (float32, shape ``(total,)``) for a new chunk of ``total`` rows.

    ``start`` is the inference delay (rows the robot executes from the old chunk while this one is computed; they
    get weight 1), ``end`` the execution horizon (weight 0 from there on). ``start`` is clipped to ``end``.
    LINEAR example, start=2, end=6, total=10: ``1 1 .8 .6 .4 .2 0 0 0 0``.
    """
    schedule = parse_schedule(schedule)
    if total < 0 or start < 0 or end < 0:
        raise ValueError(f"prefix_weights needs start, end, total >= 0, got start={start} end={end} total={total}")
    start = min(start, end)
    rows = torch.arange(total)
    if schedule is RTCAttentionSchedule.ZEROS:
        return (rows < start).float()
    if schedule is RTCAttentionSchedule.ONES:
        return (rows < end).float()
    weights = torch.zeros(total)
    weights[: min(start, total)] = 1.0
    ramp_end = min(end, total)
    if ramp_end > start:
        # The ramp excludes both its end points: 1 belongs to the frozen rows, 0 to the free ones.
        ramp = torch.linspace(1.0, 0.0, ramp_end - start + 2)[1:-1]
        if schedule is RTCAttentionSchedule.EXP:
            ramp = ramp * torch.expm1(ramp) / (math.e - 1.0)
        weights[start:ramp_end] = ramp
    return weights


def guidance_weight(time: float | Tensor, max_guidance_weight: float, dtype: torch.dtype = torch.float32) -> Tensor:
    """The clipped PiGDM guidance weight at LeRobot time ``t`` (tensor of the same shape as ``time``).

    With ``tau = 1 - t``: ``min(beta, (1 - tau) / tau * ((1 - tau)^2 + tau^2) / (1 - tau)^2)``; at ``t = 1``
    (``tau = 0``) the weight is beta, at ``t = 0`` it is 0. Computed in ``dtype`` (float32 unless float64 is asked
    for; never in a half type, where the ratio loses its digits).
    """
    time = torch.as_tensor(time)
    beta = torch.as_tensor(float(max_guidance_weight), dtype=dtype, device=time.device)
    tau = 1.0 - time.to(dtype)
    one_minus_tau_sq = (1.0 - tau) ** 2
    inv_r2 = (one_minus_tau_sq + tau**2) / one_minus_tau_sq
    c = torch.nan_to_num((1.0 - tau) / tau, posinf=beta.item())
    # 0 * inf at t = 0 gives nan, which nan_to_num turns into 0 (no guidance on the finished chunk).
    weight = torch.nan_to_num(c * inv_r2, posinf=beta.item())
    return torch.minimum(weight, beta)


def pad_prefix(prev_chunk: Tensor, total: int) -> Tensor:
    """``prev_chunk`` (B, L, A) cut or padded to ``total`` rows by repeating its last real row.

    Never pads with zeros: in normalised space a zero decodes to the dataset mean, so a zero-padded prefix pulls the
    tail of the new chunk towards the mean pose (the jump upstream PR #4454 fixed). An empty prefix is an error.
    """
    if prev_chunk.ndim != 3:
        raise ValueError(f"prev_chunk must be (batch, rows, action_dim), got shape {tuple(prev_chunk.shape)}")
    rows = prev_chunk.shape[1]
    if rows == 0:
        raise ValueError("prev_chunk has no rows: an RTC prefix needs at least one left-over action (pass None "
                         "for the first chunk)")
    if rows >= total:
        return prev_chunk[:, :total]
    last = prev_chunk[:, -1:].expand(-1, total - rows, -1)
    return torch.cat([prev_chunk, last], dim=1)


def _as_batched(tensor: Tensor, name: str) -> Tensor:
    if tensor.ndim == 2:
        return tensor.unsqueeze(0)
    if tensor.ndim != 3:
        raise ValueError(f"{name} must be (rows, action_dim) or (batch, rows, action_dim), "
                         f"got shape {tuple(tensor.shape)}")
    return tensor


def _time_for_broadcast(time: float | Tensor, batch: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """LeRobot time as a tensor that broadcasts against (B, T, A): a scalar, or one value per sample."""
    t = torch.as_tensor(time, dtype=dtype, device=device)
    if t.ndim == 0:
        return t
    if t.numel() != batch:
        raise ValueError(f"time must be a scalar or one value per sample ({batch}), got shape {tuple(t.shape)}")
    return t.reshape(batch, 1, 1)


@torch.no_grad()
def guided_velocity(
    velocity_fn: Callable[[Tensor], Tensor],
    x_t: Tensor,
    time: float | Tensor,
    prev_chunk: Tensor | None,
    inference_delay: int,
    execution_horizon: int,
    schedule: RTCAttentionSchedule | str = RTCAttentionSchedule.LINEAR,
    max_guidance_weight: float = 10.0,
    jacobian: RTCGuidanceJacobian | str = RTCGuidanceJacobian.VJP,
) -> Tensor:
    """The RTC-guided velocity at ``x_t`` (same shape as ``x_t``, detached).

    Args:
        velocity_fn: the denoiser, ``x_t -> v`` with everything else (observation, time) bound. With ``vjp`` it is
            evaluated with grad enabled on a fresh leaf copy of ``x_t``.
        x_t: the current sample, (B, T, A) or (T, A), in the policy's normalised action space.
        time: LeRobot time in [0, 1] (1 = noise), a float, a 0-d tensor or one value per sample.
        prev_chunk: the previous chunk's rows not executed yet, (B, L, A), (1, L, A) or (L, A), same (normalised)
            space as ``x_t``; ``None`` for the first chunk (plain velocity, no guidance). Longer than T is cut, shorter
            is padded by repeating its last row.
        inference_delay: rows executed from the old chunk while this one is computed (weight 1).
        execution_horizon: end row of the soft mask, clipped to the prefix's real length.
        schedule: soft-mask shape (see :class:`RTCAttentionSchedule`).
        max_guidance_weight: beta, the clip on the guidance weight (> 0).
        jacobian: ``vjp`` (the paper's J^T through the denoiser) or ``identity`` (upstream LeRobot's J = I).

    Raises ValueError for malformed inputs (empty prefix, mismatched action dims, negative delay, unknown
    jacobian) and, with ``vjp``, RuntimeError under ``torch.inference_mode`` (autograd cannot run there).
    """
    jacobian = parse_jacobian(jacobian)
    if prev_chunk is None:
        return velocity_fn(x_t).detach()
    if jacobian is RTCGuidanceJacobian.VJP and torch.is_inference_mode_enabled():
        raise RuntimeError("RTC guidance needs autograd through the denoiser: call it under torch.no_grad(), "
                           "not torch.inference_mode()")
    if inference_delay < 0:
        raise ValueError(f"inference_delay must be >= 0, got {inference_delay}")
    if execution_horizon < 0:
        raise ValueError(f"execution_horizon must be >= 0, got {execution_horizon}")
    if not max_guidance_weight > 0:
        raise ValueError(f"max_guidance_weight must be > 0, got {max_guidance_weight}")

    squeezed = x_t.ndim == 2
    x = _as_batched(x_t, "x_t")
    prefix = _as_batched(prev_chunk, "prev_chunk").to(device=x.device, dtype=x.dtype)
    batch, rows, action_dim = x.shape
    if prefix.shape[1] == 0:
        pad_prefix(prefix, rows)  # raises the empty-prefix error
    if prefix.shape[2] != action_dim:
        raise ValueError(f"prev_chunk has action_dim {prefix.shape[2]}, the chunk being sampled has {action_dim}")
    if prefix.shape[0] not in (1, batch):
        raise ValueError(f"prev_chunk has batch {prefix.shape[0]}, the chunk being sampled has {batch}")
    real_rows = prefix.shape[1]
    target = pad_prefix(prefix, rows)
    # Rows past the prefix's real end have nothing to agree with: the soft mask stops there at the latest.
    mask_end = min(execution_horizon, real_rows)
    weights = prefix_weights(schedule, inference_delay, mask_end, rows).to(device=x.device, dtype=x.dtype)
    weights = weights.view(1, rows, 1)
    # Scalars in float64 when the chunk is float64 (reference checks), else float32 (also under bf16 autocast).
    scalar_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    t = _time_for_broadcast(time, batch, x.device, scalar_dtype)

    if jacobian is RTCGuidanceJacobian.IDENTITY:
        velocity = velocity_fn(x)
        correction = (target - (x - t.to(velocity.dtype) * velocity)) * weights
    else:
        with torch.enable_grad():
            x_leaf = x.detach().clone().requires_grad_(True)
            velocity = velocity_fn(x_leaf)
            predicted_actions = x_leaf - t.to(velocity.dtype) * velocity
            error = ((target - predicted_actions) * weights).detach()
            (correction,) = torch.autograd.grad(predicted_actions, x_leaf, grad_outputs=error)

    weight = guidance_weight(t, max_guidance_weight, scalar_dtype).to(dtype=velocity.dtype)
    guided = velocity.detach() - weight * correction
    return guided.squeeze(0) if squeezed else guided
