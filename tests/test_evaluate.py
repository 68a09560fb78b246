"""Test-set metrics of the evaluation step against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from trainables.evaluate import classification_report, segmentation_report


def test_segmentation_metrics_over_the_whole_split() -> None:
    truth = np.zeros((2, 4, 4), np.uint8)
    pred = np.zeros((2, 4, 4), np.uint8)
    truth[0, :2, :2] = 1  # 4 rock pixels
    pred[0, :2, :1] = 1  # 2 of them found
    pred[1, 3, 3] = 1  # 1 false alarm on a rock-free image
    m = segmentation_report(truth, pred)["metrics"]
    assert m["test_iou"] == pytest.approx(2 / 5)  # tp / (tp + fp + fn) = 2 / (2 + 1 + 2)
    assert m["test_dice"] == pytest.approx(4 / 7)
    assert m["test_pixel_acc"] == pytest.approx(29 / 32)


def test_segmentation_shapes_must_match() -> None:
    with pytest.raises(ValueError, match="mask shapes differ"):
        segmentation_report(np.zeros((2, 1, 4, 4)), np.zeros((2, 4, 4)))


def test_classification_report_per_class_and_confusions() -> None:
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 1, 2])
    r = classification_report(y_true, y_pred, ["cat", "dog", "fish"])
    assert r["metrics"]["test_acc"] == pytest.approx(4 / 6)
    dog = r["per_class"][1]
    assert dog["precision"] == pytest.approx(2 / 4) and dog["recall"] == 1.0
    assert r["confusion"] == [[1, 1, 0], [0, 2, 0], [0, 1, 1]]
    assert {(p["true"], p["pred"]) for p in r["most_confused"]} == {("cat", "dog"), ("fish", "dog")}
