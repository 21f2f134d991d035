"""Config of the Diffusion policy (type "diffusion"): upstream LeRobot's fields, names and JSON form.

Defaults are upstream 0.4.4's (the 16/8 generation: horizon 16, 8 executed actions, GroupNorm backbone, no
pretrained weights, one encoder shared by the cameras). Upstream v0.6 changed the defaults to 64/32 with BatchNorm,
ImageNet weights and one encoder per camera; checkpoints of both generations load because every value is read from
their config.json, never from these defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lerobot_train.configs.types import NormalizationMode
from lerobot_train.policies.config import PreTrainedConfig
from lerobot_train.policies.optim import AdamConfig, DiffuserSchedulerConfig

SUPPORTED_BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


@PreTrainedConfig.register_subclass("diffusion")
@dataclass
class DiffusionConfig(PreTrainedConfig):
    # ---- inputs / outputs
    n_obs_steps: int = 2  # observation history: the current step and the one before
    # Actions generated per inference, counted from the OLDEST observation step (so it includes the past).
    horizon: int = 16
    # Actions executed per inference: rows n_obs_steps-1 .. n_obs_steps-1+n_action_steps of the generated trajectory.
    n_action_steps: int = 8
    normalization_mapping: dict[str, NormalizationMode] = field(default_factory=lambda: {
        "VISUAL": NormalizationMode.MEAN_STD,
        "STATE": NormalizationMode.MIN_MAX,
        "ACTION": NormalizationMode.MIN_MAX,  # [-1, 1], the range the scheduler clips samples to
    })
    # Training samples are not drawn from the last frames of an episode (fewer padded actions). Upstream keeps 7,
    # sized for 16/8 (horizon - n_action_steps - n_obs_steps + 1); for 64/32 the same formula gives 31.
    drop_n_last_frames: int = 7

    # ---- vision backbone (one ResNet per camera, or one shared)
    vision_backbone: str = "resnet18"
    resize_shape: tuple[int, int] | None = None  # (H, W) to resize camera images to first; None keeps them
    crop_ratio: float = 1.0  # with resize_shape: crop (H, W) * crop_ratio (1.0 = no crop)
    crop_shape: tuple[int, int] | None = None  # (H, W) crop; derived from resize_shape and crop_ratio when resizing
    crop_is_random: bool = True  # random crop in training (always the centre crop in eval)
    pretrained_backbone_weights: str | None = None  # e.g. "ResNet18_Weights.IMAGENET1K_V1"
    use_group_norm: bool = True  # GroupNorm (groups of 16 channels) in place of BatchNorm; not with pretrained weights
    spatial_softmax_num_keypoints: int = 32
    use_separate_rgb_encoder_per_camera: bool = False

    # ---- conditional 1-D U-Net
    down_dims: tuple[int, ...] = (512, 1024, 2048)  # channels per level; horizon must divide by 2**len(down_dims)
    kernel_size: int = 5
    n_groups: int = 8  # GroupNorm groups inside the U-Net's conv blocks
    diffusion_step_embed_dim: int = 128
    use_film_scale_modulation: bool = True  # FiLM scale and bias (False: bias only)
    gradient_checkpointing: bool = False  # recompute U-Net blocks in backward (upstream v0.6 field)

    # ---- noise scheduler
    noise_scheduler_type: str = "DDPM"  # or "DDIM"
    num_train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    beta_start: float = 0.0001
    beta_end: float = 0.02
    prediction_type: str = "epsilon"  # or "sample"
    clip_sample: bool = True  # clip the predicted clean sample to +-clip_sample_range at every step
    clip_sample_range: float = 1.0
    num_inference_steps: int | None = None  # None: num_train_timesteps

    # ---- speed
    compile_model: bool = False  # torch.compile the U-Net
    compile_mode: str = "reduce-overhead"  # CUDA graphs: the denoising loop's small launches dominate

    # ---- loss
    do_mask_loss_for_padding: bool = False  # zero the loss on copy-padded actions past the episode end

    # ---- training presets
    optimizer_lr: float = 1e-4
    optimizer_betas: tuple[float, float] = (0.95, 0.999)
    optimizer_eps: float = 1e-8
    optimizer_weight_decay: float = 1e-6
    scheduler_name: str = "cosine"
    scheduler_warmup_steps: int = 500

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.vision_backbone not in SUPPORTED_BACKBONES:
            raise ValueError(f"vision_backbone must be one of {SUPPORTED_BACKBONES}, got {self.vision_backbone!r}")
        if self.prediction_type not in ("epsilon", "sample"):
            raise ValueError(f"prediction_type must be 'epsilon' or 'sample', got {self.prediction_type!r}")
        if self.noise_scheduler_type not in ("DDPM", "DDIM"):
            raise ValueError(f"noise_scheduler_type must be 'DDPM' or 'DDIM', got {self.noise_scheduler_type!r}")
        if self.resize_shape is not None and (len(self.resize_shape) != 2 or min(self.resize_shape) <= 0):
            raise ValueError(f"resize_shape must be a pair of positive integers, got {self.resize_shape}")
        if not 0 < self.crop_ratio <= 1.0:
            raise ValueError(f"crop_ratio must be in (0, 1], got {self.crop_ratio}")
        if self.resize_shape is not None:
            # Upstream derives the crop from the resize (and drops an explicit crop_shape) in this mode.
            self.crop_shape = None if self.crop_ratio >= 1.0 else (
                int(self.resize_shape[0] * self.crop_ratio), int(self.resize_shape[1] * self.crop_ratio))
        if self.crop_shape is not None and min(self.crop_shape) <= 0:
            raise ValueError(f"crop_shape must have positive dimensions, got {self.crop_shape}")
        factor = 2 ** len(self.down_dims)
        if self.horizon % factor:
            raise ValueError(f"horizon ({self.horizon}) must be a multiple of 2**len(down_dims) = {factor} "
                             f"(down_dims={tuple(self.down_dims)})")
        if not 1 <= self.n_action_steps <= self.horizon - self.n_obs_steps + 1:
            raise ValueError(f"n_action_steps ({self.n_action_steps}) must be in [1, horizon - n_obs_steps + 1 = "
                             f"{self.horizon - self.n_obs_steps + 1}]")
        if self.use_group_norm and self.pretrained_backbone_weights:
            raise ValueError("use_group_norm replaces the backbone's BatchNorms, which would ruin "
                             f"pretrained_backbone_weights={self.pretrained_backbone_weights!r}: set one of them off")

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        # gradient_checkpointing is a v0.6 field that upstream 0.4.x's strict parser rejects: written only when on,
        # so a checkpoint saved here loads in both generations.
        if not self.gradient_checkpointing:
            data.pop("gradient_checkpointing")
        return data

    # ---- what a training sample holds
    @property
    def observation_delta_indices(self) -> list[int]:
        return list(range(1 - self.n_obs_steps, 1))

    @property
    def action_delta_indices(self) -> list[int]:
        return list(range(1 - self.n_obs_steps, 1 - self.n_obs_steps + self.horizon))

    @property
    def reward_delta_indices(self) -> None:
        return None

    def get_optimizer_preset(self) -> AdamConfig:
        return AdamConfig(lr=self.optimizer_lr, betas=self.optimizer_betas, eps=self.optimizer_eps,
                          weight_decay=self.optimizer_weight_decay)

    def get_scheduler_preset(self) -> DiffuserSchedulerConfig:
        return DiffuserSchedulerConfig(name=self.scheduler_name, num_warmup_steps=self.scheduler_warmup_steps)

    def validate_features(self) -> None:
        if not self.image_features and self.env_state_feature is None:
            raise ValueError("diffusion needs at least one camera (observation.images.*) or "
                             "observation.environment_state among its inputs")
        if self.robot_state_feature is None:
            raise ValueError("diffusion needs observation.state among its inputs")
        if self.action_feature is None:
            raise ValueError("diffusion needs an 'action' output feature")
        shapes = {key: tuple(ft.shape) for key, ft in self.image_features.items()}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"diffusion needs all cameras at one shape, got {shapes}")
        if self.resize_shape is None and self.crop_shape is not None:
            for key, shape in shapes.items():
                if self.crop_shape[0] > shape[1] or self.crop_shape[1] > shape[2]:
                    raise ValueError(f"crop_shape {tuple(self.crop_shape)} does not fit {key} of shape {shape}")
