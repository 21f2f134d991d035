"""DDPM and DDIM noise schedulers for the Diffusion policy (plain torch; no diffusers).

They reproduce what upstream LeRobot gets from diffusers' ``DDPMScheduler`` / ``DDIMScheduler`` with the arguments
upstream passes (``num_train_timesteps``, ``beta_start``, ``beta_end``, ``beta_schedule``, ``clip_sample``,
``clip_sample_range``, ``prediction_type``) and diffusers' defaults for the rest: "leading" timestep spacing with no
offset, DDPM's "fixed_small" variance, DDIM with ``set_alpha_to_one=True`` and ``eta = 0``. The arithmetic follows
the same float32 order, so a step here equals a diffusers step to the last bit or close to it.

Why not a straight port: :meth:`set_timesteps` turns the schedule into a list of per-step coefficient tensors
(:class:`DenoisingStep`), so a reverse step is a fixed sequence of tensor operations with no indexing or branching on
tensor values. That is what lets the whole denoising loop be captured in one CUDA graph without changing a step.

Notation (DDPM paper): ``alpha_bar[t] = prod_{s<=t} (1 - beta_s)``; the forward process is
``x_t = sqrt(alpha_bar[t]) x_0 + sqrt(1 - alpha_bar[t]) eps``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
PREDICTION_TYPES = ("epsilon", "sample")


def make_betas(beta_schedule: str, num_train_timesteps: int, beta_start: float, beta_end: float) -> Tensor:
    """The per-step noise variances beta_t (float32, shape (num_train_timesteps,))."""
    if beta_schedule == "linear":
        return torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float32)
    if beta_schedule == "scaled_linear":
        return torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float32) ** 2
    if beta_schedule == "squaredcos_cap_v2":
        # Nichol & Dhariwal's cosine schedule: alpha_bar(t) = cos^2((t + s) / (1 + s) * pi / 2), s = 0.008, each
        # beta capped at 0.999 so the last step stays invertible. Computed in float64 like the reference.
        def alpha_bar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

        n = num_train_timesteps
        betas = [min(1 - alpha_bar((i + 1) / n) / alpha_bar(i / n), 0.999) for i in range(n)]
        return torch.tensor(betas, dtype=torch.float32)
    raise ValueError(f"unknown beta_schedule {beta_schedule!r}; expected one of {', '.join(BETA_SCHEDULES)}")


@dataclass(frozen=True)
class DenoisingStep:
    """Everything one reverse step needs, precomputed (0-d float32 tensors except ``timestep``).

    The predicted clean sample is ``x0 = (x_t - sqrt_one_minus_alpha_bar * eps) / sqrt_alpha_bar`` (epsilon
    prediction) or the model output (sample prediction), clipped when configured; then
    ``x_prev = x0_coeff * x0 + sample_coeff * x_t + epsilon_coeff * eps + noise_std * z`` with ``z ~ N(0, I)``.
    """

    timestep: int
    sqrt_alpha_bar: Tensor
    sqrt_one_minus_alpha_bar: Tensor
    x0_coeff: Tensor
    sample_coeff: Tensor  # DDPM's posterior-mean weight on x_t (0 for DDIM)
    epsilon_coeff: Tensor  # DDIM's direction-to-x_t weight on eps (0 for DDPM)
    noise_std: Tensor  # 0 where the step adds no noise (the last DDPM step, DDIM with eta = 0)

    def to(self, device: torch.device | str) -> DenoisingStep:
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return DenoisingStep(**{k: v.to(device) if isinstance(v, Tensor) else v for k, v in fields.items()})


class _NoiseScheduler:
    """The forward process and the bookkeeping shared by DDPM and DDIM."""

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        clip_sample: bool = True,
        clip_sample_range: float = 1.0,
        prediction_type: str = "epsilon",
    ) -> None:
        if num_train_timesteps < 1:
            raise ValueError(f"num_train_timesteps must be >= 1, got {num_train_timesteps}")
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"unknown prediction_type {prediction_type!r}; expected one of {', '.join(PREDICTION_TYPES)}")
        self.num_train_timesteps = num_train_timesteps
        self.clip_sample = clip_sample
        self.clip_sample_range = clip_sample_range
        self.prediction_type = prediction_type
        self.betas = make_betas(beta_schedule, num_train_timesteps, beta_start, beta_end)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        self.num_inference_steps: int | None = None
        self.timesteps = torch.arange(num_train_timesteps - 1, -1, -1, dtype=torch.long)
        self.steps: list[DenoisingStep] = []

    def add_noise(self, original_samples: Tensor, noise: Tensor, timesteps: Tensor) -> Tensor:
        """The forward process: x_t for each sample's timestep (timesteps: (B,) long)."""
        alphas_cumprod = self.alphas_cumprod.to(device=original_samples.device, dtype=original_samples.dtype)
        alpha_bar = alphas_cumprod[timesteps.to(original_samples.device)]
        shape = (-1,) + (1,) * (original_samples.ndim - 1)
        return alpha_bar.sqrt().view(shape) * original_samples + (1 - alpha_bar).sqrt().view(shape) * noise

    def set_timesteps(self, num_inference_steps: int, device: torch.device | str | None = None) -> None:
        """Chooses ``num_inference_steps`` evenly spaced ("leading") timesteps and precomputes their steps."""
        if not 1 <= num_inference_steps <= self.num_train_timesteps:
            raise ValueError(f"num_inference_steps must be in [1, {self.num_train_timesteps}] (num_train_timesteps), "
                             f"got {num_inference_steps}")
        self.num_inference_steps = num_inference_steps
        step_ratio = self.num_train_timesteps // num_inference_steps
        timesteps = (np.arange(num_inference_steps) * step_ratio).round()[::-1].astype(np.int64)
        self.timesteps = torch.from_numpy(timesteps.copy()).to(device)
        previous = [int(t) for t in timesteps[1:]] + [-1]
        self.steps = [self._make_step(int(t), prev).to(device or "cpu") for t, prev in zip(timesteps, previous)]

    def _make_step(self, t: int, prev_t: int) -> DenoisingStep:
        raise NotImplementedError

    def predict_original_sample(self, step: DenoisingStep, model_output: Tensor, sample: Tensor) -> Tensor:
        if self.prediction_type == "epsilon":
            x0 = (sample - step.sqrt_one_minus_alpha_bar * model_output) / step.sqrt_alpha_bar
        else:
            x0 = model_output
        if self.clip_sample:
            x0 = x0.clamp(-self.clip_sample_range, self.clip_sample_range)
        return x0

    def step(self, model_output: Tensor, timestep: int | Tensor, sample: Tensor,
             generator: torch.Generator | None = None) -> Tensor:
        """One reverse step x_t -> x_{t_prev} for a timestep of the current :meth:`set_timesteps` plan."""
        if not self.steps:
            raise RuntimeError("call set_timesteps(num_inference_steps) before step()")
        t = int(timestep)
        index = self.num_inference_steps - 1 - t // (self.num_train_timesteps // self.num_inference_steps)
        if not 0 <= index < len(self.steps) or self.steps[index].timestep != t:
            raise ValueError(f"timestep {t} is not one of this scheduler's {self.num_inference_steps} inference steps")
        return self.step_with(self.steps[index], model_output, sample, generator)

    def step_with(self, step: DenoisingStep, model_output: Tensor, sample: Tensor,
                  generator: torch.Generator | None = None, noise: Tensor | None = None) -> Tensor:
        """The reverse step from precomputed coefficients (no host synchronisation: safe in a CUDA graph)."""
        raise NotImplementedError


