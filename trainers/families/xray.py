"""Face X-ray (Li et al., CVPR 2020, Sec. 4-5): HRNet predicts the X-ray B^ of an image; a
classifier (global average pooling + FC + softmax) reads the image's class from B^.

    NN_b: HRNet -> four resolutions upsampled and concatenated at 1/4 (64 x 64 for 256 px)
          -> 1 x 1 conv to one channel -> bilinear to the input size -> sigmoid
    NN_c: GAP(B^) -> FC -> softmax
    loss  L = lambda * L_b + L_c, L_b pixel-wise BCE against xray.png, L_c cross-entropy,
          lambda = 100
    Adam, lr 2e-4, constant, then linearly decayed to 0 over the last quarter; batch 32.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainers.families.base import Family, FamilyDefaults, ModelOption, PaperPreset, normalize_images
from trainers.models.hrnet import HRNet, concat_representation, load_backbone_weights

XRAY_LOSS_WEIGHT = 100.0


class FaceXrayNet(nn.Module):
    """images (N, 3, S, S) uint8 -> {'xray_logits': (N, 1, S, S), 'class_logits': (N, 2)}."""

    def __init__(self, width: int = 18):
        super().__init__()
        self.backbone = HRNet(width)
        self.xray_head = nn.Conv2d(sum(self.backbone.channels), 1, kernel_size=1)
        self.classifier = nn.Linear(1, 2)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = concat_representation(self.backbone(normalize_images(images)))
        xray_logits = F.interpolate(self.xray_head(features), size=images.shape[-2:], mode="bilinear",
                                    align_corners=False)
        pooled = torch.sigmoid(xray_logits).mean(dim=(2, 3))          # GAP of the predicted X-ray
        return {"xray_logits": xray_logits, "class_logits": self.classifier(pooled)}


def linear_decay_last_quarter(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Factor 1 for the first 3/4 of the steps, then linear to 0 at `total_steps`."""
    start = int(0.75 * total_steps)

    def factor(step: int) -> float:
        if step < start:
            return 1.0
        return max(0.0, (total_steps - step) / max(1, total_steps - start))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class FaceXray(Family):
    name = "xray"
    description = "Face X-ray: HRNet X-ray prediction + classifier on the X-ray (Li et al. 2020)"
    members = ("img.png", "xray.png")
    defaults = FamilyDefaults(batch_size=32, lr=2e-4, image_size=256)
    paper = PaperPreset(image_size=256, batch_size=32, lr=2e-4, steps=200_000, freeze_backbone_steps=50_000,
                        source="Li et al. 2020, Sec. 5 'Implementation detail': 256 px, batch 32, Adam 2e-4, "
                               "200,000 iterations, linear decay to 0 over the last 50,000, ImageNet HRNet "
                               "frozen for the first 50,000")
    OPTIONS = (
        ModelOption("width", int, 18, "HRNet width: 18 (W18) or 48 (W48); other values for experiments"),
        ModelOption("pretrained", str, "", "local HRNet ImageNet checkpoint to start the backbone from"),
    )
    dense_target = "xray"

    @property
    def pretrained(self) -> bool:
        return bool(self.options["pretrained"])

    def backbone(self, model: nn.Module) -> nn.Module:
        return model.backbone

    def build(self, image_size: int) -> nn.Module:
        model = FaceXrayNet(int(self.options["width"]))
        if self.options["pretrained"]:
            missing, _ = load_backbone_weights(model.backbone, self.options["pretrained"])
            if missing:
                raise ValueError(f"{self.options['pretrained']} lacks {len(missing)} backbone weights, e.g. {missing[:3]}")
        return model

    def loss(self, outputs: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        target = batch["xray"].float() / 255.0
        xray_loss = F.binary_cross_entropy_with_logits(outputs["xray_logits"].float(), target)
        class_loss = F.cross_entropy(outputs["class_logits"].float(), batch["label"])
        total = XRAY_LOSS_WEIGHT * xray_loss + class_loss
        return total, {"xray_bce": xray_loss.item(), "class_ce": class_loss.item()}

    def scores(self, outputs: dict) -> torch.Tensor:
        return torch.softmax(outputs["class_logits"].float(), 1)[:, 1]

    def dense(self, outputs: dict) -> torch.Tensor:
        return torch.sigmoid(outputs["xray_logits"].float())

    def optimizer(self, parameters, lr: float) -> torch.optim.Optimizer:
        return torch.optim.Adam(parameters, lr=lr)

    def scheduler(self, optimizer, total_steps: int):
        return linear_decay_last_quarter(optimizer, total_steps)
