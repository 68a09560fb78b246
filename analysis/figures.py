"""Report figures (matplotlib, Agg backend: no display needed). Each writes one PNG.

Every function returns True when it wrote the file and False when there was nothing to plot, so
the report can say "no data" instead of showing an empty frame.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: CI and clusters have no display

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import Bbox

from analysis.evaluation import Evaluation, class_name
from analysis.rundir import Stage, Study, Trial
from analysis.summary import METRIC_TITLES, best_row, task_metrics

DPI = 100
MAX_CURVES = 12  # more lines than this make a legend unreadable; the best ones are drawn
GREEN, RED = "#1a7f37", "#cf222e"


# PNG text key holding the pixel boxes of the figure's data areas (axes interiors), so a test
# can check that what lies inside the axes is more than a blank frame.
AXES_KEY = "archsweep:axes"
PAD_INCHES = 0.1


def save(fig: plt.Figure, path: Path) -> bool:
    """Save tightly cropped, recording each visible axes' box in pixels of the saved PNG."""
    fig.canvas.draw()  # runs the layout, so the boxes below are final
    renderer = fig.canvas.get_renderer()
    crop = fig.get_tightbbox(renderer).padded(PAD_INCHES)  # what bbox_inches="tight" uses
    boxes = [_pixel_box(ax, fig, crop) for ax in fig.axes if ax.axison or ax.images]
    fig.savefig(
        path,
        dpi=DPI,
        bbox_inches=Bbox(crop.get_points()),
        facecolor="white",
        metadata={AXES_KEY: json.dumps(boxes)},
    )
    plt.close(fig)
    return True


def _pixel_box(ax: plt.Axes, fig: plt.Figure, crop: Bbox) -> list[int]:
    """The axes' box as [left, top, right, bottom] pixels of the image saved with `crop`."""
    ext = ax.get_window_extent()  # display pixels at fig.dpi, origin bottom left
    x0, x1 = ext.x0 / fig.dpi, ext.x1 / fig.dpi
    y0, y1 = ext.y0 / fig.dpi, ext.y1 / fig.dpi
    return [
        round((x0 - crop.x0) * DPI),
        round((crop.y1 - y1) * DPI),
        round((x1 - crop.x0) * DPI),
        round((crop.y1 - y0) * DPI),
    ]


def epoch_axis(ax: plt.Axes) -> None:
    """Epochs are whole numbers: no 1.25 / 1.5 ticks, even for a one- or two-epoch run."""
    lo, hi = ax.get_xlim()
    if hi - lo < 2:  # autoscale around one epoch gives 0.95..1.05; show it as a whole epoch
        mid = round((lo + hi) / 2)
        ax.set_xlim(min(lo, mid - 0.5), max(hi, mid + 0.5))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlabel("epoch")


def colours(n: int) -> list:
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


def series(t: Trial, key: str) -> tuple[np.ndarray, np.ndarray] | None:
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
    for t, colour in zip(trials, colours(len(trials)), strict=True):
        name = _legend_name(t, stage)
        for ax, (train_key, val_key) in zip(
            axes, [(tm.train_key, tm.val_key), ("train_loss", "val_loss")], strict=True
        ):
            for key, style in ((train_key, "--"), (val_key, "-")):
                s = series(t, key)
                if s is not None:
                    # Markers: a one-epoch trial is a point, which a bare line never draws.
                    # Hollow markers for train, so one-epoch train and val points differ too.
                    ax.plot(
                        *s,
                        style,
                        marker="o",
                        ms=4,
                        mfc=colour if key == val_key else "white",
                        color=colour,
                        lw=1.6,
                        label=name if key == val_key else None,
                    )
    axes[0].set_ylabel(tm.score_title)
    axes[1].set_ylabel("loss")
    for ax in axes:
        epoch_axis(ax)
        ax.grid(alpha=0.3)
    axes[1].plot([], [], "k--", marker="o", mfc="white", label="train (dashed, ○)")
    axes[1].plot([], [], "k-", marker="o", label="val (solid, ●)")
    shown = f" (best {len(trials)} of {total})" if total > len(trials) else ""
    axes[0].set_title(f"{stage.title}: {tm.score_title}{shown}")
    axes[1].set_title(f"{stage.title}: loss")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    return save(fig, path)


def comparison(stage: Stage, study: Study, path: Path) -> bool:
    """All trials' val score on one axis, the best epoch of each marked."""
    trials, total = _plotted(stage.trials, study)
    if len(trials) < 2:
        return False
    tm = task_metrics(study)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for t, colour in zip(trials, colours(len(trials)), strict=True):
        s = series(t, tm.val_key)
        if s is None:
            continue
        ax.plot(*s, "-", marker=".", color=colour, lw=1.8, label=_legend_name(t, stage))
        if np.isfinite(s[1]).any():
            i = int(np.nanargmax(s[1]))
            ax.plot(s[0][i], s[1][i], "o", color=colour, ms=6)
    vs = ", ".join(stage.compare) or "trials"
    shown = f", best {len(trials)} of {total}" if total > len(trials) else ""
    ax.set_title(f"{stage.title}: {METRIC_TITLES[tm.val_key]} by {vs}{shown} (● = best epoch)")
    epoch_axis(ax)
    ax.set_ylabel(METRIC_TITLES[tm.val_key])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return save(fig, path)


