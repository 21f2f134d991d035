"""Evaluation environment configs (`--env.type=...`), registered by type name like upstream's `EnvConfig`.

- `so101_reach`: the simulated SO-101 reaching scene of `lerobot_drivers.sim` as a gymnasium env, with the same
  features, names and units as a dataset recorded from the simulated arm (`config/robots/sim_so101.yaml`): a
  policy trained on such a dataset is evaluated here without any mapping.
- `gym`: any registered gymnasium id (`--env.gym_id=gym_pusht/PushT-v0`), its observations mapped to LeRobot
  keys the way upstream maps them (`pixels` -> observation.image / observation.images.<name>, `agent_pos` ->
  observation.state, `environment_state` -> observation.environment_state).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from lerobot_train.configs.json_codec import ConfigError, decode_fields

_ENV_REGISTRY: dict[str, type["EnvConfig"]] = {}


@dataclass
class EnvConfig:
    """Fields every environment has (upstream's names)."""

    # language instruction given to the policy as `task` (None: the environment's own)
    task: str | None = None
    # control rate: one env step per policy action
    fps: int = 30
    # steps before an episode is cut off (truncated) when it has not succeeded
    episode_length: int = 300

    _choice_name: ClassVar[str] = ""

    @classmethod
    def register_subclass(cls, name: str):
        def decorator(sub: type) -> type:
            _ENV_REGISTRY[name] = sub
            sub._choice_name = name
            return sub

        return decorator

    @staticmethod
    def choices() -> list[str]:
        return sorted(_ENV_REGISTRY)

    @staticmethod
    def get_choice_class(name: str) -> type["EnvConfig"]:
        if name not in _ENV_REGISTRY:
            raise ConfigError(f"unknown env type {name!r} (known: {sorted(_ENV_REGISTRY)})")
        return _ENV_REGISTRY[name]

    @property
    def type(self) -> str:
        return self._choice_name

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> "EnvConfig":
        if not isinstance(data, dict) or "type" not in data:
            raise ConfigError(f"{source}: env must be an object with a 'type' (one of {sorted(_ENV_REGISTRY)})")
        sub = cls.get_choice_class(data["type"])
        return sub(**decode_fields(sub, {k: v for k, v in data.items() if k != "type"}, source, "env"))

    def __post_init__(self) -> None:
        if self.fps <= 0 or self.episode_length <= 0:
            raise ValueError(f"env.fps and env.episode_length must be > 0, got {self.fps} and {self.episode_length}")


@EnvConfig.register_subclass("so101_reach")
@dataclass
class SO101ReachEnvConfig(EnvConfig):
    """The simulated SO-101 reaching a cube: success when the fingertips reach it."""

    task: str | None = "Reach the cube with the gripper."
    fps: int = 30
    episode_length: int = 300
    # the camera's dataset key is observation.images.<camera>; its picture size
    camera: str = "front"
    image_height: int = 480
    image_width: int = 640
    view: str = "three_quarter"  # three_quarter | top | side (lerobot_drivers.sim.scene.VIEWS)
    # fingertips within this distance (metres) of the cube's top centre count as success
    reach_radius: float = 0.04
    # the follower arm: first-order approach to the commanded joint positions, as the servo simulator
    servo_time_constant_s: float = 0.03
    servo_max_speed_deg_s: float = 260.0


@EnvConfig.register_subclass("gym")
@dataclass
class GymEnvConfig(EnvConfig):
    """Any environment in gymnasium's registry; `gym_kwargs` go to gymnasium.make."""

    gym_id: str = ""
    # imported before gymnasium.make so that it registers its ids (e.g. "gym_pusht"); None: derived from the id's
    # namespace ("gym_pusht/PushT-v0" -> "gym_pusht") when that module exists
    package: str | None = None
    fps: int = 10
    episode_length: int = 300
    gym_kwargs: dict[str, Any] = field(default_factory=lambda: {"obs_type": "pixels_agent_pos",
                                                                 "render_mode": "rgb_array"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.gym_id:
            raise ValueError("env.gym_id is required with --env.type=gym (e.g. --env.gym_id=gym_pusht/PushT-v0)")
