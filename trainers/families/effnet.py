"""EfficientNet-B4 real / fake classifier, the detector of Self-Blended Images (Shiohara &
Yamasaki, CVPR 2022, Sec. 4; every value below confirmed in the authors' code, `src/model.py`,
`src/train_sbi.py`, `src/configs/sbi/base.json`, `src/utils/scheduler.py`):

    EfficientNet-B4 pretrained on ImageNet, one fake logit (binary cross-entropy; the
    reference's two-way softmax is the same model), 380 x 380 faces, SAM (rho 0.05) over
    SGD with lr 0.001 and momentum 0.9, batch 32 (16 real faces and their 16 self-blends),
    100 epochs, the lr decayed linearly to 0 over the last quarter.

`PAPER` holds those values for `--preset paper`; the pretrained weights are a local file
(`--pretrained`), never downloaded.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainers.families.base import Family, FamilyDefaults, ModelOption, PaperPreset, normalize_images
from trainers.families.xray import linear_decay_last_quarter
from trainers.models.efficientnet import efficientnet_b4
from trainers.sam import SAM

PAPER = PaperPreset(
    image_size=380, batch_size=32, lr=1e-3, steps=36_000,
    source="Shiohara & Yamasaki 2022, Sec. 4, and the reference code: EfficientNet-B4 (ImageNet), 380 px, "
           "batch 32, SAM over SGD lr 0.001 momentum 0.9, 100 epochs; an epoch is 720 FF++ train videos x 8 "
           "frames / 16 real faces a batch = 360 steps, so 36,000 steps; lr linear to 0 over the last 25 "
           "epochs; the reference starts from AdvProp weights and feeds images in [0, 1]")
"""The SBI paper's training recipe (`--preset paper`); steps are optimiser steps."""
MOMENTUM, RHO = 0.9, 0.05
"""SGD momentum and SAM radius of the paper."""


class EffNetClassifier(nn.Module):
    """images (N, 3, S, S) uint8 -> {'logit': (N,) fake logit}. inputs: 'imagenet' (mean /
    std, for the standard weights) or 'unit' ([0, 1], as the SBI reference feeds AdvProp)."""

    def __init__(self, weights: str = "", inputs: str = "imagenet"):
        super().__init__()
        self.net = efficientnet_b4(num_classes=1, weights=weights)
        self.inputs = inputs

    def forward(self, images: torch.Tensor) -> dict:
        x = normalize_images(images) if self.inputs == "imagenet" else images.float() / 255.0
        return {"logit": self.net(x)[:, 0]}


class EffNet(Family):
    name = "effnet"
    description = "EfficientNet-B4 classifier trained with SAM, the SBI detector (Shiohara & Yamasaki 2022)"
    members = ("img.png",)
    defaults = FamilyDefaults(batch_size=PAPER.batch_size, lr=PAPER.lr, image_size=PAPER.image_size)
    paper = PAPER
    OPTIONS = (
        ModelOption("pretrained", str, "",
                    "local efficientnet-pytorch B4 state dict (ImageNet / AdvProp); never downloaded"),
        ModelOption("inputs", str, "imagenet",
                    "input scaling: imagenet (mean/std) or unit ([0, 1], the SBI reference's)", choices=("imagenet", "unit")),
        ModelOption("rho", float, RHO, "SAM neighbourhood radius"),
    )

    @property
    def pretrained(self) -> bool:
        return bool(self.options["pretrained"])

    def backbone(self, model: nn.Module) -> nn.Module:
        net = model.net
        return nn.ModuleList([net._conv_stem, net._bn0, net._blocks, net._conv_head, net._bn1])

    def build(self, image_size: int) -> nn.Module:
        return EffNetClassifier(self.options["pretrained"], self.options["inputs"])

    def loss(self, outputs: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        loss = F.binary_cross_entropy_with_logits(outputs["logit"].float(), batch["label"].float())
        return loss, {"bce": loss.item()}

    def scores(self, outputs: dict) -> torch.Tensor:
        return torch.sigmoid(outputs["logit"].float())

    def optimizer(self, parameters, lr: float) -> torch.optim.Optimizer:
        return SAM(parameters, torch.optim.SGD, rho=float(self.options["rho"]), lr=lr, momentum=MOMENTUM)

    def scheduler(self, optimizer, total_steps: int):
        return linear_decay_last_quarter(optimizer, total_steps)