def params_vs_score(
    study: Study, points: Sequence[tuple[str, str, float, float]], path: Path
) -> bool:
    """Scatter of (stage, name, params M, best val score) for every trial with both.

    Labels are placed where they overlap neither another label nor a point (see _place_labels);
    a label with no free spot is listed under the plot instead of being drawn over another.
    """
    if len(points) < 2:
        return False
    tm = task_metrics(study)
    stages = list(dict.fromkeys(p[0] for p in points))
    stage_colour = dict(zip(stages, colours(len(stages)), strict=True))
    fig, ax = plt.subplots(figsize=(9, 5))
    for stage in stages:
        pts = [p for p in points if p[0] == stage]
        ax.scatter(
            [p[2] for p in pts],
            [p[3] for p in pts],
            color=stage_colour[stage],
            label=stage,
            s=36,
            zorder=3,
        )
    ax.set_xlabel("parameters (M)")
    ax.set_ylabel(f"{METRIC_TITLES[tm.val_key]} (best)")
    ax.set_title("Parameters vs. validation score, every trial")
    ax.grid(alpha=0.3)
    ax.margins(0.12)  # room for labels at the edges
    # Outside the axes, so the legend never covers a point or a label.
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    left = _place_labels(ax, [(p[2], p[3], p[1]) for p in points])
    if left:
        fig.text(
            0.01,
            -0.02,
            "Not labelled (no free space): " + "; ".join(left),
            fontsize=7,
            va="top",
            wrap=True,
        )
    return save(fig, path)


# Label offsets in points, nearest first: right/left/above/below, then further out.
_LABEL_OFFSETS = [
    (dx * r, dy * r)
    for r in (1.0, 2.2, 3.6)
    for dx, dy in ((4, 3), (4, -3), (-4, 3), (-4, -3), (0, 6), (0, -6), (6, 0), (-6, 0))
]


def _place_labels(ax: plt.Axes, pts: list[tuple[float, float, str]]) -> list[str]:
    """Annotate each point at the first offset whose text box is free; returns those left out.

    Greedy in the order given, which is enough for a report's few dozen points; a box must lie
    inside the axes and overlap no marker and no label placed before it.
    """
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    r = 4.0 * fig.dpi / 72  # marker radius in pixels (s=36 is a 6 pt marker)
    taken = []
    for x, y, _ in pts:
        px, py = ax.transData.transform((x, y))
        taken.append(Bbox([[px - r, py - r], [px + r, py + r]]))
    left = []
    for x, y, text in pts:
        for dx, dy in _LABEL_OFFSETS:
            ann = ax.annotate(
                text,
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                fontsize=7,
                ha="left" if dx > 0 else "right" if dx < 0 else "center",
                va="bottom" if dy > 0 else "top" if dy < 0 else "center",
            )
            box = ann.get_window_extent(renderer)
            inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
            if inside and not any(box.overlaps(t) for t in taken):
                taken.append(box)
                break
            ann.remove()
        else:
            left.append(f"{text} ({x:.2f}M, {y:.3f})")
    return left


def _short(name: str, n: int = 20) -> str:
    """words.txt names ("goldfish, Carassius auratus"): first synonym, truncated."""
    name = name.split(",")[0].strip()
    return name if len(name) <= n else name[: n - 1] + "…"


def confusion_matrix(ev: Evaluation, path: Path, title: str | None = None) -> bool:
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
    ax.set_title(f"Confusion matrix, test set ({title or ev.stage}; accuracy {acc:.1%})")
    return save(fig, path)


def _show(ax: plt.Axes, img: np.ndarray) -> None:
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
    ax.set_xticks([])
    ax.set_yticks([])


def _show_mask(ax: plt.Axes, mask: np.ndarray) -> None:
    """A binary mask on a fixed 0..1 scale: all-rock is white, nothing predicted is black.

    imshow would otherwise stretch a constant mask to one end of the scale, so an all-rock
    prediction looked like an empty one.
    """
    ax.imshow(mask.astype(float), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if not mask.any() or mask.all():
        # A constant mask is a result (an untrained or collapsed model), not a missing image:
        # say which, so the reader does not take the flat panel for a drawing failure.
        text = "every pixel is rock" if mask.any() else "no rock pixel"
        ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=9,
                color="#c03030", bbox={"facecolor": "white", "edgecolor": "#c03030"})


def sample_predictions(ev: Evaluation, path: Path, title: str | None = None) -> bool:
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
    fig.suptitle(f"{n} test images ({title or ev.stage}): {right} correct", fontsize=11)
    return save(fig, path)


def _binary(mask: np.ndarray) -> np.ndarray:
    m = mask[..., 0] if mask.ndim == 3 else mask
    return m > (127 if m.max() > 1 else 0)  # masks may be {0,1} or {0,255}


def segmentation_triptych(
    ev: Evaluation, path: Path, max_rows: int = 5, title: str | None = None
) -> bool:
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
        _show_mask(axes[i, 1], pred)
        _show_mask(axes[i, 2], true)
        axes[i, 0].set_title(f"input #{i}", fontsize=9)
        axes[i, 1].set_title(f"predicted mask (IoU {iou:.2f})", fontsize=9)
        axes[i, 2].set_title("ground truth", fontsize=9)
    fig.suptitle(f"Segmentation samples ({title or ev.stage})", fontsize=11)
    return save(fig, path)


def gradient_flow(ev: Evaluation, path: Path, title: str | None = None) -> bool:
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
    ax.set_title(f"Gradient flow per layer ({title or ev.stage}), input → output")
    ax.grid(axis="y", alpha=0.3)
    return save(fig, path)
