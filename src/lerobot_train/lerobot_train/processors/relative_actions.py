"""Relative actions: the model predicts `action - state` for the joints it is asked to, and the post-processor
adds the state back (upstream's `relative_actions_processor` / `absolute_actions_processor`, same JSON configs).

The pre-processor step sits before the normalizer (so the action statistics it is paired with must be statistics
of relative actions) and remembers the last `observation.state` it saw, in dataset units; the post-processor step
adds that state back after unnormalizing. A loaded pair must be linked (`link_relative_absolute`), as the two live in
separate pipelines. Joints named in `exclude_joints` (e.g. the gripper) stay absolute; a name is excluded when an
exclude token equals it or is a substring of it, case-insensitive (upstream's rule).

With an observation history the state is (B, T_obs, D) and the reference is the current frame, the LAST one: our
policies' observation windows end at delta 0 (e.g. [-1, 0]).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from lerobot_train.configs.constants import OBS_STATE
from lerobot_train.processors.pipeline import ProcessorStep, ProcessorStepRegistry, Transition, with_action


def relative_mask(action_dim: int, action_names: list[str] | None, exclude_joints: list[str]) -> torch.Tensor:
    """(action_dim,) float mask: 1 where the action is made relative, 0 where it stays absolute."""
    tokens = [str(t).lower() for t in exclude_joints if t]
    mask = [1.0] * action_dim
    if tokens and action_names is not None:
        for i, name in enumerate(action_names[:action_dim]):
            lowered = str(name).lower()
            if any(t == lowered or t in lowered for t in tokens):
                mask[i] = 0.0
    return torch.tensor(mask)


def _offset(action: torch.Tensor, state: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if state.dim() == 3:
        state = state[:, -1]
    dims = min(mask.shape[0], state.shape[-1], action.shape[-1])
    offset = torch.zeros(action.shape[0], action.shape[-1], dtype=action.dtype, device=action.device)
    offset[:, :dims] = state[:, :dims].to(action.device, action.dtype) * mask[:dims].to(action.device, action.dtype)
    return offset.unsqueeze(1) if action.dim() == 3 else offset


@ProcessorStepRegistry.register("relative_actions_processor")
@dataclass
class RelativeActionsStep(ProcessorStep):
    """action -> action - state (masked), and caches the state for the paired AbsoluteActionsStep."""

    enabled: bool = False
    exclude_joints: list[str] = field(default_factory=list)
    action_names: list[str] | None = None

    def __post_init__(self) -> None:
        self._last_state: torch.Tensor | None = None

    def mask(self, action_dim: int) -> torch.Tensor:
        return relative_mask(action_dim, self.action_names, self.exclude_joints)

    @property
    def cached_state(self) -> torch.Tensor | None:
        return self._last_state

    def __call__(self, transition: Transition) -> Transition:
        state = (transition.observation or {}).get(OBS_STATE)
        if state is not None:
            self._last_state = torch.as_tensor(state)
        if not self.enabled or transition.action is None:
            return transition
        if state is None:
            raise ValueError(f"relative actions need {OBS_STATE!r} in the batch to make the action relative to")
        action = transition.action
        return with_action(transition, action - _offset(action, self._last_state, self.mask(action.shape[-1])))

    def reset(self) -> None:
        self._last_state = None

    def get_config(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "exclude_joints": list(self.exclude_joints), "action_names": self.action_names}


@ProcessorStepRegistry.register("absolute_actions_processor")
@dataclass
class AbsoluteActionsStep(ProcessorStep):
    """action -> action + state (masked), with the state its paired RelativeActionsStep last saw."""

    enabled: bool = False

    def __post_init__(self) -> None:
        self.relative_step: RelativeActionsStep | None = None

    def __call__(self, transition: Transition) -> Transition:
        if not self.enabled or transition.action is None:
            return transition
        if self.relative_step is None:
            raise RuntimeError("absolute_actions_processor is not linked to a relative_actions_processor "
                               "(link_relative_absolute(preprocessor, postprocessor))")
        state = self.relative_step.cached_state
        if state is None:
            raise RuntimeError("absolute_actions_processor: no observation.state seen yet; run the pre-processor on "
                               "the observation before post-processing its actions")
        action = transition.action
        return with_action(transition, action + _offset(action, state, self.relative_step.mask(action.shape[-1])))

    def get_config(self) -> dict[str, Any]:
        return {"enabled": self.enabled}


def link_relative_absolute(preprocessor: Any, postprocessor: Any) -> None:
    """Point the post-processor's absolute-actions step at the pre-processor's relative-actions step."""
    relatives = preprocessor.find(RelativeActionsStep)
    absolutes = postprocessor.find(AbsoluteActionsStep)
    if absolutes and not relatives:
        raise ValueError("the post-processor has an absolute_actions_processor but the pre-processor has no "
                         "relative_actions_processor to take the state from")
    for step in absolutes:
        step.relative_step = relatives[0]


def relative_actions_enabled(preprocessor: Any) -> bool:
    return any(step.enabled for step in preprocessor.find(RelativeActionsStep))
