"""The local-feature network of Tarasiou & Zafeiriou (Sec. 3.2): 8 convolutions and one
max-pool, stride 1 convolutions, no padding, BN + ReLU after every convolution; the final
receptive field is 33 px (3 x 3 conv, 3 x 3 / 2 max-pool, seven 3 x 3 convs:
3 + 2 + 7 * 4 = 33), about 1 M parameters. Heads: global average pooling + linear
classifier, and one 1 x 1 two-class segmentation head per dense objective.
"""
from __future__ import annotations

import torch
from torch import nn

RECEPTIVE_FIELD = 33
OUTPUT_STRIDE = 2


def _conv(inputs: int, outputs: int) -> list[nn.Module]:
    return [nn.Conv2d(inputs, outputs, 3), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True)]


class LocalFeatureNet(nn.Module):
    """images (N, 3, S, S) normalised -> {'class_logits': (N, 2),
    'seg_logits': {head: (N, 2, s, s)}}, s = (S - 2 - 3) // 2 + 1 - 14."""

    def __init__(self, heads: tuple[str, ...] = ("fake",), width: int = 128, stem: int = 64):
        super().__init__()
        layers = _conv(3, stem) + [nn.MaxPool2d(3, 2)] + _conv(stem, width)
        for _ in range(6):
            layers += _conv(width, width)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, 2)
        self.segmentation = nn.ModuleDict({head: nn.Conv2d(width, 2, 1) for head in heads})

    def forward(self, images: torch.Tensor) -> dict:
        features = self.features(images)
        return {"class_logits": self.classifier(features.mean(dim=(2, 3))),
                "seg_logits": {head: conv(features) for head, conv in self.segmentation.items()}}


def receptive_field_centres(output_size: int) -> torch.Tensor:
    """Input px (row or column) at the centre of each output position's receptive field:
    16 + 2 i for i in range(output_size)."""
    return (RECEPTIVE_FIELD - 1) // 2 + OUTPUT_STRIDE * torch.arange(output_size)


def centre_interpolation(output_size: int, input_size: int) -> torch.Tensor:
    """(input_size, output_size) weights that place an output map at its receptive-field
    centres: input px x takes the linear interpolation of the two outputs whose centres
    (`receptive_field_centres`) surround it, and the nearest output beyond the first and
    last centre. Rows sum to 1."""
    position = (torch.arange(input_size, dtype=torch.float64) - (RECEPTIVE_FIELD - 1) // 2) / OUTPUT_STRIDE
    position = position.clamp(0, output_size - 1)
    weights = 1 - (position[:, None] - torch.arange(output_size, dtype=torch.float64)[None]).abs()
    return weights.clamp_(min=0).float()


def place_at_centres(maps: torch.Tensor, input_size: int) -> torch.Tensor:
    """(N, C, s, s) per-output values -> (N, C, S, S) input-sized map, each value at the
    centre of its receptive field, linear in between (`centre_interpolation`)."""
    weights = centre_interpolation(maps.shape[-1], input_size).to(maps.device, maps.dtype)
    return torch.einsum("yi,ncij,xj->ncyx", weights, maps, weights)
