"""Types shared by policies, processors and the training loop (upstream LeRobot's `lerobot.configs.types`)."""

from lerobot_train.configs.types import (
    FeatureType,
    NormalizationMode,
    PipelineFeatureType,
    PolicyFeature,
    RTCAttentionSchedule,
)

__all__ = ["FeatureType", "NormalizationMode", "PipelineFeatureType", "PolicyFeature", "RTCAttentionSchedule"]
