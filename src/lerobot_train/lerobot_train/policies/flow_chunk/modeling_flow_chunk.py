"""`flow_chunk`: a small flow-matching action-chunk policy with real-time-chunking (RTC) guidance.

Flow matching in LeRobot's time convention: t = 1 is noise, t = 0 the action chunk.

    training:   x_t = t * noise + (1 - t) * actions,  target velocity v = noise - actions  (MSE on real rows)
    sampling:   x_1 = noise;  x_{t+dt} = x_t + dt * v(x_t, t, obs),  dt = -1 / num_steps  (Euler)
    RTC:        v is replaced by `rtc.guided_velocity(...)` when the previous chunk's left-over rows are given

The policy works in normalised space (the shared processors normalise before and unnormalise after, as upstream).
"""

from __future__ import annotations

from collections import deque

import torch
from torch import Tensor, nn

from lerobot_train.configs.constants import ACTION, OBS_STATE
from lerobot_train.policies.flow_chunk.configuration_flow_chunk import FlowChunkConfig
from lerobot_train.policies.flow_chunk.networks import ObservationEncoder, VelocityHead, flow_matching_loss
from lerobot_train.policies.pretrained import PreTrainedPolicy
from lerobot_train.policies.rtc import guided_velocity

ACTION_IS_PAD = "action_is_pad"


class FlowChunkModel(nn.Module):
    """Observation encoder + velocity head."""

    def __init__(self, config: FlowChunkConfig) -> None:
        super().__init__()
        self.config = config
        state = config.robot_state_feature
        self.observation_encoder = ObservationEncoder(
            [tuple(ft.shape) for ft in config.image_features.values()],
            state.shape[0] if state is not None else None,
            vision_channels=tuple(config.vision_channels),
            num_keypoints=config.spatial_softmax_num_keypoints,
            image_feature_dim=config.image_feature_dim,
            state_feature_dim=config.state_feature_dim,
            resize_shape=config.image_resize_shape,
            cond_dim=config.hidden_dim,
        )
        self.velocity_head = VelocityHead(
            rows=config.chunk_size,
            action_dim=config.action_feature.shape[0],
            channels=config.hidden_dim,
            token_hidden=config.token_hidden_dim,
            channel_hidden=config.channel_hidden_dim,
            num_layers=config.num_layers,
            cond_dim=config.hidden_dim,
            time_min_period=config.time_embedding_min_period,
            time_max_period=config.time_embedding_max_period,
        )

    def encode_observation(self, batch: dict[str, Tensor]) -> Tensor:
        missing = [k for k in self.config.image_features if k not in batch]
        if self.config.robot_state_feature is not None and OBS_STATE not in batch:
            missing.append(OBS_STATE)
        if missing:
            raise KeyError(f"flow_chunk observation lacks {missing}")
        images = [batch[k] for k in self.config.image_features]
        return self.observation_encoder(images, batch.get(OBS_STATE))

    def velocity(self, x_t: Tensor, time: Tensor, obs_embedding: Tensor) -> Tensor:
        return self.velocity_head(x_t, time, obs_embedding)


class FlowChunkPolicy(PreTrainedPolicy):
    """Images + joint state -> a chunk of `chunk_size` actions; `select_action` executes `n_action_steps` of it."""

    config_class = FlowChunkConfig
    name = "flow_chunk"

    def __init__(self, config: FlowChunkConfig) -> None:
        super().__init__(config)
        config.validate_features()
        self.model = FlowChunkModel(config)
        self._action_queue: deque[Tensor] = deque()

    def reset(self) -> None:
        self._action_queue.clear()

    def supports_rtc(self) -> bool:
        return True

    # ------------------------------------------------------------------------------------------ training
    def sample_time(self, batch_size: int, device: torch.device) -> Tensor:
        """Training times in [0.001, 1] from Beta(alpha, beta) (kept off 0, where the target is the action)."""
        beta = torch.distributions.Beta(self.config.time_sampling_beta_alpha, self.config.time_sampling_beta_beta)
        return (beta.sample((batch_size,)) * 0.999 + 0.001).to(device)

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Flow-matching loss for a preprocessed batch: observation (B, ...), ACTION (B, chunk_size, A), optional
        ACTION_IS_PAD (B, chunk_size) (padded rows past the episode end do not count)."""
        if ACTION not in batch:
            raise KeyError(f"flow_chunk training batch lacks '{ACTION}'")
        actions = batch[ACTION]
        if actions.ndim != 3 or actions.shape[1] != self.config.chunk_size:
            raise ValueError(f"training actions must be (batch, chunk_size={self.config.chunk_size}, action_dim), "
                             f"got {tuple(actions.shape)}")
        obs_embedding = self.model.encode_observation(batch)
        noise = torch.randn_like(actions)
        time = self.sample_time(actions.shape[0], actions.device)
        t = time.view(-1, 1, 1).to(actions.dtype)
        x_t = t * noise + (1 - t) * actions
        velocity = self.model.velocity(x_t, time, obs_embedding)
        loss = flow_matching_loss(velocity, noise, actions, batch.get(ACTION_IS_PAD))
        return loss, {}

    # ------------------------------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict_action_chunk(
        self,
        batch: dict[str, Tensor],
        inference_delay: int | None = None,
        prev_chunk_left_over: Tensor | None = None,
        execution_horizon: int | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """(B, chunk_size, A) normalised actions.

        RTC: `prev_chunk_left_over` (B, L, A) or (L, A) holds the previous chunk's rows not executed yet, in the
        same normalised space; `inference_delay` rows of it will have executed by the time this chunk arrives;
        `execution_horizon` (default `config.rtc_config.execution_horizon`) ends the soft mask.
        """
        obs_embedding = self.model.encode_observation(batch)
        batch_size = obs_embedding.shape[0]
        shape = (batch_size, self.config.chunk_size, self.config.action_feature.shape[0])
        if noise is None:
            noise = torch.randn(shape, device=obs_embedding.device, dtype=obs_embedding.dtype)
        elif tuple(noise.shape) != shape:
            raise ValueError(f"noise must have shape {shape}, got {tuple(noise.shape)}")
        if prev_chunk_left_over is not None:
            if inference_delay is None:
                raise ValueError("RTC needs inference_delay (rows executed during inference) with prev_chunk_left_over")
            if execution_horizon is None:
                execution_horizon = self.config.rtc_config.execution_horizon
        rtc = self.config.rtc_config

        x = noise
        dt = -1.0 / self.config.num_steps
        for step in range(self.config.num_steps):
            t = 1.0 + step * dt
            time = torch.full((batch_size,), t, device=x.device, dtype=x.dtype)

            def velocity_fn(x_t: Tensor, time: Tensor = time) -> Tensor:
                return self.model.velocity(x_t, time, obs_embedding)

            velocity = guided_velocity(velocity_fn, x, t, prev_chunk_left_over, inference_delay or 0,
                                       execution_horizon or 0, rtc.prefix_attention_schedule, rtc.max_guidance_weight,
                                       rtc.guidance_jacobian)
            x = x + dt * velocity
        return x

    @torch.no_grad()
    def select_action(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, A): the next of `n_action_steps` queued actions; a new chunk is predicted when the queue is empty."""
        if not self._action_queue:
            chunk = self.predict_action_chunk(batch)[:, : self.config.n_action_steps]
            self._action_queue.extend(chunk.transpose(0, 1))
        return self._action_queue.popleft()
