"""What a detector family tells the shared loop: its model, loss, scores and optimiser."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) uint8 on any device -> float, ImageNet mean/std normalised."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


@dataclass(frozen=True)
class FamilyDefaults:
    """The project's defaults (used without --preset): batch size, learning rate, input
    side (px). They are chosen for quick runs, and several differ from the paper's."""

    batch_size: int
    lr: float
    image_size: int


@dataclass(frozen=True)
class PaperPreset:
    """`--preset paper`: the paper's input side (px), batch size, learning rate, length
    (optimiser steps; None where the paper trains to a validation plateau or does not say)
    and backbone freeze (steps, applied when pretrained weights are given). The optimiser
    and schedule are the family's own (`optimizer`, `scheduler`), which follow the paper.
    `source` cites the section and says what the paper leaves open."""

    image_size: int
    batch_size: int
    lr: float
    steps: int | None
    source: str
    freeze_backbone_steps: int = 0


@dataclass(frozen=True)
class ModelOption:
    """A family-specific command-line option: `--<name>` (dashes for underscores)."""

    name: str
    type: type
    default: object
    help: str
    choices: tuple = field(default=())


class Family(ABC):
    """A detector family, bound to its option values (`self.options`, keyed by the names
    in `OPTIONS`). Outputs of `model(images)` are a dict of tensors; `loss`, `scores` and
    `dense` read it. `members` are the shard members a batch needs."""

    name: str
    description: str
    members: tuple[str, ...]
    defaults: FamilyDefaults
    paper: PaperPreset
    OPTIONS: tuple[ModelOption, ...] = ()
    dense_target: str | None = None
    """Batch field the dense output is compared with (mIoU), None for image-level families."""

    def __init__(self, options: dict | None = None):
        given = dict(options or {})
        unknown = set(given) - {o.name for o in self.OPTIONS}
        if unknown:
            raise ValueError(f"{self.name}: unknown options {sorted(unknown)}")
        self.options = {o.name: given.get(o.name, o.default) for o in self.OPTIONS}
        for option in self.OPTIONS:
            if option.choices and self.options[option.name] not in option.choices:
                raise ValueError(f"{self.name}: --{option.name} must be one of {option.choices}")

    @property
    def decision_threshold(self) -> float:
        """Score at or above which an image is called fake (accuracy)."""
        return 0.5

    @property
    def pretrained(self) -> bool:
        """Whether `build` starts a backbone from pretrained weights."""
        return False

    def backbone(self, model: nn.Module) -> nn.Module:
        """The part of `model` that pretrained weights initialise (what
        --freeze-backbone-steps freezes); only asked when `pretrained`."""
        raise NotImplementedError(f"{self.name} has no pretrained backbone")

    def augment(self, batch: dict, generator: torch.Generator) -> dict:
        """Training-time batch transform (on the device); identity by default."""
        return batch

    @abstractmethod
    def build(self, image_size: int) -> nn.Module:
        """The model, for square inputs of `image_size` px."""

    @abstractmethod
    def loss(self, outputs: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """(total loss, named parts for the log)."""

    @abstractmethod
    def scores(self, outputs: dict) -> torch.Tensor:
        """(N,) probability that each image is fake."""

    def dense(self, outputs: dict) -> torch.Tensor | None:
        """(N, 1, H, W) dense prediction in [0, 1] (X-ray, mask, heatmap), or None."""
        return None

    @abstractmethod
    def optimizer(self, parameters, lr: float) -> torch.optim.Optimizer:
        """The paper's optimiser."""

    def scheduler(self, optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
        """The paper's learning-rate schedule over `total_steps`; constant by default."""
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
