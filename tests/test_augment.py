"""Per-draw augmentation: label-independent choices, flips that keep landmark and mesh
indices on the same side of the face, colour jitter and JPEG."""
from __future__ import annotations

import numpy as np
import pytest

from blending.augment import (AUGMENTS, AugmentParams, apply_augment, augment, augment_params,
                              draw_augment, flip_points, jitter_colour)
from blending.bi import blend
from blending.masks import hull_mask, quantize
from blending.postprocess import jpeg
from landmarks.ibug68 import _MESH_VERTICES, IBUG68_FLIP, MESH_FLIP
from mesh_faces import CropMesh

SIZE = 256


def test_choices_are_the_same_for_a_real_and_a_fake_drawn_with_the_same_state(aligned_faces):
    (real, landmarks, _), (other, _, _) = aligned_faces[0], aligned_faces[1]
    fake = blend(real, other, landmarks, np.random.default_rng(0))
    zeros = np.zeros((SIZE, SIZE), np.uint8)
    for seed in range(20):
        real_out = augment(real, np.random.default_rng(seed), masks=(zeros, zeros, fake.hull), landmarks=landmarks)
        fake_out = augment(fake.image, np.random.default_rng(seed), masks=(fake.mask, fake.xray, fake.hull),
                           landmarks=landmarks)
        assert real_out.choices == fake_out.choices
        np.testing.assert_array_equal(real_out.masks[2], fake_out.masks[2])
        np.testing.assert_array_equal(real_out.landmarks, fake_out.landmarks)


def test_draws_consume_the_generator_alike_whatever_the_parameters():
    for params in AUGMENTS.values():
        rng = np.random.default_rng(4)
        draw_augment(rng, params)
        assert rng.uniform() == np.random.default_rng(4).uniform(size=7)[6]


def test_none_leaves_the_sample_unchanged(aligned_faces):
    crop, landmarks, _ = aligned_faces[0]
    out = augment(crop, np.random.default_rng(1), augment_params("none"), landmarks=landmarks)
    assert out.choices == {"flip": False, "brightness": 1.0, "contrast": 1.0, "saturation": 1.0, "jpeg_quality": None}
    np.testing.assert_array_equal(out.image, crop)
    np.testing.assert_array_equal(out.landmarks, landmarks)


def test_default_draws_cover_their_ranges():
    draws = [draw_augment(np.random.default_rng(s), AUGMENTS["default"]) for s in range(400)]
    assert 0.4 < np.mean([d["flip"] for d in draws]) < 0.6
    qualities = [d["jpeg_quality"] for d in draws if d["jpeg_quality"] is not None]
    assert 0.4 < len(qualities) / 400 < 0.6 and min(qualities) == 60 and max(qualities) == 100
    assert all(0.9 <= d[k] <= 1.1 for d in draws for k in ("brightness", "contrast", "saturation"))


def test_flip_mirrors_pixels_and_swaps_landmark_sides(aligned_faces):
    crop, landmarks, _ = aligned_faces[0]
    hull = quantize(hull_mask(landmarks, SIZE))
    choices = {"flip": True, "brightness": 1.0, "contrast": 1.0, "saturation": 1.0, "jpeg_quality": None}
    out = apply_augment(choices, crop, (hull,), landmarks)
    np.testing.assert_array_equal(out.image, crop[:, ::-1])
    np.testing.assert_array_equal(out.masks[0], hull[:, ::-1])
    flipped_hull = hull_mask(out.landmarks, SIZE) > 0
    assert (flipped_hull ^ (out.masks[0] > 0)).sum() < 0.01 * flipped_hull.sum()
    right_eye, left_eye = out.landmarks[36:42, 0].mean(), out.landmarks[42:48, 0].mean()
    assert right_eye < left_eye                        # the subject's right eye is still on the image's left
    np.testing.assert_allclose(flip_points(out.landmarks, SIZE, IBUG68_FLIP), landmarks, atol=1e-4)


def test_flipped_landmarks_and_mesh_match_those_found_on_the_flipped_face(aligned_faces, detector):
    """The detector and the face mesh run on the mirrored crop find (to a few px) the
    points that the flip predicts, index for index."""
    mesher = CropMesh()
    for crop, landmarks, _ in aligned_faces[:4]:
        mirrored = np.ascontiguousarray(crop[:, ::-1])
        found, _ = detector.detect(mirrored)
        side = float(np.ptp(landmarks[:, 0]))
        error = np.linalg.norm(found[0].landmarks - flip_points(landmarks, SIZE, IBUG68_FLIP), axis=1)
        assert error.mean() < 0.03 * side
        mesh, mesh_mirrored = mesher(crop), mesher(mirrored)
        error = np.linalg.norm(mesh_mirrored - flip_points(mesh, SIZE, MESH_FLIP), axis=1)
        unpermuted = np.linalg.norm(mesh_mirrored - flip_points(mesh, SIZE, np.arange(478)), axis=1)
        assert error.mean() < 0.03 * side and unpermuted.mean() > 5 * error.mean()
    mesher.close()


def test_the_mesh_and_ibug_flips_agree():
    """Mirroring the mesh vertices of each iBUG point gives the vertices of its mirror
    point, except iBUG 3 (mesh 132 + 58) and 13 (361 only): the mapping is not symmetric."""
    assert (IBUG68_FLIP[IBUG68_FLIP] == np.arange(68)).all() and (MESH_FLIP[MESH_FLIP] == np.arange(478)).all()
    for point, vertices in enumerate(_MESH_VERTICES):
        if point not in (3, 13):
            assert {int(MESH_FLIP[v]) for v in vertices} == set(_MESH_VERTICES[IBUG68_FLIP[point]]), point


def test_colour_jitter_is_the_affine_map_it_states():
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(jitter_colour(image, 1.0, 1.0, 1.0), image)
    b, c, s = 1.08, 0.93, 1.1
    x = image.astype(np.float64) * b
    x = c * x + (1 - c) * (x @ [0.299, 0.587, 0.114]).mean()
    x = s * x + (1 - s) * (x @ [0.299, 0.587, 0.114])[..., None]
    assert np.abs(jitter_colour(image, b, c, s).astype(int) - np.clip(np.round(x), 0, 255)).max() <= 1
    grey = jitter_colour(image, 1.0, 1.0, 0.0)
    assert np.abs(grey.astype(int) - grey[..., :1]).max() <= 1


def test_jpeg_choice_is_an_opencv_round_trip(aligned_faces):
    crop, _, _ = aligned_faces[0]
    choices = {"flip": False, "brightness": 1.0, "contrast": 1.0, "saturation": 1.0, "jpeg_quality": 70}
    np.testing.assert_array_equal(apply_augment(choices, crop).image, jpeg(crop, 70))


def test_augment_params_are_validated():
    with pytest.raises(ValueError):
        augment_params("heavy")
    for bad in (dict(flip_p=1.5), dict(brightness=1.0), dict(jpeg_min=90, jpeg_max=80), dict(jpeg_max=101)):
        with pytest.raises(ValueError):
            AugmentParams(**bad)
