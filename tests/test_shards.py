"""Keys, sample encoding, deterministic tars and the shard layout plan."""
from __future__ import annotations

import io
import tarfile
from collections import Counter

import numpy as np
import pytest
import webdataset as wds

from shards.keys import face_key, key_rng, parse_key, sample_key, sanitize, stable_hash
from shards.layout import SlotPlan, shard_name
from shards.sample import MEMBERS, decode_png, encode_sample
from shards.tar import read_tar, write_tar


def _samples(n, size=16):
    rng = np.random.default_rng(0)
    return [encode_sample(f"ds__vid__{i:06d}__f0-real", rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
                          np.zeros((size, size), np.uint8), np.zeros((size, size), np.uint8),
                          np.full((size, size), 255, np.uint8), i % 2, {"i": i}) for i in range(n)]


def test_sanitize_keeps_keys_parseable_and_distinct():
    assert sanitize("ffpp_c23-004") == "ffpp_c23-004"
    a, b = sanitize("my video.mp4"), sanitize("my-video.mp4")
    assert a != b and all(c.isalnum() or c in "_-" for c in a + b)
    assert "__" not in sanitize("a__b") and "." not in sanitize("a.b")
    assert sanitize("-leading") != "" and sanitize("ümlaut é").isascii()
    key = sample_key(face_key("ds", sanitize("x__y z"), 31, 0), "bi0")
    parts = parse_key(key)
    assert (parts.dataset, parts.frame, parts.face, parts.variant) == ("ds", 31, 0, "bi0")
    assert parse_key(sample_key(face_key("ds", "v", 7, 3), "fake")).face_key == face_key("ds", "v", 7, 3)
    with pytest.raises(ValueError):
        parse_key("ds__v__000007__x3")


def test_stable_hash_and_key_rng_are_reproducible():
    assert stable_hash("a", 1) == stable_hash("a", 1) != stable_hash("a", 2)
    assert 0 <= stable_hash("x") < 2 ** 63
    assert key_rng(0, "blend", "k").random() == key_rng(0, "blend", "k").random()
    assert key_rng(0, "blend", "k").random() != key_rng(1, "blend", "k").random()


def test_tar_bytes_are_deterministic_and_read_by_webdataset(tmp_path):
    samples = _samples(5)
    first, second = io.BytesIO(), io.BytesIO()
    write_tar(first, samples)
    write_tar(second, samples)
    assert first.getvalue() == second.getvalue()
    with tarfile.open(fileobj=io.BytesIO(first.getvalue())) as archive:
        members = archive.getmembers()
    assert len(members) == 5 * len(MEMBERS) and {m.mtime for m in members} == {0}
    path = tmp_path / "shard-000000.tar"
    path.write_bytes(first.getvalue())
    read = list(wds.WebDataset(str(path), shardshuffle=False).decode())
    assert [r["__key__"] for r in read] == [s.key for s in samples]
    for r, s in zip(read, samples):
        assert set(MEMBERS) <= set(r)
        assert r["img.png"] == s.members["img.png"]
        assert r["cls"] == int(s.members["cls"]) and r["json"]["i"] == parse_key(s.key).frame
    pixels = next(iter(wds.WebDataset(str(path), shardshuffle=False).decode("rgb8")))
    np.testing.assert_array_equal(pixels["img.png"], decode_png(samples[0].members["img.png"]))


def test_read_tar_returns_the_written_samples_reading_only_as_far_as_asked():
    samples = _samples(4)
    buffer = io.BytesIO()
    write_tar(buffer, samples)
    read = list(read_tar(io.BytesIO(buffer.getvalue())))
    assert [r["__key__"] for r in read] == [s.key for s in samples]
    assert all({k: r[k] for k in MEMBERS} == s.members for r, s in zip(read, samples))
    stream = io.BytesIO(buffer.getvalue())
    first = next(read_tar(stream))
    assert first["__key__"] == samples[0].key and stream.tell() < len(buffer.getvalue()) // 2


def test_keys_with_dots_are_refused():
    sample = _samples(1)[0]
    bad = type(sample)("a.b", sample.members)
    with pytest.raises(ValueError, match="dot"):
        write_tar(io.BytesIO(), [bad])


def test_slot_plan_fills_shards_in_rank_order():
    ranked = [(stable_hash(0, "order", f"k{i}"), f"k{i}") for i in range(23)]
    plan = SlotPlan(ranked, 5)
    slots = {key: plan.slot(rank, key) for rank, key in ranked}
    assert (len(plan), plan.shards) == (23, 5)
    assert Counter(shard for shard, _ in slots.values()) == {0: 5, 1: 5, 2: 5, 3: 5, 4: 3}
    order = [key for _, key in sorted(ranked)]
    assert [slots[k] for k in order] == [divmod(i, 5) for i in range(23)]
    assert shard_name(3) == "shard-000003.tar"
    with pytest.raises(KeyError, match="not in the shard plan"):
        plan.slot(12345, "stranger")
    with pytest.raises(ValueError, match="samples_per_shard"):
        SlotPlan(ranked, 0)


def test_slot_plan_orders_samples_of_equal_rank_by_key():
    plan = SlotPlan([(7, "b"), (3, "z"), (7, "a"), (9, "c"), (7, "c")], 2)
    assert [plan.slot(r, k) for r, k in [(3, "z"), (7, "a"), (7, "b"), (7, "c"), (9, "c")]] == \
        [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]
    with pytest.raises(KeyError):
        plan.slot(7, "d")


@pytest.mark.parametrize("shape", [(37, 53, 3), (64, 64), (1, 1), (256, 256, 3)])
def test_png_writer_round_trips_through_opencv_and_pil(shape):
    import io as _io

    from PIL import Image

    from shards.png import encode_png
    image = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    for level in (0, 1):
        data = encode_png(image, level)
        np.testing.assert_array_equal(decode_png(data), image)
        np.testing.assert_array_equal(np.asarray(Image.open(_io.BytesIO(data))), image)
    smooth = np.tile(np.arange(64, dtype=np.uint8)[:, None], (1, 64))
    assert len(encode_png(smooth, 0)) > 64 * 65 > 3 * len(encode_png(smooth, 1))   # 0 stores the rows as they are
    with pytest.raises(TypeError):
        encode_png(image.astype(np.float32))
    with pytest.raises(ValueError):
        encode_png(np.zeros((4, 4, 2), np.uint8))


def test_contact_sheet_draws_one_row_per_sample():
    from shards.preview import contact_sheet
    rows = [{"__key__": s.key, **s.members} for s in _samples(3, size=32)]
    sheet = contact_sheet(rows, side=40)
    assert sheet.dtype == np.uint8 and sheet.shape == (22 + 3 * (22 + 40), 4 * 40, 3)
    # the hull panel of the first sample is white (all-255 hull), its mask panel black
    top = 22 + 22
    assert sheet[top:top + 40, 120:160].min() == 255 and sheet[top:top + 40, 40:80].max() == 0
