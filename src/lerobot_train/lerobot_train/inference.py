"""The public inference API: load a checkpoint (ours or upstream LeRobot's) and get actions in dataset units.

    from lerobot_train import load_policy
    policy = load_policy("outputs/train/.../pretrained_model", device="cpu")   # or a Hub repo id (+ revision)
    chunk = policy.predict_action_chunk(observation)   # numpy (B, chunk, action_dim), dataset units
    action = policy.select_action(observation)         # numpy (B, action_dim), the policy's own queue
    policy.reset()                                     # at episode start

`observation` maps feature keys to batched arrays in dataset units: `observation.state` float32 (B, D), cameras
`observation.images.<name>` float32 (B, 3, H, W) in [0, 1], `task` a list of strings. The checkpoint's saved
pre-processor (normalization, relative actions) and post-processor (unnormalization, absolute actions) run inside,
so callers never see normalized values. Real-time chunking (flow policies): pass `inference_delay`,
`prev_chunk_left_over` (B, T, action_dim) in DATASET units and `execution_horizon`; the leftover is normalized with
the same steps as actions before it reaches the sampler.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lerobot_train.configs.constants import ACTION
from lerobot_train.configs.types import FeatureType, PolicyFeature
from lerobot_train.policies.checkpoint_files import read_robot_interface, resolve_pretrained_dir
from lerobot_train.policies.config import PreTrainedConfig, resolve_device
from lerobot_train.policies.factory import get_policy_class, make_pre_post_processors
from lerobot_train.policies.pretrained import CheckpointLoadError, PreTrainedPolicy
from lerobot_train.processors.pipeline import PolicyProcessorPipeline
from lerobot_train.processors.relative_actions import relative_actions_enabled


class ObservationError(ValueError):
    """An observation does not match the policy's inputs; the message names the key and what was expected."""


def load_policy(path_or_repo_id: str | Path, device: str = "cpu", revision: str | None = None) -> LoadedPolicy:
    """Load a `pretrained_model/` folder or Hub repo id for inference on `device`.

    Works for checkpoints written here, by upstream LeRobot >= 0.4 (processor files) and by upstream before 0.4
    (statistics inside model.safetensors). Raises when model.safetensors lacks tensors the model needs.
    """
    folder = resolve_pretrained_dir(path_or_repo_id, revision)
    config = PreTrainedConfig.from_pretrained(folder)
    config.device = resolve_device(device)
    policy = get_policy_class(config.type).from_pretrained(folder, config=config)
    if policy.load_report is not None and policy.load_report.missing_keys:
        missing = policy.load_report.missing_keys
        raise CheckpointLoadError(f"{folder}: model.safetensors lacks {len(missing)} tensors of the {config.type} model, "
                                  f"e.g. {missing[:5]}; the checkpoint does not match its config.json")
    pre, post = make_pre_post_processors(
        config, pretrained_path=folder, overrides={"device_processor": {"device": config.device}},
        legacy_stats=policy.legacy_normalization_stats,
    )
    return LoadedPolicy(policy, pre, post, robot_interface=read_robot_interface(folder), source=str(path_or_repo_id))


