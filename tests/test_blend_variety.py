"""Mask variety on blends of the shared real videos (offline, default recipe): the mask's
IoU with the full hull, the recorded choices, and no mask past the source frame."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from landmarks.align import frame_valid_map
from pipelines.cli import main
from shards.sample import decode_png
from shards.tar import read_tar

FRAMES = 12


@pytest.fixture(scope="module")
def blends(shared_data, tmp_path_factory) -> list[dict]:
    """Every blended sample of a BI build from all shared real videos, 12 frames each."""
    videos = tmp_path_factory.mktemp("videos")
    for video in sorted((shared_data / "real_videos").glob("*.mp4")):
        (videos / video.name).symlink_to(video)
    output = tmp_path_factory.mktemp("bi")
    result = CliRunner().invoke(main, ["run", "build_bi_shards", "--input", str(videos), "--output", str(output),
                                       "--frames-per-video", str(FRAMES), "--samples-per-shard", "200"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    samples = [s for shard in sorted(Path(output).glob("shard-*.tar")) for s in read_tar(shard.open("rb"))]
    return [s for s in samples if s["cls"] == b"1"]


def test_default_masks_vary_like_the_reference_generators(blends):
    assert len(blends) >= 200
    ious = []
    for sample in blends:
        mask, hull = decode_png(sample["mask.png"]) > 127, decode_png(sample["hull.png"]) > 127
        ious.append((mask & hull).sum() / max((mask | hull).sum(), 1))
    assert 0.6 <= float(np.median(ious)) <= 0.85
    choices = [json.loads(s["json"])["blend"] for s in blends]
    regions = Counter(c["hull"] for c in choices)
    assert set(regions) == {"full", "inner", "lower", "forehead"} and min(regions.values()) >= 0.1 * len(blends)
    assert 0.01 <= min(c["deform_std"] for c in choices) < 0.03 < 0.09 < max(c["deform_std"] for c in choices) <= 0.12
    assert min(c["morph_kernel"] for c in choices) < 0 < max(c["morph_kernel"] for c in choices)
    assert 0.6 <= min(c["opacity"] for c in choices) < 0.7 and max(c["opacity"] for c in choices) > 0.95


def test_no_mask_reaches_past_the_source_frame(blends):
    reaching = 0
    for sample in blends:
        meta = json.loads(sample["json"])
        valid = frame_valid_map(np.array(meta["crop_matrix"]), tuple(meta["frame_size"]), meta["crop"]["size"])
        reaching += int((~valid).any())
        assert not decode_png(sample["mask.png"])[~valid].any(), sample["__key__"]
    assert reaching > 0          # some crops do reach past their frame, so the check bites
