"""Truncated patch classifiers (Chai et al., ECCV 2020, Sec. 3): cross-entropy on every
patch's real / fake logits; the image score is the mean of the softmaxed patch
predictions; the patch predictions form a heatmap. Adam with default learning rate."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainers.families.base import Family, FamilyDefaults, ModelOption, PaperPreset, normalize_images
from trainers.models.patch import TRUNKS, PatchClassifier


class PatchModel(nn.Module):
    def __init__(self, trunk: str):
        super().__init__()
        self.net = PatchClassifier(trunk)

    def forward(self, images: torch.Tensor) -> dict:
        return {"patch_logits": self.net(normalize_images(images)), "size": images.shape[-1]}


class Patch(Family):
    name = "patch"
    description = "Truncated Xception / ResNet patch classifiers with per-patch loss and heatmaps (Chai et al.)"
    members = ("img.png",)
    defaults = FamilyDefaults(batch_size=32, lr=1e-3, image_size=256)
    paper = PaperPreset(image_size=128, batch_size=32, lr=1e-3, steps=None,
                        source="Chai et al. 2020, Sec. 3.1: Adam with its default lr (1e-3), trained until "
                               "validation accuracy stops improving (give --steps); Sec. 4.1: 128 px images; "
                               "the batch size is not in the paper (32 kept)")
    OPTIONS = (ModelOption("trunk", str, "xception-block2", "backbone cut point", choices=TRUNKS),)

    def build(self, image_size: int) -> nn.Module:
        return PatchModel(self.options["trunk"])

    def loss(self, outputs: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        logits = outputs["patch_logits"].float()
        target = batch["label"].view(-1, 1, 1).expand(-1, *logits.shape[-2:])
        loss = F.cross_entropy(logits, target)
        return loss, {"patch_ce": loss.item()}

    def _fake_probability(self, outputs: dict) -> torch.Tensor:
        return torch.softmax(outputs["patch_logits"].float(), 1)[:, 1:2]

    def scores(self, outputs: dict) -> torch.Tensor:
        return self._fake_probability(outputs).mean(dim=(1, 2, 3))

    def dense(self, outputs: dict) -> torch.Tensor:
        """Heatmap: patch fake probabilities, upsampled to the input size."""
        size = int(outputs["size"])
        return F.interpolate(self._fake_probability(outputs), size=(size, size), mode="bilinear", align_corners=False)

    def optimizer(self, parameters, lr: float) -> torch.optim.Optimizer:
        return torch.optim.Adam(parameters, lr=lr)
