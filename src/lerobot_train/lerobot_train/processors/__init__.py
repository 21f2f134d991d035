"""Processor pipelines between dataset units and a policy's normalized space (saved as upstream saves them)."""

from lerobot_train.processors.defaults import RelativeActionsSettings, make_default_processors
from lerobot_train.processors.normalize import NormalizerStep, UnnormalizerStep, stats_to_tensors
from lerobot_train.processors.pipeline import (
    PolicyProcessorPipeline,
    ProcessorConfigError,
    ProcessorStep,
    ProcessorStepRegistry,
    Transition,
)
from lerobot_train.processors.relative_actions import (
    AbsoluteActionsStep,
    RelativeActionsStep,
    link_relative_absolute,
    relative_actions_enabled,
)
from lerobot_train.processors.steps import AddBatchDimensionStep, DeviceStep, RenameObservationsStep

__all__ = [
    "AbsoluteActionsStep", "AddBatchDimensionStep", "DeviceStep", "NormalizerStep", "PolicyProcessorPipeline",
    "ProcessorConfigError", "ProcessorStep", "ProcessorStepRegistry", "RelativeActionsSettings", "RelativeActionsStep",
    "RenameObservationsStep", "Transition", "UnnormalizerStep", "link_relative_absolute", "make_default_processors",
    "relative_actions_enabled", "stats_to_tensors",
]
