"""Truthful labels in the report (issue 20): F.2's explanation from its own numbers, collapsed
models said in words, normalization named by where it came from."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np

from analysis.evaluation import Evaluation, degenerate_output
from analysis.preprocessing import normalize_text
from analysis.untrained import gradient_explanation, gradient_figure


def test_f2_explanation_quotes_its_own_ratios_and_weight_counts(tmp_path: Path) -> None:
    norms = gradient_figure(tmp_path / "g.png")
    text = gradient_explanation(norms)
    (_, g1, w1), (_, g2, w2) = norms[0], norms[1]
    assert w1 == 3 * 64 * 9 and w2 == 64 * 64 * 9  # conv1 sees 3 input channels
    assert f"drops {g2 / g1:.1f}× from conv2 to conv1" in text
    assert "1,728 weights against 36,864" in text
    steps = [b[1] / a[1] for a, b in itertools.pairwise(norms[1:])]
    assert f"only {min(steps):.1f}-{max(steps):.1f}×" in text
    assert "geometrically" not in text.replace("not geometrically", "")


def _seg(iou: float, acc: float, dice: float, masks: np.ndarray) -> Evaluation:
    return Evaluation(
        stage="s",
        trial_id=None,
        task="segmentation",
        metrics={"test_iou": iou, "test_pixel_acc": acc, "test_dice": dice},
        arrays={"sample_masks_pred": masks},
    )


def test_constant_masks_are_stated() -> None:
    ones = np.ones((3, 8, 8), dtype=np.uint8)
    text = degenerate_output(_seg(0.074, 0.074, 0.138, ones))
    assert text and "rock on every pixel" in text and "0.074" in text
    assert "no rock pixel" in (degenerate_output(_seg(0.0, 0.93, 0.0, 0 * ones)) or "")
    mixed = ones.copy()
    mixed[0, 0, 0] = 0
    assert degenerate_output(_seg(0.3, 0.8, 0.4, mixed)) is None


def test_one_class_predictions_are_stated() -> None:
    ev = Evaluation(
        stage="s",
        trial_id=None,
        task="classification",
        class_names=["cat", "dog", "frog"],
        confusion=[[0, 5, 0], [0, 7, 0], [0, 4, 0]],
    )
    text = degenerate_output(ev)
    assert text and "one class, 'dog', for all 16 test images" in text
    ev.confusion = [[5, 0, 0], [0, 7, 0], [1, 0, 3]]
    assert degenerate_output(ev) is None


def test_normalization_names_its_source() -> None:
    facts = {"dataset": "lunar", "mean": [0.339, 0.332, 0.322], "std": [0.2, 0.2, 0.2]}
    own = normalize_text(facts)
    assert own.startswith("Normalization: per channel, with the lunar train split's mean")
    assert "0.339, 0.332, 0.322" in own
    enc = normalize_text({**facts, "mean": [0.491, 0.452, 0.381]}, encoder=True)
    assert "pretrained encoder's training mean" in enc and "not this data set's own" in enc
    assert re.search(r"train split", enc) is None


def _collapsed_unet_stage(max_batches: int, epochs_run: int, model: str = "unet"):
    from analysis.rundir import StageResults, StudyResults, Trial
    from trainables.contract import StudyRecord

    trials = [
        Trial(
            trial_id=f"t{i}",
            label=f"B.2.2-{name}",
            config={"model": model, "loss": loss, "max_batches": max_batches},
            status="completed",
            epochs_run=epochs_run,
            best_epoch=epochs_run,
            stage="loss",
            curve=[{"epoch": epochs_run, "val_iou": 0.074, "val_pixel_acc": 0.074}],
        )
        for i, (name, loss) in enumerate([("A", "bce"), ("B", "dice")])
    ]
    stage = StageResults(name="loss", status="finished", compare=["loss"], trials=trials)
    record = StudyRecord(study="unet_rocks", trainable="segmentation", metric="val_iou")
    return stage, StudyResults(root=Path("."), record=record, stages=[stage])


def test_a_unet_collapsed_after_a_few_steps_is_explained_by_its_budget() -> None:
    from analysis.conclusions import all_rock_sentence

    (text,) = all_rock_sentence(*_collapsed_unet_stage(max_batches=2, epochs_run=1))
    assert "B.2.2-A (0.074), B.2.2-B (0.074)" in text
    assert "They trained 2 optimizer steps each" in text
    assert "whatever the value of loss" in text and "not the value of loss, decides" in text
    # A longer training, or another model family, gets the collapse without that explanation.
    for stage in (_collapsed_unet_stage(50, 1), _collapsed_unet_stage(2, 1, model="smp_unet")):
        (text,) = all_rock_sentence(*stage)
        assert "every pixel is predicted rock" in text and "optimizer step" not in text
