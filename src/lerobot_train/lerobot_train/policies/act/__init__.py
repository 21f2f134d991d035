"""ACT: Action Chunking Transformer (upstream LeRobot's architecture and checkpoint names)."""

from lerobot_train.policies.act.configuration_act import ACTConfig
from lerobot_train.policies.act.modeling_act import ACTPolicy

__all__ = ["ACTConfig", "ACTPolicy"]
