"""Parameter count and training speed (samples/s) of every detector family on this
machine's device, at each family's paper input size, on synthetic batches (model cost
only; see train_throughput.py for the loader).

    python benchmarks/family_speed.py [--batch-size 8] [--steps 5]
"""
from __future__ import annotations

import argparse
import time

import torch

from trainers.families import FAMILIES, get_family
from trainers.loop import autocast, pick_device

VARIANTS = [("xray", {}), ("amten", {}), ("amten", {"classes": "methods"}),
            *[("segmentation", {"arch": a}) for a in ("fn3", "vgg5", "vgg8", "unet4x", "unet8x", "mesoinception4", "xception")],
            *[("patch", {"trunk": t}) for t in ("resnet18-layer1", "xception-block1", "xception-block2", "xception-block3")],
            ("local", {}), ("local", {"fake_mask": "cvm", "face_head": True})]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    device = pick_device("auto")
    print(f"device {device}, batch {args.batch_size}; registered families: {', '.join(FAMILIES)}")
    for name, options in VARIANTS:
        family = get_family(name, options)
        size = family.defaults.image_size
        model = family.build(size).to(device).train()
        optimizer = family.optimizer(model.parameters(), family.defaults.lr)
        n = args.batch_size
        batch = {"image": torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, device=device),
                 "label": torch.arange(n, device=device) % 2, "method_id": torch.arange(n, device=device) % 2}
        for field in ("xray", "mask", "hull"):
            batch[field] = torch.randint(0, 2, (n, 1, size, size), dtype=torch.uint8, device=device) * 255
        timings = []
        for step in range(args.steps + 1):
            start = time.perf_counter()
            with autocast(device, True):
                outputs = model(batch["image"])
            loss, _ = family.loss(outputs, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step:
                timings.append(time.perf_counter() - start)
        parameters = sum(p.numel() for p in model.parameters())
        label = f"{name} {' '.join(f'{k}={v}' for k, v in options.items())}"
        print(f"{label:40s} {parameters / 1e6:8.3f} M params  {size:4d} px  {n / (sum(timings) / len(timings)):8.1f} samples/s")


if __name__ == "__main__":
    main()
