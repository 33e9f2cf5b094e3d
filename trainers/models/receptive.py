"""Measuring a network's receptive field empirically."""
from __future__ import annotations

import copy

import torch
from torch import nn


def _linearised(module: nn.Module) -> nn.Module:
    """A copy whose gradient support equals the theoretical receptive field: activations
    become identities, max-pools average pools of the same geometry, weights positive."""
    model = copy.deepcopy(module).eval()
    for child in list(model.modules()):
        for attribute, sub in list(child.named_children()):
            if isinstance(sub, (nn.ReLU, nn.LeakyReLU, nn.ReLU6)):
                setattr(child, attribute, nn.Identity())
            elif isinstance(sub, nn.MaxPool2d):
                setattr(child, attribute, nn.AvgPool2d(sub.kernel_size, sub.stride, sub.padding,
                                                       ceil_mode=sub.ceil_mode, count_include_pad=False))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.abs_().add_(1e-3)
    return model


def receptive_span(module: nn.Module, input_size: int, index: int | None = None) -> tuple[int, int]:
    """(first, last) input row, inclusive, that output position (index, index) depends on
    (default: the centre output position).

    Measured on a linearised copy: the input is all ones and every weight positive, so
    every activation is positive and functional ReLUs pass gradients too; max-pools must
    be nn.MaxPool2d layers (they become average pools, whose gradient reaches the whole
    window)."""
    model = _linearised(module)
    x = torch.ones(1, 3, input_size, input_size, requires_grad=True)
    out = model(x)
    out = out[0] if isinstance(out, (list, tuple)) else out
    out = out if torch.is_tensor(out) else next(iter(out.values()))
    index = out.shape[2] // 2 if index is None else index
    out[0, :, index, index].sum().backward()
    rows = torch.nonzero(x.grad[0].abs().sum((0, 2))).flatten()
    return int(rows.min()), int(rows.max())


def receptive_field(module: nn.Module, input_size: int = 256) -> int:
    """Side in px of the input region that the centre output unit depends on."""
    first, last = receptive_span(module, input_size)
    return last - first + 1
