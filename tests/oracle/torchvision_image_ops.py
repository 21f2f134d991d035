"""Apply torchvision's functional image ops with FIXED parameters (run with the .venv-oracle python).

    python tests/oracle/torchvision_image_ops.py IN.npz OUT.npz

IN.npz holds `images` (N, C, H, W) float32 in [0, 1]. OUT.npz gets one array per op, named as below, each the
torchvision v2 functional result on all images, so tests can check our plain-torch re-implementation
(lerobot_train.data.augment) against the library upstream LeRobot uses.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import oracle_shims  # noqa: F401,E402  (before torchvision)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchvision.transforms.v2 import functional as F  # noqa: E402

# name -> (torchvision function, keyword arguments); the test mirrors these names and values.
OPS = {
    "brightness_0.7": (F.adjust_brightness, {"brightness_factor": 0.7}),
    "brightness_1.3": (F.adjust_brightness, {"brightness_factor": 1.3}),
    "contrast_0.6": (F.adjust_contrast, {"contrast_factor": 0.6}),
    "contrast_1.4": (F.adjust_contrast, {"contrast_factor": 1.4}),
    "saturation_0.3": (F.adjust_saturation, {"saturation_factor": 0.3}),
    "saturation_1.6": (F.adjust_saturation, {"saturation_factor": 1.6}),
    "hue_-0.2": (F.adjust_hue, {"hue_factor": -0.2}),
    "hue_0.05": (F.adjust_hue, {"hue_factor": 0.05}),
    "hue_0.45": (F.adjust_hue, {"hue_factor": 0.45}),
    "sharpness_0.0": (F.adjust_sharpness, {"sharpness_factor": 0.0}),
    "sharpness_1.8": (F.adjust_sharpness, {"sharpness_factor": 1.8}),
    "affine_translate": (F.affine, {"angle": 0.0, "translate": [3, -2], "scale": 1.0, "shear": [0.0, 0.0]}),
    "affine_rotate_90": (F.affine, {"angle": 90.0, "translate": [0, 0], "scale": 1.0, "shear": [0.0, 0.0]}),
    "affine_rotate_5": (F.affine, {"angle": 5.0, "translate": [1, 2], "scale": 1.0, "shear": [0.0, 0.0]}),
    "affine_scale_shear": (F.affine, {"angle": -7.0, "translate": [-2, 1], "scale": 1.2, "shear": [8.0, -4.0]}),
}


def main() -> None:
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    images = torch.from_numpy(np.load(src)["images"])
    out = {name: fn(images, **kwargs).numpy() for name, (fn, kwargs) in OPS.items()}
    np.savez(dst, **out)


if __name__ == "__main__":
    main()
