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
    """Paper hyper-parameters: batch size, learning rate, input side (px)."""

    batch_size: int
    lr: float
    image_size: int


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
