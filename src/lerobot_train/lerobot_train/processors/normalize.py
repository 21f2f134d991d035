"""Normalization of observations and actions with dataset statistics, and its inverse (upstream's formulas and eps).

    MEAN_STD    x' = (x - mean) / (std + eps)                    x = x' * std + mean
    MIN_MAX     x' = 2 (x - min) / (max - min) - 1               x = (x' + 1) / 2 * (max - min) + min
    QUANTILES   as MIN_MAX with q01 / q99
    QUANTILE10  as MIN_MAX with q10 / q90
    IDENTITY    unchanged
A zero range (max == min) is replaced by eps. Which mode applies to a key comes from its feature type through
`norm_map` ({"STATE": "MEAN_STD", ...}). Statistics are saved flat as "<feature>.<stat>" tensors, like upstream,
including statistics of keys the step does not use (upstream keeps everything it was given).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lerobot_train.configs.constants import ACTION
from lerobot_train.configs.types import FeatureType, NormalizationMode, PolicyFeature
from lerobot_train.processors.pipeline import ProcessorStep, ProcessorStepRegistry, Transition

# stat names each mode needs: (low/centre, high/scale)
_MODE_STATS = {
    NormalizationMode.MEAN_STD: ("mean", "std"),
    NormalizationMode.MIN_MAX: ("min", "max"),
    NormalizationMode.QUANTILES: ("q01", "q99"),
    NormalizationMode.QUANTILE10: ("q10", "q90"),
}


def stats_to_tensors(stats: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, torch.Tensor]]:
    """{feature: {stat: array-like}} -> float32 CPU tensors (numbers, lists, numpy arrays and tensors accepted)."""
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, per in (stats or {}).items():
        if not isinstance(per, dict):
            raise ValueError(f"statistics of {key!r} must be a {{stat: values}} mapping, got {type(per).__name__}")
        out[key] = {}
        for name, value in per.items():
            if isinstance(value, torch.Tensor):
                tensor = value.detach().to("cpu", torch.float32)
            else:
                tensor = torch.as_tensor(np.asarray(value, dtype=np.float64), dtype=torch.float32)
            out[key][name] = tensor
    return out


def _decode_features(features: dict[str, Any]) -> dict[str, PolicyFeature]:
    out = {}
    for key, ft in features.items():
        if isinstance(ft, PolicyFeature):
            out[key] = ft
        elif isinstance(ft, dict) and "type" in ft and "shape" in ft:
            out[key] = PolicyFeature(FeatureType(ft["type"]), tuple(ft["shape"]))
        else:
            raise ValueError(f"feature {key!r} must be {{'type', 'shape'}}, got {ft!r}")
    return out


@dataclass
class _Normalization(ProcessorStep):
    features: dict[str, PolicyFeature]
    norm_map: dict[FeatureType, NormalizationMode]
    # {feature: {stat: values}}; given explicitly it wins over a saved state file (upstream's override rule)
    stats: dict[str, dict[str, Any]] | None = None
    eps: float = 1e-8
    # only these observation keys are normalized (None: every observation key with a feature)
    normalize_observation_keys: list[str] | None = None

    def __post_init__(self) -> None:
        self.features = _decode_features(self.features)
        self.norm_map = {FeatureType(k): NormalizationMode(v) for k, v in self.norm_map.items()}
        self._stats_given = bool(self.stats)
        self._tensors = stats_to_tensors(self.stats)
        self._cast: dict[tuple[torch.device, torch.dtype], dict[str, dict[str, torch.Tensor]]] = {}

    # -- state -------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"{key}.{name}": t for key, per in self._tensors.items() for name, t in per.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if self._stats_given:
            return  # explicitly given statistics win over the saved ones
        tensors: dict[str, dict[str, torch.Tensor]] = {}
        for flat_key, tensor in state.items():
            key, _, name = flat_key.rpartition(".")
            if not key:
                raise ValueError(f"{self.registry_name}: state key {flat_key!r} is not '<feature>.<stat>'")
            tensors.setdefault(key, {})[name] = tensor.to("cpu", torch.float32)
        self._tensors = tensors
        self._cast = {}

    @property
    def tensor_stats(self) -> dict[str, dict[str, torch.Tensor]]:
        return self._tensors

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "eps": self.eps,
            "features": {k: {"type": ft.type.value, "shape": list(ft.shape)} for k, ft in self.features.items()},
            "norm_map": {t.value: m.value for t, m in self.norm_map.items()},
        }
        if self.normalize_observation_keys is not None:
            config["normalize_observation_keys"] = sorted(self.normalize_observation_keys)
        return config

    # -- maths -------------------------------------------------------------------------------------------------
    def _stats_for(self, key: str, like: torch.Tensor) -> dict[str, torch.Tensor] | None:
        cache = self._cast.get((like.device, like.dtype))
        if cache is None:
            cache = {k: {n: t.to(like.device, like.dtype) for n, t in per.items()} for k, per in self._tensors.items()}
            self._cast[(like.device, like.dtype)] = cache
        return cache.get(key)

    def transform(self, tensor: torch.Tensor, key: str, feature_type: FeatureType, *, inverse: bool) -> torch.Tensor:
        mode = self.norm_map.get(feature_type, NormalizationMode.IDENTITY)
        if mode is NormalizationMode.IDENTITY:
            return tensor
        low_name, high_name = _MODE_STATS[mode]
        stats = self._stats_for(key, tensor)
        if stats is None or low_name not in stats or high_name not in stats:
            have = sorted(stats) if stats else []
            raise ValueError(
                f"{self.registry_name}: {mode.value} for {key!r} needs statistics {low_name!r} and {high_name!r}, "
                f"have {have} (compute the dataset statistics, or set this feature type to IDENTITY)"
            )
        low, high = stats[low_name], stats[high_name]
        if mode is NormalizationMode.MEAN_STD:
            return tensor * high + low if inverse else (tensor - low) / (high + self.eps)
        span = high - low
        span = torch.where(span == 0, torch.tensor(self.eps, device=tensor.device, dtype=tensor.dtype), span)
        if inverse:
            return (tensor + 1) / 2 * span + low
        return 2 * (tensor - low) / span - 1

    def _apply(self, transition: Transition, inverse: bool) -> Transition:
        observation = transition.observation
        if observation:
            observation = dict(observation)
            for key, ft in self.features.items():
                if ft.type is FeatureType.ACTION or key not in observation:
                    continue
                if self.normalize_observation_keys is not None and key not in self.normalize_observation_keys:
                    continue
                observation[key] = self.transform(torch.as_tensor(observation[key]), key, ft.type, inverse=inverse)
        action = transition.action
        if action is not None:
            action = self.transform(action, ACTION, FeatureType.ACTION, inverse=inverse)
        return Transition(observation, action, transition.complementary_data)


@ProcessorStepRegistry.register("normalizer_processor")
@dataclass
class NormalizerStep(_Normalization):
    """Dataset units -> the model's normalized space (observations with a feature, and the action)."""

    def __call__(self, transition: Transition) -> Transition:
        return self._apply(transition, inverse=False)


@ProcessorStepRegistry.register("unnormalizer_processor")
@dataclass
class UnnormalizerStep(_Normalization):
    """The model's normalized space -> dataset units (the post-processor's first step)."""

    def __call__(self, transition: Transition) -> Transition:
        return self._apply(transition, inverse=True)


def normalization_features(config: Any) -> dict[str, PolicyFeature]:
    """Every feature the normalizer handles: the policy's inputs and outputs."""
    return {**(config.input_features or {}), **(config.output_features or {})}

