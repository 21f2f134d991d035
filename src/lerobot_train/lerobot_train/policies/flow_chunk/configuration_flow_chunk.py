"""Config of `flow_chunk`: our small flow-matching action-chunk policy (images + joint state -> a chunk of actions).

Sized to train on a CPU in minutes on a reaching task: a few convolutions with spatial-softmax keypoints per camera
(good at "where is the coloured object"), an MLP for the joint state, and an MLP-Mixer action head with AdaLN
conditioning on the flow time and the observation, after the Kinetix real-time-chunking reference. Sampling is
Euler integration of the learned velocity with RTC guidance when the previous chunk is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lerobot_train.configs.types import NormalizationMode
from lerobot_train.policies.config import PreTrainedConfig
from lerobot_train.policies.optim import AdamWConfig, CosineDecayWithWarmupSchedulerConfig
from lerobot_train.policies.rtc import RTCAttentionSchedule, RTCConfig, RTCGuidanceJacobian


def _default_rtc_config() -> RTCConfig:
    # Upstream LeRobot's RTC as it runs: LINEAR soft mask, beta = 10 for 10 flow steps, the identity-Jacobian
    # guidance of its RTCProcessor. This small policy's denoised chunk barely depends on x_t (its action
    # distribution given the observation is narrow), so the paper's real VJP passes back 8-29 % of the error and
    # hardly guides. benchmarks/bench_policy_node.py, 200 ms delay, 20 episodes: boundary jump 0.28 deg (identity,
    # LINEAR) vs 0.52 (identity, EXP), 1.71 (VJP, EXP), 2.67 naive async; success equal to sync.
    # The mask end is the runtime's to choose (the policy node passes the overlap with the old chunk).
    return RTCConfig(enabled=False, prefix_attention_schedule=RTCAttentionSchedule.LINEAR, max_guidance_weight=10.0,
                     execution_horizon=8, guidance_jacobian=RTCGuidanceJacobian.IDENTITY)


@PreTrainedConfig.register_subclass("flow_chunk")
@dataclass
class FlowChunkConfig(PreTrainedConfig):
    # ---- inputs / outputs
    n_obs_steps: int = 1  # the current observation only (history is not used by this policy)
    chunk_size: int = 16  # actions predicted per inference
    n_action_steps: int = 8  # actions select_action executes from each chunk before predicting again
    normalization_mapping: dict[str, NormalizationMode] = field(default_factory=lambda: {
        "VISUAL": NormalizationMode.IDENTITY,  # pixels stay in [0, 1]; the encoder's GroupNorms rescale them
        "STATE": NormalizationMode.MEAN_STD,
        "ACTION": NormalizationMode.MEAN_STD,  # flow noise is N(0, 1): actions of unit scale match it
    })

    # ---- image encoder (one per camera)
    # Images are resized to (H, W) inside the model first, so a 480x640 camera costs what a 96x128 one does;
    # None keeps the camera's resolution.
    image_resize_shape: tuple[int, int] | None = (96, 128)
    # Output channels of the convolutions: the first two halve the resolution (stride 2), the rest keep it.
    # Small on purpose: a batch-32 training step stays well under a second on one CPU core at 96x128.
    vision_channels: tuple[int, ...] = (16, 32, 32)
    spatial_softmax_num_keypoints: int = 32
    image_feature_dim: int = 128

    # ---- joint-state encoder
    state_feature_dim: int = 64

    # ---- action head: MLP-Mixer over the chunk's rows, AdaLN-conditioned on (flow time, observation)
    hidden_dim: int = 128  # channels per action row (Kinetix: 256)
    channel_hidden_dim: int = 256  # channel-mixing MLP width (Kinetix: 512)
    token_hidden_dim: int = 64  # row-mixing MLP width (Kinetix: 64)
    num_layers: int = 4
    # Sinusoidal embedding of the flow time t in [0, 1] (pi0's periods).
    time_embedding_min_period: float = 4e-3
    time_embedding_max_period: float = 4.0

    # ---- flow matching (LeRobot's time: t = 1 noise -> t = 0 actions)
    num_steps: int = 10  # Euler steps per chunk
    # Training times t ~ Beta(alpha, beta) scaled to [0.001, 1] (pi0's choice: more weight on the noisy end).
    time_sampling_beta_alpha: float = 1.5
    time_sampling_beta_beta: float = 1.0

    # ---- real-time chunking (upstream's RTCConfig field names)
    rtc_config: RTCConfig = field(default_factory=_default_rtc_config)

    # ---- training presets (Kinetix reference: AdamW 3e-4, weight decay 1e-2, clip 10; warm-up shortened)
    optimizer_lr: float = 3e-4
    optimizer_betas: tuple[float, float] = (0.9, 0.999)
    optimizer_eps: float = 1e-8
    optimizer_weight_decay: float = 1e-2
    optimizer_grad_clip_norm: float = 10.0
    scheduler_warmup_steps: int = 200
    scheduler_decay_steps: int = 30000
    scheduler_decay_lr: float = 3e-5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_obs_steps != 1:
            raise ValueError("flow_chunk uses the current observation only: n_obs_steps must be 1, "
                             f"got {self.n_obs_steps}")
        if not 1 <= self.n_action_steps <= self.chunk_size:
            raise ValueError(f"n_action_steps must be in [1, chunk_size={self.chunk_size}], got {self.n_action_steps}")
        if self.num_steps < 1:
            raise ValueError(f"num_steps (Euler steps) must be >= 1, got {self.num_steps}")
        if len(self.vision_channels) < 2:
            raise ValueError(f"vision_channels needs at least 2 convolutions, got {self.vision_channels}")
        resize = self.image_resize_shape
        if resize is not None and (len(resize) != 2 or min(resize) < 8):
            raise ValueError(f"image_resize_shape must be (H, W) with both >= 8, got {self.image_resize_shape}")

    # ---- what a training sample holds
    @property
    def observation_delta_indices(self) -> None:
        return None

    @property
    def action_delta_indices(self) -> list[int]:
        return list(range(self.chunk_size))

    @property
    def reward_delta_indices(self) -> None:
        return None

    def get_optimizer_preset(self) -> AdamWConfig:
        return AdamWConfig(lr=self.optimizer_lr, betas=self.optimizer_betas, eps=self.optimizer_eps,
                           weight_decay=self.optimizer_weight_decay, grad_clip_norm=self.optimizer_grad_clip_norm)

    def get_scheduler_preset(self) -> CosineDecayWithWarmupSchedulerConfig:
        return CosineDecayWithWarmupSchedulerConfig(
            num_warmup_steps=self.scheduler_warmup_steps, num_decay_steps=self.scheduler_decay_steps,
            peak_lr=self.optimizer_lr, decay_lr=self.scheduler_decay_lr,
        )

    def validate_features(self) -> None:
        if self.robot_state_feature is None and not self.image_features:
            raise ValueError("flow_chunk needs observation.state and/or at least one observation.images.* input")
        if self.action_feature is None:
            raise ValueError("flow_chunk needs an 'action' output feature")
        if len(self.action_feature.shape) != 1:
            raise ValueError(f"flow_chunk's action must be a vector, got shape {self.action_feature.shape}")
        for key, feature in self.image_features.items():
            if len(feature.shape) != 3 or feature.shape[0] != 3:
                raise ValueError(f"{key}: flow_chunk expects (3, H, W) camera images, got shape {feature.shape}")
            if self.image_resize_shape is None and min(feature.shape[1:]) < 8:
                raise ValueError(f"{key}: image {feature.shape[1:]} is too small for the encoder (min 8x8)")
