"""AMTENnet (Guo et al., "Fake face detection via adaptive manipulation traces extraction
network", Sec. III, Table I), input 128 x 128.

AMTEN (no pooling or ReLU inside, so traces are not destroyed):
    F_mt = Conv1(I) - I                   3 kernels
    F1   = Conv3(Conv2(F_mt))             3 kernels each
    F2   = Conv5(Conv4([F1, F_mt]))       6 kernels each
    F_reu = [F2, F_mt, [F1, F_mt]]        6 + 3 + 6 = 15 channels
HFE: Conv6 (24) -> MaxPool, Conv7 (48, unpadded) -> MaxPool, Conv8 (64, unpadded) ->
MaxPool, Conv9 (128, 1 x 1) -> MaxPool; max-pools 3 x 3 / 2 with Caffe's ceil rounding,
ReLU after every HFE conv, BN after Conv6-8 (three BN layers).
Classifier: FC 300 - FC 300 - FC n, softmax. Sizes: 128 -> 64 -> 62 -> 31 -> 29 -> 14 -> 14 -> 7.
"""
from __future__ import annotations

import torch
from torch import nn


class AMTEN(nn.Module):
    """Adaptive manipulation traces extraction: (N, 3, H, W) -> F_reu (N, 15, H, W)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)
        self.conv3 = nn.Conv2d(3, 3, 3, padding=1)
        self.conv4 = nn.Conv2d(6, 6, 3, padding=1)
        self.conv5 = nn.Conv2d(6, 6, 3, padding=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        traces = self.conv1(image) - image
        f1 = self.conv3(self.conv2(traces))
        reused = torch.cat([f1, traces], 1)
        f2 = self.conv5(self.conv4(reused))
        return torch.cat([f2, traces, reused], 1)


def _pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(3, stride=2, ceil_mode=True)


class AMTENnet(nn.Module):
    """images (N, 3, 128, 128) float -> class logits (N, classes)."""

    def __init__(self, classes: int = 2, input_size: int = 128):
        super().__init__()
        self.amten = AMTEN()
        self.hfe = nn.Sequential(
            nn.Conv2d(15, 24, 3, padding=1), nn.BatchNorm2d(24), nn.ReLU(inplace=True), _pool(),   # conv6
            nn.Conv2d(24, 48, 3), nn.BatchNorm2d(48), nn.ReLU(inplace=True), _pool(),              # conv7
            nn.Conv2d(48, 64, 3), nn.BatchNorm2d(64), nn.ReLU(inplace=True), _pool(),              # conv8
            nn.Conv2d(64, 128, 1), nn.ReLU(inplace=True), _pool(),                                 # conv9
        )
        with torch.no_grad():
            flat = self.hfe(self.amten(torch.zeros(1, 3, input_size, input_size))).numel()
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(flat, 300), nn.ReLU(inplace=True),
                                        nn.Linear(300, 300), nn.ReLU(inplace=True), nn.Linear(300, classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.hfe(self.amten(images)))
