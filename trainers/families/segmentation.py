"""Face forensics as segmentation (Li et al., "Zooming into Face Forensics", Sec. 3-4):
per-pixel BCE against `mask.png`; the image score is the mean of the dense prediction,
called fake at or above tau_2 (Eq. 6); mIoU and accuracy. Inputs: face crops enlarged x2
(build the shards with `--margin 2`) and, with `--crop-size 256`, random crops applied
alike to image and mask. Adam, lr 1e-3, no decay, batch 64."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainers.families.base import Family, FamilyDefaults, ModelOption, PaperPreset, normalize_images
from trainers.models.segmentation import SEGMENTATION_NETS


class SegmentationModel(nn.Module):
    def __init__(self, architecture: str):
        super().__init__()
        self.net = SEGMENTATION_NETS[architecture]()

    def forward(self, images: torch.Tensor) -> dict:
        return {"mask_logits": self.net(normalize_images(images))}


def random_crop(batch: dict, size: int, generator: torch.Generator) -> dict:
    """The same random size x size window of every image-like field of each sample."""
    height, width = batch["image"].shape[-2:]
    if size >= min(height, width):
        return batch
    count = batch["image"].shape[0]
    tops = torch.randint(0, height - size + 1, (count,), generator=generator, device=generator.device).tolist()
    lefts = torch.randint(0, width - size + 1, (count,), generator=generator, device=generator.device).tolist()
    cropped = dict(batch)
    for key, value in batch.items():
        if torch.is_tensor(value) and value.ndim == 4:
            cropped[key] = torch.stack([v[:, t:t + size, l:l + size] for v, t, l in zip(value, tops, lefts)])
    return cropped


class Segmentation(Family):
    name = "segmentation"
    description = "Pixel-level nets (FN3, VGG5/8, UNet4x/8x, MesoInception-4, Xception) on forgery masks (Li et al.)"
    members = ("img.png", "mask.png")
    defaults = FamilyDefaults(batch_size=64, lr=1e-3, image_size=256)
    paper = PaperPreset(image_size=256, batch_size=64, lr=1e-3, steps=None,
                        source="Li et al., 'Zooming into Face Forensics', Sec. 4 'Implementation details': "
                               "256 x 256 crops of faces enlarged x2, batch 64, Adam (0.9, 0.999) 1e-3, no decay; "
                               "the length is not stated (give --steps)")
    OPTIONS = (
        ModelOption("arch", str, "vgg5", "architecture", choices=tuple(SEGMENTATION_NETS)),
        ModelOption("tau2", float, 0.1, "image called fake when the mean dense prediction >= tau2"),
        ModelOption("crop_size", int, 0, "random training crop side, px (0: none)"),
    )
    dense_target = "mask"

    @property
    def decision_threshold(self) -> float:
        return float(self.options["tau2"])

    def build(self, image_size: int) -> nn.Module:
        return SegmentationModel(self.options["arch"])

    def augment(self, batch: dict, generator: torch.Generator) -> dict:
        size = int(self.options["crop_size"])
        return random_crop(batch, size, generator) if size else batch

    def loss(self, outputs: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        loss = F.binary_cross_entropy_with_logits(outputs["mask_logits"].float(), batch["mask"].float() / 255.0)
        return loss, {"bce": loss.item()}

    def dense(self, outputs: dict) -> torch.Tensor:
        return torch.sigmoid(outputs["mask_logits"].float())

    def scores(self, outputs: dict) -> torch.Tensor:
        return self.dense(outputs).mean(dim=(1, 2, 3))

    def optimizer(self, parameters, lr: float) -> torch.optim.Optimizer:
        return torch.optim.Adam(parameters, lr=lr, betas=(0.9, 0.999))
