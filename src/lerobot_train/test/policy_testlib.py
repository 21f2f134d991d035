"""Tiny ACT configs, statistics and observations shared by the policy tests (ours and the upstream oracle's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lerobot_train.configs.types import FeatureType, PolicyFeature

STATE_DIM = 6
ACTION_DIM = 6
IMAGE_SHAPE = (3, 48, 64)
CAMERAS = ("observation.images.front", "observation.images.wrist")
ACTION_NAMES = ["shoulder_pan.pos", "shoulder_lift.pos", "elbow_flex.pos", "wrist_flex.pos", "wrist_roll.pos",
                "gripper.pos"]

# small enough for a few seconds per test, with every part of ACT present (two cameras, state, VAE)
TINY_ACT = {
    "chunk_size": 6,
    "n_action_steps": 4,
    "dim_model": 32,
    "n_heads": 4,
    "dim_feedforward": 64,
    "n_encoder_layers": 2,
    "n_decoder_layers": 1,
    "n_vae_encoder_layers": 2,
    "latent_dim": 8,
    "pretrained_backbone_weights": None,
    "dropout": 0.0,
    "device": "cpu",
}


def feature_spec(cameras: tuple[str, ...] = CAMERAS) -> dict[str, dict]:
    """input/output features as config.json spells them."""
    inputs = {"observation.state": {"type": "STATE", "shape": [STATE_DIM]}}
    inputs.update({cam: {"type": "VISUAL", "shape": list(IMAGE_SHAPE)} for cam in cameras})
    return {"input_features": inputs, "output_features": {"action": {"type": "ACTION", "shape": [ACTION_DIM]}}}


def act_config_kwargs(**overrides) -> dict:
    """ACTConfig kwargs for our side (PolicyFeature objects)."""
    spec = feature_spec()
    kwargs = {**TINY_ACT, **overrides}
    for side in ("input_features", "output_features"):
        kwargs.setdefault(side, {k: PolicyFeature(FeatureType(v["type"]), tuple(v["shape"])) for k, v in spec[side].items()})
    return kwargs


def dataset_stats(seed: int = 0, cameras: tuple[str, ...] = CAMERAS) -> dict[str, dict[str, np.ndarray]]:
    """Non-trivial statistics (units of degrees for joints) so a wrong (un)normalization shows."""
    rng = np.random.default_rng(seed)

    def vector(dim: int, centre: float, spread: float) -> dict[str, np.ndarray]:
        mean = rng.normal(centre, spread, dim).astype(np.float32)
        std = rng.uniform(2.0, 20.0, dim).astype(np.float32)
        return {"mean": mean, "std": std, "min": mean - 3 * std, "max": mean + 3 * std,
                "q01": mean - 2.3 * std, "q99": mean + 2.3 * std, "q10": mean - 1.3 * std, "q90": mean + 1.3 * std}

    stats = {"observation.state": vector(STATE_DIM, 10.0, 30.0), "action": vector(ACTION_DIM, 10.0, 30.0)}
    for cam in cameras:
        stats[cam] = {"mean": rng.uniform(0.3, 0.6, (3, 1, 1)).astype(np.float32),
                      "std": rng.uniform(0.1, 0.3, (3, 1, 1)).astype(np.float32),
                      "min": np.zeros((3, 1, 1), np.float32), "max": np.ones((3, 1, 1), np.float32)}
    return stats


def save_stats_npz(stats: dict[str, dict[str, np.ndarray]], path: Path) -> Path:
    np.savez(path, **{f"{k}|{s}": v for k, per in stats.items() for s, v in per.items()})
    return path


def observation(batch: int, seed: int, cameras: tuple[str, ...] = CAMERAS) -> dict[str, np.ndarray]:
    """A batched observation in dataset units: state in degrees, images float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    obs = {"observation.state": rng.normal(10.0, 25.0, (batch, STATE_DIM)).astype(np.float32)}
    for cam in cameras:
        obs[cam] = rng.uniform(0.0, 1.0, (batch, *IMAGE_SHAPE)).astype(np.float32)
    return obs


def randomize_frozen_batchnorm(module: torch.nn.Module, seed: int) -> None:
    """Random FrozenBatchNorm2d statistics/affine terms (identity ones would hide a wrong formula)."""
    from lerobot_train.policies.backbones.resnet import FrozenBatchNorm2d

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, FrozenBatchNorm2d):
                n = m.weight.shape[0]
                m.weight.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
                m.bias.copy_(torch.rand(n, generator=generator) * 0.2 - 0.1)
                m.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