class DDPMScheduler(_NoiseScheduler):
    """Ancestral sampling (Ho et al. 2020) with the "fixed_small" posterior variance."""

    def _make_step(self, t: int, prev_t: int) -> DenoisingStep:
        alpha_bar = self.alphas_cumprod[t]
        alpha_bar_prev = self.alphas_cumprod[prev_t] if prev_t >= 0 else torch.tensor(1.0)
        one_minus_alpha_bar = 1 - alpha_bar
        one_minus_alpha_bar_prev = 1 - alpha_bar_prev
        current_alpha = alpha_bar / alpha_bar_prev
        current_beta = 1 - current_alpha
        variance = torch.clamp(one_minus_alpha_bar_prev / one_minus_alpha_bar * current_beta, min=1e-20)
        zero = torch.tensor(0.0)
        return DenoisingStep(
            timestep=t,
            sqrt_alpha_bar=alpha_bar**0.5,
            sqrt_one_minus_alpha_bar=one_minus_alpha_bar**0.5,
            x0_coeff=(alpha_bar_prev**0.5 * current_beta) / one_minus_alpha_bar,
            sample_coeff=current_alpha**0.5 * one_minus_alpha_bar_prev / one_minus_alpha_bar,
            epsilon_coeff=zero,
            noise_std=variance**0.5 if t > 0 else zero,
        )

    def step_with(self, step: DenoisingStep, model_output: Tensor, sample: Tensor,
                  generator: torch.Generator | None = None, noise: Tensor | None = None) -> Tensor:
        x0 = self.predict_original_sample(step, model_output, sample)
        prev_sample = step.x0_coeff * x0 + step.sample_coeff * sample
        if step.timestep > 0:
            if noise is None:
                noise = torch.randn(model_output.shape, generator=generator, device=model_output.device,
                                    dtype=model_output.dtype)
            prev_sample = prev_sample + step.noise_std * noise
        return prev_sample


class DDIMScheduler(_NoiseScheduler):
    """Deterministic DDIM sampling (Song et al. 2021, eta = 0): skips timesteps without retraining."""

    def _make_step(self, t: int, prev_t: int) -> DenoisingStep:
        alpha_bar = self.alphas_cumprod[t]
        # set_alpha_to_one: the step past the last timestep lands on the clean sample.
        alpha_bar_prev = self.alphas_cumprod[prev_t] if prev_t >= 0 else torch.tensor(1.0)
        zero = torch.tensor(0.0)
        return DenoisingStep(
            timestep=t,
            sqrt_alpha_bar=alpha_bar**0.5,
            sqrt_one_minus_alpha_bar=(1 - alpha_bar) ** 0.5,
            x0_coeff=alpha_bar_prev**0.5,
            sample_coeff=zero,
            epsilon_coeff=(1 - alpha_bar_prev) ** 0.5,
            noise_std=zero,
        )

    def step_with(self, step: DenoisingStep, model_output: Tensor, sample: Tensor,
                  generator: torch.Generator | None = None, noise: Tensor | None = None) -> Tensor:
        if self.prediction_type == "epsilon":
            epsilon = model_output
        else:  # the noise implied by the (unclipped) predicted sample
            epsilon = (sample - step.sqrt_alpha_bar * model_output) / step.sqrt_one_minus_alpha_bar
        x0 = self.predict_original_sample(step, model_output, sample)
        return step.x0_coeff * x0 + step.epsilon_coeff * epsilon


def make_noise_scheduler(name: str, **kwargs) -> DDPMScheduler | DDIMScheduler:
    """The scheduler upstream's ``noise_scheduler_type`` names ("DDPM" or "DDIM")."""
    if name == "DDPM":
        return DDPMScheduler(**kwargs)
    if name == "DDIM":
        return DDIMScheduler(**kwargs)
    raise ValueError(f"unknown noise_scheduler_type {name!r}; expected 'DDPM' or 'DDIM'")
