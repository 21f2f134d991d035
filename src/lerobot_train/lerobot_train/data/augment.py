"""Camera augmentations for training, in plain torch (no torchvision here), with upstream's config names.

Upstream LeRobot (`datasets/transforms.py`) composes torchvision v2 transforms: for every camera image it picks a
random subset of at most `max_num_transforms` of the configured transforms (multinomial by `weight`, without
replacement; applied in the listed order unless `random_order`), each with a parameter drawn uniformly from
its range. Defaults: off (`enable=False`), 3 per image, brightness (0.8, 1.2), contrast (0.8, 1.2),
saturation (0.5, 1.5), hue (-0.05, 0.05), sharpness (0.5, 1.5), affine (±5°, translate 5 %).

The colour maths follows torchvision's functional definitions on float images in [0, 1]:
- brightness f: `clamp(f * x)`; contrast f: blend with the mean of the grayscale image; saturation f: blend
  with the grayscale image (0.2989 R + 0.587 G + 0.114 B); hue h: rotate the HSV hue by h turns;
- sharpness f: blend with a 3x3 smoothed copy (kernel [[1,1,1],[1,5,1],[1,1,1]] / 13, border pixels kept);
  f = 0 blurs, 1 is the identity, 2 sharpens;
- affine: rotation about the image centre (positive = clockwise on screen, as torchvision's affine), translation by a whole number of
  pixels up to `translate * size`, optional scale and shear; nearest-neighbour sampling, 0 outside.
A window of frames (T, C, H, W) gets the same parameters for every frame (as torchvision treats leading dims).

Randomness: parameters come from the global torch RNG (DataLoader workers seed it per worker), or from the
`generator` passed to the call, so a seed reproduces the same augmentation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

Range = tuple[float, float]


# ==================================================================================== config (upstream names)
@dataclass
class ImageTransformConfig:
    """One transform: `weight` (relative chance of being picked), `type` (ColorJitter, SharpnessJitter,
    RandomAffine or Identity) and `kwargs` (the ranges its parameter is drawn from)."""

    weight: float = 1.0
    type: str = "Identity"
    kwargs: dict[str, Any] = field(default_factory=dict)


def _default_tfs() -> dict[str, ImageTransformConfig]:
    return {
        "brightness": ImageTransformConfig(weight=1.0, type="ColorJitter", kwargs={"brightness": (0.8, 1.2)}),
        "contrast": ImageTransformConfig(weight=1.0, type="ColorJitter", kwargs={"contrast": (0.8, 1.2)}),
        "saturation": ImageTransformConfig(weight=1.0, type="ColorJitter", kwargs={"saturation": (0.5, 1.5)}),
        "hue": ImageTransformConfig(weight=1.0, type="ColorJitter", kwargs={"hue": (-0.05, 0.05)}),
        "sharpness": ImageTransformConfig(weight=1.0, type="SharpnessJitter", kwargs={"sharpness": (0.5, 1.5)}),
        "affine": ImageTransformConfig(
            weight=1.0, type="RandomAffine", kwargs={"degrees": (-5.0, 5.0), "translate": (0.05, 0.05)}
        ),
    }


@dataclass
class ImageTransformsConfig:
    """Upstream's `dataset.image_transforms` block."""

    # Off by default: set True to augment camera images during training.
    enable: bool = False
    # At most this many transforms (a random subset of `tfs`) are applied to each image.
    max_num_transforms: int = 3
    # False: the picked transforms run in the order of `tfs`; True: in a random order.
    random_order: bool = False
    tfs: dict[str, ImageTransformConfig] = field(default_factory=_default_tfs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> "ImageTransformsConfig":
        known = {"enable", "max_num_transforms", "random_order", "tfs"}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise ValueError(f"image_transforms: unknown keys {unknown} (expected {sorted(known)})")
        tfs = obj.get("tfs")
        parsed = None
        if tfs is not None:
            parsed = {}
            for name, tf in tfs.items():
                bad = sorted(set(tf) - {"weight", "type", "kwargs"})
                if bad:
                    raise ValueError(f"image_transforms.tfs.{name}: unknown keys {bad} (expected weight, type, kwargs)")
                parsed[name] = ImageTransformConfig(**tf)
        return cls(
            enable=bool(obj.get("enable", False)),
            max_num_transforms=int(obj.get("max_num_transforms", 3)),
            random_order=bool(obj.get("random_order", False)),
            **({"tfs": parsed} if parsed is not None else {}),
        )


# ==================================================================================== colour maths
def _uniform(lo: float, hi: float, generator: torch.Generator | None) -> float:
    return float(torch.empty(1).uniform_(lo, hi, generator=generator).item())


def _blend(img: torch.Tensor, other: torch.Tensor, ratio: float) -> torch.Tensor:
    return (ratio * img + (1.0 - ratio) * other).clamp(0.0, 1.0)


def rgb_to_grayscale(img: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) -> (..., 1, H, W) luma with ITU-R 601 weights."""
    r, g, b = img.unbind(dim=-3)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)


def adjust_brightness(img: torch.Tensor, factor: float) -> torch.Tensor:
    return _blend(img, torch.zeros_like(img), factor)


def adjust_contrast(img: torch.Tensor, factor: float) -> torch.Tensor:
    gray = rgb_to_grayscale(img) if img.shape[-3] == 3 else img
    mean = gray.mean(dim=(-3, -2, -1), keepdim=True)
    return _blend(img, mean, factor)


def adjust_saturation(img: torch.Tensor, factor: float) -> torch.Tensor:
    if img.shape[-3] == 1:
        return img
    return _blend(img, rgb_to_grayscale(img), factor)


def _rgb_to_hsv(img: torch.Tensor) -> torch.Tensor:
    r, g, b = img.unbind(dim=-3)
    maxc = torch.max(img, dim=-3).values
    minc = torch.min(img, dim=-3).values
    delta = maxc - minc
    v = maxc
    s = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack((h, s, v), dim=-3)


def _hsv_to_rgb(img: torch.Tensor) -> torch.Tensor:
    h, s, v = img.unbind(dim=-3)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.to(torch.int64) % 6
    p = (v * (1.0 - s)).clamp(0.0, 1.0)
    q = (v * (1.0 - s * f)).clamp(0.0, 1.0)
    t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0)
    # The six sectors of the hue circle: (r, g, b) as a choice among v, p, q, t.
    choices = torch.stack(
        (
            torch.stack((v, t, p), dim=-3), torch.stack((q, v, p), dim=-3), torch.stack((p, v, t), dim=-3),
            torch.stack((p, q, v), dim=-3), torch.stack((t, p, v), dim=-3), torch.stack((v, p, q), dim=-3),
        ),
        dim=0,
    )
    index = i.unsqueeze(-3).expand_as(img).unsqueeze(0)
    return torch.gather(choices, 0, index).squeeze(0)


def adjust_hue(img: torch.Tensor, hue_factor: float) -> torch.Tensor:
    """Rotate the hue by `hue_factor` turns (in [-0.5, 0.5])."""
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"hue_factor must be in [-0.5, 0.5], got {hue_factor}")
    if img.shape[-3] == 1:
        return img
    hsv = _rgb_to_hsv(img)
    h = (hsv[..., 0:1, :, :] + hue_factor) % 1.0
    return _hsv_to_rgb(torch.cat((h, hsv[..., 1:, :, :]), dim=-3))


def adjust_sharpness(img: torch.Tensor, factor: float) -> torch.Tensor:
    h, w = img.shape[-2:]
    if h <= 2 or w <= 2:
        return img
    c = img.shape[-3]
    flat = img.reshape(-1, c, h, w)
    kernel = torch.ones(3, 3, dtype=img.dtype, device=img.device)
    kernel[1, 1] = 5.0
    kernel = (kernel / kernel.sum()).expand(c, 1, 3, 3)
    smoothed = F.conv2d(flat, kernel, groups=c)
    degenerate = flat.clone()
    degenerate[..., 1:-1, 1:-1] = smoothed  # borders keep the original pixels
    return _blend(flat, degenerate, factor).reshape(img.shape)


def affine(
    img: torch.Tensor, angle: float, translate: Sequence[float], scale: float = 1.0, shear: Sequence[float] = (0.0, 0.0)
) -> torch.Tensor:
    """Rotate (degrees, clockwise on screen, as torchvision's affine) / translate (pixels) / scale / shear (degrees)
    about the image centre; nearest-neighbour, zeros outside."""
    h, w = img.shape[-2:]
    c = img.shape[-3]
    a = math.radians(angle)
    sx, sy = math.radians(shear[0]), math.radians(shear[1])
    # Forward map of centred pixel coordinates (x right, y down), torchvision's decomposition:
    # R(a) * S(scale) * SHy(sy) * SHx(sx), then the translation.
    fwd = scale * torch.tensor(
        [
            [math.cos(a - sy) / math.cos(sy), -math.cos(a - sy) * math.tan(sx) / math.cos(sy) - math.sin(a)],
            [math.sin(a - sy) / math.cos(sy), -math.sin(a - sy) * math.tan(sx) / math.cos(sy) + math.cos(a)],
        ],
        dtype=torch.float64,
    )
    inv = torch.linalg.inv(fwd)
    shift = torch.tensor(translate, dtype=torch.float64)
    inv_shift = -(inv @ shift)
    # affine_grid works in normalised coordinates (x / (w/2), y / (h/2)).
    theta = torch.tensor(
        [
            [inv[0, 0], inv[0, 1] * h / w, inv_shift[0] * 2 / w],
            [inv[1, 0] * w / h, inv[1, 1], inv_shift[1] * 2 / h],
        ],
        dtype=img.dtype,
        device=img.device,
    )
    flat = img.reshape(-1, c, h, w)
    grid = F.affine_grid(theta.expand(flat.shape[0], 2, 3), list(flat.shape), align_corners=False)
    out = F.grid_sample(flat, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return out.reshape(img.shape)


# ==================================================================================== transforms
def _range(value: Any, name: str, center: float | None, lower_bound: float | None = 0.0) -> Range:
    """torchvision's rule: a number v means (center - v, center + v) (clipped at lower_bound), a pair is taken as is."""
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{name}: a single number must be >= 0, got {value}")
        if center is None:
            raise ValueError(f"{name}: give a (min, max) pair")
        lo, hi = center - value, center + value
        if lower_bound is not None:
            lo = max(lo, lower_bound)
        return float(lo), float(hi)
    if isinstance(value, Sequence) and len(value) == 2:
        lo, hi = float(value[0]), float(value[1])
        if lo > hi or (lower_bound is not None and lo < lower_bound):
            raise ValueError(f"{name}: expected min <= max{f' and min >= {lower_bound}' if lower_bound is not None else ''}, got {list(value)}")
        return lo, hi
    raise TypeError(f"{name}: expected a number or a (min, max) pair, got {value!r}")


class Transform:
    """A random image transform: `__call__(img, generator=None)` on float (..., C, H, W) in [0, 1]."""

    def __call__(self, img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError


class Identity(Transform):
    def __call__(self, img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return img


class ColorJitter(Transform):
    """Random brightness / contrast / saturation / hue, each given as a factor range; when several are set they
    are applied in a random order (as torchvision)."""

    def __init__(self, brightness: Any = None, contrast: Any = None, saturation: Any = None, hue: Any = None) -> None:
        self.brightness = None if brightness is None else _range(brightness, "brightness", 1.0)
        self.contrast = None if contrast is None else _range(contrast, "contrast", 1.0)
        self.saturation = None if saturation is None else _range(saturation, "saturation", 1.0)
        self.hue = None if hue is None else _range(hue, "hue", 0.0, lower_bound=None)
        if self.hue is not None and not -0.5 <= self.hue[0] <= self.hue[1] <= 0.5:
            raise ValueError(f"hue: range must lie in [-0.5, 0.5], got {list(self.hue)}")

    def __call__(self, img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        ops: list[tuple[Range | None, Callable[[torch.Tensor, float], torch.Tensor]]] = [
            (self.brightness, adjust_brightness), (self.contrast, adjust_contrast),
            (self.saturation, adjust_saturation), (self.hue, adjust_hue),
        ]
        order = torch.randperm(4, generator=generator).tolist()
        factors = [None if r is None else _uniform(r[0], r[1], generator) for r, _ in ops]
        for i in order:
            if factors[i] is not None:
                img = ops[i][1](img, factors[i])
        return img


class SharpnessJitter(Transform):
    """Sharpness factor drawn from `sharpness` ((min, max), or v meaning (max(0, 1 - v), 1 + v))."""

    def __init__(self, sharpness: Any) -> None:
        self.sharpness = _range(sharpness, "sharpness", 1.0)

    def __call__(self, img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return adjust_sharpness(img, _uniform(*self.sharpness, generator))


class RandomAffine(Transform):
    """Small random rotation (`degrees`), translation (`translate` as fractions of width/height), optional
    `scale` range and `shear` (x range, or x and y ranges)."""

    def __init__(self, degrees: Any, translate: Sequence[float] | None = None, scale: Sequence[float] | None = None,
                 shear: Any = None) -> None:
        self.degrees = _range(degrees, "degrees", 0.0, lower_bound=None)
        if translate is not None:
            if len(translate) != 2 or not all(0.0 <= t <= 1.0 for t in translate):
                raise ValueError(f"translate: expected two fractions in [0, 1], got {translate!r}")
            translate = (float(translate[0]), float(translate[1]))
        self.translate = translate
        self.scale = None if scale is None else _range(scale, "scale", None)
        if self.scale is not None and self.scale[0] <= 0:
            raise ValueError(f"scale: must be > 0, got {list(self.scale)}")
        self.shear_x: Range | None = None
        self.shear_y: Range | None = None
        if shear is not None:
            if isinstance(shear, Sequence) and len(shear) == 4:
                self.shear_x = (float(shear[0]), float(shear[1]))
                self.shear_y = (float(shear[2]), float(shear[3]))
            else:
                self.shear_x = _range(shear, "shear", 0.0, lower_bound=None)

    def __call__(self, img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        h, w = img.shape[-2:]
        angle = _uniform(*self.degrees, generator)
        tx = ty = 0.0
        if self.translate is not None:
            max_dx, max_dy = self.translate[0] * w, self.translate[1] * h
            tx = float(round(_uniform(-max_dx, max_dx, generator)))
            ty = float(round(_uniform(-max_dy, max_dy, generator)))
        scale = _uniform(*self.scale, generator) if self.scale is not None else 1.0
        # Parameters are drawn in torchvision's order (angle, tx, ty, scale, shear x, shear y), only for the
        # ranges that are set, so a seed gives the same augmentation as upstream's torchvision pipeline.
        shear_x = _uniform(*self.shear_x, generator) if self.shear_x is not None else 0.0
        shear_y = _uniform(*self.shear_y, generator) if self.shear_y is not None else 0.0
        return affine(img, angle, (tx, ty), scale, (shear_x, shear_y))


TRANSFORM_TYPES: dict[str, type[Transform]] = {
    "Identity": Identity,
    "ColorJitter": ColorJitter,
    "SharpnessJitter": SharpnessJitter,
    "RandomAffine": RandomAffine,
}


def make_transform_from_config(cfg: ImageTransformConfig) -> Transform:
    cls = TRANSFORM_TYPES.get(cfg.type)
    if cls is None:
        raise ValueError(f"image transform type {cfg.type!r} is not available; choose one of {sorted(TRANSFORM_TYPES)}")
    try:
        return cls(**cfg.kwargs)
    except TypeError as exc:
        raise ValueError(f"image transform {cfg.type}: bad kwargs {cfg.kwargs}: {exc}") from None


class RandomSubsetApply(Transform):
    """Apply `n_subset` of `transforms`, picked by multinomial sampling of `p` without replacement; in list order
    unless `random_order`."""

    def __init__(self, transforms: Sequence[Transform], p: Sequence[float] | None = None, n_subset: int | None = None,
                 random_order: bool = False) -> None:
        if not transforms:
            raise ValueError("RandomSubsetApply needs at least one transform")
        p = [1.0] * len(transforms) if p is None else list(p)
        if len(p) != len(transforms):
            raise ValueError(f"length of p ({len(p)}) != number of transforms ({len(transforms)})")
        n_subset = len(transforms) if n_subset is None else int(n_subset)
        if not 1 <= n_subset <= len(transforms):
            raise ValueError(f"n_subset must be in [1, {len(transforms)}], got {n_subset}")
        total = sum(p)
        self.transforms = list(transforms)
        self.p = torch.tensor([x / total for x in p])  # float32, as upstream: the draws depend on the dtype
        self.n_subset = n_subset
        self.random_order = random_order
        self.last_selected: list[int] = []  # indices picked by the latest call (for inspection/tests)

    def __call__(self, img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        picked = torch.multinomial(self.p, self.n_subset, replacement=False, generator=generator)
        if not self.random_order:
            picked = picked.sort().values
        self.last_selected = picked.tolist()
        for i in self.last_selected:
            img = self.transforms[i](img, generator)
        return img


class ImageTransforms(Transform):
    """The configured augmentation: a random subset of `config.tfs` per call; the identity when disabled."""

    def __init__(self, config: ImageTransformsConfig | None = None) -> None:
        self.config = config if config is not None else ImageTransformsConfig()
        self.transforms: dict[str, Transform] = {}
        weights: list[float] = []
        for name, tf_cfg in self.config.tfs.items():
            if tf_cfg.weight <= 0.0:
                continue
            try:
                self.transforms[name] = make_transform_from_config(tf_cfg)
            except ValueError as exc:
                raise ValueError(f"image_transforms.tfs.{name}: {exc}") from None
            weights.append(tf_cfg.weight)
        n_subset = min(len(self.transforms), self.config.max_num_transforms)
        if not self.config.enable or n_subset <= 0:
            self.tf: Transform = Identity()
        else:
            self.tf = RandomSubsetApply(list(self.transforms.values()), p=weights, n_subset=n_subset,
                                        random_order=self.config.random_order)

    @property
    def enabled(self) -> bool:
        return not isinstance(self.tf, Identity)

    def __call__(self, img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if img.dtype == torch.uint8:
            raise TypeError("ImageTransforms expects float images in [0, 1]; convert uint8 frames with x / 255 first")
        return self.tf(img, generator)
