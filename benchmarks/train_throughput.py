"""Training throughput: samples/s streaming from shards vs the same model on synthetic
tensors already on the device, in one run. Target (issue 4): shards >= 0.9 x synthetic,
i.e. the loader keeps the device busy. Uses CUDA when present; on CPU both figures are
CPU figures.

    python benchmarks/train_throughput.py 'bi_shards/shard-{000000..000009}.tar' \
        [--family xray] [--width 18] [--image-size 256] [--batch-size 32] [--steps 20] [--workers 4]
"""
from __future__ import annotations

import argparse
import time

import torch

from trainers.data import ShardStream, StreamConfig, make_loader
from trainers.urls import expand_urls
from trainers.decode import make_decoder
from trainers.families import get_family
from trainers.loop import autocast, pick_device, to_device


def _step(model, family, optimizer, batch, device):
    with autocast(device, True):
        outputs = model(batch["image"])
    loss, _ = family.loss(outputs, batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _timed(batches, model, family, optimizer, device, steps: int) -> float:
    """samples/s over `steps` steps after 2 warm-up steps."""
    iterator = iter(batches)
    for _ in range(2):
        _step(model, family, optimizer, to_device(next(iterator), device), device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start, samples = time.perf_counter(), 0
    for _ in range(steps):
        batch = to_device(next(iterator), device)
        _step(model, family, optimizer, batch, device)
        samples += len(batch["label"])
    if device.type == "cuda":
        torch.cuda.synchronize()
    return samples / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shards")
    parser.add_argument("--family", default="xray")
    parser.add_argument("--width", type=int, default=18)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    device = pick_device("auto")
    family = get_family(args.family, {"width": args.width} if args.family == "xray" else {})
    model = family.build(args.image_size).to(device).train()
    optimizer = family.optimizer(model.parameters(), family.defaults.lr)
    members = tuple(dict.fromkeys(family.members))
    size, batch_size = args.image_size, args.batch_size

    synthetic = {"image": torch.randint(0, 256, (batch_size, 3, size, size), dtype=torch.uint8, device=device),
                 "label": torch.randint(0, 2, (batch_size,), device=device)}
    for member in members[1:]:
        field = {"xray.png": "xray", "mask.png": "mask", "hull.png": "hull"}[member]
        synthetic[field] = torch.randint(0, 256, (batch_size, 1, size, size), dtype=torch.uint8, device=device)
    total = (args.steps + 2) * batch_size
    stream = ShardStream(StreamConfig(tuple(expand_urls(args.shards)), batch_size, samples_per_epoch=total),
                         make_decoder(members, size))
    loader = make_loader(stream, args.workers, drop_last=True)

    synthetic_rate = _timed(iter(lambda: synthetic, None), model, family, optimizer, device, args.steps)
    shard_rate = _timed(loader, model, family, optimizer, device, args.steps)
    print(f"device {device}, {args.family} width {args.width}, {size} px, batch {batch_size}, {args.workers} workers")
    print(f"synthetic tensors on device: {synthetic_rate:8.1f} samples/s")
    print(f"streamed from shards:        {shard_rate:8.1f} samples/s")
    print(f"ratio shards / synthetic:    {shard_rate / synthetic_rate:8.2f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