class LoadedPolicy:
    """A policy with its processors: observations and actions in dataset units, numpy in and out."""

    def __init__(self, policy: PreTrainedPolicy, preprocessor: PolicyProcessorPipeline,
                 postprocessor: PolicyProcessorPipeline, robot_interface: dict[str, Any] | None = None,
                 source: str = "") -> None:
        self.policy = policy
        self.preprocessor = preprocessor
        self.postprocessor = postprocessor
        self.robot_interface = robot_interface
        self.source = source
        self._relative = relative_actions_enabled(preprocessor)
        # with relative actions the queue holds absolute actions, each anchored at the state its chunk came from
        self._absolute_queue: deque[np.ndarray] = deque()

    # ---------------------------------------------------------------------------------------------- facts
    @property
    def config(self) -> PreTrainedConfig:
        return self.policy.config

    @property
    def input_features(self) -> dict[str, PolicyFeature]:
        return self.policy.config.input_features

    @property
    def output_features(self) -> dict[str, PolicyFeature]:
        return self.policy.config.output_features

    @property
    def device(self) -> str:
        return str(self.policy.config.device)

    @property
    def action_names(self) -> list[str] | None:
        """Names of the action dimensions, from robot_interface.json (None for upstream checkpoints)."""
        features = (self.robot_interface or {}).get("features", {})
        names = features.get(ACTION, {}).get("names")
        return list(names) if isinstance(names, list) else None

    def supports_rtc(self) -> bool:
        return self.policy.supports_rtc()

    # ---------------------------------------------------------------------------------------------- running
    def reset(self) -> None:
        """Episode start: clear the policy's queues and histories and the processors' caches."""
        self.policy.reset()
        self.preprocessor.reset()
        self.postprocessor.reset()
        self._absolute_queue.clear()

    def predict_action_chunk(
        self,
        observation: Mapping[str, Any],
        *,
        inference_delay: int | None = None,
        prev_chunk_left_over: np.ndarray | None = None,
        execution_horizon: int | None = None,
    ) -> np.ndarray:
        """(B, chunk, action_dim) float32 actions in dataset units for a batched observation."""
        batch = self._batch(observation)
        rtc = {"inference_delay": inference_delay, "prev_chunk_left_over": prev_chunk_left_over,
               "execution_horizon": execution_horizon}
        if any(v is not None for v in rtc.values()) and not self.policy.supports_rtc():
            raise ValueError(f"the {self.config.type} policy does not support real-time chunking "
                             "(inference_delay / prev_chunk_left_over / execution_horizon)")
        if prev_chunk_left_over is not None:
            batch[ACTION] = self._leftover(prev_chunk_left_over, batch)
        processed = self.preprocessor(batch)
        kwargs = {}
        if self.policy.supports_rtc():
            kwargs = {k: v for k, v in rtc.items() if k != "prev_chunk_left_over"}
            kwargs["prev_chunk_left_over"] = processed.pop(ACTION) if prev_chunk_left_over is not None else None
        with torch.no_grad():  # not inference_mode: RTC guidance needs autograd inside the sampler
            chunk = self.policy.predict_action_chunk(processed, **kwargs)
        return self._numpy(self.postprocessor(chunk))

    def select_action(self, observation: Mapping[str, Any]) -> np.ndarray:
        """(B, action_dim) float32: the next action of the policy's own queue (a new chunk when it runs out)."""
        if self._relative:
            return self._select_relative(observation)
        processed = self.preprocessor(self._batch(observation))
        with torch.no_grad():
            action = self.policy.select_action(processed)
        return self._numpy(self.postprocessor(action))

    def _select_relative(self, observation: Mapping[str, Any]) -> np.ndarray:
        """Relative-action checkpoints: each chunk is made absolute with the state it was predicted from, then
        queued (n_action_steps at a time); the post-processor would otherwise anchor queued actions at the newest
        state."""
        if getattr(self.config, "temporal_ensemble_coeff", None) is not None:
            raise ValueError("temporal ensembling with relative actions is not supported (each chunk has its own anchor)")
        if not self._absolute_queue:
            chunk = self.predict_action_chunk(observation)
            steps = int(getattr(self.config, "n_action_steps", chunk.shape[1]))
            self._absolute_queue.extend(chunk[:, :steps].transpose(1, 0, 2))
        return self._absolute_queue.popleft()

    # ---------------------------------------------------------------------------------------------- inputs
    def _batch(self, observation: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(observation, Mapping):
            raise ObservationError(f"observation must be a mapping of feature keys to arrays, got {type(observation).__name__}")
        missing = [k for k in self.input_features if k not in observation]
        if missing:
            raise ObservationError(f"observation lacks {missing} (the policy's inputs: {list(self.input_features)})")
        batch: dict[str, Any] = {}
        batch_size = None
        for key, value in observation.items():
            if key == "task":
                batch[key] = [value] if isinstance(value, str) else list(value)
                continue
            feature = self.input_features.get(key)
            tensor = _as_float_tensor(key, value, feature)
            if feature is not None:
                if batch_size is not None and tensor.shape[0] != batch_size:
                    raise ObservationError(f"{key!r} has batch size {tensor.shape[0]}, other inputs {batch_size}")
                batch_size = tensor.shape[0]
            batch[key] = tensor
        return batch

    def _leftover(self, prev: Any, batch: dict[str, Any]) -> torch.Tensor:
        action_shape = self.output_features[ACTION].shape
        tensor = _as_float_tensor("prev_chunk_left_over", prev, None)
        if tensor.dim() != 3 or tuple(tensor.shape[2:]) != tuple(action_shape) or tensor.shape[1] == 0:
            raise ObservationError(f"prev_chunk_left_over must be (B, T>0, {action_shape[0]}) in dataset units, "
                                   f"got {tuple(tensor.shape)}")
        return tensor

    @staticmethod
    def _numpy(tensor: torch.Tensor) -> np.ndarray:
        return tensor.detach().to("cpu", torch.float32).numpy()


def _as_float_tensor(key: str, value: Any, feature: PolicyFeature | None) -> torch.Tensor:
    """A float32 tensor of `value`, checked against the feature's (B, *shape)."""
    if isinstance(value, torch.Tensor):
        tensor = value
    else:
        array = np.asarray(value)
        if array.dtype == object:
            raise ObservationError(f"{key!r} must be a numeric array, got {type(value).__name__}")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if feature is not None and feature.type is FeatureType.VISUAL and not tensor.is_floating_point():
        raise ObservationError(f"{key!r} must be float32 in [0, 1] (B, 3, H, W), got {tensor.dtype} "
                               "(divide uint8 images by 255 and put channels first)")
    if not tensor.is_floating_point() and tensor.dtype != torch.bool:
        tensor = tensor.to(torch.float32)
    elif tensor.is_floating_point() and tensor.dtype != torch.float32:
        tensor = tensor.to(torch.float32)
    if feature is not None:
        expected = tuple(feature.shape)
        if tensor.dim() != len(expected) + 1 or tuple(tensor.shape[1:]) != expected:
            raise ObservationError(f"{key!r} must be batched (B, {', '.join(map(str, expected))}), got {tuple(tensor.shape)}")
    return tensor
