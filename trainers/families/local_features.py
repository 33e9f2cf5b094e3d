"""Local-feature network with joint classification + segmentation loss (Tarasiou &
Zafeiriou, Sec. 3):

    L = lambda_cls * CE(class) + sum_k lambda_k * mean CE(segmentation k at RF centres)

Segmentation labels are read at the centre pixel of each final activation's receptive
field. Heads: 'fake' (manipulated pixels; target `--fake-mask`: the real forgery mask,
the convex hull CVM for fakes, ones OM for fakes, or none) and optionally 'face' (CVM
for every image). Defaults follow the paper's best single objective (Table 1, c23):
one fake head on real masks, lambda_seg = 0.3 (lambda_cls = 0.7)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainers.families.base import Family, FamilyDefaults, ModelOption, PaperPreset, normalize_images
from trainers.models.local_features import LocalFeatureNet, place_at_centres, receptive_field_centres


class LocalFeatureModel(nn.Module):
    def __init__(self, heads: tuple[str, ...]):
        super().__init__()
        self.net = LocalFeatureNet(heads)

    def forward(self, images: torch.Tensor) -> dict:
        return {**self.net(normalize_images(images)), "size": images.shape[-1]}


class LocalFeatures(Family):
    name = "local"
    description = "~1M-parameter local-feature net, 33 px receptive field, classification + segmentation loss"
    members = ("img.png", "mask.png", "hull.png")
    defaults = FamilyDefaults(batch_size=64, lr=1e-3, image_size=256)
    paper = PaperPreset(image_size=128, batch_size=64, lr=1e-3, steps=None,
                        source="Tarasiou & Zafeiriou, Sec. 4.2: 128 x 128 inputs, lambda_seg 0.3 (Table 1); the "
                               "optimiser, batch size and length are not in the paper (Adam 1e-3, batch 64 kept; "
                               "give --steps)")
    OPTIONS = (
        ModelOption("fake_mask", str, "real", "target of the fake head", choices=("real", "cvm", "ones", "none")),
        ModelOption("face_head", bool, False, "add a face head trained on the convex hull (CVM) of every image"),
        ModelOption("lambda_seg", float, 0.3, "total weight of the segmentation losses; classification gets 1 - it"),
    )

    @property
    def heads(self) -> tuple[str, ...]:
        return (("fake",) if self.options["fake_mask"] != "none" else ()) + (("face",) if self.options["face_head"] else ())

    @property
    def dense_target(self) -> str | None:
        return "mask" if self.options["fake_mask"] == "real" else None

    def build(self, image_size: int) -> nn.Module:
        if not 0 <= self.options["lambda_seg"] <= 1:
            raise ValueError("lambda_seg must be in [0, 1]")
        return LocalFeatureModel(self.heads)

    def _target(self, head: str, batch: dict) -> torch.Tensor:
        """(N, H, W) long 0/1 target of a head at full resolution."""
        fake = batch["label"].view(-1, 1, 1).bool()
        if head == "face":
            return (batch["hull"][:, 0] > 127).long()
        source = self.options["fake_mask"]
        if source == "real":
            return (batch["mask"][:, 0] > 127).long()
        if source == "cvm":
            return ((batch["hull"][:, 0] > 127) & fake).long()
        return fake.expand_as(batch["hull"][:, 0]).long()   # ones for fakes, zeros for reals

    def loss(self, outputs: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        heads = self.heads
        lambda_seg = float(self.options["lambda_seg"]) if heads else 0.0
        class_loss = F.cross_entropy(outputs["class_logits"].float(), batch["label"])
        total, parts = (1.0 - lambda_seg) * class_loss, {"class_ce": class_loss.item()}
        for head in heads:
            logits = outputs["seg_logits"][head].float()
            centres = receptive_field_centres(logits.shape[-1]).to(logits.device)
            target = self._target(head, batch)[:, centres][:, :, centres]
            head_loss = F.cross_entropy(logits, target)
            total = total + lambda_seg / len(heads) * head_loss
            parts[f"{head}_ce"] = head_loss.item()
        return total, parts

    def scores(self, outputs: dict) -> torch.Tensor:
        return torch.softmax(outputs["class_logits"].float(), 1)[:, 1]

    def dense(self, outputs: dict) -> torch.Tensor | None:
        """The fake head's probabilities placed at their receptive-field centres (where its
        labels were read), linear in between."""
        if "fake" not in outputs["seg_logits"]:
            return None
        probability = torch.softmax(outputs["seg_logits"]["fake"].float(), 1)[:, 1:2]
        return place_at_centres(probability, int(outputs["size"]))

    def optimizer(self, parameters, lr: float) -> torch.optim.Optimizer:
        return torch.optim.Adam(parameters, lr=lr)
