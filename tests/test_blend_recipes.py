"""Blend recipes: mask variety on real faces, regeneration from recorded choices, the
valid map, and the paper recipe's unchanged draws."""
from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest

from blending.bi import EmptyMaskError, blend, blend_from_choices, render_mask
from blending.deform import grid_for
from blending.masks import hull_mask
from blending.recipe import RECIPES, BlendParams, draw_choices, recipe
from blending.regions import MissingMeshError, region_mask
from landmarks.align import align_face, frame_valid_map
from mesh_faces import mesh_faces
from conftest import read_rgb, portrait_paths

SIZE = 256


@pytest.fixture(scope="module")
def all_faces(shared_data, detector):
    """Every real photo's largest face with its mesh (~190 faces)."""
    paths = sorted(p for p in (shared_data / "real_photos").rglob("*")
                   if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    faces = mesh_faces(paths, detector, read_rgb)
    assert len(faces) >= 100
    return faces


def _iou(mask: np.ndarray, landmarks: np.ndarray) -> float:
    inside, hull = mask > 127, hull_mask(landmarks, SIZE) > 0
    return float((inside & hull).sum() / (inside | hull).sum())


def _blends(faces, params, count, with_mesh=True):
    """`count` blends, background i with foreground i + 7, each with its own generator."""
    for i in range(count):
        bg, fg = faces[i % len(faces)], faces[(i + 7) % len(faces)]
        yield bg, fg, blend(bg.crop, fg.crop, bg.landmarks, np.random.default_rng(i), params,
                        mesh=bg.mesh if with_mesh else None, valid=bg.valid)


def test_default_masks_vary_like_the_references_and_stay_inside_the_frame(all_faces):
    """Median IoU (M > 0.5 vs the 68-point hull) over 240 blends: default in [0.6, 0.85]
    with or without the mesh (references 0.74-0.79), paper ~0.93; no mask reaches the
    padded area outside the source photo."""
    assert sum((~f.valid).any() for f in all_faces) >= 20  # many crops reach past the photo
    medians = {}
    for name, with_mesh in (("default", True), ("default", False), ("paper", True)):
        ious, hulls = [], set()
        for face, _, result in _blends(all_faces, recipe(name), 240, with_mesh):
            assert not result.mask[~face.valid].any()
            ious.append(_iou(result.mask, face.landmarks))
            hulls.add(result.choices["hull"])
        medians[name, with_mesh] = float(np.median(ious))
        assert hulls == ({"full", "inner", "lower", "forehead"} if name == "default" and with_mesh
                         else {"full", "inner", "lower"} if name == "default" else {"full"})
    assert 0.6 <= medians["default", True] <= 0.85, medians
    assert 0.6 <= medians["default", False] <= 0.85, medians
    assert medians["paper", True] > 0.9, medians


def test_blends_regenerate_bit_for_bit_from_their_json_choices(all_faces):
    for bg, fg, result in _blends(all_faces, recipe("default"), 30):
        choices = json.loads(json.dumps(result.choices))
        again = blend_from_choices(bg.crop, fg.crop, bg.landmarks, choices, mesh=bg.mesh, valid=bg.valid)
        for field in ("image", "mask", "xray", "hull"):
            np.testing.assert_array_equal(getattr(again, field), getattr(result, field))


def test_the_same_generator_state_gives_the_same_blend(all_faces):
    bg, fg = all_faces[0], all_faces[1]
    runs = [blend(bg.crop, fg.crop, bg.landmarks, np.random.default_rng(seed), recipe("default"),
                  mesh=bg.mesh, valid=bg.valid) for seed in (3, 3, 4)]
    np.testing.assert_array_equal(runs[0].image, runs[1].image)
    assert runs[0].choices == runs[1].choices
    assert runs[0].choices["grid_targets"] != runs[2].choices["grid_targets"]


def test_paper_recipe_draws_what_the_single_recipe_blend_drew(aligned_faces):
    """The grid offsets (std 0.03 S) then the blur kernel, nothing else: old seeds give
    the old masks."""
    (bg, landmarks, _), (fg, _, _) = aligned_faces[0], aligned_faces[1]
    result = blend(bg, fg, landmarks, np.random.default_rng(11), recipe("paper"))
    rng = np.random.default_rng(11)
    targets = grid_for(SIZE, 4).random_targets(rng, 0.03 * SIZE)
    kernel = int(rng.choice(np.arange(5, 26, 2)))
    choices = result.choices
    assert choices["grid_targets"] == np.round(targets, 3).tolist() and choices["blur_kernel"] == kernel
    assert (choices["hull"], choices["deform_std"], choices["morph_kernel"], choices["opacity"]) == ("full", 0.03, 0, 1.0)
    assert BlendParams() == recipe("paper")


def test_regions_cover_their_part_of_the_face(all_faces):
    face = all_faces[0]
    full = region_mask("full", face.landmarks, SIZE) > 0
    masks = {r: region_mask(r, face.landmarks, SIZE, face.mesh) > 0 for r in ("inner", "lower", "forehead")}
    brow_top = int(face.landmarks[17:27, 1].min())
    eye_line = int(face.landmarks[36:48, 1].mean())
    assert (masks["inner"] & ~full).sum() < 0.01 * full.sum()       # inside the face hull
    assert not masks["inner"][int(face.landmarks[8, 1]) - 2:].any()   # the chin is not in it
    assert not masks["lower"][:eye_line].any()                       # below the eyes
    assert masks["lower"][int(face.landmarks[57, 1])].any()           # down to the chin
    assert (full & ~masks["forehead"]).sum() == 0 and masks["forehead"][:brow_top].sum() > 0.1 * full.sum()
    with pytest.raises(MissingMeshError):
        region_mask("forehead", face.landmarks, SIZE)


def test_opacity_and_erosion_dilation_act_on_the_mask(all_faces):
    face = all_faces[2]
    choices = draw_choices(np.random.default_rng(0), recipe("paper"), SIZE, has_mesh=False)
    base = render_mask(face.landmarks, SIZE, choices)
    assert base.max() == 255
    assert render_mask(face.landmarks, SIZE, choices | {"opacity": 0.7}).max() == round(0.7 * 255)
    eroded = render_mask(face.landmarks, SIZE, choices | {"morph_kernel": -9})
    dilated = render_mask(face.landmarks, SIZE, choices | {"morph_kernel": 5})
    assert np.all(eroded <= base) and np.all(dilated >= base)
    assert (eroded > 127).sum() < (base > 127).sum() < (dilated > 127).sum()


def test_the_mask_is_cut_where_the_crop_left_the_frame(shared_data, detector):
    """A wide crop of a portrait reaches past the photo: the default mask, which would
    reach there without the valid map, is zero there with it."""
    rgb = read_rgb(portrait_paths(shared_data)[0])
    found, _ = detector.detect(rgb)
    crop, _, _ = align_face(rgb, found[0].landmarks, SIZE)
    left = int(found[0].landmarks[:, 0].mean())                   # cut the photo at the face's middle
    cut, landmarks, matrix = align_face(np.ascontiguousarray(rgb[:, left:]), found[0].landmarks - [left, 0], SIZE)
    valid = frame_valid_map(matrix, (rgb.shape[1] - left, rgb.shape[0]), SIZE)
    assert 0.2 < valid.mean() < 0.8
    reached = 0
    for seed in range(10):
        free = blend(cut, crop, landmarks, np.random.default_rng(seed), recipe("default"))
        kept = blend(cut, crop, landmarks, np.random.default_rng(seed), recipe("default"), valid=valid)
        reached += int(free.mask[~valid].any())
        assert not kept.mask[~valid].any()
        np.testing.assert_array_equal(kept.image[~valid], cut[~valid])  # the padding is untouched
    assert reached == 10


def test_valid_map_is_exactly_where_the_crop_reads_inside_the_frame():
    rng = np.random.default_rng(0)
    for _ in range(50):
        width, height = (int(v) for v in rng.integers(80, 600, 2))
        angle, scale = rng.uniform(-0.6, 0.6), rng.uniform(0.3, 3)
        matrix = np.array([[scale * np.cos(angle), -scale * np.sin(angle), rng.uniform(-300, 100)],
                           [scale * np.sin(angle), scale * np.cos(angle), rng.uniform(-300, 100)]])
        white = cv2.warpAffine(np.full((height, width), 255, np.uint8), matrix, (SIZE, SIZE),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        valid = frame_valid_map(matrix, (width, height), SIZE)
        assert np.all(white[valid] == 255)                    # only frame pixels are read there
        assert (white[~valid] == 255).sum() <= 4 * SIZE        # elsewhere at most a sub-pixel rim


def test_an_empty_mask_is_a_typed_error(aligned_faces):
    (bg, landmarks, _), (fg, _, _) = aligned_faces[0], aligned_faces[1]
    choices = draw_choices(np.random.default_rng(0), recipe("paper"), SIZE, has_mesh=False)
    with pytest.raises(EmptyMaskError):
        blend_from_choices(bg, fg, landmarks, choices, valid=np.zeros((SIZE, SIZE), bool))
    with pytest.raises(EmptyMaskError):
        blend(bg, fg, landmarks, np.random.default_rng(0), valid=np.zeros((SIZE, SIZE), bool))


def test_recipes_are_validated():
    with pytest.raises(ValueError):
        recipe("wild")
    for bad in (dict(hulls=(("chin", 1.0),)), dict(hulls=()), dict(deform_std=0.05, deform_std_max=0.01),
                dict(opacity_min=0.0), dict(erode_max=-0.1), dict(blur_min=4)):
        with pytest.raises(ValueError):
            replace(RECIPES["default"], **bad)
