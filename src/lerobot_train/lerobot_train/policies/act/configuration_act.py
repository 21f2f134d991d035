"""ACT (Action Chunking Transformer) configuration: upstream LeRobot 0.4.4's fields, defaults and checks, so
a config.json written by either side reads in the other.

Inputs: at least one camera (`observation.images.*`) or `observation.environment_state`; `observation.state` is
optional; the output is `action`. The cameras share one backbone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lerobot_train.configs.types import NormalizationMode
from lerobot_train.policies.config import PreTrainedConfig
from lerobot_train.policies.optim import AdamWConfig


@PreTrainedConfig.register_subclass("act")
@dataclass
class ACTConfig(PreTrainedConfig):
    # -- input / output structure
    n_obs_steps: int = 1  # ACT sees the current observation only
    chunk_size: int = 100  # actions predicted per forward pass
    n_action_steps: int = 100  # of those, how many are executed before predicting again (<= chunk_size)

    normalization_mapping: dict[str, NormalizationMode] = field(
        default_factory=lambda: {
            "VISUAL": NormalizationMode.MEAN_STD,
            "STATE": NormalizationMode.MEAN_STD,
            "ACTION": NormalizationMode.MEAN_STD,
        }
    )

    # -- vision backbone
    vision_backbone: str = "resnet18"
    # torchvision weights name, Hub repo id or local safetensors file; None = random init
    pretrained_backbone_weights: str | None = "ResNet18_Weights.IMAGENET1K_V1"
    replace_final_stride_with_dilation: int = False
    # -- transformer
    pre_norm: bool = False
    dim_model: int = 512
    n_heads: int = 8
    dim_feedforward: int = 3200
    feedforward_activation: str = "relu"  # relu | gelu | glu
    n_encoder_layers: int = 4
    # The original ACT code builds 7 decoder layers but only uses the first (a known bug); 1 reproduces it.
    n_decoder_layers: int = 1
    # -- VAE (a CVAE whose encoder sees the action chunk while training; the latent is zero at inference)
    use_vae: bool = True
    latent_dim: int = 32
    n_vae_encoder_layers: int = 4

    # -- inference: exponential temporal ensembling of overlapping chunks (the ACT paper uses 0.01); needs
    # n_action_steps == 1 because it predicts every step. None = plain chunk queue.
    temporal_ensemble_coeff: float | None = None

    # -- training
    dropout: float = 0.1
    kl_weight: float = 10.0  # loss = L1 + kl_weight * KL

    # -- optimizer preset
    optimizer_lr: float = 1e-5
    optimizer_weight_decay: float = 1e-4
    optimizer_lr_backbone: float = 1e-5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.vision_backbone.startswith("resnet"):
            raise ValueError(f"vision_backbone must be a ResNet variant, got {self.vision_backbone!r}")
        if self.temporal_ensemble_coeff is not None and self.n_action_steps > 1:
            raise NotImplementedError(
                "temporal ensembling (temporal_ensemble_coeff) needs n_action_steps == 1: the policy predicts every step"
            )
        if self.n_action_steps > self.chunk_size:
            raise ValueError(f"n_action_steps ({self.n_action_steps}) cannot exceed chunk_size ({self.chunk_size})")
        if self.n_obs_steps != 1:
            raise ValueError(f"ACT uses one observation step, got n_obs_steps={self.n_obs_steps}")
        if self.dim_model % self.n_heads:
            raise ValueError(f"dim_model ({self.dim_model}) must be divisible by n_heads ({self.n_heads})")
        if self.feedforward_activation not in ("relu", "gelu", "glu"):
            raise ValueError(f"feedforward_activation must be relu, gelu or glu, got {self.feedforward_activation!r}")

    def get_optimizer_preset(self) -> AdamWConfig:
        return AdamWConfig(lr=self.optimizer_lr, weight_decay=self.optimizer_weight_decay)

    def get_scheduler_preset(self) -> None:
        return None

    def validate_features(self) -> None:
        if not self.image_features and not self.env_state_feature:
            raise ValueError("ACT needs at least one camera (observation.images.*) or observation.environment_state")
        if self.action_feature is None:
            raise ValueError("ACT needs an 'action' output feature")

    @property
    def observation_delta_indices(self) -> None:
        return None

    @property
    def action_delta_indices(self) -> list[int]:
        return list(range(self.chunk_size))

    @property
    def reward_delta_indices(self) -> None:
        return None
