"""The networks of the flow_chunk policy: observation encoders and the AdaLN MLP-Mixer velocity head.

Shapes: B batch, H chunk rows (actions), A action dim, C hidden channels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lerobot_train.policies.diffusion.vision import SpatialSoftmax, output_shape, resize_images


def _groups(channels: int) -> int:
    """GroupNorm groups of about 8 channels each (at least 1, dividing the channel count)."""
    groups = max(1, channels // 8)
    while channels % groups:
        groups -= 1
    return groups


class KeypointImageEncoder(nn.Module):
    """Camera image -> feature vector through spatial-softmax keypoints.

    A short conv stack (the first two convolutions stride 2) produces feature maps; each keypoint channel's softmax
    over the image gives an expected (x, y). Keypoints say *where* things are, which is what reaching needs, at a
    fraction of a ResNet's cost. Images are resized to ``resize_shape`` first (bilinear, antialiased) when set.
    """

    def __init__(self, image_shape: tuple[int, int, int], channels: tuple[int, ...], num_keypoints: int,
                 feature_dim: int, resize_shape: tuple[int, int] | None) -> None:
        super().__init__()
        self.resize_shape = tuple(resize_shape) if resize_shape is not None else None
        layers: list[nn.Module] = []
        in_channels = image_shape[0]
        for i, out_channels in enumerate(channels):
            stride, kernel = (2, 5 if i == 0 else 3) if i < 2 else (1, 3)
            layers += [nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2),
                       nn.GroupNorm(_groups(out_channels), out_channels), nn.Mish()]
            in_channels = out_channels
        self.convs = nn.Sequential(*layers)
        height, width = self.resize_shape or image_shape[1:]
        feature_map = output_shape(self.convs, (1, image_shape[0], height, width))[1:]
        self.keypoints = SpatialSoftmax(feature_map, num_kp=num_keypoints)
        self.out = nn.Sequential(nn.Linear(num_keypoints * 2, feature_dim), nn.Mish())

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, feature_dim)."""
        if self.resize_shape is not None:
            images = resize_images(images, self.resize_shape)
        keypoints = self.keypoints(self.convs(images))
        return self.out(keypoints.flatten(1))


