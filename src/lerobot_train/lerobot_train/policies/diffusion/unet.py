"""The Diffusion policy's conditional 1-D U-Net (Chi et al. 2023, as in upstream LeRobot, parameter names included).

The U-Net denoises a (B, horizon, action_dim) trajectory. Convolutions run along time; every residual block is
conditioned on one global vector (the diffusion-step embedding concatenated with the observation features) through
FiLM: a per-channel scale and bias (or bias only) computed from the condition.

Module attribute names and the order of modules inside ``nn.Sequential`` / ``nn.ModuleList`` are the state-dict
keys (``diffusion_step_encoder.1.weight``, ``down_modules.0.0.conv1.block.0.weight``, ...): they match upstream's
exactly so checkpoints cross both ways. Do not rename or reorder them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint


@dataclass(frozen=True)
class UnetShape:
    """What the U-Net is built for (taken from the DiffusionConfig and the observation encoders)."""

    action_dim: int
    global_cond_dim: int  # observation features per step x n_obs_steps
    down_dims: tuple[int, ...]
    kernel_size: int
    n_groups: int
    diffusion_step_embed_dim: int
    use_film_scale_modulation: bool


class SinusoidalPosEmb(nn.Module):
    """Transformer-style sin/cos embedding of the (integer) diffusion timestep."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        half_dim = self.dim // 2
        scale = math.log(10000) / (half_dim - 1)
        freqs = torch.exp(torch.arange(half_dim, device=x.device) * -scale)
        angles = x.unsqueeze(-1) * freqs.unsqueeze(0)
        return torch.cat((angles.sin(), angles.cos()), dim=-1)


class Conv1dBlock(nn.Module):
    """Conv1d -> GroupNorm -> Mish (keys: block.0 conv, block.1 norm)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, n_groups: int = 8) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, out_channels),
            nn.Mish(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class ConditionalResidualBlock1d(nn.Module):
    """Two Conv1dBlocks with FiLM between them, plus a (1x1 conv if the width changes) residual path."""

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, kernel_size: int = 3, n_groups: int = 8,
                 use_film_scale_modulation: bool = False) -> None:
        super().__init__()
        self.use_film_scale_modulation = use_film_scale_modulation
        self.out_channels = out_channels
        self.conv1 = Conv1dBlock(in_channels, out_channels, kernel_size, n_groups=n_groups)
        cond_channels = out_channels * 2 if use_film_scale_modulation else out_channels
        self.cond_encoder = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, cond_channels))
        self.conv2 = Conv1dBlock(out_channels, out_channels, kernel_size, n_groups=n_groups)
        self.residual_conv = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """x: (B, in_channels, T), cond: (B, cond_dim) -> (B, out_channels, T)."""
        out = self.conv1(x)
        film = self.cond_encoder(cond).unsqueeze(-1)
        if self.use_film_scale_modulation:
            out = film[:, : self.out_channels] * out + film[:, self.out_channels :]
        else:
            out = out + film
        out = self.conv2(out)
        return out + self.residual_conv(x)


class ConditionalUnet1d(nn.Module):
    """Encoder (two residual blocks per level, stride-2 downsampling between levels), two middle blocks, decoder
    with skip connections (ConvTranspose upsampling after every level), and a final conv back to action_dim."""

    def __init__(self, shape: UnetShape) -> None:
        super().__init__()
        self.gradient_checkpointing = False  # recompute residual blocks in backward (trades compute for memory)
        embed = shape.diffusion_step_embed_dim
        self.diffusion_step_encoder = nn.Sequential(
            SinusoidalPosEmb(embed), nn.Linear(embed, embed * 4), nn.Mish(), nn.Linear(embed * 4, embed),
        )
        block = dict(cond_dim=embed + shape.global_cond_dim, kernel_size=shape.kernel_size, n_groups=shape.n_groups,
                     use_film_scale_modulation=shape.use_film_scale_modulation)
        dims = shape.down_dims
        in_out = [(shape.action_dim, dims[0]), *zip(dims[:-1], dims[1:])]

        self.down_modules = nn.ModuleList()
        for level, (dim_in, dim_out) in enumerate(in_out):
            is_last = level == len(in_out) - 1
            self.down_modules.append(nn.ModuleList([
                ConditionalResidualBlock1d(dim_in, dim_out, **block),
                ConditionalResidualBlock1d(dim_out, dim_out, **block),
                nn.Conv1d(dim_out, dim_out, 3, 2, 1) if not is_last else nn.Identity(),
            ]))

        self.mid_modules = nn.ModuleList([
            ConditionalResidualBlock1d(dims[-1], dims[-1], **block),
            ConditionalResidualBlock1d(dims[-1], dims[-1], **block),
        ])

        # Every decoder level upsamples (upstream's "is_last" test never fires there): the encoder downsampled
        # len(down_dims) - 1 times and the decoder has exactly that many levels.
        self.up_modules = nn.ModuleList()
        for dim_out, dim_in in reversed(in_out[1:]):
            self.up_modules.append(nn.ModuleList([
                ConditionalResidualBlock1d(dim_in * 2, dim_out, **block),  # *2: the encoder's skip features
                ConditionalResidualBlock1d(dim_out, dim_out, **block),
                nn.ConvTranspose1d(dim_out, dim_out, 4, 2, 1),
            ]))

        self.final_conv = nn.Sequential(
            Conv1dBlock(dims[0], dims[0], kernel_size=shape.kernel_size),
            nn.Conv1d(dims[0], shape.action_dim, 1),
        )

    def _block(self, module: nn.Module, x: Tensor, cond: Tensor) -> Tensor:
        if self.gradient_checkpointing and self.training:
            return checkpoint(module, x, cond, use_reentrant=False)
        return module(x, cond)

    def forward(self, x: Tensor, timestep: Tensor, global_cond: Tensor | None = None) -> Tensor:
        """x: (B, T, action_dim) noisy trajectory; timestep: (B,) diffusion steps; global_cond: (B, cond) ->
        (B, T, action_dim) prediction (noise or sample, per the config's prediction_type)."""
        x = x.transpose(1, 2)  # convolutions run along time: (B, action_dim, T)
        cond = self.diffusion_step_encoder(timestep)
        if global_cond is not None:
            cond = torch.cat([cond, global_cond], dim=-1)

        skips: list[Tensor] = []
        for resnet, resnet2, downsample in self.down_modules:
            x = self._block(resnet2, self._block(resnet, x, cond), cond)
            skips.append(x)
            x = downsample(x)
        for mid in self.mid_modules:
            x = self._block(mid, x, cond)
        for resnet, resnet2, upsample in self.up_modules:
            x = torch.cat((x, skips.pop()), dim=1)
            x = upsample(self._block(resnet2, self._block(resnet, x, cond), cond))
        return self.final_conv(x).transpose(1, 2)
