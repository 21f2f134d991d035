"""The default pre/post-processor scaffold ACT, Diffusion and the flow policy use (upstream's layout, so the state
files are `policy_preprocessor_step_3_normalizer_processor.safetensors` and
`policy_postprocessor_step_0_unnormalizer_processor.safetensors` as upstream names them).

    pre:  rename_observations -> to_batch -> device(config.device) -> [relative_actions] -> normalizer
    post: unnormalizer -> [absolute_actions] -> device(cpu)

The relative/absolute steps are only present when relative actions are enabled; a checkpoint that uses them
needs a LeRobot with those steps (upstream added them after 0.4.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lerobot_train.configs.constants import POLICY_POSTPROCESSOR_DEFAULT_NAME, POLICY_PREPROCESSOR_DEFAULT_NAME
from lerobot_train.processors.normalize import NormalizerStep, UnnormalizerStep, normalization_features
from lerobot_train.processors.pipeline import PolicyProcessorPipeline
from lerobot_train.processors.relative_actions import AbsoluteActionsStep, RelativeActionsStep, link_relative_absolute
from lerobot_train.processors.steps import AddBatchDimensionStep, DeviceStep, RenameObservationsStep


@dataclass
class RelativeActionsSettings:
    """Train on `action - state` for every joint but `exclude_joints` (e.g. ["gripper"])."""

    enabled: bool = False
    exclude_joints: list[str] = field(default_factory=list)
    # the dataset's action names (features["action"]["names"]), used to find the excluded joints
    action_names: list[str] | None = None


def make_default_processors(
    config: Any,
    dataset_stats: dict[str, dict[str, Any]] | None = None,
    relative_actions: RelativeActionsSettings | None = None,
    rename_map: dict[str, str] | None = None,
) -> tuple[PolicyProcessorPipeline, PolicyProcessorPipeline]:
    """(preprocessor, postprocessor) for a policy config (its features, normalization_mapping and device)."""
    pre_steps = [
        RenameObservationsStep(rename_map=dict(rename_map or {})),
        AddBatchDimensionStep(),
        DeviceStep(device=config.device or "cpu"),
    ]
    post_steps: list = [
        UnnormalizerStep(features=dict(config.output_features), norm_map=dict(config.normalization_mapping),
                         stats=dataset_stats),
    ]
    if relative_actions is not None and relative_actions.enabled:
        pre_steps.append(RelativeActionsStep(enabled=True, exclude_joints=list(relative_actions.exclude_joints),
                                             action_names=relative_actions.action_names))
        post_steps.append(AbsoluteActionsStep(enabled=True))
    pre_steps.append(NormalizerStep(features=normalization_features(config), norm_map=dict(config.normalization_mapping),
                                    stats=dataset_stats))
    post_steps.append(DeviceStep(device="cpu"))
    pre = PolicyProcessorPipeline(pre_steps, name=POLICY_PREPROCESSOR_DEFAULT_NAME)
    post = PolicyProcessorPipeline(post_steps, name=POLICY_POSTPROCESSOR_DEFAULT_NAME)
    link_relative_absolute(pre, post)
    return pre, post
