"""A tiny flow_chunk config and a synthetic reaching task for the flow_chunk tests and benchmark.

The task: a camera image shows a red square somewhere on a noisy grey background; the joint state is a random 2-D
point; the action chunk moves in a straight line from the state to the square's centre (in [-1, 1] image
coordinates), reaching it at the last row. A policy can only do well by finding the square in the image.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from lerobot_train.configs.types import FeatureType, PolicyFeature
from lerobot_train.policies.flow_chunk.configuration_flow_chunk import FlowChunkConfig

CAMERA = "observation.images.front"
IMAGE_HEIGHT, IMAGE_WIDTH = 32, 40
CHUNK = 8

TINY_FLOW = dict(
    chunk_size=CHUNK, n_action_steps=4, image_resize_shape=None, vision_channels=(16, 32, 32),
    spatial_softmax_num_keypoints=16, image_feature_dim=64, state_feature_dim=32, hidden_dim=64,
    channel_hidden_dim=128, token_hidden_dim=32, num_layers=2, num_steps=10,
)


def tiny_flow_config(image_shape: tuple[int, int, int] = (3, IMAGE_HEIGHT, IMAGE_WIDTH), **overrides) -> FlowChunkConfig:
    return FlowChunkConfig(
        device="cpu",
        input_features={"observation.state": PolicyFeature(FeatureType.STATE, (2,)),
                        CAMERA: PolicyFeature(FeatureType.VISUAL, image_shape)},
        output_features={"action": PolicyFeature(FeatureType.ACTION, (2,))},
        **{**TINY_FLOW, **overrides},
    )


@dataclass
class ReachingSamples:
    images: torch.Tensor  # (N, 3, H, W) in [0, 1]
    state: torch.Tensor  # (N, 2)
    actions: torch.Tensor  # (N, CHUNK, 2)
    target: torch.Tensor  # (N, 2): the square's centre, (x, y) in [-1, 1]

    def batch(self, index: torch.Tensor | slice) -> dict[str, torch.Tensor]:
        return {CAMERA: self.images[index], "observation.state": self.state[index], "action": self.actions[index]}


def reaching_samples(count: int, seed: int, height: int = IMAGE_HEIGHT, width: int = IMAGE_WIDTH) -> ReachingSamples:
    generator = torch.Generator().manual_seed(seed)
    target = torch.rand(count, 2, generator=generator) * 1.6 - 0.8
    images = 0.4 + 0.1 * torch.rand(count, 3, height, width, generator=generator)
    centre_x = ((target[:, 0] + 1) / 2 * (width - 1)).round().long()
    centre_y = ((target[:, 1] + 1) / 2 * (height - 1)).round().long()
    red = torch.tensor([0.9, 0.1, 0.1]).view(3, 1, 1)
    for i in range(count):
        top, left = max(int(centre_y[i]) - 2, 0), max(int(centre_x[i]) - 2, 0)
        images[i, :, top : int(centre_y[i]) + 3, left : int(centre_x[i]) + 3] = red
    state = torch.rand(count, 2, generator=generator) * 2 - 1
    progress = torch.linspace(1 / CHUNK, 1.0, CHUNK).view(1, CHUNK, 1)
    actions = state.unsqueeze(1) + progress * (target - state).unsqueeze(1)
    return ReachingSamples(images, state, actions, target)


@contextmanager
def one_torch_thread():
    """Tiny models run far faster on one thread on a busy 2-core machine (about 25 ms instead of 2 s per training
    step of the tiny flow policy, measured with other jobs running)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
