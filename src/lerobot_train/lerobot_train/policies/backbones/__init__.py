"""Image backbones written in plain torch with torchvision's parameter names."""

from lerobot_train.policies.backbones.resnet import (
    FrozenBatchNorm2d,
    ResNet,
    load_backbone_weights,
    make_resnet,
    pretrained_backbone_weights_disabled,
    resolve_weights_file,
)

__all__ = ["FrozenBatchNorm2d", "ResNet", "load_backbone_weights", "make_resnet", "pretrained_backbone_weights_disabled",
           "resolve_weights_file"]
