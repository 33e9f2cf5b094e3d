"""Detection and segmentation metrics: AUC, AP, EER (scikit-learn), accuracy, mIoU; frame,
video and per-method views."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def _check(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    labels, scores = np.asarray(labels).astype(int).ravel(), np.asarray(scores, np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError("labels and scores differ in length")
    return labels, scores


def _both_classes(labels: np.ndarray) -> bool:
    return bool(labels.any() and not labels.all())


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve (scikit-learn `roc_auc_score`): the probability that a
    random fake (label 1) scores above a random real one, ties counting one half. NaN when
    one class is absent."""
    labels, scores = _check(labels, scores)
    return float(roc_auc_score(labels, scores)) if _both_classes(labels) else float("nan")


def average_precision(labels, scores) -> float:
    """AP = sum over thresholds of (R_n - R_{n-1}) * P_n (scikit-learn
    `average_precision_score`, no interpolation). NaN without fakes."""
    labels, scores = _check(labels, scores)
    return float(average_precision_score(labels, scores)) if labels.any() else float("nan")


def equal_error_rate(labels, scores) -> float:
    """Error rate where the false positive rate equals the false negative rate, linearly
    interpolated between the points of scikit-learn's `roc_curve`. NaN when one class is
    absent."""
    labels, scores = _check(labels, scores)
    if not _both_classes(labels):
        return float("nan")
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    difference = (1 - tpr) - fpr  # falls from 1 to <= 0 as the threshold drops
    crossing = int(np.flatnonzero(difference <= 0)[0])
    if difference[crossing] == 0:
        return float(fpr[crossing])
    a, b = crossing - 1, crossing
    t = difference[a] / (difference[a] - difference[b])
    return float(fpr[a] + t * (fpr[b] - fpr[a]))


def accuracy(labels, scores, threshold: float = 0.5) -> float:
    """Share of samples whose call (fake when score >= `threshold`) matches the label."""
    labels, scores = _check(labels, scores)
    return float(((scores >= threshold).astype(int) == labels).mean())


def binary_metrics(labels, scores, threshold: float = 0.5) -> dict[str, float]:
    """AUC, AP, EER, and accuracy at `threshold`, of fake scores (label 1 = fake)."""
    return {"auc": roc_auc(labels, scores), "ap": average_precision(labels, scores),
            "eer": equal_error_rate(labels, scores), "accuracy": accuracy(labels, scores, threshold),
            "count": int(len(np.ravel(labels)))}


class IoUAccumulator:
    """Pixel-level IoU over a dataset, as in Li et al., "Zooming into Face Forensics" (Sec.
    4): IoU = TP / (TP + FP + FN) of the pixels, background IoU over every image,
    foreground IoU over fake images only (a pristine image has no foreground to find, so
    it enters through its background: each pixel it calls fake lowers the background IoU);
    mIoU is their mean. Counts are summed over the dataset before dividing."""

    def __init__(self):
        self._counts = np.zeros(4, np.int64)   # background intersection, union; foreground ...

    def add(self, predicted: np.ndarray, target: np.ndarray, labels: np.ndarray) -> None:
        """predicted, target: (N, ...) binary maps (bool or 0/1, True = manipulated);
        labels: (N,) 1 for a fake image."""
        predicted, target = np.asarray(predicted).astype(bool), np.asarray(target).astype(bool)
        fake = np.asarray(labels).astype(bool).reshape(-1, *([1] * (predicted.ndim - 1)))
        background = ~predicted, ~target
        self._counts += [(background[0] & background[1]).sum(), (background[0] | background[1]).sum(),
                         (predicted & target & fake).sum(), ((predicted | target) & fake).sum()]

    def result(self) -> dict[str, float]:
        """{'miou', 'bg_iou', 'fg_iou'}; a class with an empty union is NaN and left out
        of the mean (mIoU is NaN when both are)."""
        bg_i, bg_u, fg_i, fg_u = self._counts
        bg = bg_i / bg_u if bg_u else float("nan")
        fg = fg_i / fg_u if fg_u else float("nan")
        defined = [v for v in (bg, fg) if not np.isnan(v)]
        return {"miou": float(np.mean(defined)) if defined else float("nan"), "bg_iou": float(bg), "fg_iou": float(fg)}


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


def frame_and_video(labels, scores, videos, threshold: float = 0.5) -> dict[str, dict[str, float]]:
    """{'frame': binary_metrics of the crops, 'video': binary_metrics of the video groups}
    ('count' is the number of crops, resp. of video groups)."""
    video_labels, video_scores = video_level(labels, scores, videos)
    return {"frame": binary_metrics(labels, scores, threshold),
            "video": binary_metrics(video_labels, video_scores, threshold)}


def per_method(labels, scores, videos, methods, threshold: float = 0.5) -> dict[str, dict[str, dict[str, float]]]:
    """For each fake method: `frame_and_video` of its fakes against all real samples."""
    labels, scores = _check(labels, scores)
    methods, videos = np.asarray(methods), np.asarray(videos)
    real = labels == 0
    return {method: frame_and_video(labels[chosen], scores[chosen], videos[chosen], threshold)
            for method in sorted(set(methods[labels == 1])) for chosen in [real | (methods == method)]}


def evaluation_report(labels, scores, videos, methods, threshold: float = 0.5) -> dict:
    """Frame-level, video-level and per-method metrics of one evaluation pass; accuracy
    counts scores >= `threshold` as fake."""
    return {**frame_and_video(labels, scores, videos, threshold),
            "per_method": per_method(labels, scores, videos, methods, threshold)}
