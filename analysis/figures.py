"""Report figures (matplotlib, Agg backend: no display needed). Each writes one PNG.

Every function returns True when it wrote the file and False when there was nothing to plot, so
the report can say "no data" instead of showing an empty frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: CI and clusters have no display

import matplotlib.pyplot as plt
import numpy as np

from analysis.evaluation import Evaluation, class_name
from analysis.rundir import Stage, Study, Trial
from analysis.summary import METRIC_TITLES, best_row, task_metrics

DPI = 100
MAX_CURVES = 12  # more lines than this make a legend unreadable; the best ones are drawn
GREEN, RED = "#1a7f37", "#cf222e"


def _save(fig: plt.Figure, path: Path) -> bool:
    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return True


def _colours(n: int) -> list:
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def _plotted(trials: Sequence[Trial], study: Study) -> tuple[list[Trial], int]:
    """Trials with curves, the best MAX_CURVES of them by the study metric."""
    with_curve = [t for t in trials if t.curve]
    if len(with_curve) <= MAX_CURVES:
        return with_curve, len(with_curve)
    sign = -1 if study.mode == "min" else 1

    def score(t: Trial) -> float:
        row = best_row(t.curve, study.metric, study.mode)
        return sign * row[study.metric] if row else -np.inf

    return sorted(with_curve, key=score, reverse=True)[:MAX_CURVES], len(with_curve)


def _series(t: Trial, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    pts = [(r["epoch"], r[key]) for r in t.curve if key in r]
    if not pts:
        return None
    x, y = np.asarray(pts, dtype=float).T
    return x, np.where(np.isfinite(y), y, np.nan)  # a diverged epoch leaves a gap, not a spike


def _legend_name(t: Trial, stage: Stage) -> str:
    vals = ", ".join(f"{k}={t.config[k]}" for k in stage.compare if k in t.config)
    name = t.name if len(t.name) <= 24 else t.name[:21] + "…"
    return f"{name} ({vals})" if vals else name


def learning_curves(stage: Stage, study: Study, path: Path) -> bool:
    """Score and loss per epoch, train dashed and val solid, one colour per trial."""
    trials, total = _plotted(stage.trials, study)
    if not trials:
        return False
    tm = task_metrics(study)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for t, colour in zip(trials, _colours(len(trials)), strict=True):
        name = _legend_name(t, stage)
        for ax, (train_key, val_key) in zip(
            axes, [(tm.train_key, tm.val_key), ("train_loss", "val_loss")], strict=True
        ):
            for key, style in ((train_key, "--"), (val_key, "-")):
                s = _series(t, key)
                if s is not None:
                    ax.plot(*s, style, color=colour, lw=1.6, label=name if key == val_key else None)
    axes[0].set_ylabel(tm.score_title)
    axes[1].set_ylabel("loss")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[1].plot([], [], "k--", label="train (dashed)")
    axes[1].plot([], [], "k-", label="val (solid)")
    shown = f" (best {len(trials)} of {total})" if total > len(trials) else ""
    axes[0].set_title(f"{stage.title}: {tm.score_title}{shown}")
    axes[1].set_title(f"{stage.title}: loss")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    return _save(fig, path)


def comparison(stage: Stage, study: Study, path: Path) -> bool:
    """All trials' val score on one axis, the best epoch of each marked."""
    trials, total = _plotted(stage.trials, study)
    if len(trials) < 2:
        return False
    tm = task_metrics(study)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for t, colour in zip(trials, _colours(len(trials)), strict=True):
        s = _series(t, tm.val_key)
        if s is None:
            continue
        ax.plot(*s, "-", color=colour, lw=1.8, label=_legend_name(t, stage))
        if np.isfinite(s[1]).any():
            i = int(np.nanargmax(s[1]))
            ax.plot(s[0][i], s[1][i], "o", color=colour, ms=6)
    vs = ", ".join(stage.compare) or "trials"
    shown = f", best {len(trials)} of {total}" if total > len(trials) else ""
    ax.set_title(f"{stage.title}: {METRIC_TITLES[tm.val_key]} by {vs}{shown} (● = best epoch)")
    ax.set_xlabel("epoch")
    ax.set_ylabel(METRIC_TITLES[tm.val_key])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def params_vs_score(
    study: Study, points: Sequence[tuple[str, str, float, float]], path: Path
) -> bool:
    """Scatter of (stage, name, params M, best val score) for every trial with both."""
    if len(points) < 2:
        return False
    tm = task_metrics(study)
    stages = list(dict.fromkeys(p[0] for p in points))
    colours = dict(zip(stages, _colours(len(stages)), strict=True))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for stage in stages:
        pts = [p for p in points if p[0] == stage]
        ax.scatter(
            [p[2] for p in pts],
            [p[3] for p in pts],
            color=colours[stage],
            label=stage,
            s=36,
            zorder=3,
        )
        for p in pts:
            ax.annotate(p[1], (p[2], p[3]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("parameters (M)")
    ax.set_ylabel(f"{METRIC_TITLES[tm.val_key]} (best)")
    ax.set_title("Parameters vs. validation score, every trial")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _short(name: str, n: int = 20) -> str:
    """words.txt names ("goldfish, Carassius auratus"): first synonym, truncated."""
    name = name.split(",")[0].strip()
    return name if len(name) <= n else name[: n - 1] + "…"


def confusion_matrix(ev: Evaluation, path: Path) -> bool:
    """Counts coloured by row share (recall), so rare and frequent classes read alike."""
    cm = ev.confusion_matrix
    if cm is None or cm.size == 0:
        return False
    k = cm.shape[0]
    names = [_short(class_name(ev, i)) for i in range(k)]
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    size = min(max(5.0, 0.55 * k + 2.5), 18.0)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    if k <= 40:
        ax.set_xticks(range(k), names, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(k), names, fontsize=8)
    if k <= 20:  # counts stay legible up to about 20 classes
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(
                        j,
                        i,
                        str(cm[i, j]),
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if share[i, j] > 0.5 else "black",
                    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"Confusion matrix, test set ({ev.stage}; accuracy {acc:.3f})")
    return _save(fig, path)


def _show(ax: plt.Axes, img: np.ndarray) -> None:
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
    ax.set_xticks([])
    ax.set_yticks([])


def sample_predictions(ev: Evaluation, path: Path) -> bool:
    """Test images with true and predicted class; green title when right, red when wrong."""
    a = ev.arrays
    if not all(k in a for k in ("sample_images", "sample_true", "sample_pred")):
        return False
    imgs, yt, yp = a["sample_images"], a["sample_true"], a["sample_pred"]
    n = min(len(imgs), len(yt), len(yp))
    if n == 0:
        return False
    cols = min(n, 5)
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(2.4 * cols, 2.7 * rows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat[n:]:
        ax.axis("off")
    for i, ax in enumerate(axes.flat[:n]):
        _show(ax, imgs[i])
        ok = int(yt[i]) == int(yp[i])
        true, pred = (_short(class_name(ev, int(y[i]))) for y in (yt, yp))
        ax.set_title(f"true: {true}\npred: {pred}", color=GREEN if ok else RED, fontsize=9)
        for spine in ax.spines.values():
            spine.set_edgecolor(GREEN if ok else RED)
            spine.set_linewidth(2.5)
    right = int(sum(int(yt[i]) == int(yp[i]) for i in range(n)))
    fig.suptitle(f"{n} test images ({ev.stage}): {right} correct", fontsize=11)
    return _save(fig, path)


def _binary(mask: np.ndarray) -> np.ndarray:
    m = mask[..., 0] if mask.ndim == 3 else mask
    return m > (127 if m.max() > 1 else 0)  # masks may be {0,1} or {0,255}


def segmentation_triptych(ev: Evaluation, path: Path, max_rows: int = 5) -> bool:
    """Rows of input / predicted mask / ground truth, each titled with its IoU."""
    a = ev.arrays
    if not all(k in a for k in ("sample_images", "sample_masks_true", "sample_masks_pred")):
        return False
    n = min(
        len(a["sample_images"]), len(a["sample_masks_true"]), len(a["sample_masks_pred"]), max_rows
    )
    if n == 0:
        return False
    fig, axes = plt.subplots(n, 3, figsize=(9, 3 * n), squeeze=False, layout="constrained")
    for i in range(n):
        pred, true = _binary(a["sample_masks_pred"][i]), _binary(a["sample_masks_true"][i])
        union = np.logical_or(pred, true).sum()
        iou = np.logical_and(pred, true).sum() / union if union else 1.0
        _show(axes[i, 0], a["sample_images"][i])
        _show(axes[i, 1], pred.astype(np.uint8) * 255)
        _show(axes[i, 2], true.astype(np.uint8) * 255)
        axes[i, 0].set_title(f"input #{i}", fontsize=9)
        axes[i, 1].set_title(f"predicted mask (IoU {iou:.2f})", fontsize=9)
        axes[i, 2].set_title("ground truth", fontsize=9)
    fig.suptitle(f"Segmentation samples ({ev.stage})", fontsize=11)
    return _save(fig, path)


def gradient_flow(ev: Evaluation, path: Path) -> bool:
    """Per-layer gradient norm, input to output, log scale (vanishing shows as a falling bar)."""
    pts = [(str(g.get("layer")), float(g.get("norm", np.nan))) for g in ev.grad_norms]
    pts = [(n, v) for n, v in pts if np.isfinite(v)]
    if not pts:
        return False
    names, norms = zip(*pts, strict=True)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(pts) + 2), 4.2))
    ax.bar(range(len(pts)), norms, color="#4c72b0")
    if min(norms) > 0:
        ax.set_yscale("log")
    ax.set_xticks(range(len(pts)), names, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("gradient L2 norm")
    ax.set_title(f"Gradient flow per layer ({ev.stage}), input → output")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)
