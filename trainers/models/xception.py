"""Xception (Chollet, CVPR 2017): entry flow (conv1, conv2, block1-3), middle flow
(block4-11), exit flow (block12, conv3, conv4). Module names follow the widely used
PyTorch port, so its ImageNet weights load by name. `XceptionFeatures(upto_block=n)`
stops after block n (patch-forensics' truncated classifiers)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SeparableConv2d(nn.Module):
    """Depthwise 3 x 3 then pointwise 1 x 1 convolution."""

    def __init__(self, inputs: int, outputs: int, kernel_size: int = 3, padding: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, inputs, kernel_size, 1, padding, groups=inputs, bias=False)
        self.pointwise = nn.Conv2d(inputs, outputs, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.conv1(x))


class Block(nn.Module):
    """`reps` x (ReLU, separable conv, BN), a 3 x 3 max-pool when strided, plus a 1 x 1
    (strided) projection skip when the shape changes."""

    def __init__(self, inputs: int, outputs: int, reps: int, stride: int = 1, start_with_relu: bool = True,
                 grow_first: bool = True):
        super().__init__()
        self.skip = None
        if outputs != inputs or stride != 1:
            self.skip = nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False)
            self.skipbn = nn.BatchNorm2d(outputs)
        layers, channels = [], inputs
        widths = [outputs] + [outputs] * (reps - 1) if grow_first else [inputs] * (reps - 1) + [outputs]
        for width in widths:
            layers += [nn.ReLU(inplace=False), SeparableConv2d(channels, width), nn.BatchNorm2d(width)]
            channels = width
        if not start_with_relu:
            layers = layers[1:]
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, 1))
        self.rep = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.skipbn(self.skip(x)) if self.skip is not None else x
        return self.rep(x) + skip


def _block_specs() -> list[tuple]:
    """(inputs, outputs, reps, stride, start_with_relu, grow_first) of blocks 1-12."""
    return ([(64, 128, 2, 2, False, True), (128, 256, 2, 2, True, True), (256, 728, 2, 2, True, True)]
            + [(728, 728, 3, 1, True, True)] * 8 + [(728, 1024, 2, 2, True, False)])


class XceptionFeatures(nn.Module):
    """Xception up to block `upto_block` (1-12); with `exit_flow`, also conv3 / conv4
    (the full 2048-channel feature extractor, stride 32). Input: normalised RGB."""

    def __init__(self, upto_block: int = 12, exit_flow: bool = False):
        super().__init__()
        if not 1 <= upto_block <= 12 or (exit_flow and upto_block != 12):
            raise ValueError(f"upto_block must be in 1..12 (12 with exit_flow), got {upto_block}")
        self.conv1, self.bn1 = nn.Conv2d(3, 32, 3, 2, 0, bias=False), nn.BatchNorm2d(32)
        self.conv2, self.bn2 = nn.Conv2d(32, 64, 3, bias=False), nn.BatchNorm2d(64)
        for number, spec in enumerate(_block_specs()[:upto_block], 1):
            self.add_module(f"block{number}", Block(*spec))
        self.upto_block, self.exit_flow = upto_block, exit_flow
        if exit_flow:
            self.conv3, self.bn3 = SeparableConv2d(1024, 1536), nn.BatchNorm2d(1536)
            self.conv4, self.bn4 = SeparableConv2d(1536, 2048), nn.BatchNorm2d(2048)
        self.channels = 2048 if exit_flow else _block_specs()[upto_block - 1][1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for number in range(1, self.upto_block + 1):
            x = getattr(self, f"block{number}")(x)
        if self.exit_flow:
            x = F.relu(self.bn3(self.conv3(x)))
            x = F.relu(self.bn4(self.conv4(x)))
        return x
