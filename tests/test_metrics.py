"""Metrics against hand-computed references."""
from __future__ import annotations

import math

import numpy as np
import pytest

from trainers.metrics import (IoUAccumulator, MixedVideoLabels, accuracy, average_precision, equal_error_rate,
                              evaluation_report, roc_auc, video_level)


def test_auc_counts_pairs_and_half_ties():
    labels = [0, 0, 1, 1]
    assert roc_auc(labels, [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)   # 3 of 4 pairs ordered
    assert roc_auc(labels, [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.5)
    assert roc_auc([0, 1, 1], [0.2, 0.2, 0.9]) == pytest.approx(0.75)     # one tie, one win
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_average_precision_by_hand():
    # sorted by score: 1 (P=1, R=.5), 0, 1 (P=2/3, R=1)  -> AP = .5*1 + .5*2/3
    assert average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(0.5 + 1 / 3)
    assert average_precision([0, 1], [0.9, 0.1]) == pytest.approx(0.5)
    # tied scores form one threshold: P = 1/2 at R = 1
    assert average_precision([1, 0], [0.5, 0.5]) == pytest.approx(0.5)


def test_equal_error_rate_known_cases():
    assert equal_error_rate([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == pytest.approx(0.0)
    assert equal_error_rate([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == pytest.approx(1.0)
    # negatives 0..9, positives 5..14: at threshold 7 FPR = .3, FNR = .2; at 8 FPR = .2, FNR = .3;
    # the rates cross half-way: EER = 0.25
    labels = np.r_[np.zeros(10), np.ones(10)]
    assert equal_error_rate(labels, np.r_[np.arange(10), np.arange(5, 15)]) == pytest.approx(0.25)


def test_one_class_gives_nan():
    for metric in (roc_auc, average_precision, equal_error_rate):
        assert math.isnan(metric([0, 0], [0.2, 0.3])), metric
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3])) and math.isnan(equal_error_rate([1, 1], [0.2, 0.3]))
    assert average_precision([1, 1], [0.2, 0.3]) == pytest.approx(1.0)


def test_accuracy():
    assert accuracy([0, 1, 1, 0], [0.2, 0.7, 0.4, 0.5]) == pytest.approx(0.5)


def test_miou_follows_the_pixel_level_paper_over_the_dataset():
    iou = IoUAccumulator()
    # a fake: predicted 2 px, true 1 px, overlapping 1 -> fg I/U 1/2; bg I/U 2/3
    iou.add(np.array([[[1, 1], [0, 0]]]), np.array([[[1, 0], [0, 0]]]), np.array([1]))
    assert iou.result() == pytest.approx({"miou": (0.5 + 2 / 3) / 2, "bg_iou": 2 / 3, "fg_iou": 0.5})
    # a pristine image called entirely pristine adds 4 / 4 to the background only
    iou.add(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), np.array([0]))
    assert iou.result() == pytest.approx({"miou": (0.5 + 6 / 7) / 2, "bg_iou": 6 / 7, "fg_iou": 0.5})
    # a pristine image with one pixel called fake: background 3 / 4, foreground untouched
    iou.add(np.array([[[1, 0], [0, 0]]]), np.zeros((1, 2, 2)), np.array([0]))
    assert iou.result() == pytest.approx({"miou": (0.5 + 9 / 11) / 2, "bg_iou": 9 / 11, "fg_iou": 0.5})
    pristine = IoUAccumulator()
    pristine.add(np.zeros((2, 3, 3)), np.zeros((2, 3, 3)), np.array([0, 0]))
    result = pristine.result()     # no foreground anywhere: mIoU is the background IoU
    assert result["miou"] == 1.0 and math.isnan(result["fg_iou"])


def test_video_level_and_report():
    labels = np.array([0, 0, 1, 1, 1, 0])
    scores = np.array([0.1, 0.3, 0.9, 0.7, 0.2, 0.4])
    videos = ["a", "a", "b", "b", "c", "d"]
    methods = ["real", "real", "DF", "DF", "NT", "real"]
    video_labels, video_scores = video_level(labels, scores, videos)
    assert video_labels.tolist() == [0, 1, 1, 0] and video_scores == pytest.approx([0.2, 0.8, 0.2, 0.4])
    report = evaluation_report(labels, scores, videos, methods)
    assert report["frame"]["count"] == 6 and report["video"]["count"] == 4
    assert report["per_method"]["DF"]["frame"]["auc"] == pytest.approx(1.0)
    assert report["per_method"]["NT"]["frame"]["auc"] == pytest.approx(1 / 3)   # 0.2 beats only the real 0.1
    # videos: reals a (0.2), d (0.4); DF video b (0.8) beats both, NT video c (0.2) ties a, loses to d
    assert report["per_method"]["DF"]["video"] == pytest.approx(
        {"auc": 1.0, "ap": 1.0, "eer": 0.0, "accuracy": 1.0, "count": 3})
    assert report["per_method"]["NT"]["video"]["auc"] == pytest.approx(0.25)
    assert report["per_method"]["NT"]["video"]["count"] == 3
    assert set(report["frame"]) == {"auc", "ap", "eer", "accuracy", "count"}


def test_a_video_group_that_mixes_labels_is_refused():
    with pytest.raises(MixedVideoLabels):
        video_level([0, 1, 0], [0.1, 0.9, 0.2], ["a", "a", "b"])
