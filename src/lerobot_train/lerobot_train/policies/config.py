"""`PreTrainedConfig`: the base of every policy config, its registry, and `config.json` I/O as upstream writes it.

A policy config is a registered dataclass (`@PreTrainedConfig.register_subclass("act")`); its registry name is
the `"type"` at the top of `config.json`. Reading a `config.json` resolves the subclass from `"type"` and takes
every value from the file (an unknown key is an error naming the key and the file; a key the file lacks keeps
its default, so files written by older upstream versions with fewer fields still load).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from lerobot_train.configs.constants import ACTION, CONFIG_NAME, OBS_STATE
from lerobot_train.configs.json_codec import ConfigError, decode_fields, encode
from lerobot_train.configs.types import FeatureType, NormalizationMode, PolicyFeature
from lerobot_train.policies.checkpoint_files import resolve_pretrained_dir
from lerobot_train.policies.optim import LRSchedulerConfig, OptimizerConfig

logger = logging.getLogger(__name__)
T = TypeVar("T", bound="PreTrainedConfig")

# type name -> config class; filled by @register_subclass when a configuration module is imported.
_CONFIG_REGISTRY: dict[str, type[PreTrainedConfig]] = {}
# policies shipped here; their configuration modules are imported on first use, so importing this is cheap.
BUILTIN_POLICY_TYPES = ("act", "diffusion", "flow_chunk")


def _device_available(device: str) -> bool:
    import torch

    kind, _, index = device.partition(":")
    if kind == "cpu":
        return True
    if kind == "cuda":
        return torch.cuda.is_available() and (not index or int(index) < torch.cuda.device_count())
    if kind == "mps":
        return torch.backends.mps.is_available()
    return False


def resolve_device(device: str | None) -> str:
    """`device` when it is available here, else the best available one (with a warning when one was asked for)."""
    if device and _device_available(device):
        return device
    chosen = auto_select_device()
    if device:
        logger.warning("device %r is not available here; using %r", device, chosen)
    return chosen


def auto_select_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


@dataclass
class PreTrainedConfig:
    """Fields every policy has (upstream's names, JSON order as upstream writes them)."""

    # Environment steps of observation the policy sees (the current one and n_obs_steps-1 before it).
    n_obs_steps: int = 1
    # {key: PolicyFeature}; empty means "fill from the dataset" (make_policy does it).
    input_features: dict[str, PolicyFeature] = field(default_factory=dict)
    output_features: dict[str, PolicyFeature] = field(default_factory=dict)
    # "cuda", "cuda:1", "cpu", "mps"; None or an unavailable device falls back to the best available one.
    device: str | None = None
    # automatic mixed precision (bf16/fp16 autocast) in training and evaluation
    use_amp: bool = False
    use_peft: bool = False  # upstream field; PEFT adapters are not supported here (kept for file compatibility)
    push_to_hub: bool = True
    repo_id: str | None = None
    private: bool | None = None
    tags: list[str] | None = None
    license: str | None = None
    # A Hub repo id or folder to initialise weights from (fine-tuning); None trains from scratch.
    pretrained_path: Path | None = None
    # {"VISUAL"|"STATE"|"ENV"|"ACTION": NormalizationMode}; each policy sets its own default.
    normalization_mapping: dict[str, NormalizationMode] = field(default_factory=dict)

    _choice_name: ClassVar[str] = ""

    def __post_init__(self) -> None:
        self.device = resolve_device(self.device)
        if self.use_amp and self.device.split(":")[0] not in ("cuda", "cpu"):
            logger.warning("automatic mixed precision is not available on %r; use_amp switched off", self.device)
            self.use_amp = False

    # ------------------------------------------------------------------------------------------ registry
    @classmethod
    def register_subclass(cls, name: str):
        """Class decorator: `@PreTrainedConfig.register_subclass("act")` makes "act" the config.json type."""

        def decorator(sub: type[T]) -> type[T]:
            if name in _CONFIG_REGISTRY and _CONFIG_REGISTRY[name] is not sub:
                raise ValueError(f"policy type {name!r} is already registered by {_CONFIG_REGISTRY[name].__name__}")
            _CONFIG_REGISTRY[name] = sub
            sub._choice_name = name
            return sub

        return decorator

    @staticmethod
    def get_choice_class(name: str) -> type[PreTrainedConfig]:
        """The config class registered under `name`, importing a built-in policy's configuration module first."""
        if name not in _CONFIG_REGISTRY and name in BUILTIN_POLICY_TYPES:
            import importlib

            importlib.import_module(f"lerobot_train.policies.{name}.configuration_{name}")
        if name not in _CONFIG_REGISTRY:
            known = sorted(set(_CONFIG_REGISTRY) | set(BUILTIN_POLICY_TYPES))
            raise ConfigError(f"unknown policy type {name!r} (supported here: {known})")
        return _CONFIG_REGISTRY[name]

    @property
    def type(self) -> str:
        if not self._choice_name:
            raise TypeError(f"{type(self).__name__} is not registered with PreTrainedConfig.register_subclass")
        return self._choice_name

    # ------------------------------------------------------------------------------------------ per policy
    @property
    def observation_delta_indices(self) -> list[int] | None:
        """Frame offsets of the observations a training sample holds (None: the current frame only)."""
        raise NotImplementedError

    @property
    def action_delta_indices(self) -> list[int] | None:
        """Frame offsets of the actions a training sample holds (e.g. range(chunk_size))."""
        raise NotImplementedError

    @property
    def reward_delta_indices(self) -> list[int] | None:
        raise NotImplementedError

    def get_optimizer_preset(self) -> OptimizerConfig:
        raise NotImplementedError

    def get_scheduler_preset(self) -> LRSchedulerConfig | None:
        raise NotImplementedError

    def validate_features(self) -> None:
        """Raise ValueError when the input/output features cannot drive this policy."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------ features
    @property
    def robot_state_feature(self) -> PolicyFeature | None:
        ft = (self.input_features or {}).get(OBS_STATE)
        return ft if ft is not None and ft.type is FeatureType.STATE else None

    @property
    def env_state_feature(self) -> PolicyFeature | None:
        return next((ft for ft in (self.input_features or {}).values() if ft.type is FeatureType.ENV), None)

    @property
    def image_features(self) -> dict[str, PolicyFeature]:
        """Camera inputs in the order of `input_features` (the order models stack them in)."""
        return {k: ft for k, ft in (self.input_features or {}).items() if ft.type is FeatureType.VISUAL}

    @property
    def action_feature(self) -> PolicyFeature | None:
        ft = (self.output_features or {}).get(ACTION)
        return ft if ft is not None and ft.type is FeatureType.ACTION else None

    # ------------------------------------------------------------------------------------------ JSON I/O
    def to_dict(self) -> dict[str, Any]:
        """The config.json content: {"type": ..., fields...}."""
        return encode(self)

    def save(self, directory: str | Path) -> Path:
        """Write `<directory>/config.json` (indent 4, as upstream)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / CONFIG_NAME
        path.write_text(json.dumps(self.to_dict(), indent=4) + "\n", encoding="utf-8")
        return path

    save_pretrained = save

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any], source: str = "<dict>") -> T:
        """A config from a config.json-shaped dict; `type` picks the subclass (and must match `cls` if given)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        if "type" not in data:
            raise ConfigError(f"{source}: missing the policy 'type' key (e.g. \"act\", \"diffusion\")")
        sub = PreTrainedConfig.get_choice_class(data["type"])
        if not issubclass(sub, cls):
            raise ConfigError(f"{source}: type {data['type']!r} is a {sub.__name__}, not a {cls.__name__}")
        kwargs = decode_fields(sub, {k: v for k, v in data.items() if k != "type"}, source)
        try:
            return sub(**kwargs)
        except (ValueError, NotImplementedError) as exc:
            raise ConfigError(f"{source}: {exc}") from exc

    @classmethod
    def from_pretrained(
        cls: type[T],
        pretrained_name_or_path: str | Path,
        *,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
    ) -> T:
        """Read `config.json` from a checkpoint folder, a config.json file, or a Hub repo id (+ revision)."""
        path = Path(pretrained_name_or_path)
        if path.is_file():
            config_file = path
        else:
            folder = resolve_pretrained_dir(
                pretrained_name_or_path, revision, cache_dir=cache_dir, token=token, local_files_only=local_files_only
            )
            config_file = folder / CONFIG_NAME
            if not config_file.exists():
                raise FileNotFoundError(f"{CONFIG_NAME} not found in {folder}")
        try:
            data = json.loads(config_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{config_file}: not valid JSON ({exc})") from exc
        return cls.from_dict(data, source=str(config_file))
