"""Write realistic experiment directories (docs/interfaces.md format) for report tests, no Ray.

study.json and evaluation/<stage>.json are built from the records of `trainables.contract`, the
same classes the orchestrator fills (issue 8): a fixture cannot hold a field no producer writes.
Only Ray's result.json rows (not part of the contract) are written as plain JSON here.

`write_classification_run` mimics experiment A in small: a baseline, a channels stage (one trial
ASHA-stopped, one infeasible), a depth stage (one diverged, one crashed with a torn result.json,
one that never wrote a result.json) and a final stage with a test evaluation (json + npz with 10
sample images). `write_segmentation_run` mimics experiment B's U-Net comparison.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from trainables.contract import (
    TRIAL_RANKED,
    BestRecord,
    EvaluationRecord,
    StageRecord,
    StudyRecord,
    TrialRecord,
    best_of,
    jsonable,
    kept_metric_names,
)

CLASS_NAMES = [
    "goldfish, Carassius auratus",
    "European fire salamander",
    "bullfrog",
    "tailed frog",
    "American alligator",
    "boa constrictor",
    "trilobite",
    "scorpion",
    "black widow",
    "tarantula",
]
MODEL_SUMMARY = """ResNet(
  (stem): Sequential(
    (0): Conv2d(3, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
  )
  (fc): Linear(in_features=256, out_features=10, bias=True)
)"""
BASE = {
    "dataset": "tiny_imagenet",
    "classes": 10,
    "image_size": 64,
    "epochs": 8,
    "batch_size": 128,
    "optimizer": "adam",
    "lr": 1e-3,
    "model": "resnet",
    "channels": [64, 128, 256, 512],
    "blocks": [2, 2, 2, 2],
    "activation": "relu",
    "seed": 0,
}


def curve(
    epochs: int,
    *,
    peak: float,
    overfit: float = 0.0,
    diverge_at: int | None = None,
    seg: bool = False,
) -> list[dict[str, float]]:
    """Per-epoch metric rows shaped like real training: fast rise, plateau, optional overfit."""
    rows = []
    for e in range(1, epochs + 1):
        rise = 1 - math.exp(-e / 2.0)
        val = peak * rise - overfit * max(0, e - 4) * 0.02
        train = min(0.99, val + overfit * e * 0.04 + 0.02)
        val_loss = 2.3 * (1 - rise) + 0.6 + overfit * max(0, e - 4) * 0.15
        row = {
            "epoch": e,
            "train_loss": 2.3 * (1 - rise) + 0.5 - overfit * e * 0.05,
            "val_loss": val_loss,
            "lr": 1e-3,
            "epoch_time_s": 11.0 + 0.1 * e,
            "images_per_s": 450.0,
            "diverged": 0,
        }
        if seg:
            row |= {
                "train_iou": train,
                "val_iou": val,
                "val_dice": min(1, val * 1.12),
                "val_pixel_acc": 0.9 + val / 20,
            }
        else:
            row |= {"train_acc": train, "val_acc": val}
        if diverge_at is not None and e >= diverge_at:
            row |= {
                "train_loss": float("nan"),
                "val_loss": float("nan"),
                "diverged": 1,
                "train_acc": 0.1,
                "val_acc": 0.1,
            }  # chance level once the weights are NaN
            rows.append(row)
            break
        rows.append(row)
    return rows


def _write_result_json(
    path: Path,
    rows: list[dict[str, float]],
    config: dict[str, Any],
    trial_id: str,
    torn: bool = False,
) -> None:
    """Ray's result.json: one object per report, Ray's own keys beside the trainable's metrics."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, r in enumerate(rows, 1):
        lines.append(
            json.dumps(
                r
                | {
                    "training_iteration": i,
                    "time_total_s": 11.5 * i,
                    "trial_id": trial_id,
                    "done": i == len(rows),
                    "date": "2025-01-01_12-00-00",
                    "timestamp": 1735732800 + i,
                    "config": config,
                }
            )
        )
    text = "\n".join(lines) + "\n"
    if torn:  # a node died mid-write
        text += '{"epoch": 4, "train_loss": 0.9, "val_'
    path.write_text(text)
    (path.parent / "params.json").write_text(json.dumps(config))


def _trial(
    stage: str,
    tid: str,
    label: str | None,
    config: dict,
    params: int,
    status: str,
    rows: list[dict] | None,
    reason: str | None = None,
    metric: str = "val_acc",
    root: Path | None = None,
    torn: bool = False,
    write: bool = True,
) -> TrialRecord:
    folder = f"{stage}/train_{tid}"
    config = config | {"label": label}  # the orchestrator carries the label in the config
    rec = TrialRecord(
        trial_id=tid, label=label, config=config, params=params, status=status, reason=reason
    )
    if status == "infeasible":
        return rec
    rec.trial_dir = folder
    if rows:
        _fill_epochs(rec, rows, metric)
    if write and root is not None:
        _write_result_json(root / folder / "result.json", rows or [], config, tid, torn)
    return rec


def _fill_epochs(rec: TrialRecord, rows: list[dict], metric: str, mode: str = "max") -> None:
    """Best and final epoch as orchestrator.records.trial_record keeps them: the contract's
    per-epoch keys only, and a diverged epoch never the best."""
    keep = kept_metric_names()
    trained = [r for r in rows if not r.get("diverged")]
    best = best_of(trained, lambda r: r.get(metric), mode)
    rec.epochs_run = len(rows)
    rec.final = {k: rows[-1][k] for k in keep if k in rows[-1]}
    rec.wall_time_s = 11.5 * len(rows) + 3.0
    if best is not None:
        rec.best_epoch = int(best["epoch"])
        rec.best = {k: best[k] for k in keep if k in best}
        rec.best_checkpoint = f"{rec.trial_dir}/checkpoint_{rec.best_epoch - 1:06d}"


def _pick_best(trials: list[TrialRecord], metric: str, mode: str = "max") -> BestRecord | None:
    """The stage's best trial, by the rule of orchestrator.records.pick_best."""
    ranked = [t for t in trials if t.status in TRIAL_RANKED and metric in t.best]
    best = best_of(ranked, lambda t: t.best[metric], mode)
    if best is None:
        return None
    return BestRecord(
        trial_id=str(best.trial_id),
        label=best.label,
        config=best.config,
        checkpoint=best.best_checkpoint,
        value=best.best[metric],
    )


def _stage(
    name: str,
    title: str,
    compare: list[str],
    trials: list[TrialRecord],
    epochs: int = 8,
    status: str = "finished",
    metric: str = "val_acc",
) -> StageRecord:
    return StageRecord(
        name=name,
        title=title,
        status=status,
        epochs=epochs,
        scheduler="asha",
        compare=compare,
        trials=trials,
        best=_pick_best(trials, metric),
    )


def _write_record(path: Path, record: StudyRecord | EvaluationRecord) -> None:
    """A contract record as the writer saves it (jsonable: NaN/inf become strings)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(record.to_dict()), indent=2))


def _sample_images(k: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Coloured gradients with a bright square: clearly non-blank thumbnails."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    imgs = np.zeros((k, size, size, 3), np.uint8)
    for i in range(k):
        c = rng.uniform(0.3, 1.0, 3)
        img = np.stack([xx * c[0], yy * c[1], (1 - xx) * c[2]], -1)
        x0, y0 = rng.integers(0, size // 2, 2)
        img[y0 : y0 + size // 3, x0 : x0 + size // 3] = 1.0
        imgs[i] = (img * 255).astype(np.uint8)
    return imgs


def _classification_eval(
    root: Path, stage: str, trial: TrialRecord, rng: np.random.Generator
) -> None:
    k = len(CLASS_NAMES)
    y_true = np.repeat(np.arange(k), 50)
    y_pred = y_true.copy()
    wrong = rng.random(len(y_true)) < 0.35
    y_pred[wrong] = rng.integers(0, k, wrong.sum())
    y_pred[(y_true == 2) & (rng.random(len(y_true)) < 0.3)] = 3  # bullfrog vs tailed frog
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    per_class = []
    for c in range(k):
        tp = cm[c, c]
        p = tp / max(cm[:, c].sum(), 1)
        r = tp / max(cm[c].sum(), 1)
        per_class.append(
            {
                "class": CLASS_NAMES[c],
                "precision": p,
                "recall": r,
                "f1": 2 * p * r / max(p + r, 1e-9),
                "support": int(cm[c].sum()),
            }
        )
    off = cm.copy()
    np.fill_diagonal(off, 0)
    top = np.argsort(off, axis=None)[::-1][:5]
    most = [
        {"true": CLASS_NAMES[i // k], "pred": CLASS_NAMES[i % k], "count": int(off.flat[i])}
        for i in top
    ]
    idx = rng.choice(len(y_true), 10, replace=False)
    ev_dir = root / "evaluation"
    ev_dir.mkdir(exist_ok=True)
    record = EvaluationRecord(
        stage=stage,
        trial_id=trial.trial_id,
        checkpoint=trial.best_checkpoint,
        task="classification",
        class_names=CLASS_NAMES,
        metrics={
            "test_acc": float(np.trace(cm) / cm.sum()),
            "test_loss": 1.21,
            "test_macro_f1": float(np.mean([p["f1"] for p in per_class])),
        },
        per_class=per_class,
        confusion=cm.tolist(),
        most_confused=most,
        model_summary=MODEL_SUMMARY,
        params=trial.params,
        grad_norms=[{"layer": f"layer{i}.conv", "norm": 10 ** (-3 + i * 0.4)} for i in range(8)],
    )
    _write_record(ev_dir / f"{stage}.json", record)
    np.savez(
        ev_dir / f"{stage}.npz",
        y_true=y_true,
        y_pred=y_pred,
        sample_images=_sample_images(10, 64, rng),
        sample_true=y_true[idx],
        sample_pred=y_pred[idx],
    )


def write_classification_run(root: Path, *, status: str = "finished") -> Path:
    """A finished (or, with status="running", interrupted) classification study in `root`."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    cfg = lambda **kw: BASE | kw  # noqa: E731
    baseline = _stage(
        "baseline",
        "Baseline",
        [],
        [
            _trial(
                "baseline",
                "b0001",
                "Baseline",
                cfg(),
                4_900_000,
                "completed",
                curve(8, peak=0.55, overfit=0.5),
                root=root,
            ),
        ],
    )
    channels = _stage(
        "channels",
        "3.1 Channels",
        ["channels"],
        [
            _trial(
                "channels",
                "c0001",
                "3.1-A",
                cfg(channels=[32, 64, 128, 256]),
                1_230_000,
                "completed",
                curve(8, peak=0.58),
                root=root,
            ),
            _trial(
                "channels",
                "c0002",
                "3.1-B",
                cfg(channels=[64, 128, 256]),
                1_180_000,
                "asha_stopped",
                curve(2, peak=0.50),
                root=root,
            ),
            _trial(
                "channels",
                "c0003",
                "3.1-C",
                cfg(channels=[128, 256, 512, 1024]),
                19_600_000,
                "infeasible",
                None,
                reason="max_channels: 1024 > 512; max_params: 19.6M > 5.0M",
            ),
        ],
    )
    d = cfg(channels=[32, 64, 128, 256])
    depth = _stage(
        "depth",
        "3.2 Depth",
        ["blocks"],
        [
            _trial(
                "depth",
                "d0001",
                "3.2-A",
                d | {"blocks": [1, 1, 1, 1]},
                700_000,
                "completed",
                curve(8, peak=0.52),
                root=root,
            ),
            _trial(
                "depth",
                "d0002",
                "3.2-B",
                d | {"blocks": [2, 2, 2, 2]},
                1_230_000,
                "completed",
                curve(8, peak=0.60, overfit=0.3),
                root=root,
            ),
            _trial(
                "depth",
                "d0003",
                "3.2-C",
                d | {"blocks": [3, 3, 3, 3], "lr": 0.05},
                1_760_000,
                "diverged",
                curve(5, peak=0.4, diverge_at=4),
                reason="loss is NaN at epoch 4",
                root=root,
            ),
            _trial(
                "depth",
                "d0004",
                None,
                d | {"blocks": [3, 3, 3, 3]},
                1_760_000,
                "error",
                curve(3, peak=0.4),
                reason="RayActorError: node died",
                root=root,
                torn=True,
            ),
            _trial(
                "depth",
                "d0005",
                None,
                d | {"blocks": [4, 4, 4, 4]},
                2_300_000,
                "error",
                None,
                reason="CUDA out of memory",
                root=root,
                write=False,
            ),
        ],
    )
    final_trial = _trial(
        "final",
        "f0001",
        "Final",
        d | {"blocks": [2, 2, 2, 2], "epochs": 12},
        1_230_000,
        "completed",
        curve(12, peak=0.64, overfit=0.25),
        root=root,
    )
    if status == "finished":
        final = _stage("final", "Final model", [], [final_trial], epochs=12)
    else:  # interrupted mid-stage: the trial folder exists, study.json does not list it yet
        final = _stage("final", "Final model", [], [], epochs=12, status="running")
    study = StudyRecord(
        study="resnet_tiny",
        trainable="classification",
        metric="val_acc",
        mode="max",
        status=status,
        data={
            "dataset": "tiny_imagenet",
            "class_names": CLASS_NAMES,
            "train": 4000,
            "val": 500,
            "test": 500,
        },
        constraints={"max_params": 5_000_000, "max_channels": 512},
        stages=[baseline, channels, depth, final],
    )
    if status == "finished":
        _classification_eval(root, "final", final_trial, rng)
        study.evaluations = {"final": "evaluation/final.json"}
    _write_record(root / "study.json", study)
    (root / "orchestrator.log").write_text("ray log\n")
    return root


def _seg_eval(
    root: Path, stage: str, trial: TrialRecord, iou: float, rng: np.random.Generator
) -> None:
    k, size = 4, 64
    images = _sample_images(k, size, rng)
    yy, xx = np.mgrid[0:size, 0:size]
    true = np.stack(
        [((xx - 20 - 5 * i) ** 2 + (yy - 30) ** 2 < 150).astype(np.uint8) for i in range(k)]
    )
    pred = np.stack(
        [((xx - 22 - 5 * i) ** 2 + (yy - 31) ** 2 < 170).astype(np.uint8) for i in range(k)]
    )
    ev_dir = root / "evaluation"
    ev_dir.mkdir(exist_ok=True)
    record = EvaluationRecord(
        stage=stage,
        trial_id=trial.trial_id,
        checkpoint=trial.best_checkpoint,
        task="segmentation",
        class_names=["background", "rock"],
        metrics={
            "test_iou": iou,
            "test_dice": iou * 1.1,
            "test_pixel_acc": 0.95,
            "test_loss": 0.2,
        },
        model_summary="UNet(...)",
        params=trial.params,
    )
    _write_record(ev_dir / f"{stage}.json", record)
    np.savez(
        ev_dir / f"{stage}.npz",
        y_true=true,
        y_pred=pred,
        sample_images=images,
        sample_masks_true=true * 255,
        sample_masks_pred=pred,
    )


def write_segmentation_run(root: Path) -> Path:
    """Experiment B in small: base U-Net vs U-Net with a frozen / unfrozen classifier encoder."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    base = {
        "dataset": "moon",
        "model": "unet",
        "base_channels": 32,
        "epochs": 6,
        "loss": "bce_dice",
    }
    timed = curve(6, peak=0.7, seg=True)
    timed[-1] |= {"train_time_s": 71.5}  # experiment C's column (inference: test metrics)
    unet = _trial(
        "unet",
        "u0001",
        "B.2 U-Net",
        base,
        2_400_000,
        "completed",
        timed,
        metric="val_iou",
        root=root,
    )
    bb = base | {"model": "unet_backbone"}
    frozen = _trial(
        "backbone",
        "k0001",
        "B.3-A",
        bb | {"freeze_schedule": "frozen"},
        3_100_000,
        "completed",
        curve(6, peak=0.66, seg=True),
        metric="val_iou",
        root=root,
    )
    unfrozen = _trial(
        "backbone",
        "k0002",
        "B.3-B",
        bb | {"freeze_schedule": "unfreeze_at"},
        3_100_000,
        "completed",
        curve(6, peak=0.74, seg=True),
        metric="val_iou",
        root=root,
    )
    study = StudyRecord(
        study="unet_moon",
        trainable="segmentation",
        metric="val_iou",
        mode="max",
        status="finished",
        data={"dataset": "moon", "train": 800, "val": 100, "test": 100},
        constraints={"max_params": 2_750_000},
        stages=[
            _stage("unet", "Base U-Net", [], [unet], epochs=6, metric="val_iou"),
            _stage(
                "backbone",
                "U-Net with classifier encoder",
                ["freeze_schedule"],
                [frozen, unfrozen],
                epochs=6,
                metric="val_iou",
            ),
        ],
        evaluations={"unet": "evaluation/unet.json", "backbone": "evaluation/backbone.json"},
    )
    _seg_eval(root, "unet", unet, 0.68, rng)
    _seg_eval(root, "backbone", unfrozen, 0.72, rng)
    _write_record(root / "study.json", study)
    return root
