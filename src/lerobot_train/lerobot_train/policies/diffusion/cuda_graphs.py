"""The whole Diffusion denoising loop captured as ONE CUDA graph (GPU inference without launch overhead).

At batch 1 a Diffusion chunk is `num_inference_steps` U-Net calls of a few hundred small kernels each; on a fast
GPU the CPU cannot launch them as fast as they run. Capturing `DiffusionModel.denoise` (the scheduler's
precomputed steps, no host synchronisation) once per batch size and replaying it runs the same kernels with the same
arithmetic: the scheduler and the number of steps are unchanged. DDPM's per-step noise is drawn inside the graph
from torch's CUDA generator (graph-safe: every replay advances it), so replays are random like eager calls.

Usage (done by `DiffusionModel` when `use_cuda_graphs` is switched on and the model is on a CUDA device):

    sampler = CapturedDenoiser(model, batch_size=1, autocast_dtype=torch.bfloat16)   # or None for fp32
    trajectory = sampler(noise, global_cond)   # same as model.denoise(noise, global_cond), much faster
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn


class CapturedDenoiser:
    """A CUDA graph of `model.denoise` for one batch size, dtype and autocast setting."""

    def __init__(self, model: nn.Module, batch_size: int, global_cond_dim: int,
                 autocast_dtype: torch.dtype | None = None, warmup_runs: int = 2) -> None:
        param = next(model.parameters())
        if param.device.type != "cuda":
            raise RuntimeError(f"CUDA graph capture needs the model on a CUDA device, it is on {param.device}")
        self.model = model
        self.batch_size = batch_size
        self.autocast_dtype = autocast_dtype
        config = model.config
        device = param.device
        model.prepare_scheduler(device)
        self.static_noise = torch.zeros(batch_size, config.horizon, config.action_feature.shape[0], device=device,
                                        dtype=param.dtype)
        self.static_cond = torch.zeros(batch_size, global_cond_dim, device=device, dtype=param.dtype)
        # Warm up on a side stream (cuDNN/cuBLAS choose their kernels and allocate workspaces outside the capture).
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream), torch.no_grad(), self._autocast():
            for _ in range(warmup_runs):
                model.denoise(self.static_noise, self.static_cond)
        torch.cuda.current_stream(device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.no_grad(), self._autocast():
            self.static_out = model.denoise(self.static_noise, self.static_cond)

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        # No weight-cast cache: cached casts made during capture would be freed behind the graph's back.
        return torch.autocast("cuda", dtype=self.autocast_dtype, cache_enabled=False)

    def matches(self, noise: Tensor, global_cond: Tensor, autocast_dtype: torch.dtype | None) -> bool:
        return (tuple(noise.shape) == tuple(self.static_noise.shape) and noise.device == self.static_noise.device
                and global_cond.shape[-1] == self.static_cond.shape[-1] and autocast_dtype == self.autocast_dtype)

    def __call__(self, noise: Tensor, global_cond: Tensor) -> Tensor:
        self.static_noise.copy_(noise)
        self.static_cond.copy_(global_cond)
        self.graph.replay()
        return self.static_out.clone()  # the static buffer is overwritten by the next replay
