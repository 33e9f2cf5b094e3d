"""Self-blended images (blending.sbi, blending.alter) on real faces: the blend is the face
itself outside its mask and its moved, altered copy inside; masks, X-rays and hulls agree;
recorded choices rebuild the sample exactly; the mask stays inside the source frame."""
from __future__ import annotations

import json
from collections import Counter

import cv2
import numpy as np
import pytest

from blending.alter import brightness_contrast, down_up_sample, sharpen, shift_hsv, shift_rgb
from blending.bi import EmptyMaskError
from blending.deform import grid_for
from blending.masks import hull_mask, quantize, xray_u8
from blending.sbi import (SbiParams, altered_copy, draw_sbi_choices, self_blend, self_blend_from_choices,
                          self_blend_target)
from conftest import portrait_paths, read_rgb
from mesh_faces import mesh_faces

SIZE = 256
DRAWS = 100


@pytest.fixture(scope="module")
def faces(shared_data, detector):
    """The portraits' faces with their mesh and frame-valid map, 256 px at margin 1.3."""
    found = mesh_faces(portrait_paths(shared_data), detector, read_rgb)
    assert len(found) >= 8
    return found


@pytest.fixture(scope="module")
def blends(faces):
    """DRAWS self-blends: (face, blend), face i % len(faces) with generator i, mesh given."""
    return [(faces[i % len(faces)], self_blend(faces[i % len(faces)].crop, faces[i % len(faces)].landmarks,
                                               np.random.default_rng(i), mesh=faces[i % len(faces)].mesh,
                                               valid=faces[i % len(faces)].valid))
            for i in range(DRAWS)]


def _moved_source(face, choices, mask) -> np.ndarray:
    """The source copy scaled about the crop centre and shifted, as the module docstring
    says, sampled (like the blend) over the mask's box only; 0 outside the box."""
    source = face.crop if choices["swap"] else altered_copy(face.crop, choices)
    scale, (dx, dy), centre = choices["scale"], choices["shift"], (SIZE - 1) / 2
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    top, left = rows[0], cols[0]
    affine = np.array([[scale, 0, centre * (1 - scale) + dx - left], [0, scale, centre * (1 - scale) + dy - top]])
    moved = np.zeros_like(source)
    moved[top:rows[-1] + 1, left:cols[-1] + 1] = cv2.warpAffine(
        source, affine, (cols[-1] + 1 - left, rows[-1] + 1 - top), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT_101)
    return moved


def test_outside_the_mask_the_blend_is_the_target_and_inside_the_moved_source(blends):
    """Where the stored mask is 0 the image is the target copy exactly: the input itself
    unless swapped. Where it is 255 it is the moved source exactly, the same face."""
    swapped = 0
    for face, result in blends:
        choices, outside, inside = result.choices, result.mask == 0, result.mask == 255
        target = self_blend_target(face.crop, choices)
        assert np.array_equal(result.image[outside], target[outside])
        if choices["swap"]:
            swapped += 1
            assert not np.array_equal(target, face.crop)
        else:
            assert target is face.crop
        assert outside.mean() > 0.2
        if inside.any():
            assert np.array_equal(result.image[inside], _moved_source(face, choices, result.mask)[inside])
        # the blend changed the face inside the mask, and only there
        assert (result.image != target).any(axis=2)[outside].sum() == 0
        assert (result.image != target).any()
    assert 20 < swapped < 80


def test_masks_xrays_and_hulls_agree(blends):
    for face, result in blends:
        mask, choices = result.mask, result.choices
        assert mask.dtype == result.xray.dtype == result.hull.dtype == np.uint8
        assert np.array_equal(result.xray, xray_u8(mask))
        m = mask / 255.0
        assert np.abs(result.xray.astype(float) - 255 * 4 * m * (1 - m)).max() <= 0.5 + 1e-6
        assert np.array_equal(result.hull, quantize(hull_mask(face.landmarks, SIZE)))
        assert mask.max() <= round(255 * choices["opacity"])
        assert 0 < (mask > 0).mean() < 0.9
    full_strength = [r.mask.max() == round(255 * r.choices["opacity"]) for _, r in blends]
    assert np.mean(full_strength) > 0.9  # the eroded region keeps an interior the blur leaves at 1


def test_choices_regenerate_the_sample_bit_for_bit_after_json(blends):
    for face, result in blends[:40]:
        choices = json.loads(json.dumps(result.choices))
        again = self_blend_from_choices(face.crop, face.landmarks, choices, mesh=face.mesh, valid=face.valid)
        for name in ("image", "mask", "xray", "hull"):
            assert np.array_equal(getattr(again, name), getattr(result, name)), name


