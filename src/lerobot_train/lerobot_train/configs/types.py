"""Feature and normalization types, with upstream LeRobot's names and JSON values.

The enum values are the strings upstream writes into `config.json` and the processor JSON files
(`"VISUAL"`, `"MEAN_STD"`, ...), so a checkpoint crosses between the two code bases unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class FeatureType(str, Enum):
    """What a feature is to a policy. `str` subclass so JSON encodes it as its value."""

    STATE = "STATE"  # proprioception: observation.state
    VISUAL = "VISUAL"  # a camera: observation.images.<name>, (C, H, W) float in [0, 1]
    ENV = "ENV"  # observation.environment_state (e.g. object poses from a simulator)
    ACTION = "ACTION"
    REWARD = "REWARD"
    LANGUAGE = "LANGUAGE"


class PipelineFeatureType(str, Enum):
    """Which half of a transition a processor step's features belong to."""

    ACTION = "ACTION"
    OBSERVATION = "OBSERVATION"


class NormalizationMode(str, Enum):
    """How a feature is scaled before the model sees it (formulas in `processors/normalize.py`)."""

    MIN_MAX = "MIN_MAX"
    MEAN_STD = "MEAN_STD"
    IDENTITY = "IDENTITY"
    QUANTILES = "QUANTILES"  # q01 / q99 to [-1, 1]
    QUANTILE10 = "QUANTILE10"  # q10 / q90 to [-1, 1]


@dataclass
class PolicyFeature:
    """A policy input or output: its type and its shape without the batch dimension (images are (C, H, W))."""

    type: FeatureType
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        self.type = FeatureType(self.type)
        self.shape = tuple(int(d) for d in self.shape)


class RTCAttentionSchedule(str, Enum):
    """Real-time chunking prefix-weight schedules (upstream `RTCAttentionSchedule`)."""

    ZEROS = "ZEROS"
    ONES = "ONES"
    LINEAR = "LINEAR"
    EXP = "EXP"
