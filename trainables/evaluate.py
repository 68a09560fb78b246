"""Test-set evaluation of a stage's best checkpoint, written into the experiment directory.

The orchestrator runs this once per evaluated stage, so `analysis.report` needs neither the data
set nor a model: it reads evaluation/<stage>.json and .npz (docs/interfaces.md).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from trainables.contract import EvaluationRecord
from trainables.data import DataBundle, Split, TensorLoader, get_dataset
from trainables.ema import eval_weights
from trainables.jsonio import write_json_atomic
from trainables.loop import select_device
from trainables.models import build_model
from trainables.models.architecture import architecture_summary
from trainables.models.init_gradients import layer_grad_norms
from trainables.tasks import make_task, targets_for
from trainables.trial_config import TrialConfig


@runtime_checkable
class Describable(Protocol):
    """A model that explains its wiring in words (U-Nets: which feature map feeds which skip)."""

    def describe(self) -> str: ...


def flip_tta(model: torch.nn.Module, x: torch.Tensor, task: str) -> torch.Tensor:
    """Test-time augmentation (config `tta`): the model's output averaged over the image and its
    horizontal flip, returned as logits. Classification averages the two softmaxes and returns
    their log (cross-entropy and argmax of a log-probability are those of the average);
    segmentation flips the second mask back, averages the sigmoids and returns their logit."""
    a, b = model(x).float(), model(x.flip(-1)).float()
    if task == "classification":
        return torch.log((a.softmax(1) + b.softmax(1)) / 2)
    p = (torch.sigmoid(a) + torch.sigmoid(b.flip(-1))) / 2
    return torch.logit(p, eps=1e-7)


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    bundle: DataBundle,
    state: dict,
    device: torch.device,
    task: str,
    batch_size: int = 256,
    split: Split | None = None,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(targets, predictions, mean loss, forward ms per image) over `split` (default: the test
    split), in order."""
    loader = TensorLoader(
        bundle.test if split is None else split,
        batch_size=batch_size,
        device=device,
        shuffle=False,
        augment=None,
        mean=tuple(state["mean"]),
        std=tuple(state["std"]),
    )
    # The trial's own loss (BCE, Dice, pos_weight...), so test and val losses compare.
    trainer = TrialConfig.from_dict(state["config"]).trainer
    task_obj = make_task(task, trainer)
    ys, preds, loss_sum, n, forward_s = [], [], 0.0, 0, 0.0
    for x, y in loader:
        t0 = time.perf_counter()
        logits = flip_tta(model, x, task) if trainer["tta"] else model(x).float()
        if device.type == "cuda":
            torch.cuda.synchronize()  # kernels are asynchronous: time the work, not the launch
        forward_s += time.perf_counter() - t0
        target = targets_for(task, y)
        loss_sum += float(task_obj.loss(logits, target)) * x.shape[0]
        n += x.shape[0]
        if task == "classification":
            ys.append(y.cpu().numpy())
            preds.append(logits.argmax(1).cpu().numpy())
        else:  # masks as uint8 (N, H, W), the layout of Split.targets and the npz contract
            ys.append((target > 0.5).squeeze(1).to(torch.uint8).cpu().numpy())
            preds.append((logits > 0).squeeze(1).to(torch.uint8).cpu().numpy())
    ms_per_image = 1000 * forward_s / max(n, 1)
    return np.concatenate(ys), np.concatenate(preds), loss_sum / max(n, 1), ms_per_image


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, names: list[str]) -> dict:
    labels = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    confusion = confusion_matrix(y_true, y_pred, labels=labels)
    off = [
        (int(confusion[i, j]), i, j) for i in labels for j in labels if i != j and confusion[i, j]
    ]
    most_confused = [
        {"true": names[i], "pred": names[j], "count": c}
        for c, i, j in sorted(off, reverse=True)[:10]
    ]
    return {
        "metrics": {
            "test_acc": float((y_true == y_pred).mean()),
            "test_macro_f1": float(f1.mean()),
        },
        "per_class": [
            {
                "class": names[i],
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i in labels
        ],
        "confusion": confusion.tolist(),
        "most_confused": most_confused,
    }


def segmentation_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    if y_true.shape != y_pred.shape:  # broadcasting (N,1,H,W) with (N,H,W) would be silent
        raise ValueError(f"mask shapes differ: truth {y_true.shape}, prediction {y_pred.shape}")
    truth, pred = y_true.astype(bool), y_pred.astype(bool)
    tp = float((truth & pred).sum())
    fp = float((~truth & pred).sum())
    fn = float((truth & ~pred).sum())
    union = tp + fp + fn
    return {
        "metrics": {
            "test_iou": tp / union if union else 1.0,
            "test_dice": 2 * tp / (2 * tp + fp + fn) if union else 1.0,
            "test_pixel_acc": float((truth == pred).mean()),
        }
    }


def validation_metrics(
    model: torch.nn.Module, bundle: DataBundle, state: dict, device: torch.device, task: str
) -> dict[str, float]:
    """The checkpoint's metrics on the whole val split (course B.1: val macro F1 beside val
    accuracy; a trial's per-epoch val metrics may cover only `max_batches` batches)."""
    if len(bundle.val) == 0:
        return {}
    y_true, y_pred, loss, _ = predict(model, bundle, state, device, task, split=bundle.val)
    if task == "classification":
        names = list(bundle.class_names)
        test = classification_report(y_true, y_pred, names)["metrics"]
        metrics = {"val_acc": test["test_acc"], "val_macro_f1": test["test_macro_f1"]}
    else:
        seg = segmentation_report(y_true, y_pred)["metrics"]
        metrics = {k.replace("test_", "val_", 1): v for k, v in seg.items()}
    metrics["val_loss"] = loss
    return metrics


def preprocessing_facts(bundle: DataBundle, state: dict) -> dict[str, Any]:
    """What the evaluated model's input went through before the first layer (course B.1's
    "resize/crop documented"): the data set's own image side, the side it was resized to, and
    the per-channel normalization of the checkpoint. The augmentation is the trial's config."""
    height, width = bundle.image_shape
    return {
        "dataset": bundle.name,
        "source_size": get_dataset(bundle.name).native_size,
        "image_size": [height, width],
        "in_channels": bundle.in_channels,
        "mean": [round(float(v), 4) for v in state["mean"]],
        "std": [round(float(v), 4) for v in state["std"]],
    }


def gradient_norms(
    model: torch.nn.Module, bundle: DataBundle, state: dict, device: torch.device, task: str
) -> list[dict[str, Any]]:
    """Per-layer weight-gradient norms of one backward pass on a test batch (course C.2, D.2).

    One batch of 64 is enough to show which layers' gradients vanish or explode; the model is
    put back in eval mode and its gradients cleared afterwards.
    """
    loader = TensorLoader(
        bundle.test,
        batch_size=64,
        device=device,
        shuffle=False,
        augment=None,
        mean=tuple(state["mean"]),
        std=tuple(state["std"]),
    )
    x, y = next(iter(loader))
    task_obj = make_task(task, TrialConfig.from_dict(state["config"]).trainer)
    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        task_obj.loss(model(x).float(), targets_for(task, y)).backward()
    norms = [{"layer": name, "norm": norm} for name, norm in layer_grad_norms(model)]
    model.zero_grad(set_to_none=True)
    return norms


def evaluate_state(
    state: dict[str, Any],
    bundle: DataBundle,
    task: str,
    stage: str,
    trial_id: str | None,
    samples: int = 10,
    seed: int = 0,
) -> tuple[EvaluationRecord, dict[str, np.ndarray]]:
    """Evaluate a checkpoint's state on the test split: the record and the npz arrays.

    Writes nothing, so it can run as a Ray task on any node (the driver writes the files).
    """
    device = select_device()
    model = build_model(state["model_config"]).to(device)
    # The EMA of the weights where the trial kept one (trainables/ema.py), like timm's model_ema.
    model.load_state_dict(eval_weights(state))
    model.eval()
    y_true, y_pred, loss, ms_per_image = predict(model, bundle, state, device, task)
    if task == "classification":
        report = classification_report(y_true, y_pred, list(bundle.class_names))
        k = min(samples, len(y_true))
    else:
        report = segmentation_report(y_true, y_pred)
        k = min(5, len(y_true))  # the course asks for 3-5 triptychs
    report["metrics"]["test_loss"] = loss
    report["metrics"]["inference_ms_per_image"] = ms_per_image
    arrays = evaluation_arrays(y_true, y_pred, bundle, task, k, seed)
    height, width = bundle.image_shape
    record = EvaluationRecord(
        stage=stage,
        trial_id=trial_id,
        task=task,
        epoch=state["epoch"],
        class_names=list(bundle.class_names),
        params=sum(p.numel() for p in model.parameters()),
        # U-Nets with a classifier encoder say which feature map feeds which skip (course B.3).
        model_summary=(model.describe() + "\n\n" if isinstance(model, Describable) else "")
        + str(model),
        test_size=len(y_true),
        grad_norms=gradient_norms(model, bundle, state, device, task),
        val_size=len(bundle.val),
        val_metrics=validation_metrics(model, bundle, state, device, task),
        preprocessing=preprocessing_facts(bundle, state),
        architecture=architecture_summary(model, (bundle.in_channels, height, width), device),
        **report,
    )
    return record, arrays


def evaluation_arrays(
    y_true: np.ndarray, y_pred: np.ndarray, bundle: DataBundle, task: str, k: int, seed: int
) -> dict[str, np.ndarray]:
    """The npz arrays: predictions and `k` seeded random samples (images, labels or masks)."""
    pick = np.sort(np.random.default_rng(seed).choice(len(y_true), size=k, replace=False))
    arrays: dict[str, np.ndarray] = {
        "y_true": y_true,
        "y_pred": y_pred,
        "sample_index": pick,
        "sample_images": bundle.test.images[pick],
    }
    if task == "classification":
        arrays.update(sample_true=y_true[pick], sample_pred=y_pred[pick])
    else:
        arrays.update(sample_masks_true=y_true[pick], sample_masks_pred=y_pred[pick])
        # Pixel-level arrays of the whole split would make the npz huge; samples suffice.
        arrays["y_true"], arrays["y_pred"] = y_true[pick], y_pred[pick]
    return arrays


def write_evaluation(out_dir: Path, record: EvaluationRecord, arrays: dict[str, Any]) -> Path:
    """evaluation/<stage>.npz, then .json (both atomic: a killed driver leaves no torn file)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    npz = out_dir / f"{record.stage}.npz"
    tmp = out_dir / f"{record.stage}.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, npz)
    path = out_dir / f"{record.stage}.json"
    write_json_atomic(path, record.to_dict())
    return path
