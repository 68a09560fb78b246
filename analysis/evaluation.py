"""Load evaluation/<stage>.json and its .npz (test-set evaluation of a stage's best checkpoint)."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis.rundir import resolve
from trainables.contract import EvaluationRecord, RecordError
from trainables.run_dir import EVALUATION_FOLDER


@dataclass
class Evaluation(EvaluationRecord):
    """One test-set evaluation; arrays are empty when the .npz is missing or lacks them."""

    path: Path = Path()
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def samples(self) -> np.ndarray | None:
        return self.arrays.get("sample_images")

    @property
    def confusion_matrix(self) -> np.ndarray | None:
        return np.asarray(self.confusion, dtype=np.int64) if self.confusion else None


def load_evaluation(root: Path, stage: str, rel_path: str, trainable: str) -> Evaluation:
    """Read one evaluation; problems become notes so one bad file never sinks the whole report."""
    path = resolve(root, rel_path, EVALUATION_FOLDER)
    ev = Evaluation(stage=stage, trial_id=None, task=trainable, path=path)
    try:
        raw = json.loads(path.read_text())
        if isinstance(raw, dict):  # study.json already says which stage and task it is
            raw = {"stage": stage, "task": trainable, **raw}
        record = EvaluationRecord.from_dict(raw, rel_path)
    except FileNotFoundError:
        ev.notes.append(f"{rel_path} not found (evaluation not run yet?)")
        return ev
    except (OSError, json.JSONDecodeError, RecordError) as exc:
        ev.notes.append(f"{rel_path} unreadable: {exc}")
        return ev
    ev = Evaluation(**vars(record), path=path)
    ev.metrics = {k: v for k, v in ev.metrics.items() if isinstance(v, int | float)}
    ev.class_names = [str(c) for c in ev.class_names]
    _load_arrays(ev, path.with_suffix(".npz"), rel_path)
    return ev


def _load_arrays(ev: Evaluation, npz_path: Path, rel_path: str) -> None:
    if not npz_path.is_file():
        ev.notes.append(f"{Path(rel_path).with_suffix('.npz')} not found: no sample figure")
        return
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            ev.arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # a torn npz
        ev.notes.append(f"{npz_path.name} unreadable: {exc}")


def class_name(ev: Evaluation, value: Any) -> str:
    """A class given as an index or a name, shown as its name."""
    if isinstance(value, int | np.integer) and 0 <= int(value) < len(ev.class_names):
        return ev.class_names[int(value)]
    return str(value)


def confused_pairs(ev: Evaluation, top: int = 10) -> list[tuple[str, str, int]]:
    """Most-confused (true, predicted, count) pairs: from the json, else from the matrix."""
    if ev.most_confused:
        pairs = [
            (class_name(ev, p.get("true")), class_name(ev, p.get("pred")), int(p.get("count", 0)))
            for p in ev.most_confused
        ]
    elif ev.confusion_matrix is not None:
        off = ev.confusion_matrix.copy()
        np.fill_diagonal(off, 0)
        idx = np.dstack(np.unravel_index(np.argsort(off, axis=None)[::-1], off.shape))[0]
        pairs = [(class_name(ev, int(i)), class_name(ev, int(j)), int(off[i, j])) for i, j in idx]
    else:
        return []
    pairs = [p for p in pairs if p[2] > 0]
    pairs.sort(key=lambda p: -p[2])
    return pairs[:top]


def degenerate_output(ev: Evaluation) -> str | None:
    """A collapsed model, said in words: a constant mask, or one class for every test image.

    Segmentation: 'rock everywhere' when the metrics say so (IoU equals pixel accuracy, which
    holds exactly when every pixel is predicted rock) and every sample mask agrees; 'no rock'
    when IoU and Dice are 0 and every sample mask is empty. Classification: one column of the
    confusion matrix holds every prediction.
    """
    if ev.task == "segmentation":
        return _constant_mask(ev)
    cm = ev.confusion_matrix
    if cm is None or cm.sum() == 0:
        return None
    used = np.flatnonzero(cm.sum(axis=0))
    if len(used) != 1:
        return None
    name = class_name(ev, int(used[0]))
    return (
        f"the model predicts one class, {name!r}, for all {int(cm.sum())} test images: "
        "its accuracy is that class's share of the test set, not a learned ranking."
    )


def _constant_mask(ev: Evaluation) -> str | None:
    m = ev.metrics
    iou, acc, dice = m.get("test_iou"), m.get("test_pixel_acc"), m.get("test_dice")
    masks = ev.arrays.get("sample_masks_pred")
    if iou is None or acc is None or masks is None or len(masks) == 0:
        return None
    flat = masks.reshape(len(masks), -1).astype(bool)
    if flat.all() and abs(iou - acc) < 1e-6:
        return (
            f"the model predicts rock on every pixel (test IoU = pixel accuracy = "
            f"{iou:.3f}, the share of rock pixels; every sample mask is all rock): it has "
            "not learned to segment."
        )
    if not flat.any() and iou == 0 and (dice or 0) == 0:
        return (
            f"the model predicts no rock pixel at all (test IoU 0, pixel accuracy "
            f"{acc:.3f} = the share of background): it has not learned to segment."
        )
    return None