def test_the_mask_never_reaches_pixels_from_outside_the_frame(faces, blends):
    for face, result in blends:
        assert not result.mask[~face.valid].any()
    # a valid map cutting through every face: the left 45 % of the crop came from outside
    valid = np.ones((SIZE, SIZE), bool)
    valid[:, : int(0.45 * SIZE)] = False
    for i, face in enumerate(faces):
        result = self_blend(face.crop, face.landmarks, np.random.default_rng(i), mesh=face.mesh, valid=valid)
        assert not result.mask[~valid].any() and result.mask[valid].any()
        target = self_blend_target(face.crop, result.choices)
        assert np.array_equal(result.image[~valid], target[~valid])
    with pytest.raises(EmptyMaskError):
        self_blend(faces[0].crop, faces[0].landmarks, np.random.default_rng(0), valid=np.zeros((SIZE, SIZE), bool))


def test_the_choices_take_the_paper_values_over_100_draws(blends, faces):
    choices = [r.choices for _, r in blends]
    ratios = Counter(c["opacity"] for c in choices)
    assert set(ratios) == {0.25, 0.5, 0.75, 1.0} and 35 < ratios[1.0] < 65
    assert Counter(c["frequency"] for c in choices).keys() == {"downscale", "sharpen"}
    assert {c["downscale_factor"] for c in choices} == {None, 2, 4}
    assert Counter(c["hull"] for c in choices).keys() == {"forehead", "full"}
    assert 10 < sum(any(c["rgb_shift"]) for c in choices) < 50   # p 0.3
    assert all(max(map(abs, c["rgb_shift"])) <= 20 and max(map(abs, c["hsv_shift"])) <= 1 for c in choices)
    assert all(abs(c["brightness"]) <= 0.1 and abs(c["contrast"]) <= 0.1 for c in choices)
    assert all(abs(c["shift"][0]) <= 0.03 * SIZE and abs(c["shift"][1]) <= 0.015 * SIZE for c in choices)
    assert all(0.95 <= c["scale"] <= 1 / 0.95 for c in choices)
    assert {c["blur_kernel"] % 2 for c in choices} == {1} and min(c["blur_kernel"] for c in choices) >= 5
    assert max(c["blur_kernel"] for c in choices) <= 25 and min(c["morph_kernel"] for c in choices) >= -26
    assert len({c["blur_kernel"] for c in choices}) > 5 and len({c["morph_kernel"] for c in choices}) > 10
    assert all(c["params"] == choices[0]["params"] for c in choices)
    without_mesh = {draw_sbi_choices(np.random.default_rng(i), SbiParams(), SIZE, False)["hull"] for i in range(50)}
    assert without_mesh == {"full"}


def test_a_self_blend_at_380_px_scales_its_kernels(shared_data, detector):
    face = mesh_faces(portrait_paths(shared_data)[:1], detector, read_rgb, size=380)[0]
    kernels = set()
    for i in range(30):
        result = self_blend(face.crop, face.landmarks, np.random.default_rng(i), mesh=face.mesh, valid=face.valid)
        assert result.image.shape == (380, 380, 3) and result.mask.shape == (380, 380)
        kernels.add(result.choices["blur_kernel"])
    assert min(kernels) >= 9 and max(kernels) <= 37 and max(kernels) > 25


def test_alterations():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3), np.uint8)
    shifted = shift_rgb(image, (20, -20, 0)).astype(int)
    assert np.array_equal(shifted, np.clip(image.astype(int) + [20, -20, 0], 0, 255))
    expected = np.clip(np.round(1.1 * image.astype(float) + 255 * -0.05), 0, 255)
    assert np.abs(brightness_contrast(image, -0.05, 0.1) - expected).max() <= 1
    assert shift_hsv(image, (0, 0, 0)) is image
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 200                                   # hue 0: one level down wraps to 179
    assert cv2.cvtColor(shift_hsv(red, (-1, 0, 0)), cv2.COLOR_RGB2HSV)[..., 0].max() >= 178
    assert np.array_equal(sharpen(image, 0.0, 1.0), image)
    smooth = cv2.GaussianBlur(image, (0, 0), 3)
    detail = [cv2.Laplacian(x, cv2.CV_64F).var() for x in (down_up_sample(smooth, 4), smooth, sharpen(smooth, 0.5, 1.0))]
    assert detail[0] < detail[1] < detail[2]


def test_forward_grid_map_moves_points_with_their_control_points():
    grid = grid_for(SIZE, 4)
    points = np.random.default_rng(0).uniform(0, SIZE - 1, (50, 2))
    assert np.allclose(grid.map_points(points, grid.control), points, atol=1e-3)
    affine = np.array([[1.05, 0.0, -4.0], [0.0, 1.05, 3.0]])
    moved = grid.map_points(points, grid.control @ affine[:, :2].T + affine[:, 2])
    assert np.allclose(moved, points @ affine[:, :2].T + affine[:, 2], atol=1e-3)


@pytest.mark.parametrize("bad", [{"swap_p": 1.5}, {"blend_ratios": ()}, {"blend_ratios": (0.0,)},
                                 {"hulls": (("chin", 1.0),)}, {"blur_min": 0.2, "blur_max": 0.1},
                                 {"downscale_factors": (0,)}, {"scale_min": 1.2}])
def test_bad_sbi_params_are_refused(bad):
    with pytest.raises(ValueError):
        SbiParams(**bad)
