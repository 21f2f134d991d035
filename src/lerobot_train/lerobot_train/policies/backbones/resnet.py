"""ResNet image backbones in plain torch, with torchvision's module layout and parameter names.

The children are, in order, `conv1, bn1, relu, maxpool, layer1..layer4, avgpool, fc` (each block: `conv1, bn1,
conv2, bn2[, conv3, bn3], downsample.{0,1}`), so checkpoints that stored a torchvision ResNet (ACT's
`model.backbone.*`, Diffusion's `backbone.<n>.*`) load unchanged, and so do torchvision's ImageNet weights.

Pretrained weights (`weights=`) come from:
  - a torchvision weights name (`"ResNet18_Weights.IMAGENET1K_V1"`, upstream's config value): the same tensors
    are published on the Hugging Face Hub as `timm/resnet18.tv_in1k` (model.safetensors, torchvision's names),
    which is what we download;
  - a Hub repo id holding a `model.safetensors` with these names;
  - a local `.safetensors` file (or a folder holding `model.safetensors`).
Building a policy to load a checkpoint into skips the download (`pretrained_backbone_weights_disabled()`), since the
checkpoint's own tensors replace them.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import Tensor, nn

# torchvision weight names -> Hub repos holding the same tensors under the same names
TORCHVISION_WEIGHTS_ON_HUB = {
    "ResNet18_Weights.IMAGENET1K_V1": "timm/resnet18.tv_in1k",
    "ResNet18_Weights.DEFAULT": "timm/resnet18.tv_in1k",
    "ResNet34_Weights.IMAGENET1K_V1": "timm/resnet34.tv_in1k",
    "ResNet34_Weights.DEFAULT": "timm/resnet34.tv_in1k",
    "ResNet50_Weights.IMAGENET1K_V1": "timm/resnet50.tv_in1k",
    "ResNet50_Weights.IMAGENET1K_V2": "timm/resnet50.tv2_in1k",
    "ResNet50_Weights.DEFAULT": "timm/resnet50.tv2_in1k",
    "ResNet101_Weights.IMAGENET1K_V1": "timm/resnet101.tv_in1k",
    "ResNet101_Weights.IMAGENET1K_V2": "timm/resnet101.tv2_in1k",
    "ResNet101_Weights.DEFAULT": "timm/resnet101.tv2_in1k",
    "ResNet152_Weights.IMAGENET1K_V1": "timm/resnet152.tv_in1k",
    "ResNet152_Weights.IMAGENET1K_V2": "timm/resnet152.tv2_in1k",
    "ResNet152_Weights.DEFAULT": "timm/resnet152.tv2_in1k",
}

_SKIP_PRETRAINED = contextvars.ContextVar("skip_pretrained_backbone_weights", default=False)


@contextlib.contextmanager
def pretrained_backbone_weights_disabled() -> Iterator[None]:
    """Within this block `load_backbone_weights` does nothing (the model is about to get a checkpoint's tensors)."""
    token = _SKIP_PRETRAINED.set(True)
    try:
        yield
    finally:
        _SKIP_PRETRAINED.reset(token)


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters, all buffers (torchvision's; eps 1e-5).
    y = (x - running_mean) / sqrt(running_var + eps) * weight + bias, folded into one scale and shift."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        # A trainable BatchNorm's counter has no meaning here (torchvision drops it the same way).
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


NormLayer = Callable[[int], nn.Module]


def _conv3x3(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int, downsample: nn.Module | None, dilation: int,
                 norm: NormLayer) -> None:
        super().__init__()
        if dilation > 1:
            raise NotImplementedError("dilation > 1 is not supported by BasicBlock ResNets (18/34), as in torchvision")
        self.conv1 = _conv3x3(cin, width, stride)
        self.bn1 = norm(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(width, width)
        self.bn2 = norm(width)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + skip)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int, downsample: nn.Module | None, dilation: int,
                 norm: NormLayer) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = norm(width)
        self.conv2 = _conv3x3(width, width, stride, dilation)
        self.bn2 = norm(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = norm(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + skip)


# name -> (block, blocks per stage)
RESNET_SPECS: dict[str, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
    "resnet152": (Bottleneck, (3, 8, 36, 3)),
}


class ResNet(nn.Module):
    """torchvision's ResNet. `include_top=False` leaves out avgpool and fc (a feature extractor whose output is
    layer4's map, e.g. ACT's backbone; its state dict then has no `fc.*`)."""

    def __init__(
        self,
        name: str = "resnet18",
        *,
        norm_layer: NormLayer = nn.BatchNorm2d,
        replace_stride_with_dilation: tuple[bool, bool, bool] = (False, False, False),
        include_top: bool = True,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        if name not in RESNET_SPECS:
            raise ValueError(f"unknown ResNet {name!r} (one of {sorted(RESNET_SPECS)})")
        block, depths = RESNET_SPECS[name]
        self.arch = name
        self._norm = norm_layer
        self._cin = 64
        self._dilation = 1
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._stage(block, 64, depths[0])
        self.layer2 = self._stage(block, 128, depths[1], 2, replace_stride_with_dilation[0])
        self.layer3 = self._stage(block, 256, depths[2], 2, replace_stride_with_dilation[1])
        self.layer4 = self._stage(block, 512, depths[3], 2, replace_stride_with_dilation[2])
        # channels of layer4's output (torchvision's fc.in_features)
        self.num_features = 512 * block.expansion
        if include_top:
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(self.num_features, num_classes)
        self._init_weights()

    def _stage(self, block: type[nn.Module], width: int, depth: int, stride: int = 1, dilate: bool = False) -> nn.Sequential:
        previous_dilation = self._dilation
        if dilate:
            self._dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self._cin != width * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(self._cin, width * block.expansion, 1, stride=stride, bias=False),
                                       self._norm(width * block.expansion))
        layers = [block(self._cin, width, stride, downsample, previous_dilation, self._norm)]
        self._cin = width * block.expansion
        layers += [block(self._cin, width, 1, None, self._dilation, self._norm) for _ in range(1, depth)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        # torchvision's initialisation (only matters when training from scratch)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def trunk(self) -> list[nn.Module]:
        """conv1 .. layer4 (torchvision's `list(children())[:-2]`), the modules of a feature extractor."""
        return [self.conv1, self.bn1, self.relu, self.maxpool, self.layer1, self.layer2, self.layer3, self.layer4]

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> layer4's (B, num_features, H/32, W/32) feature map."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: Tensor) -> Tensor:
        x = self.forward_features(x)
        if not hasattr(self, "fc"):
            return x
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resolve_weights_file(weights: str) -> Path:
    """The local safetensors file for a `weights` value (torchvision name, Hub repo id, file or folder)."""
    path = Path(weights).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        if (path / "model.safetensors").exists():
            return path / "model.safetensors"
        raise FileNotFoundError(f"backbone weights folder {path} has no model.safetensors")
    repo_id = TORCHVISION_WEIGHTS_ON_HUB.get(weights, weights)
    if "_Weights." in weights and weights not in TORCHVISION_WEIGHTS_ON_HUB:
        raise ValueError(f"unknown torchvision weights {weights!r} (known: {sorted(TORCHVISION_WEIGHTS_ON_HUB)})")
    from lerobot_train.policies.checkpoint_files import looks_like_repo_id

    if not looks_like_repo_id(repo_id):
        raise FileNotFoundError(f"backbone weights {weights!r}: not a file, a folder, a Hub repo id or a torchvision name")
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id=repo_id, filename="model.safetensors"))
    except Exception as exc:  # network, missing repo, missing file: all end the same way for the user
        raise FileNotFoundError(f"backbone weights {weights!r}: downloading {repo_id}/model.safetensors failed: {exc}") from exc


def load_backbone_weights(model: ResNet, weights: str | None) -> None:
    """Copy pretrained weights into `model` (no-op for None, or inside pretrained_backbone_weights_disabled()).

    The file must hold every tensor of the trunk with the same shapes; a classifier head (`fc.*`) the model does
    not have is ignored, and so are BatchNorm counters.
    """
    if weights is None or _SKIP_PRETRAINED.get():
        return
    from safetensors.torch import load_file

    path = resolve_weights_file(weights)
    state = load_file(str(path))
    own = model.state_dict()
    wanted = {k: v for k, v in state.items() if k in own and not k.endswith("num_batches_tracked")}
    missing = sorted(k for k in own if k not in wanted and not k.endswith("num_batches_tracked"))
    if missing:
        raise ValueError(f"backbone weights {path}: missing {len(missing)} tensors of {model.arch}, e.g. {missing[:4]}")
    bad = [k for k, v in wanted.items() if tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise ValueError(f"backbone weights {path}: shapes differ from {model.arch} for {bad[:4]}")
    model.load_state_dict(wanted, strict=False)


def make_resnet(
    name: str,
    weights: str | None = None,
    *,
    norm_layer: NormLayer = nn.BatchNorm2d,
    replace_stride_with_dilation: tuple[bool, bool, bool] = (False, False, False),
    include_top: bool = True,
) -> ResNet:
    """A ResNet by name with pretrained `weights` loaded (see `resolve_weights_file` for the accepted forms)."""
    model = ResNet(name, norm_layer=norm_layer, replace_stride_with_dilation=replace_stride_with_dilation,
                   include_top=include_top)
    load_backbone_weights(model, weights)
    return model
