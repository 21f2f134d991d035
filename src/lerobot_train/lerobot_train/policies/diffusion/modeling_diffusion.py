"""Diffusion Policy (Chi et al. 2023, "Visuomotor Policy Learning via Action Diffusion") as upstream LeRobot has it.

    observation history (n_obs_steps)  --ResNet + spatial softmax per camera, + state-->  global condition
    noise (B, horizon, A)  --conditional 1-D U-Net x num_inference_steps, DDPM/DDIM-->  action trajectory
    executed: rows n_obs_steps-1 .. n_obs_steps-1+n_action_steps (the trajectory starts at the oldest observation)

The state dict is upstream's (`diffusion.rgb_encoder...`, `diffusion.unet...`), so checkpoints cross both ways. With
the same parameters, inputs, initial noise and global torch RNG state, a chunk, a loss and its gradients equal
upstream's: random numbers are drawn with the same calls in the same order (random crop offsets, training noise and
timesteps, DDPM's per-step noise).

Observation history: every `select_action` / `predict_action_chunk` call with a single-step observation (state
(B, D)) pushes it into the history (copies of the first observation fill it at episode start); call once per
control tick. An observation that already holds the history (state (B, n_obs_steps, D)) is used as it is.
"""

from __future__ import annotations

from collections import deque

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lerobot_train.configs.constants import ACTION, OBS_ENV_STATE, OBS_IMAGES, OBS_STATE
from lerobot_train.policies.backbones.resnet import make_resnet
from lerobot_train.policies.diffusion.configuration_diffusion import DiffusionConfig
from lerobot_train.policies.diffusion.cuda_graphs import CapturedDenoiser
from lerobot_train.policies.diffusion.schedulers import make_noise_scheduler
from lerobot_train.policies.diffusion.unet import ConditionalUnet1d, UnetShape
from lerobot_train.policies.diffusion.vision import (
    SpatialSoftmax,
    center_crop,
    output_shape,
    random_crop,
    resize_images,
)
from lerobot_train.policies.pretrained import PreTrainedPolicy

ACTION_IS_PAD = "action_is_pad"


