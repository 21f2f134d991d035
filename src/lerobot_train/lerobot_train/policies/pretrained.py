"""`PreTrainedPolicy`: the base of every policy, and its checkpoint I/O (`config.json` + single-file
`model.safetensors`, as upstream). Policies work in the NORMALIZED space; processors are outside (as upstream).

Loading reads the folder (or downloads the Hub repo once, see checkpoint_files.py), builds the policy from its own
`config.json` without fetching pretrained backbone weights (the checkpoint's weights replace them), and loads the
tensors. Checkpoints from before upstream v0.4 keep their normalization statistics inside `model.safetensors`
(`normalize_inputs.buffer_observation_state.mean`, ...): those tensors are taken out and kept in
`legacy_normalization_stats` for the processor factory; the rest loads as usual.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors.torch import load_file, save_model
from torch import Tensor, nn

from lerobot_train.configs.constants import SAFETENSORS_SINGLE_FILE
from lerobot_train.policies.backbones.resnet import pretrained_backbone_weights_disabled
from lerobot_train.policies.checkpoint_files import resolve_pretrained_dir
from lerobot_train.policies.config import PreTrainedConfig

logger = logging.getLogger(__name__)
T = TypeVar("T", bound="PreTrainedPolicy")

# Module names under which pre-v0.4 policies kept their statistics as buffers.
LEGACY_NORMALIZATION_PREFIXES = ("normalize_inputs.", "normalize_targets.", "unnormalize_outputs.")


class CheckpointLoadError(RuntimeError):
    """model.safetensors does not fit the policy its config.json describes."""


@dataclass
class LoadReport:
    """What happened to the tensors of model.safetensors when loading."""

    missing_keys: list[str] = field(default_factory=list)  # parameters the file lacks (left at their init!)
    unexpected_keys: list[str] = field(default_factory=list)  # tensors of the file no parameter took
    legacy_stat_keys: list[str] = field(default_factory=list)  # pre-v0.4 statistics taken out of the file


def split_legacy_normalization(
    state_dict: dict[str, Tensor], feature_keys: list[str]
) -> tuple[dict[str, Tensor], dict[str, dict[str, Tensor]]]:
    """(model tensors, {feature: {stat: tensor}}) from a pre-v0.4 state dict.

    A buffer is named `buffer_<feature with '.' -> '_'>.<stat>`; the feature is found among `feature_keys` (so a
    camera called `wrist_cam` is not mangled into `wrist.cam`), else the underscores become dots (upstream's guess).
    Statistics of the same feature under several prefixes (normalize_targets / unnormalize_outputs) are equal copies.
    """
    by_buffer_name = {key.replace(".", "_"): key for key in feature_keys}
    model: dict[str, Tensor] = {}
    stats: dict[str, dict[str, Tensor]] = {}
    for key, tensor in state_dict.items():
        prefix = next((p for p in LEGACY_NORMALIZATION_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            model[key] = tensor
            continue
        buffer, _, stat = key[len(prefix):].rpartition(".")
        name = buffer.removeprefix("buffer_")
        feature = by_buffer_name.get(name, name.replace("_", "."))
        stats.setdefault(feature, {})[stat] = tensor
    return model, stats


class PreTrainedPolicy(nn.Module):
    """Base of ACT, Diffusion and the flow policy. Subclasses set `config_class` and `name` (= the config type)."""

    config_class: ClassVar[type[PreTrainedConfig]]
    name: ClassVar[str]

    def __init__(self, config: PreTrainedConfig) -> None:
        super().__init__()
        if not isinstance(config, PreTrainedConfig):
            raise TypeError(f"{type(self).__name__}(config) needs a PreTrainedConfig, got {type(config).__name__}; "
                            f"use {type(self).__name__}.from_pretrained(path) to load a checkpoint")
        self.config = config
        # pre-v0.4 checkpoints: statistics found in model.safetensors (None otherwise)
        self.legacy_normalization_stats: dict[str, dict[str, Tensor]] | None = None
        self.load_report: LoadReport | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not getattr(cls, "config_class", None) or not getattr(cls, "name", None):
            raise TypeError(f"{cls.__name__} must define the class attributes 'config_class' and 'name'")

    # ------------------------------------------------------------------------------------------ the contract
    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Training: (loss, {sub-loss name: float}) for a preprocessed batch."""
        raise NotImplementedError

    def predict_action_chunk(self, batch: dict[str, Tensor], **kwargs: Any) -> Tensor:
        """(B, chunk, action_dim) normalized actions for a preprocessed observation batch."""
        raise NotImplementedError

    def select_action(self, batch: dict[str, Tensor], **kwargs: Any) -> Tensor:
        """(B, action_dim): the next action from the policy's own queue (refilled by predict_action_chunk)."""
        raise NotImplementedError

    def reset(self) -> None:
        """Clear queues and histories (episode start)."""
        raise NotImplementedError

    def get_optim_params(self) -> Any:
        """What the optimizer takes: parameters or param groups (e.g. ACT's separate backbone lr)."""
        return [p for p in self.parameters() if p.requires_grad]

    def supports_rtc(self) -> bool:
        """Whether predict_action_chunk takes real-time-chunking guidance (inference_delay, prev_chunk_left_over)."""
        return False

    # ------------------------------------------------------------------------------------------ save / load
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write config.json and model.safetensors (one file, shared tensors stored once) into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.save(directory)
        module = getattr(self, "module", self)  # unwrap DistributedDataParallel
        save_model(module, str(directory / SAFETENSORS_SINGLE_FILE), force_contiguous=True)
        return directory

    @classmethod
    def from_pretrained(
        cls: type[T],
        pretrained_name_or_path: str | Path,
        *,
        config: PreTrainedConfig | None = None,
        revision: str | None = None,
        device: str | None = None,
        strict: bool = False,
        cache_dir: str | Path | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
    ) -> T:
        """Load a checkpoint folder or Hub repo id. The policy comes back on `device` (default: the config's), in
        eval() mode. `strict=True` makes missing or unexpected tensors an error; otherwise they are logged (as
        upstream) and listed in `policy.load_report`."""
        folder = resolve_pretrained_dir(pretrained_name_or_path, revision, cache_dir=cache_dir, token=token,
                                        local_files_only=local_files_only)
        if config is None:
            config = PreTrainedConfig.from_pretrained(folder)
        if not isinstance(config, cls.config_class):
            raise CheckpointLoadError(f"{folder}: config type {config.type!r} is not a {cls.__name__} checkpoint")
        if device is not None:
            config.device = device
        with pretrained_backbone_weights_disabled():
            policy = cls(config)
        model_file = folder / SAFETENSORS_SINGLE_FILE
        if not model_file.exists():
            raise FileNotFoundError(f"{SAFETENSORS_SINGLE_FILE} not found in {folder}")
        policy.load_model_file(model_file, strict=strict)
        policy.to(config.device)
        policy.eval()
        return policy

    def load_model_file(self, model_file: Path, strict: bool = False) -> LoadReport:
        try:
            state = load_file(str(model_file))
        except Exception as exc:  # safetensors raises its own error types for truncated / foreign files
            raise CheckpointLoadError(f"{model_file}: not a readable safetensors file ({exc})") from exc
        features = [*self.config.input_features, *self.config.output_features]
        state, legacy = split_legacy_normalization(state, features)
        if legacy:
            self.legacy_normalization_stats = legacy
        own = self.state_dict()
        shape_errors = [f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                        for k, v in state.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
        if shape_errors:
            raise CheckpointLoadError(f"{model_file}: tensors do not fit the config's model: {shape_errors[:5]}")
        result = self.load_state_dict(state, strict=False)
        report = LoadReport(list(result.missing_keys), list(result.unexpected_keys),
                            [f"{k}.{s}" for k, per in legacy.items() for s in per])
        if report.missing_keys or report.unexpected_keys:
            message = (f"{model_file}: missing keys {report.missing_keys[:10]}"
                       f"{' ...' if len(report.missing_keys) > 10 else ''}; unexpected keys "
                       f"{report.unexpected_keys[:10]}{' ...' if len(report.unexpected_keys) > 10 else ''}")
            if strict:
                raise CheckpointLoadError(message)
            logger.warning(message)
        self.load_report = report
        return report