def sinusoidal_time_embedding(time: Tensor, dim: int, min_period: float, max_period: float) -> Tensor:
    """(B,) times in [0, 1] -> (B, dim) sin/cos features with periods spaced geometrically in [min, max]."""
    if dim % 2:
        raise ValueError(f"time embedding dim must be even, got {dim}")
    fraction = torch.linspace(0.0, 1.0, dim // 2, dtype=torch.float64, device=time.device)
    period = min_period * (max_period / min_period) ** fraction
    angles = (2 * math.pi / period).unsqueeze(0) * time.to(torch.float64).unsqueeze(1)
    return torch.cat([angles.sin(), angles.cos()], dim=1).to(time.dtype)


class AdaLNMixerBlock(nn.Module):
    """One MLP-Mixer block (row mixing, then channel mixing) with adaptive LayerNorm (DiT's adaLN-Zero).

    The condition vector gives, per sub-layer, a shift and scale of the normalised input and a gate on the
    residual update. The gates start at zero so each block starts as the identity and training switches it on.
    """

    def __init__(self, rows: int, channels: int, token_hidden: int, channel_hidden: int, cond_dim: int) -> None:
        super().__init__()
        self.row_norm = nn.LayerNorm(channels, elementwise_affine=False, eps=1e-6)
        self.row_mlp = nn.Sequential(nn.Linear(rows, token_hidden), nn.GELU(), nn.Linear(token_hidden, rows))
        self.channel_norm = nn.LayerNorm(channels, elementwise_affine=False, eps=1e-6)
        self.channel_mlp = nn.Sequential(nn.Linear(channels, channel_hidden), nn.GELU(),
                                         nn.Linear(channel_hidden, channels))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 6 * channels))
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """x: (B, H, C), cond: (B, cond_dim) -> (B, H, C)."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(cond).unsqueeze(1).chunk(6, dim=-1)
        y = self.row_norm(x) * (1 + scale1) + shift1
        x = x + gate1 * self.row_mlp(y.transpose(1, 2)).transpose(1, 2)
        y = self.channel_norm(x) * (1 + scale2) + shift2
        return x + gate2 * self.channel_mlp(y)


class VelocityHead(nn.Module):
    """(noisy chunk x_t, flow time t, observation embedding) -> velocity (B, H, A)."""

    def __init__(self, rows: int, action_dim: int, channels: int, token_hidden: int, channel_hidden: int,
                 num_layers: int, cond_dim: int, time_min_period: float, time_max_period: float) -> None:
        super().__init__()
        self.time_min_period = time_min_period
        self.time_max_period = time_max_period
        self.action_in = nn.Linear(action_dim, channels)
        self.row_embedding = nn.Parameter(torch.randn(rows, channels) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(cond_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))
        self.blocks = nn.ModuleList(
            AdaLNMixerBlock(rows, channels, token_hidden, channel_hidden, cond_dim) for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(channels, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 2 * channels))
        nn.init.zeros_(self.final_modulation[1].weight)
        nn.init.zeros_(self.final_modulation[1].bias)
        self.action_out = nn.Linear(channels, action_dim)

    def forward(self, x_t: Tensor, time: Tensor, obs_embedding: Tensor) -> Tensor:
        """x_t: (B, H, A); time: (B,); obs_embedding: (B, cond_dim)."""
        time_features = sinusoidal_time_embedding(time, obs_embedding.shape[-1], self.time_min_period,
                                                  self.time_max_period).to(obs_embedding.dtype)
        cond = obs_embedding + self.time_mlp(time_features)
        x = self.action_in(x_t) + self.row_embedding
        for block in self.blocks:
            x = block(x, cond)
        shift, scale = self.final_modulation(cond).unsqueeze(1).chunk(2, dim=-1)
        return self.action_out(self.final_norm(x) * (1 + scale) + shift)


class ObservationEncoder(nn.Module):
    """Cameras and joint state -> one embedding (B, cond_dim). One image encoder per camera (cameras differ)."""

    def __init__(self, image_shapes: list[tuple[int, int, int]], state_dim: int | None, *, vision_channels,
                 num_keypoints: int, image_feature_dim: int, state_feature_dim: int, resize_shape, cond_dim: int):
        super().__init__()
        self.image_encoders = nn.ModuleList(
            KeypointImageEncoder(shape, vision_channels, num_keypoints, image_feature_dim, resize_shape)
            for shape in image_shapes
        )
        self.state_encoder = (
            nn.Sequential(nn.Linear(state_dim, state_feature_dim), nn.Mish()) if state_dim is not None else None
        )
        total = image_feature_dim * len(image_shapes) + (state_feature_dim if state_dim is not None else 0)
        self.project = nn.Sequential(nn.Linear(total, cond_dim), nn.Mish(), nn.Linear(cond_dim, cond_dim))

    def forward(self, images: list[Tensor], state: Tensor | None) -> Tensor:
        features = [encoder(image) for encoder, image in zip(self.image_encoders, images, strict=True)]
        if self.state_encoder is not None:
            features.append(self.state_encoder(state))
        return self.project(torch.cat(features, dim=-1))


def flow_matching_loss(velocity: Tensor, noise: Tensor, actions: Tensor, action_is_pad: Tensor | None) -> Tensor:
    """Mean squared error to the target velocity ``noise - actions``, over the rows that are real actions."""
    per_element = F.mse_loss(velocity, noise - actions, reduction="none")
    if action_is_pad is None:
        return per_element.mean()
    valid = (~action_is_pad).unsqueeze(-1).to(per_element.dtype)
    return (per_element * valid).sum() / (valid.sum() * per_element.shape[-1]).clamp_min(1.0)