class DiffusionRgbEncoder(nn.Module):
    """Camera image -> feature vector: [resize] -> [crop] -> ResNet trunk -> spatial-softmax keypoints -> Linear+ReLU.

    The crop is random in training (one offset per call for the whole batch) and centred in eval.
    """

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.resize_shape = tuple(config.resize_shape) if config.resize_shape is not None else None
        self.crop_shape = tuple(config.crop_shape) if config.crop_shape is not None else None
        self.crop_is_random = config.crop_is_random
        if config.use_group_norm:
            def norm_layer(channels: int) -> nn.Module:
                return nn.GroupNorm(num_groups=channels // 16, num_channels=channels)
        else:
            norm_layer = nn.BatchNorm2d
        resnet = make_resnet(config.vision_backbone, config.pretrained_backbone_weights, norm_layer=norm_layer,
                             include_top=False)
        # conv1 .. layer4 as one Sequential: upstream's `backbone.<index>` parameter names.
        self.backbone = nn.Sequential(*resnet.trunk())

        image_shape = next(iter(config.image_features.values())).shape
        height_width = self.crop_shape or self.resize_shape or tuple(image_shape[1:])
        feature_map = output_shape(self.backbone, (1, image_shape[0], *height_width))[1:]
        self.pool = SpatialSoftmax(feature_map, num_kp=config.spatial_softmax_num_keypoints)
        self.feature_dim = config.spatial_softmax_num_keypoints * 2
        self.out = nn.Linear(config.spatial_softmax_num_keypoints * 2, self.feature_dim)
        self.relu = nn.ReLU()

    def forward(self, images: Tensor) -> Tensor:
        """(B, C, H, W) in the normalised image space -> (B, feature_dim)."""
        if self.resize_shape is not None:
            images = resize_images(images, self.resize_shape)
        if self.crop_shape is not None:
            if self.training and self.crop_is_random:
                images = random_crop(images, self.crop_shape)
            else:
                images = center_crop(images, self.crop_shape)
        keypoints = self.pool(self.backbone(images))
        return self.relu(self.out(torch.flatten(keypoints, start_dim=1)))


class DiffusionModel(nn.Module):
    """Observation encoders + U-Net + noise scheduler (the scheduler holds no parameters and is not saved)."""

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.config = config
        step_features = config.robot_state_feature.shape[0]
        num_cameras = len(config.image_features)
        if num_cameras:
            if config.use_separate_rgb_encoder_per_camera:
                self.rgb_encoder = nn.ModuleList(DiffusionRgbEncoder(config) for _ in range(num_cameras))
                step_features += self.rgb_encoder[0].feature_dim * num_cameras
            else:
                self.rgb_encoder = DiffusionRgbEncoder(config)
                step_features += self.rgb_encoder.feature_dim * num_cameras
        if config.env_state_feature is not None:
            step_features += config.env_state_feature.shape[0]

        self.unet = ConditionalUnet1d(UnetShape(
            action_dim=config.action_feature.shape[0],
            global_cond_dim=step_features * config.n_obs_steps,
            down_dims=tuple(config.down_dims),
            kernel_size=config.kernel_size,
            n_groups=config.n_groups,
            diffusion_step_embed_dim=config.diffusion_step_embed_dim,
            use_film_scale_modulation=config.use_film_scale_modulation,
        ))
        self.unet.gradient_checkpointing = config.gradient_checkpointing
        if config.compile_model:
            # In place: the state-dict keys stay `unet.*` (an OptimizedModule wrapper would add `_orig_mod.`).
            self.unet.compile(mode=config.compile_mode)

        self.noise_scheduler = make_noise_scheduler(
            config.noise_scheduler_type,
            num_train_timesteps=config.num_train_timesteps,
            beta_start=config.beta_start,
            beta_end=config.beta_end,
            beta_schedule=config.beta_schedule,
            clip_sample=config.clip_sample,
            clip_sample_range=config.clip_sample_range,
            prediction_type=config.prediction_type,
        )
        self.num_inference_steps = config.num_inference_steps or config.num_train_timesteps
        # GPU inference: replay the whole denoising loop as one captured CUDA graph (a runtime switch, not a
        # config.json field, so checkpoints stay loadable by upstream). See cuda_graphs.py.
        self.use_cuda_graphs = False
        self._captured: dict[tuple, CapturedDenoiser] = {}

    # ------------------------------------------------------------------------------------------ conditioning
    def global_conditioning(self, history: dict[str, Tensor]) -> Tensor:
        """(B, n_obs_steps * step_features): per step [state, camera features..., env state], steps flattened.

        `history`: OBS_STATE (B, S, D); OBS_IMAGES (B, S, N cameras, C, H, W); OBS_ENV_STATE (B, S, E)."""
        batch_size, steps = history[OBS_STATE].shape[:2]
        features = [history[OBS_STATE]]
        if self.config.image_features:
            images = history[OBS_IMAGES]
            if self.config.use_separate_rgb_encoder_per_camera:
                per_camera = [encoder(images[:, :, i].flatten(0, 1)) for i, encoder in enumerate(self.rgb_encoder)]
                # (B*S, F) per camera -> (B, S, N*F), cameras in input order
                image_features = torch.stack(per_camera, dim=1).reshape(batch_size, steps, -1)
            else:
                encoded = self.rgb_encoder(images.flatten(0, 2))  # (B*S*N, F)
                image_features = encoded.reshape(batch_size, steps, -1)
            features.append(image_features)
        if self.config.env_state_feature is not None:
            features.append(history[OBS_ENV_STATE])
        return torch.cat(features, dim=-1).flatten(start_dim=1)

    # ------------------------------------------------------------------------------------------ inference
    def denoise(self, sample: Tensor, global_cond: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The reverse diffusion from `sample` (the initial noise) with the scheduler's precomputed steps.

        Only tensor operations with shapes fixed by the inputs: the loop can be captured in one CUDA graph."""
        timesteps = torch.empty(sample.shape[0], dtype=torch.long, device=sample.device)
        for step in self.noise_scheduler.steps:
            model_output = self.unet(sample, timesteps.fill_(step.timestep), global_cond=global_cond)
            sample = self.noise_scheduler.step_with(step, model_output, sample, generator=generator)
        return sample

    def prepare_scheduler(self, device: torch.device) -> None:
        """Precompute the inference steps on `device` (once; again only if the device changes)."""
        scheduler = self.noise_scheduler
        steps = scheduler.steps
        if (scheduler.num_inference_steps != self.num_inference_steps or not steps
                or steps[0].sqrt_alpha_bar.device != device):
            scheduler.set_timesteps(self.num_inference_steps, device=device)

    def conditional_sample(self, batch_size: int, global_cond: Tensor, generator: torch.Generator | None = None,
                           noise: Tensor | None = None) -> Tensor:
        """(B, horizon, action_dim) trajectory, from `noise` or from a fresh N(0, I) draw."""
        param = next(self.unet.parameters())
        if noise is None:
            shape = (batch_size, self.config.horizon, self.config.action_feature.shape[0])
            noise = torch.randn(shape, dtype=param.dtype, device=param.device, generator=generator)
        self.prepare_scheduler(noise.device)
        if self.use_cuda_graphs and noise.is_cuda and generator is None and not torch.is_grad_enabled():
            return self._captured_denoiser(noise, global_cond)(noise, global_cond)
        return self.denoise(noise, global_cond, generator)

    def _captured_denoiser(self, noise: Tensor, global_cond: Tensor) -> CapturedDenoiser:
        autocast = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else None
        key = (tuple(noise.shape), str(noise.device), autocast)
        if key not in self._captured:
            self._captured[key] = CapturedDenoiser(self, noise.shape[0], global_cond.shape[-1], autocast)
        return self._captured[key]

    def generate_actions(self, history: dict[str, Tensor], noise: Tensor | None = None) -> Tensor:
        """(B, n_action_steps, action_dim): the executed window of a sampled trajectory."""
        batch_size, steps = history[OBS_STATE].shape[:2]
        if steps != self.config.n_obs_steps:
            raise ValueError(f"observation history has {steps} steps, the policy needs n_obs_steps="
                             f"{self.config.n_obs_steps}")
        trajectory = self.conditional_sample(batch_size, self.global_conditioning(history), noise=noise)
        start = steps - 1
        return trajectory[:, start : start + self.config.n_action_steps]

    # ------------------------------------------------------------------------------------------ training
    def compute_loss(self, batch: dict[str, Tensor]) -> Tensor:
        """MSE between the U-Net's prediction and its target (the added noise, or the clean trajectory).

        `batch`: the history keys of `global_conditioning`, ACTION (B, horizon, A) and ACTION_IS_PAD (B, horizon)."""
        missing = [k for k in (OBS_STATE, ACTION) if k not in batch]
        if missing:
            raise KeyError(f"diffusion training batch lacks {missing}")
        steps, horizon = batch[OBS_STATE].shape[1], batch[ACTION].shape[1]
        if steps != self.config.n_obs_steps or horizon != self.config.horizon:
            raise ValueError(f"training batch has {steps} observation steps and {horizon} actions; the config wants "
                             f"n_obs_steps={self.config.n_obs_steps}, horizon={self.config.horizon}")
        global_cond = self.global_conditioning(batch)

        trajectory = batch[ACTION]
        noise = torch.randn(trajectory.shape, device=trajectory.device)
        timesteps = torch.randint(0, self.config.num_train_timesteps, (trajectory.shape[0],),
                                  device=trajectory.device).long()
        noisy = self.noise_scheduler.add_noise(trajectory, noise, timesteps)
        prediction = self.unet(noisy, timesteps, global_cond=global_cond)
        target = noise if self.config.prediction_type == "epsilon" else trajectory
        loss = F.mse_loss(prediction, target, reduction="none")
        if self.config.do_mask_loss_for_padding:
            if ACTION_IS_PAD not in batch:
                raise KeyError(f"do_mask_loss_for_padding needs '{ACTION_IS_PAD}' in the training batch")
            # Upstream 0.4.4's reduction: padded elements count as zeros in the mean.
            loss = loss * (~batch[ACTION_IS_PAD]).unsqueeze(-1)
        return loss.mean()


class DiffusionPolicy(PreTrainedPolicy):
    """The Diffusion policy in normalised space (processors outside, as upstream)."""

    config_class = DiffusionConfig
    name = "diffusion"

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__(config)
        config.validate_features()
        self.diffusion = DiffusionModel(config)
        self._queues: dict[str, deque] = {}
        self.reset()

    def reset(self) -> None:
        """Forget the observation history and the queued actions (episode start)."""
        n = self.config.n_obs_steps
        self._queues = {OBS_STATE: deque(maxlen=n), ACTION: deque(maxlen=self.config.n_action_steps)}
        if self.config.image_features:
            self._queues[OBS_IMAGES] = deque(maxlen=n)
        if self.config.env_state_feature is not None:
            self._queues[OBS_ENV_STATE] = deque(maxlen=n)

    def use_cuda_graphs(self, enabled: bool = True) -> None:
        """On a CUDA device, run each chunk's denoising loop as one captured CUDA graph (captured on first use per
        batch size and autocast dtype; same kernels, scheduler and step count as eager)."""
        self.diffusion.use_cuda_graphs = enabled
        self.diffusion._captured.clear()

    def get_optim_params(self) -> list[nn.Parameter]:
        return [p for p in self.diffusion.parameters() if p.requires_grad]

    def _stack_cameras(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Adds OBS_IMAGES: the cameras stacked in input-feature order on the dim before (C, H, W)."""
        if not self.config.image_features:
            return dict(batch)
        missing = [k for k in self.config.image_features if k not in batch]
        if missing:
            raise KeyError(f"observation lacks camera(s) {missing}")
        return {**batch, OBS_IMAGES: torch.stack([batch[k] for k in self.config.image_features], dim=-4)}

    def _observation_history(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The (B, n_obs_steps, ...) history for this call (see the module docstring)."""
        if OBS_STATE not in batch:
            raise KeyError(f"observation lacks '{OBS_STATE}'")
        batch = self._stack_cameras(batch)
        keys = [k for k in self._queues if k != ACTION]
        missing = [k for k in keys if k not in batch]
        if missing:
            raise KeyError(f"observation lacks {missing}")
        if batch[OBS_STATE].ndim == 3:  # the caller passed the history itself
            return {k: batch[k] for k in keys}
        for key in keys:
            queue = self._queues[key]
            if not queue:  # episode start: the first observation stands in for the missing past
                queue.extend([batch[key]] * queue.maxlen)
            else:
                queue.append(batch[key])
        return {k: torch.stack(list(q), dim=1) for k, q in self._queues.items() if k != ACTION}

    @torch.no_grad()
    def predict_action_chunk(self, batch: dict[str, Tensor], noise: Tensor | None = None) -> Tensor:
        """(B, n_action_steps, action_dim) normalised actions, starting at the current step."""
        return self.diffusion.generate_actions(self._observation_history(batch), noise=noise)

    @torch.no_grad()
    def select_action(self, batch: dict[str, Tensor], noise: Tensor | None = None) -> Tensor:
        """(B, action_dim): the next queued action; a new chunk is generated when the queue runs dry."""
        history = self._observation_history({k: v for k, v in batch.items() if k != ACTION})
        if not self._queues[ACTION]:
            actions = self.diffusion.generate_actions(history, noise=noise)
            self._queues[ACTION].extend(actions.transpose(0, 1))
        return self._queues[ACTION].popleft()

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Training loss for a preprocessed batch (observations with their n_obs_steps history)."""
        batch = dict(batch)
        if self.config.n_obs_steps == 1:  # single-frame batches may come without the step dim
            for key in [OBS_STATE, OBS_ENV_STATE, *self.config.image_features]:
                expected = 5 if key in self.config.image_features else 3
                if key in batch and batch[key].ndim == expected - 1:
                    batch[key] = batch[key].unsqueeze(1)
        loss = self.diffusion.compute_loss(self._stack_cameras(batch))
        return loss, {}
