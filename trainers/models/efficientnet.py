"""EfficientNet-B4 (Tan & Le, ICML 2019) through `efficientnet-pytorch`, which needs only
torch. Pretrained weights come from a local file only; nothing is ever downloaded."""
from __future__ import annotations

import os

import torch
from torch import nn

ARCH = "efficientnet-b4"
HEAD = ("_fc.weight", "_fc.bias")


class WeightsMismatch(ValueError):
    """A weights file does not fit EfficientNet-B4 (weights missing or unexpected)."""


def efficientnet_b4(num_classes: int = 1, weights: str = "") -> nn.Module:
    """EfficientNet-B4 with a `num_classes`-logit head, for (N, 3, S, S) float inputs.

    weights: path of an `efficientnet-pytorch` B4 state dict (ImageNet or AdvProp), or ""
    for random weights. The file's classification head is kept only when it has
    `num_classes` outputs; every other weight must be there and fit (else WeightsMismatch).
    """
    from efficientnet_pytorch import EfficientNet

    model = EfficientNet.from_name(ARCH, num_classes=num_classes)
    if not weights:
        return model
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"no EfficientNet-B4 weights at {weights!r} (they are never downloaded)")
    state = torch.load(weights, map_location="cpu", weights_only=True)
    if state.get(HEAD[1], torch.empty(0)).shape != (num_classes,):
        state = {k: v for k, v in state.items() if k not in HEAD}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # a weight of the wrong shape
        raise WeightsMismatch(f"{weights}: {error}") from None
    missing = [k for k in missing if k not in HEAD or HEAD[1] in state]
    if missing or unexpected:
        raise WeightsMismatch(f"{weights}: missing {missing[:3]}..., unexpected {unexpected[:3]}... "
                              f"({len(missing)} missing, {len(unexpected)} unexpected)")
    return model
