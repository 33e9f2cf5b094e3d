"""The first training samples as a shard (`beam train --dump-samples N`): what the model saw,
with every choice that made each sample in its json, so any of them can be regenerated."""
from __future__ import annotations

import json
import os

from shards.png import encode_png
from shards.sample import EncodedSample, encode_json
from shards.tar import write_tar

DUMP_NAME = "dumped_samples.tar"
_MASKS = ("xray", "mask", "hull")


def batch_samples(batch: dict) -> list[EncodedSample]:
    """The samples of a collated training batch (uint8 tensors at the training size), as
    shard samples: img.png, the masks the family reads (`<name>.png`), cls, json."""
    samples = []
    for i, key in enumerate(batch["key"]):
        members = {"img.png": encode_png(batch["image"][i].permute(1, 2, 0).numpy())}
        members |= {f"{m}.png": encode_png(batch[m][i, 0].numpy()) for m in _MASKS if m in batch}
        members |= {"cls": str(int(batch["label"][i])).encode(), "json": encode_json(json.loads(batch["json"][i]))}
        samples.append(EncodedSample(key, members))
    return samples


def write_dump(out: str, samples: list[EncodedSample]) -> str:
    """Write `<out>/dumped_samples.tar` whole (temporary name, then rename); returns its path."""
    os.makedirs(out, exist_ok=True)
    path, temporary = os.path.join(out, DUMP_NAME), os.path.join(out, f".{DUMP_NAME}.tmp")
    with open(temporary, "wb") as stream:
        write_tar(stream, samples)
    os.replace(temporary, path)
    return path



