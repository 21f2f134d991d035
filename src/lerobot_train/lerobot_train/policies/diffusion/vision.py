"""Image operations and keypoint pooling shared by the Diffusion and flow-chunk image encoders.

The resize and crops reproduce torchvision's tensor transforms that upstream LeRobot uses (`Resize` with bilinear
antialiasing, `CenterCrop`, `RandomCrop` with one offset per call for the whole batch, drawn with the global torch
RNG in the same order), so a model trained or evaluated here sees the same pixels as upstream's.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def resize_images(images: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear, antialiased resize of (..., C, H, W) float images to ``size`` = (H, W); a no-op at that size."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    lead = images.shape[:-3]
    flat = images.reshape(-1, *images.shape[-3:])
    out = F.interpolate(flat, size=list(size), mode="bilinear", align_corners=False, antialias=True)
    return out.reshape(*lead, *out.shape[-3:])


def center_crop(images: Tensor, size: tuple[int, int]) -> Tensor:
    """The centred ``size`` = (H, W) window of (..., H, W) images (offsets rounded as torchvision rounds them)."""
    height, width = images.shape[-2:]
    crop_h, crop_w = size
    if crop_h > height or crop_w > width:
        raise ValueError(f"crop {size} is larger than the image {(height, width)}")
    top = int(round((height - crop_h) / 2.0))
    left = int(round((width - crop_w) / 2.0))
    return images[..., top : top + crop_h, left : left + crop_w]


def random_crop(images: Tensor, size: tuple[int, int], generator: torch.Generator | None = None) -> Tensor:
    """One random ``size`` window, the same for the whole batch (as torchvision's RandomCrop on a batch tensor)."""
    height, width = images.shape[-2:]
    crop_h, crop_w = size
    if crop_h > height or crop_w > width:
        raise ValueError(f"crop {size} is larger than the image {(height, width)}")
    if (crop_h, crop_w) == (height, width):
        return images
    top = int(torch.randint(0, height - crop_h + 1, size=(1,), generator=generator).item())
    left = int(torch.randint(0, width - crop_w + 1, size=(1,), generator=generator).item())
    return images[..., top : top + crop_h, left : left + crop_w]


class SpatialSoftmax(nn.Module):
    """Keypoints from feature maps (Finn et al. 2016, "Deep Spatial Autoencoders"): per channel, the softmax over
    all positions is a distribution whose expected (x, y) in [-1, 1] image coordinates is that channel's keypoint.

    An optional 1x1 convolution (``nets``) first maps the C input channels to ``num_kp`` keypoint channels.
    ``pos_grid`` is a buffer (saved in checkpoints, as upstream) of the (x, y) of each position, row-major.
    """

    def __init__(self, input_shape: tuple[int, int, int], num_kp: int | None = None) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"SpatialSoftmax input_shape must be (C, H, W), got {input_shape}")
        self._in_c, self._in_h, self._in_w = (int(d) for d in input_shape)
        if num_kp is not None:
            self.nets = nn.Conv2d(self._in_c, num_kp, kernel_size=1)
            self._out_c = num_kp
        else:
            self.nets = None
            self._out_c = self._in_c
        # numpy's linspace, as the robomimic original: torch.linspace rounds a few grid points differently.
        pos_x, pos_y = np.meshgrid(np.linspace(-1.0, 1.0, self._in_w), np.linspace(-1.0, 1.0, self._in_h))
        grid = np.stack([pos_x.reshape(-1), pos_y.reshape(-1)], axis=1)
        self.register_buffer("pos_grid", torch.from_numpy(grid).float())

    @property
    def num_keypoints(self) -> int:
        return self._out_c

    def forward(self, features: Tensor) -> Tensor:
        """(B, C, H, W) feature maps -> (B, K, 2) keypoints."""
        if self.nets is not None:
            features = self.nets(features)
        attention = F.softmax(features.reshape(-1, self._in_h * self._in_w), dim=-1)
        return (attention @ self.pos_grid).view(-1, self._out_c, 2)


def output_shape(module: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape ``module`` produces for a zero input of ``input_shape`` (a dry run without autograd)."""
    was_training = module.training
    module.eval()  # BatchNorm's running stats must not move during a dry run
    try:
        with torch.no_grad():
            return tuple(module(torch.zeros(input_shape)).shape)
    finally:
        module.train(was_training)
