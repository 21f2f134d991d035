"""Shared pieces of the lerobot_train.data tests: tiny datasets, a stand-in policy config, item comparison."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from oracle import oracle_env
from oracle import synthetic_episodes as syn

FPS = syn.FPS
CAMERAS = [*syn.CAMERAS, syn.IMAGE_KEY]


def our_dataset(vcodec: str = "libsvtav1") -> Path:
    """The synthetic episodes (6 episodes, 99 frames, two video cameras, one PNG camera) written by our writer,
    once per test session (read-only: copy before changing it)."""
    return oracle_env.our_dataset(vcodec)


@dataclass
class PolicyWindows:
    """Stands in for a policy config: only the delta-index properties the data code reads."""

    observation_delta_indices: list[int] | None = None
    action_delta_indices: list[int] | None = None
    reward_delta_indices: list[int] | None = None
    input_features: dict[str, Any] = field(default_factory=dict)
    output_features: dict[str, Any] = field(default_factory=dict)


# Diffusion-like windows: two observation steps, an action horizon starting one step in the past.
DIFFUSION_LIKE = PolicyWindows(observation_delta_indices=[-1, 0], action_delta_indices=list(range(-1, 15)))


def windows_seconds(policy: PolicyWindows, features: Mapping[str, Any]) -> dict[str, list[float]]:
    from lerobot_train.data.windows import delta_timestamps_for

    return delta_timestamps_for(policy, FPS, features)


def assert_same_item(ours: Mapping[str, Any], theirs: Mapping[str, Any], where: str) -> None:
    """Same keys; tensors equal in dtype, shape and every value; strings equal."""
    assert set(ours) == set(theirs), f"{where}: keys differ: {sorted(set(ours) ^ set(theirs))}"
    for key, want in theirs.items():
        got = ours[key]
        if isinstance(want, str):
            assert got == want, f"{where} '{key}': {got!r} != {want!r}"
            continue
        assert isinstance(got, torch.Tensor), f"{where} '{key}': {type(got).__name__} is not a tensor"
        assert got.dtype == want.dtype and got.shape == want.shape, (
            f"{where} '{key}': {got.dtype}{tuple(got.shape)} != {want.dtype}{tuple(want.shape)}"
        )
        assert torch.equal(got, want), f"{where} '{key}': values differ"


def to_numpy_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in item.items()}


def index_of(item: Mapping[str, Any]) -> int:
    return int(np.asarray(item["index"]))
