"""Detection and segmentation metrics: AUC, AP, EER, accuracy, mIoU; frame, video and
per-method views. Pure NumPy."""
from __future__ import annotations

from collections import defaultdict

import numpy as np


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, scores = np.asarray(labels).astype(int).ravel(), np.asarray(scores, np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError("labels and scores differ in length")
    return labels, scores


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a
    random negative, ties counting one half (Mann-Whitney U). NaN with one class only."""
    labels, scores = _check(labels, scores)
    positives, negatives = labels.sum(), (1 - labels).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def average_precision(labels, scores) -> float:
    """AP = sum over thresholds of (R_n - R_{n-1}) * P_n, thresholds at each distinct score
    (scikit-learn's definition, no interpolation). NaN without positives."""
    labels, scores = _check(labels, scores)
    if labels.sum() == 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    labels, scores = labels[order], scores[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_positives = np.cumsum(labels)[last_of_tie]
    precision = true_positives / (last_of_tie + 1)
    recall = true_positives / labels.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def equal_error_rate(labels, scores) -> float:
    """Error rate where the false positive rate equals the false negative rate, linearly
    interpolated between ROC points. NaN with one class only."""
    labels, scores = _check(labels, scores)
    positives, negatives = labels.sum(), (1 - labels).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    thresholds = np.r_[np.inf, np.unique(scores)[::-1]]
    fpr = np.array([((scores >= t) & (labels == 0)).sum() / negatives for t in thresholds])
    fnr = np.array([((scores < t) & (labels == 1)).sum() / positives for t in thresholds])
    difference = fnr - fpr  # falls from 1 to <= 0 as the threshold drops
    crossing = int(np.flatnonzero(difference <= 0)[0])
    if crossing == 0 or difference[crossing] == 0:
        return float((fpr[crossing] + fnr[crossing]) / 2)
    a, b = crossing - 1, crossing
    t = difference[a] / (difference[a] - difference[b])
    return float(fpr[a] + t * (fpr[b] - fpr[a]))


def accuracy(labels, scores, threshold: float = 0.5) -> float:
    labels, scores = _check(labels, scores)
    return float(((scores >= threshold).astype(int) == labels).mean())


def binary_metrics(labels, scores, threshold: float = 0.5) -> dict[str, float]:
    """AUC, AP, EER, and accuracy at `threshold`, of fake scores (label 1 = fake)."""
    return {"auc": roc_auc(labels, scores), "ap": average_precision(labels, scores),
            "eer": equal_error_rate(labels, scores), "accuracy": accuracy(labels, scores, threshold),
            "count": int(len(np.ravel(labels)))}


def mean_iou(predicted: np.ndarray, target: np.ndarray) -> float:
    """Mean of foreground and background IoU of binary maps (any shape, bool or 0/1).
    A class absent from both maps counts as IoU 1."""
    predicted, target = np.asarray(predicted).astype(bool), np.asarray(target).astype(bool)
    ious = []
    for p, t in ((predicted, target), (~predicted, ~target)):
        union = (p | t).sum()
        ious.append(1.0 if union == 0 else (p & t).sum() / union)
    return float(np.mean(ious))


class MixedVideoLabels(ValueError):
    """A video-level group holds both real and fake frames (its grouping is wrong)."""


def video_level(labels, scores, videos) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) per video group (see `trainers.decode.video_group`), in order of
    first appearance: the mean of its frame scores, and its frames' common label. Raises
    MixedVideoLabels when a group's frames disagree."""
    grouped = defaultdict(list)
    for label, score, video in zip(np.ravel(labels), np.ravel(scores), videos):
        grouped[video].append((label, score))
    mixed = [video for video, items in grouped.items() if len({label for label, _ in items}) > 1]
    if mixed:
        raise MixedVideoLabels(f"{len(mixed)} video groups mix real and fake frames, e.g. {mixed[:3]}")
    video_labels = np.array([items[0][0] for items in grouped.values()])
    video_scores = np.array([np.mean([s for _, s in items]) for items in grouped.values()])
    return video_labels, video_scores


def per_method(labels, scores, methods, threshold: float = 0.5) -> dict[str, dict[str, float]]:
    """For each fake method: metrics of its fakes against all real samples."""
    labels, scores = _check(labels, scores)
    methods = np.asarray(methods)
    real = labels == 0
    return {method: binary_metrics(labels[real | (methods == method)], scores[real | (methods == method)], threshold)
            for method in sorted(set(methods[labels == 1]))}


def evaluation_report(labels, scores, videos, methods, threshold: float = 0.5) -> dict:
    """Frame-level, video-level and per-method metrics of one evaluation pass; accuracy
    counts scores >= `threshold` as fake."""
    video_labels, video_scores = video_level(labels, scores, videos)
    return {"frame": binary_metrics(labels, scores, threshold),
            "video": binary_metrics(video_labels, video_scores, threshold),
            "per_method": per_method(labels, scores, methods, threshold)}
