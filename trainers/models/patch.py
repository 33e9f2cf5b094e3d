"""Truncated patch classifiers (Chai et al., ECCV 2020, Sec. 3.1): a backbone cut after an
early block, then a 1 x 1 convolution to 2 classes at every position, so each output is
the real / fake logit of one receptive-field-sized patch.

Receptive fields (px, measured by `trainers.models.receptive.receptive_field`):
    resnet18-layer1 43; xception-block1 19, -block2 43, -block3 91, -block4 187, -block5 283
"""
from __future__ import annotations

import torch
from torch import nn

from trainers.models.blocks import BasicBlock, residual_blocks
from trainers.models.xception import XceptionFeatures

RECEPTIVE_FIELDS = {"resnet18-layer1": 43, "xception-block1": 19, "xception-block2": 43,
                    "xception-block3": 91, "xception-block4": 187, "xception-block5": 283}
TRUNKS = tuple(RECEPTIVE_FIELDS)


class ResNet18Layer1(nn.Module):
    """ResNet-18 stem (7 x 7 / 2 conv, 3 x 3 / 2 max-pool) and layer1 (two BasicBlocks),
    torchvision's module names; 64 channels at stride 4."""

    channels = 64

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = residual_blocks(BasicBlock, 64, 64, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))


def make_trunk(name: str) -> nn.Module:
    """A truncated backbone by name (one of TRUNKS)."""
    if name == "resnet18-layer1":
        return ResNet18Layer1()
    if name.startswith("xception-block"):
        return XceptionFeatures(upto_block=int(name.removeprefix("xception-block")))
    raise ValueError(f"unknown trunk {name!r}; choose from {', '.join(TRUNKS)}")


class PatchClassifier(nn.Module):
    """images (N, 3, H, W) normalised -> patch logits (N, 2, h, w)."""

    def __init__(self, trunk: str):
        super().__init__()
        self.trunk = make_trunk(trunk)
        self.head = nn.Conv2d(self.trunk.channels, 2, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(images))
