"""AMTENnet (Guo et al., Sec. III-IV): binary (real / fake) or multi-class (real + each
manipulation method, the shards' `method_id`) classification of 128 x 128 faces.
SGD, momentum 0.95, weight decay 0.005, lr 1e-3 halved every 1,000 iterations, batch 64."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shards.labels import METHOD_IDS
from trainers.families.base import Family, FamilyDefaults, ModelOption, PaperPreset, normalize_images
from trainers.models.amten import AMTENnet


class AmtenClassifier(nn.Module):
    def __init__(self, classes: int, image_size: int):
        super().__init__()
        self.net = AMTENnet(classes, image_size)

    def forward(self, images: torch.Tensor) -> dict:
        return {"class_logits": self.net(normalize_images(images))}


class Amten(Family):
    name = "amten"
    description = "AMTENnet: manipulation-trace residuals + hierarchical features, binary or per-method (Guo et al.)"
    members = ("img.png",)
    defaults = FamilyDefaults(batch_size=64, lr=1e-3, image_size=128)
    paper = PaperPreset(image_size=128, batch_size=64, lr=1e-3, steps=18_170,
                        source="Guo et al., Sec. IV-A 'Implementation Details' and IV-B: 128 px, batch 64, SGD "
                               "momentum 0.95 decay 0.005, lr 1e-3 halved every 1,000 iterations, 10 epochs of "
                               "1,817 iterations")
    OPTIONS = (ModelOption("classes", str, "binary", "binary (real/fake) or methods (real + each method id)",
                           choices=("binary", "methods")),)

    @property
    def multiclass(self) -> bool:
        return self.options["classes"] == "methods"

    def build(self, image_size: int) -> nn.Module:
        return AmtenClassifier(len(METHOD_IDS) if self.multiclass else 2, image_size)

    def loss(self, outputs: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        target = batch["method_id"] if self.multiclass else batch["label"]
        if self.multiclass and bool((target < 0).any()):
            raise ValueError("multi-class training needs method_id in every sample's json")
        loss = F.cross_entropy(outputs["class_logits"].float(), target)
        return loss, {"ce": loss.item()}

    def scores(self, outputs: dict) -> torch.Tensor:
        probabilities = torch.softmax(outputs["class_logits"].float(), 1)
        return 1.0 - probabilities[:, 0] if self.multiclass else probabilities[:, 1]

    def optimizer(self, parameters, lr: float) -> torch.optim.Optimizer:
        return torch.optim.SGD(parameters, lr=lr, momentum=0.95, weight_decay=0.005)

    def scheduler(self, optimizer, total_steps: int):
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1000, gamma=0.5)
