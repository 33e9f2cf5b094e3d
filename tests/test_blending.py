"""The Face X-ray BI recipe: mask deformation, colour correction, blend and X-ray invariants."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.transform import PiecewiseAffineTransform, warp

from blending.bi import BlendParams, blend
from blending.color import reinhard_transfer, rgb_mean_transfer, transfer_color
from blending.deform import PiecewiseAffineGrid
from blending.masks import hull_mask, xray


def test_precomputed_warp_equals_skimage_piecewise_affine():
    """The sampling map is skimage's piecewise-affine transform to float precision; the
    warped mask matches `skimage.transform.warp` up to remap's 1/32 px interpolation grid."""
    size = 64
    grid = PiecewiseAffineGrid(size, 4)
    targets = grid.random_targets(np.random.default_rng(0), std=4.0)
    tform = PiecewiseAffineTransform.from_estimate(grid.control, targets)
    ys, xs = np.mgrid[0:size, 0:size]
    expected = tform(np.stack([xs.ravel(), ys.ravel()], 1)).reshape(size, size, 2)
    assert np.abs(grid.sampling_map(targets) - expected).max() < 1e-3
    mask = np.zeros((size, size), np.float32)
    mask[16:48, 12:52] = 1
    reference = warp(mask, tform, order=1, mode="constant", cval=0.0, preserve_range=True)
    assert np.abs(grid.warp(mask, targets) - reference).max() < 0.05
    assert np.abs(grid.warp(mask, targets) - reference).mean() < 1e-3


def test_identity_targets_leave_the_mask_unchanged():
    grid = PiecewiseAffineGrid(32, 4)
    mask = (np.random.default_rng(2).uniform(size=(32, 32)) > 0.5).astype(np.float32)
    np.testing.assert_allclose(grid.warp(mask, grid.control.astype(np.float32)), mask, atol=1e-5)


def test_xray_of_a_binary_mask_is_softened_and_peaks_on_the_boundary():
    mask = np.zeros((32, 32), np.float32)
    mask[8:24, 8:24] = 1
    b = xray(mask)
    assert b.max() > 0.5 and b[16, 16] == 0 and b[0, 0] == 0
    soft = np.linspace(0, 1, 11, dtype=np.float32)[None]
    np.testing.assert_allclose(xray(soft), 4 * soft * (1 - soft))


def test_rgb_mean_transfer_matches_means_inside_the_mask():
    rng = np.random.default_rng(3)
    fg = rng.uniform(60, 120, (32, 32, 3)).astype(np.float32)
    bg = rng.uniform(100, 180, (32, 32, 3)).astype(np.float32)
    weights = np.zeros((32, 32), np.float32)
    weights[4:28, 4:28] = 1
    out = rgb_mean_transfer(fg, bg, weights)
    inside = weights > 0
    np.testing.assert_allclose(out[inside].mean(0), bg[inside].mean(0), atol=1e-3)
    lab = reinhard_transfer(fg, bg, weights)
    assert lab.shape == fg.shape and lab.min() >= 0 and lab.max() <= 255
    assert np.abs(lab[inside].mean(0) - bg[inside].mean(0)).max() < 3.0


@pytest.mark.parametrize("color", ["rgb_mean", "reinhard", "none"])
def test_blend_invariants_on_real_faces(aligned_faces, color):
    """Where M = 0 the image is the background, where M = 1 the colour-corrected
    foreground; B = 4M(1-M) to 1/255; X-ray peaks above 0.9."""
    params = BlendParams(color_transfer=color)
    for i, (background, landmarks, _) in enumerate(aligned_faces):
        foreground = aligned_faces[(i + 1) % len(aligned_faces)][0]
        result = blend(background, foreground, landmarks, np.random.default_rng(i), params)
        m = result.mask.astype(np.float64) / 255
        b = result.xray.astype(np.float64) / 255
        assert np.abs(b - 4 * m * (1 - m)).max() <= 1 / 255
        assert b.max() > 0.9
        outside, inside = result.mask == 0, result.mask == 255
        assert outside.any() and inside.any()
        np.testing.assert_array_equal(result.image[outside], background[outside])
        corrected = transfer_color(color, foreground.astype(np.float32), background.astype(np.float32), m.astype(np.float32))
        np.testing.assert_allclose(result.image[inside], np.round(corrected[inside]), atol=1)
        hull = hull_mask(landmarks, 256) > 0
        assert (result.hull > 0).tolist() == hull.tolist()
        assert inside.sum() > 0.5 * hull.sum()   # the deformed mask still covers most of the face
        assert set(result.choices) >= {"grid_targets", "blur_kernel", "color_transfer"}


def test_blend_is_seeded(aligned_faces):
    (bg, landmarks, _), (fg, _, _) = aligned_faces[0], aligned_faces[1]
    first = blend(bg, fg, landmarks, np.random.default_rng(5))
    again = blend(bg, fg, landmarks, np.random.default_rng(5))
    other = blend(bg, fg, landmarks, np.random.default_rng(6))
    np.testing.assert_array_equal(first.image, again.image)
    assert first.choices == again.choices
    assert not np.array_equal(first.mask, other.mask)


def test_blend_params_are_validated():
    with pytest.raises(ValueError):
        BlendParams(blur_min=4)
    with pytest.raises(ValueError):
        BlendParams(blur_min=9, blur_max=5)
    with pytest.raises(ValueError):
        BlendParams(color_transfer="histogram")
