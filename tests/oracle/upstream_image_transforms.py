"""Apply upstream lerobot 0.4.4's `ImageTransforms` (torchvision v2 underneath) with fixed seeds (run with the
.venv-oracle python).

    python tests/oracle/upstream_image_transforms.py IN.npz OUT.npz CONFIG.json

IN.npz: `images` (N, C, H, W) float32 in [0, 1] and `seeds` (N,). CONFIG.json: a list of {"max_num_transforms",
"random_order", "tfs": {name: {"weight", "type", "kwargs"}}} (enable is forced on). For image i the global
torch RNG is seeded with seeds[i] right before the call, so a re-implementation drawing its parameters in the
same order from the same RNG must produce the same image. OUT.npz: `images_<k>` (the results of config k).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import oracle_shims  # noqa: F401,E402  (before lerobot)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from lerobot.datasets.transforms import ImageTransformConfig, ImageTransforms, ImageTransformsConfig  # noqa: E402


def main() -> None:
    src, dst, cfg_path = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    data = np.load(src)
    results = {}
    for k, spec in enumerate(json.loads(cfg_path.read_text())):
        cfg = ImageTransformsConfig(
            enable=True, max_num_transforms=spec["max_num_transforms"], random_order=spec["random_order"],
            tfs={name: ImageTransformConfig(**tf) for name, tf in spec["tfs"].items()},
        )
        tf = ImageTransforms(cfg)
        out = []
        for img, seed in zip(torch.from_numpy(data["images"]), data["seeds"].tolist()):
            torch.manual_seed(int(seed))
            out.append(tf(img).numpy())
        results[f"images_{k}"] = np.stack(out)
    np.savez(dst, **results)


if __name__ == "__main__":
    main()
