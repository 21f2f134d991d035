"""The plain steps of the default pipelines: rename observation keys, add a batch dimension, move to a device."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from lerobot_train.configs.constants import OBS_ENV_STATE, OBS_IMAGE, OBS_IMAGES, OBS_STATE
from lerobot_train.processors.pipeline import ProcessorStep, ProcessorStepRegistry, Transition, with_action, with_observation


@ProcessorStepRegistry.register("rename_observations_processor")
@dataclass
class RenameObservationsStep(ProcessorStep):
    """Renames observation keys (`{"observation.images.top": "observation.images.front"}`), so a policy trained on
    one camera name can run on a robot that names it differently."""

    rename_map: dict[str, str] = field(default_factory=dict)

    def __call__(self, transition: Transition) -> Transition:
        if not self.rename_map or not transition.observation:
            return transition
        renamed = {self.rename_map.get(k, k): v for k, v in transition.observation.items()}
        return with_observation(transition, renamed)

    def get_config(self) -> dict[str, Any]:
        return {"rename_map": dict(self.rename_map)}


@ProcessorStepRegistry.register("to_batch_processor")
@dataclass
class AddBatchDimensionStep(ProcessorStep):
    """Adds the batch dimension to a single (unbatched) sample: 1-D state/action, 3-D images, a task string.
    Already batched values pass unchanged, so the step is safe on batches too."""

    def __call__(self, transition: Transition) -> Transition:
        action = transition.action
        if isinstance(action, torch.Tensor) and action.dim() == 1:
            transition = with_action(transition, action.unsqueeze(0))
        if transition.observation:
            observation = dict(transition.observation)
            for key, value in observation.items():
                if not isinstance(value, torch.Tensor):
                    continue
                if key in (OBS_STATE, OBS_ENV_STATE) and value.dim() == 1:
                    observation[key] = value.unsqueeze(0)
                elif (key == OBS_IMAGE or key.startswith(f"{OBS_IMAGES}.")) and value.dim() == 3:
                    observation[key] = value.unsqueeze(0)
            transition = with_observation(transition, observation)
        extra = transition.complementary_data
        if isinstance(extra.get("task"), str):
            extra = {**extra, "task": [extra["task"]]}
        for key in ("index", "task_index"):
            if isinstance(extra.get(key), torch.Tensor) and extra[key].dim() == 0:
                extra = {**extra, key: extra[key].unsqueeze(0)}
        if extra is not transition.complementary_data:
            transition = Transition(transition.observation, transition.action, extra)
        return transition


_FLOAT_DTYPES = {
    "float16": torch.float16, "half": torch.float16,
    "float32": torch.float32, "float": torch.float32,
    "float64": torch.float64, "double": torch.float64,
    "bfloat16": torch.bfloat16,
}


@ProcessorStepRegistry.register("device_processor")
@dataclass
class DeviceStep(ProcessorStep):
    """Moves every tensor to `device` (and floating tensors to `float_dtype` when set)."""

    device: str = "cpu"
    float_dtype: str | None = None

    def __post_init__(self) -> None:
        from lerobot_train.policies.config import resolve_device

        self._device = torch.device(resolve_device(str(self.device)))
        self.device = self._device.type if self._device.index is None else str(self._device)
        if self.float_dtype is not None and self.float_dtype not in _FLOAT_DTYPES:
            raise ValueError(f"float_dtype must be one of {sorted(_FLOAT_DTYPES)}, got {self.float_dtype!r}")
        self._dtype = _FLOAT_DTYPES.get(self.float_dtype) if self.float_dtype else None

    def _move(self, value: Any) -> Any:
        if not isinstance(value, torch.Tensor):
            return value
        target = value.device if (value.is_cuda and self._device.type == "cuda" and self._device.index is None) else self._device
        if value.device != target:
            value = value.to(target, non_blocking=target.type == "cuda")
        if self._dtype is not None and value.is_floating_point():
            value = value.to(self._dtype)
        return value

    def __call__(self, transition: Transition) -> Transition:
        observation = {k: self._move(v) for k, v in transition.observation.items()} if transition.observation else transition.observation
        extra = {k: self._move(v) for k, v in transition.complementary_data.items()}
        return Transition(observation, self._move(transition.action), extra)

    def get_config(self) -> dict[str, Any]:
        return {"device": self.device, "float_dtype": self.float_dtype}
