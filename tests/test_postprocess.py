"""AMTEN Table IX post-processing operations."""
from __future__ import annotations

import numpy as np
import pytest

from blending.postprocess import OPERATIONS, TABLE_IX, parse_spec, postprocess


@pytest.fixture(scope="module")
def face(aligned_faces):
    return aligned_faces[0][0]


def _error(a, b):
    return float(np.abs(a.astype(float) - b.astype(float)).mean())


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_every_operation_keeps_shape_and_dtype(face, name):
    for value in (TABLE_IX[name][0], TABLE_IX[name][-1]):
        out = OPERATIONS[name](face, value)
        assert out.shape == face.shape and out.dtype == np.uint8


def test_parameters_have_their_documented_effect(face):
    assert _error(OPERATIONS["gamma"](face, 1.0), face) == 0
    assert OPERATIONS["gamma"](face, 2.0).mean() < face.mean() < OPERATIONS["gamma"](face, 0.6).mean()
    assert _error(OPERATIONS["jpeg"](face, 60), face) > _error(OPERATIONS["jpeg"](face, 90), face) > 0
    assert _error(OPERATIONS["jpeg2000"](face, 8), face) > _error(OPERATIONS["jpeg2000"](face, 2), face)
    for filter_name in ("mean", "gaussian", "median"):
        assert _error(OPERATIONS[filter_name](face, 7), face) > _error(OPERATIONS[filter_name](face, 3), face) > 0
    assert _error(OPERATIONS["downscale"](face, 45), face) > _error(OPERATIONS["downscale"](face, 5), face)
    assert _error(OPERATIONS["upscale"](face, 1), face) < _error(OPERATIONS["downscale"](face, 45), face)


def test_specs_and_mix_are_seeded(face):
    assert parse_spec("jpeg:70") == ("jpeg", 70.0) and parse_spec("mix") == ("mix", None)
    for bad in ("jpeg", "blur:3", "mix:3"):
        with pytest.raises(ValueError):
            parse_spec(bad)
    with pytest.raises(ValueError):
        OPERATIONS["median"](face, 4)
    a = postprocess(face, "mix", np.random.default_rng(1))
    b = postprocess(face, "mix", np.random.default_rng(1))
    assert a[1] == b[1] and np.array_equal(a[0], b[0])
    drawn = {postprocess(face, "mix", np.random.default_rng(s))[1].split(":")[0] for s in range(40)}
    assert len(drawn) >= 6
    assert postprocess(face, "none", np.random.default_rng(0))[0] is face
