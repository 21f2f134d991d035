"""Policy classes by type name, policies built for a dataset, and their pre/post-processors.

    get_policy_class("act")                        -> ACTPolicy (imported on first use)
    make_policy_config("act", chunk_size=50)       -> ACTConfig
    make_policy(config, dataset_meta)              -> a policy whose features come from the dataset when unset
    make_pre_post_processors(config, dataset_stats=..., pretrained_path=...)  -> (preprocessor, postprocessor)
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from lerobot_train.configs.constants import (
    ACTION,
    OBS_ENV_STATE,
    OBS_PREFIX,
    POLICY_POSTPROCESSOR_DEFAULT_NAME,
    POLICY_PREPROCESSOR_DEFAULT_NAME,
)
from lerobot_train.configs.json_codec import ConfigError
from lerobot_train.configs.types import FeatureType, PolicyFeature
from lerobot_train.policies.checkpoint_files import resolve_pretrained_dir
from lerobot_train.policies.config import PreTrainedConfig
from lerobot_train.policies.pretrained import PreTrainedPolicy
from lerobot_train.processors.defaults import RelativeActionsSettings, make_default_processors
from lerobot_train.processors.pipeline import PolicyProcessorPipeline
from lerobot_train.processors.relative_actions import link_relative_absolute

# type -> (module, class); modules are imported only when that policy is used
POLICY_CLASSES: dict[str, tuple[str, str]] = {
    "act": ("lerobot_train.policies.act.modeling_act", "ACTPolicy"),
    "diffusion": ("lerobot_train.policies.diffusion.modeling_diffusion", "DiffusionPolicy"),
    "flow_chunk": ("lerobot_train.policies.flow_chunk.modeling_flow_chunk", "FlowChunkPolicy"),
}


def get_policy_class(policy_type: str) -> type[PreTrainedPolicy]:
    if policy_type not in POLICY_CLASSES:
        raise ConfigError(f"unknown policy type {policy_type!r} (supported: {sorted(POLICY_CLASSES)})")
    module, name = POLICY_CLASSES[policy_type]
    return getattr(importlib.import_module(module), name)


def make_policy_config(policy_type: str, **kwargs: Any) -> PreTrainedConfig:
    """A default config of `policy_type` with `kwargs` set (e.g. chunk_size=50)."""
    return PreTrainedConfig.get_choice_class(policy_type)(**kwargs)


def dataset_to_policy_features(features: dict[str, dict[str, Any]]) -> dict[str, PolicyFeature]:
    """Policy features from a dataset's info.json features: image/video -> VISUAL with (C, H, W) shape,
    observation.environment_state -> ENV, other observation.* -> STATE, action* -> ACTION; the rest is skipped."""
    out: dict[str, PolicyFeature] = {}
    for key, ft in features.items():
        shape = tuple(ft["shape"])
        if ft["dtype"] in ("image", "video"):
            if len(shape) != 3:
                raise ValueError(f"image feature {key!r} must have 3 dimensions, got shape {list(shape)}")
            names = ft.get("names") or []
            if len(names) == 3 and names[2] in ("channel", "channels"):  # stored (h, w, c)
                shape = (shape[2], shape[0], shape[1])
            out[key] = PolicyFeature(FeatureType.VISUAL, shape)
        elif key == OBS_ENV_STATE:
            out[key] = PolicyFeature(FeatureType.ENV, shape)
        elif key.startswith(OBS_PREFIX):
            out[key] = PolicyFeature(FeatureType.STATE, shape)
        elif key.startswith(ACTION):
            out[key] = PolicyFeature(FeatureType.ACTION, shape)
    return out


def fill_features_from_dataset(config: PreTrainedConfig, dataset_features: dict[str, dict[str, Any]]) -> None:
    """Set the config's output features (the dataset's actions) and input features (everything else) when unset."""
    features = dataset_to_policy_features(dataset_features)
    if not config.output_features:
        config.output_features = {k: ft for k, ft in features.items() if ft.type is FeatureType.ACTION}
    if not config.input_features:
        config.input_features = {k: ft for k, ft in features.items() if k not in config.output_features}


def make_policy(config: PreTrainedConfig, dataset_meta: Any | None = None) -> PreTrainedPolicy:
    """A policy for `config`. With `dataset_meta` (anything with `.features`, e.g. lerobot_dataset's DatasetMeta)
    the features are filled from the dataset when the config has none. With `config.pretrained_path` set the
    weights are loaded from that checkpoint (fine-tuning)."""
    if dataset_meta is not None:
        fill_features_from_dataset(config, dataset_meta.features)
    if not config.input_features or not config.output_features:
        raise ValueError(f"{config.type} policy: input_features and output_features must be set "
                         "(give dataset_meta, or set them in the config)")
    policy_cls = get_policy_class(config.type)
    if config.pretrained_path:
        return policy_cls.from_pretrained(config.pretrained_path, config=config)
    return policy_cls(config)


def make_pre_post_processors(
    config: PreTrainedConfig,
    dataset_stats: dict[str, dict[str, Any]] | None = None,
    pretrained_path: str | Path | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    *,
    revision: str | None = None,
    relative_actions: RelativeActionsSettings | None = None,
    legacy_stats: dict[str, dict[str, Any]] | None = None,
) -> tuple[PolicyProcessorPipeline, PolicyProcessorPipeline]:
    """(preprocessor, postprocessor) for `config`.

    With `pretrained_path` (folder or Hub repo id) the saved `policy_preprocessor.json` / `policy_postprocessor.json`
    are loaded, `overrides` applied to the pre-processor (e.g. {"device_processor": {"device": "cuda"}}) and
    `dataset_stats`, when given, replace the saved statistics. A pre-v0.4 checkpoint has no processor files: then
    the default processors are built with `legacy_stats` (the statistics its model.safetensors held; see
    PreTrainedPolicy.legacy_normalization_stats). Without `pretrained_path` the default processors are built from
    `dataset_stats` (and `relative_actions`, when enabled).
    """
    if pretrained_path is None:
        return make_default_processors(config, dataset_stats, relative_actions)
    folder = resolve_pretrained_dir(pretrained_path, revision)
    pre_file = folder / f"{POLICY_PREPROCESSOR_DEFAULT_NAME}.json"
    post_file = folder / f"{POLICY_POSTPROCESSOR_DEFAULT_NAME}.json"
    if not pre_file.exists() and not post_file.exists():
        stats = dataset_stats or legacy_stats
        if not stats:
            raise FileNotFoundError(
                f"{folder}: no {pre_file.name}/{post_file.name} and no normalization statistics in model.safetensors; "
                "give dataset_stats to build the processors"
            )
        pre, post = make_default_processors(config, stats)
        return _apply_overrides_to_default(pre, overrides), post
    stats_override = {"stats": dataset_stats} if dataset_stats else {}
    pre_overrides = dict(overrides or {})
    if stats_override:
        pre_overrides["normalizer_processor"] = {**pre_overrides.get("normalizer_processor", {}), **stats_override}
    pre = PolicyProcessorPipeline.from_pretrained(folder, pre_file.name, overrides=pre_overrides)
    post = PolicyProcessorPipeline.from_pretrained(
        folder, post_file.name, overrides={"unnormalizer_processor": stats_override} if stats_override else None
    )
    link_relative_absolute(pre, post)
    return pre, post


def _apply_overrides_to_default(pre: PolicyProcessorPipeline, overrides: dict[str, dict[str, Any]] | None) -> PolicyProcessorPipeline:
    """Overrides for a freshly built default pre-processor: rebuild the named steps with the new config values."""
    if not overrides:
        return pre
    steps = []
    unused = set(overrides)
    for step in pre.steps:
        if step.registry_name in overrides:
            unused.discard(step.registry_name)
            rebuilt = type(step).from_config({**step.get_config(), **overrides[step.registry_name]}, "overrides")
            rebuilt.load_state_dict(step.state_dict())
            step = rebuilt
        steps.append(step)
    if unused:
        raise ValueError(f"override(s) for {sorted(unused)} match no pre-processor step")
    return PolicyProcessorPipeline(steps, name=pre.name)
