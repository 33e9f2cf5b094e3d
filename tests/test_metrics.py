"""Metrics against hand-computed references."""
from __future__ import annotations

import math

import numpy as np
import pytest

from trainers.metrics import (MixedVideoLabels, accuracy, average_precision, equal_error_rate, evaluation_report,
                              mean_iou, roc_auc, video_level)


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


def test_accuracy_and_miou():
    assert accuracy([0, 1, 1, 0], [0.2, 0.7, 0.4, 0.5]) == pytest.approx(0.5)
    predicted = np.array([[1, 1], [0, 0]])
    target = np.array([[1, 0], [0, 0]])
    # fg IoU 1/2, bg IoU 2/3
    assert mean_iou(predicted, target) == pytest.approx((0.5 + 2 / 3) / 2)
    assert mean_iou(np.zeros((4, 4)), np.zeros((4, 4))) == pytest.approx(1.0)


def test_video_level_and_report():
    labels = np.array([0, 0, 1, 1, 1, 0])
    scores = np.array([0.1, 0.3, 0.9, 0.7, 0.2, 0.4])
    videos = ["a", "a", "b", "b", "c", "d"]
    methods = ["real", "real", "DF", "DF", "NT", "real"]
    video_labels, video_scores = video_level(labels, scores, videos)
    assert video_labels.tolist() == [0, 1, 1, 0] and video_scores == pytest.approx([0.2, 0.8, 0.2, 0.4])
    report = evaluation_report(labels, scores, videos, methods)
    assert report["frame"]["count"] == 6 and report["video"]["count"] == 4
    assert report["per_method"]["DF"]["auc"] == pytest.approx(1.0)
    assert report["per_method"]["NT"]["auc"] == pytest.approx(1 / 3)   # 0.2 beats only the real 0.1
    assert set(report["frame"]) == {"auc", "ap", "eer", "accuracy", "count"}


def test_a_video_group_that_mixes_labels_is_refused():
    with pytest.raises(MixedVideoLabels):
        video_level([0, 1, 0], [0.1, 0.9, 0.2], ["a", "a", "b"])
