"""Pixel-level face-forensics networks (Li et al., "Zooming into Face Forensics", Sec. 3.2):
each maps an image to one manipulation logit per pixel (bilinearly upsampled from its
output stride to the input size).

- FN3: two Conv(7 x 7, stride 2)-BN-ReLU blocks and a 3 x 3 conv classifier.
- VGG3 / VGG5 / VGG8: the first 2 / 4 / 7 convolutions of VGG16 (with BN) and a 1 x 1 classifier.
- UNet4x / UNet8x: U-Net downsampled 4 / 8 times, skip connections, 1 x 1 classifier.
- MesoInception-4-seg: MesoInception-4 up to its last batch norm, then a conv classifier.
- Xception-seg: the full Xception feature extractor and a 1 x 1 classifier (stride 32).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainers.models.xception import XceptionFeatures


def _conv_bn_relu(inputs: int, outputs: int, kernel: int = 3, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(inputs, outputs, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(outputs),
            nn.ReLU(inplace=True)]


class DenseHead(nn.Module):
    """A feature extractor and a classifier conv, logits upsampled to the input size."""

    def __init__(self, features: nn.Module, classifier: nn.Module):
        super().__init__()
        self.features, self.classifier = features, classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.features(images))
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)


def fn3(width: int = 64) -> nn.Module:
    return DenseHead(nn.Sequential(*_conv_bn_relu(3, width, 7, 2), *_conv_bn_relu(width, 2 * width, 7, 2)),
                     nn.Conv2d(2 * width, 1, 3, padding=1))


_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256)


def vgg(convolutions: int) -> nn.Module:
    """The first `convolutions` conv layers of VGG16-BN (with their max-pools) + 1 x 1 classifier."""
    layers, channels, count = [], 3, 0
    for item in _VGG16:
        if count == convolutions:
            break
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += _conv_bn_relu(channels, item)
            channels, count = item, count + 1
    return DenseHead(nn.Sequential(*layers), nn.Conv2d(channels, 1, 1))


class UNet(nn.Module):
    """U-Net with `downsamplings` 2x max-pool steps (widths 64, 128, ...), bilinear
    upsampling and concatenated skips; (N, 3, H, W) -> (N, 1, H, W), H divisible by
    2**downsamplings."""

    def __init__(self, downsamplings: int, width: int = 64):
        super().__init__()
        widths = [width * 2 ** i for i in range(downsamplings + 1)]
        self.encoder = nn.ModuleList()
        channels = 3
        for w in widths:
            self.encoder.append(nn.Sequential(*_conv_bn_relu(channels, w), *_conv_bn_relu(w, w)))
            channels = w
        self.decoder = nn.ModuleList(
            nn.Sequential(*_conv_bn_relu(widths[i + 1] + widths[i], widths[i]), *_conv_bn_relu(widths[i], widths[i]))
            for i in reversed(range(downsamplings)))
        self.classifier = nn.Conv2d(width, 1, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        skips, x = [], images
        for number, block in enumerate(self.encoder):
            x = block(x if number == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for block, skip in zip(self.decoder, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return self.classifier(x)


class InceptionLayer(nn.Module):
    """MesoInception's module: 1 x 1; 1 x 1 -> 3 x 3; 1 x 1 -> 3 x 3 dilated 2; 1 x 1 -> 3 x 3
    dilated 3; concatenated (a + b + c + d channels)."""

    def __init__(self, inputs: int, a: int, b: int, c: int, d: int):
        super().__init__()
        relu = nn.ReLU(inplace=True)
        self.branch1 = nn.Sequential(nn.Conv2d(inputs, a, 1), relu)
        self.branch2 = nn.Sequential(nn.Conv2d(inputs, b, 1), relu, nn.Conv2d(b, b, 3, padding=1), relu)
        self.branch3 = nn.Sequential(nn.Conv2d(inputs, c, 1), relu, nn.Conv2d(c, c, 3, padding=2, dilation=2), relu)
        self.branch4 = nn.Sequential(nn.Conv2d(inputs, d, 1), relu, nn.Conv2d(d, d, 3, padding=3, dilation=3), relu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


def mesoinception4_seg() -> nn.Module:
    """MesoInception-4 (Afchar et al. 2018) to its last BN (stride 8), then a 3 x 3 conv."""
    features = nn.Sequential(
        InceptionLayer(3, 1, 4, 4, 2), nn.BatchNorm2d(11), nn.MaxPool2d(2),
        InceptionLayer(11, 2, 4, 4, 2), nn.BatchNorm2d(12), nn.MaxPool2d(2),
        nn.Conv2d(12, 16, 5, padding=2), nn.ReLU(inplace=True), nn.BatchNorm2d(16), nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 5, padding=2), nn.ReLU(inplace=True), nn.BatchNorm2d(16))
    return DenseHead(features, nn.Conv2d(16, 1, 3, padding=1))


def xception_seg() -> nn.Module:
    return DenseHead(XceptionFeatures(12, exit_flow=True), nn.Conv2d(2048, 1, 1))


SEGMENTATION_NETS = {
    "fn3": fn3, "vgg3": lambda: vgg(2), "vgg5": lambda: vgg(4), "vgg8": lambda: vgg(7),
    "unet4x": lambda: UNet(2), "unet8x": lambda: UNet(3), "mesoinception4": mesoinception4_seg,
    "xception": xception_seg,
}
"""Architecture name -> constructor of a (N, 3, H, W) -> (N, 1, H, W) logit network."""
