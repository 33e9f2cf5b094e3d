"""HRNet (Wang et al., "Deep High-Resolution Representation Learning", TPAMI 2020).

Four parallel branches at 1/4, 1/8, 1/16 and 1/32 of the input, widths (W, 2W, 4W, 8W),
exchanging information at every module. `HRNet.forward` returns the four maps; the
HRNetV2 representation (all four upsampled to 1/4 and concatenated, 15W channels) is
`concat_representation`. Module names follow the reference implementation, so its
ImageNet checkpoints load by name (`load_backbone_weights`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainers.models.blocks import BN_MOMENTUM, BasicBlock, Bottleneck, conv3x3, residual_blocks

def _conv_bn(inputs: int, outputs: int, stride: int, relu: bool) -> nn.Sequential:
    layers = [conv3x3(inputs, outputs, stride), nn.BatchNorm2d(outputs, momentum=BN_MOMENTUM)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks, then every output branch sums every input branch
    (upsampled by 1x1 conv + interpolation, or downsampled by strided 3x3 convs)."""

    def __init__(self, widths: list[int], blocks: int):
        super().__init__()
        self.branches = nn.ModuleList(residual_blocks(BasicBlock, w, w, blocks) for w in widths)
        self.fuse_layers = nn.ModuleList()
        for i, target in enumerate(widths):
            row = nn.ModuleList()
            for j, source in enumerate(widths):
                if j > i:
                    row.append(nn.Sequential(nn.Conv2d(source, target, 1, bias=False),
                                             nn.BatchNorm2d(target, momentum=BN_MOMENTUM)))
                elif j == i:
                    row.append(nn.Identity())
                else:
                    steps = [_conv_bn(source, source, 2, relu=True) for _ in range(i - j - 1)]
                    row.append(nn.Sequential(*steps, _conv_bn(source, target, 2, relu=False)))
            self.fuse_layers.append(row)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        fused = []
        for i, row in enumerate(self.fuse_layers):
            total = xs[i]
            for j, layer in enumerate(row):
                if j == i:
                    continue
                y = layer(xs[j])
                if j > i:
                    y = F.interpolate(y, size=xs[i].shape[-2:], mode="bilinear", align_corners=False)
                total = total + y
            fused.append(F.relu(total))
        return fused


def _transition(previous: list[int], widths: list[int]) -> nn.ModuleList:
    layers = nn.ModuleList()
    for i, width in enumerate(widths):
        if i < len(previous):
            layers.append(nn.Identity() if previous[i] == width else _conv_bn(previous[i], width, 1, relu=True))
        else:
            layers.append(nn.Sequential(_conv_bn(previous[-1], width, 2, relu=True)))
    return layers


class HRNet(nn.Module):
    """HRNet backbone of width W (18 and 48 are the published sizes).

    Input (N, 3, H, W) normalised RGB; output four maps (N, W*2^i, H/2^(i+2), W/2^(i+2)).
    Stage layout of HRNet-W*: stage 1 four Bottlenecks; stages 2, 3, 4 have 1, 4, 3
    modules of four BasicBlocks per branch, with 2, 3, 4 branches."""

    def __init__(self, width: int = 18):
        super().__init__()
        self.width = width
        self.conv1, self.bn1 = conv3x3(3, 64, 2), nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.conv2, self.bn2 = conv3x3(64, 64, 2), nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.layer1 = residual_blocks(Bottleneck, 64, 64, 4)
        widths = [width * 2 ** i for i in range(4)]
        self.transition1 = _transition([256], widths[:2])
        self.stage2 = nn.Sequential(*[HighResolutionModule(widths[:2], 4) for _ in range(1)])
        self.transition2 = _transition(widths[:2], widths[:3])
        self.stage3 = nn.Sequential(*[HighResolutionModule(widths[:3], 4) for _ in range(4)])
        self.transition3 = _transition(widths[:3], widths)
        self.stage4 = nn.Sequential(*[HighResolutionModule(widths, 4) for _ in range(3)])
        self.channels = widths

    @staticmethod
    def _run_stage(stage: nn.Sequential, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        for module in stage:
            xs = module(xs)
        return xs

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        x = self.layer1(x)
        xs = [t(x) for t in self.transition1]
        xs = self._run_stage(self.stage2, xs)
        xs = [t(xs[min(i, len(xs) - 1)]) for i, t in enumerate(self.transition2)]
        xs = self._run_stage(self.stage3, xs)
        xs = [t(xs[min(i, len(xs) - 1)]) for i, t in enumerate(self.transition3)]
        return self._run_stage(self.stage4, xs)


def concat_representation(maps: list[torch.Tensor]) -> torch.Tensor:
    """HRNetV2: every map bilinearly upsampled to the first's size and concatenated."""
    size = maps[0].shape[-2:]
    return torch.cat([maps[0]] + [F.interpolate(m, size=size, mode="bilinear", align_corners=False)
                                  for m in maps[1:]], 1)


def load_backbone_weights(backbone: HRNet, path: str) -> tuple[list[str], list[str]]:
    """Load a local HRNet checkpoint (a state dict, or a dict with 'state_dict'/'model')
    into `backbone` by parameter name; keys of other heads are ignored. Returns (missing,
    unexpected) key lists. Loads with weights_only=True (no code from the file runs)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and wrapper in state and isinstance(state[wrapper], dict):
            state = state[wrapper]
    state = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items()}
    own = backbone.state_dict()
    matching = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not matching:
        raise ValueError(f"{path}: no parameter matches an HRNet-W{backbone.width} backbone")
    result = backbone.load_state_dict(matching, strict=False)
    return list(result.missing_keys), sorted(set(state) - set(matching))
