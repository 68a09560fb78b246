"""Report figures (matplotlib, Agg backend: no display needed). Each writes one PNG.

Every function returns True when it wrote the file and False when there was nothing to plot, so
the report can say "no data" instead of showing an empty frame. Every figure states the budget it
ran at in a caption line under it (and in the PNG's BUDGET_KEY text, for tests), and draws points
that tie (same value at the same place) side by side, so none hides another.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: CI and clusters have no display

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import Bbox

from analysis.evaluation import Evaluation, class_name
from analysis.rundir import StageResults, StudyResults, Trial
from analysis.summary import METRIC_TITLES, best_row, budget_text, run_budget, task_metrics

DPI = 100
MAX_CURVES = 12  # more lines than this make a legend unreadable; the best ones are drawn
GREEN, RED = "#1a7f37", "#cf222e"


# PNG text key holding the pixel boxes of the figure's data areas (axes interiors), so a test
# can check that what lies inside the axes is more than a blank frame.
AXES_KEY = "archsweep:axes"
# PNG text keys: the budget line printed under the figure, and the pixel centres of its data
# points (markers drawn with gid=POINT_GID), so a test can check that no point hides another.
BUDGET_KEY = "archsweep:budget"
CAPTION_KEY = "archsweep:caption"  # every caption line (budget first, then notes)
XTICKS_KEY = "archsweep:xticks"  # each axes' x tick labels, as drawn
POINTS_KEY = "archsweep:points"
POINT_GID = "archsweep-point"
PAD_INCHES = 0.1
CAPTION_SIZE = 7  # points


def trials_budget(study: StudyResults, trials: Sequence[Trial], epochs: int | None = None) -> str:
    """ "Budget: smoke run (--smoke); 1 ep, 64px, 10 classes, 2 batches/ep (1.4% of train)".

    The trials' distinct budgets (summary.budget_text) after how the run was sized; infeasible
    trials never trained, so they are left out unless nothing else is there.
    """
    trained = [t for t in trials if t.config and t.status != "infeasible"]
    texts = dict.fromkeys(
        budget_text(t.config, study, epochs) for t in trained or trials if t.config
    )
    return f"Budget: {run_budget(study)}" + ("; " + " | ".join(texts) if texts else "")


def stage_budget(stage: StageResults, study: StudyResults) -> str:
    return trials_budget(study, stage.trials, stage.epochs)


def study_budget(study: StudyResults) -> str:
    """Every stage's trials: for a figure of the whole study (parameters vs score)."""
    texts = dict.fromkeys(
        stage_budget(st, study).partition("; ")[2] for st in study.stages if st.trials
    )
    texts.pop("", None)
    return f"Budget: {run_budget(study)}" + ("; " + " | ".join(texts) if texts else "")


def save(fig: plt.Figure, path: Path, *, budget: str, notes: Sequence[str] = ()) -> bool:
    """Save tightly cropped, with the budget (and any notes) as caption lines under the figure,
    recording each visible axes' box and each data point's centre in pixels of the saved PNG."""
    if not budget.strip():
        raise ValueError(f"{path.name}: a figure must state the budget it ran at")
    fig.canvas.draw()  # runs the layout, so the boxes below are final
    renderer = fig.canvas.get_renderer()
    _caption(fig, renderer, [budget, *notes])
    fig.canvas.draw()
    crop = fig.get_tightbbox(renderer).padded(PAD_INCHES)  # what bbox_inches="tight" uses
    boxes = [_pixel_box(ax, fig, crop) for ax in fig.axes if ax.axison or ax.images]
    points = [_pixel_points(ax, fig, crop) for ax in fig.axes if ax.axison]
    fig.savefig(
        path,
        dpi=DPI,
        bbox_inches=Bbox(crop.get_points()),
        facecolor="white",
        metadata={
            AXES_KEY: json.dumps(boxes),
            BUDGET_KEY: budget,
            CAPTION_KEY: json.dumps([budget, *notes]),
            POINTS_KEY: json.dumps([p for p in points if p]),
            XTICKS_KEY: json.dumps(
                [
                    [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
                    for ax in fig.axes
                    if ax.axison
                ]
            ),
        },
    )
    plt.close(fig)
    return True


def _caption(fig: plt.Figure, renderer: Any, lines: Sequence[str]) -> None:
    """Caption lines under everything drawn so far (rotated tick labels included), wrapped to
    the drawing's width."""
    box = fig.get_tightbbox(renderer)  # inches
    width = max(box.width, 4.0)
    chars = max(40, int(width * 72 / (CAPTION_SIZE * 0.55)))
    text = "\n".join(textwrap.fill(line, chars) for line in lines if line)
    w, h = fig.get_size_inches()
    # In figure coordinates: savefig's crop moves transFigure, not dpi_scale_trans.
    fig.text(
        box.x0 / w,
        (box.y0 - 0.08) / h,
        text,
        ha="left",
        va="top",
        fontsize=CAPTION_SIZE,
        color="#333333",
    )


def _pixel_points(ax: plt.Axes, fig: plt.Figure, crop: Bbox) -> list[list[float]]:
    """Centres of the axes' data points (artists with gid=POINT_GID) in saved-PNG pixels."""
    xy = []
    for line in ax.lines:
        if line.get_gid() == POINT_GID:
            xy += list(line.get_transform().transform(line.get_xydata()))
    for coll in ax.collections:
        if coll.get_gid() == POINT_GID:
            xy += list(coll.get_offset_transform().transform(coll.get_offsets()))
    out = []
    for x, y in xy:
        if np.isfinite(x) and np.isfinite(y):
            out.append(
                [round((x / fig.dpi - crop.x0) * DPI, 1), round((crop.y1 - y / fig.dpi) * DPI, 1)]
            )
    return out


def spread_ties(
    ax: plt.Axes, pts: Sequence[tuple[float, float]], radius_px: float
) -> tuple[list[tuple[float, float]], list[list[int]]]:
    """Move points that would overlap (centres closer than two marker radii) side by side.

    Returns the points in data coordinates, moved, and the groups of indices that were tied.
    The axes limits are frozen first (so the pixel distances hold when the figure is saved).
    Groups are found by single linkage and laid out in a row centred where they were; two
    passes settle a group that lands on a neighbour.
    """
    ax.autoscale_view()
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())
    disp = ax.transData.transform(np.asarray(pts, dtype=float).reshape(-1, 2))
    gap = 2 * radius_px + 2
    groups: list[list[int]] = []
    for _ in range(3):
        groups = _clusters(disp, gap)
        moved = disp.copy()
        for g in groups:
            cx, cy = disp[g].mean(axis=0)
            for k, i in enumerate(sorted(g, key=lambda i: (disp[i][0], i))):
                moved[i] = (cx + (k - (len(g) - 1) / 2) * gap, cy)
        if all(len(g) == 1 for g in _clusters(moved, gap - 0.5)):
            disp = moved
            break
        disp = moved
    data = ax.transData.inverted().transform(disp)
    return [(float(x), float(y)) for x, y in data], [g for g in groups if len(g) > 1]


def _clusters(disp: np.ndarray, gap: float) -> list[list[int]]:
    """Single-linkage groups of points closer than `gap` pixels (NaNs stand alone)."""
    n = len(disp)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            d = disp[i] - disp[j]
            if np.all(np.isfinite(d)) and np.hypot(*d) < gap - 1e-6:
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


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


def _plotted(trials: Sequence[Trial], study: StudyResults) -> tuple[list[Trial], int]:
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


def legend_name(t: Trial, stage: StageResults) -> str:
    vals = ", ".join(f"{k}={t.config[k]}" for k in stage.compare if k in t.config)
    name = t.name if len(t.name) <= 24 else t.name[:21] + "…"
    return f"{name} ({vals})" if vals else name


LOSS_TITLES = {
    "bce": "BCE",
    "dice": "Dice loss",
    "bce_dice": "0.5 BCE + 0.5 Dice",
    "cross_entropy": "cross-entropy",
}


def _loss_name(t: Trial, study: StudyResults) -> str:
    loss = t.config.get("loss", "auto")
    if loss == "auto":  # the task's default (trainables/tasks.py)
        loss = "bce_dice" if study.trainable == "segmentation" else "cross_entropy"
    return str(loss)


def learning_curves(stage: StageResults, study: StudyResults, path: Path) -> bool:
    """Score and loss per epoch, train dashed and val solid, one colour per trial.

    Trials trained with different loss functions (BCE, Dice, BCE + Dice) get one loss panel
    each: their values are on different scales and are not comparable on one axis.
    """
    trials, total = _plotted(stage.trials, study)
    if not trials:
        return False
    tm = task_metrics(study)
    losses = list(dict.fromkeys(_loss_name(t, study) for t in trials))
    split = len(losses) > 1
    n = 1 + (len(losses) if split else 1)
    fig, axes = plt.subplots(1, n, figsize=(6 * n if n == 2 else 4.6 * n, 4.2), squeeze=False)
    axes = list(axes[0])
    loss_ax = {loss: axes[1 + (i if split else 0)] for i, loss in enumerate(losses)}
    draws: dict[Any, list] = {ax: [] for ax in axes}
    for t, colour in zip(trials, colours(len(trials)), strict=True):
        for ax, (train_key, val_key) in (
            (axes[0], (tm.train_key, tm.val_key)),
            (loss_ax[_loss_name(t, study)], ("train_loss", "val_loss")),
        ):
            for key, style in ((train_key, "--"), (val_key, "-")):
                s = series(t, key)
                if s is not None:
                    draws[ax].append((t, colour, key == val_key, style, s))
    notes = []
    for ax, items in draws.items():
        # Every point of the panel first, so tied points (three trials at the same val IoU)
        # can be set side by side before anything is drawn.
        flat = [(x, y) for *_, s in items for x, y in zip(*s, strict=True)]
        ax.plot([p[0] for p in flat], [p[1] for p in flat], alpha=0)
        ax.margins(y=0.08)
        epoch_axis(ax)
        moved, ties = spread_ties(ax, flat, 3.0)
        owner = [f"{t.name} {'val' if val else 'train'}" for t, _, val, _, s in items for _ in s[0]]
        k = 0
        for t, colour, val, style, s in items:
            pts = moved[k : k + len(s[0])]
            k += len(s[0])
            # Markers: a one-epoch trial is a point, which a bare line never draws.
            # Hollow markers for train, so one-epoch train and val points differ too.
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                style,
                marker="o",
                ms=4,
                mfc=colour if val else "white",
                color=colour,
                lw=1.6,
                gid=POINT_GID,
                label=legend_name(t, stage) if val and ax is axes[0] else None,
            )
        notes += tie_notes(ties, owner, flat, "epoch")
    axes[0].set_ylabel(tm.score_title)
    for loss, ax in loss_ax.items():
        ax.set_ylabel(f"loss ({LOSS_TITLES.get(loss, loss)})")
        ax.set_title(f"loss: {LOSS_TITLES.get(loss, loss)}" if split else "loss", fontsize=10)
    if split:
        fig.subplots_adjust(wspace=0.4)  # each panel's own y ticks and label between panels
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[-1].plot([], [], "k--", marker="o", mfc="white", label="train (dashed, ○)")
    axes[-1].plot([], [], "k-", marker="o", label="val (solid, ●)")
    shown = f" (best {len(trials)} of {total})" if total > len(trials) else ""
    axes[0].set_title(tm.score_title, fontsize=10)
    # One title over both panels: a long stage title per panel ran into its neighbour.
    fig.suptitle(f"{stage.title}{shown}", fontsize=11)
    handles = [h for ax in (axes[0], axes[-1]) for h in ax.get_legend_handles_labels()[0]]
    labels = [lb for ax in (axes[0], axes[-1]) for lb in ax.get_legend_handles_labels()[1]]
    axes[-1].legend(
        handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False
    )
    if split:
        notes.insert(
            0, "Each loss function on its own axis: BCE, Dice and their sum have different scales."
        )
    return save(fig, path, budget=stage_budget(stage, study), notes=notes)


MARKER_PX = 4.0  # radius in pixels of the point markers of comparison and params_vs_score


def comparison(stage: StageResults, study: StudyResults, path: Path) -> bool:
    """All trials' val score on one axis, the best epoch of each marked.

    Points that tie (same value at the same epoch, or close enough to cover each other) are
    drawn side by side and named under the figure.
    """
    trials, total = _plotted(stage.trials, study)
    if len(trials) < 2:
        return False
    tm = task_metrics(study)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    data = [(t, s) for t in trials if (s := series(t, tm.val_key)) is not None]
    flat = [(x, y) for _, s in data for x, y in zip(*s, strict=True)]
    ax.plot([p[0] for p in flat], [p[1] for p in flat], alpha=0)  # scale the axes to every point
    ax.margins(y=0.1)
    epoch_axis(ax)
    moved, ties = spread_ties(ax, flat, MARKER_PX)
    owner = [(t, i) for t, s in data for i in range(len(s[0]))]
    k = 0
    for (t, s), colour in zip(data, colours(len(data)), strict=False):
        pts = moved[k : k + len(s[0])]
        k += len(s[0])
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        ax.plot(xs, ys, "-", color=colour, lw=1.8, label=legend_name(t, stage))
        best = int(np.nanargmax(s[1])) if np.isfinite(s[1]).any() else -1
        sizes = [7 if i == best else 4 for i in range(len(xs))]
        ax.scatter(xs, ys, s=[v**2 for v in sizes], color=colour, zorder=3, gid=POINT_GID)
    vs = ", ".join(stage.compare) or "trials"
    shown = f", best {len(trials)} of {total}" if total > len(trials) else ""
    ax.set_title(
        f"{stage.title}: {METRIC_TITLES[tm.val_key]} by {vs}{shown}\n(large dot = best epoch)",
        fontsize=10,
    )
    ax.set_ylabel(METRIC_TITLES[tm.val_key])
    ax.grid(alpha=0.3)
    # Outside the axes: inside, the legend covered points (compare_layers).
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    notes = tie_notes(ties, [t.name for t, _ in owner], flat, "epoch")
    return save(fig, path, budget=stage_budget(stage, study), notes=notes)


MAX_TIE_NOTES = 6  # tie lines under a figure; more are counted in one line


def _tie_note(names: list[str], x: float, y: float, what: str | Sequence[str]) -> str:
    """`what`: "epoch", "params", or the x axis's category names (x is their index)."""
    where = (
        f"epoch {x:g}"
        if what == "epoch"
        else f"{x:.3g}M parameters"
        if what == "params"
        else str(what[round(x)])
    )
    return f"Tied (drawn side by side): {' = '.join(dict.fromkeys(names))} at {where}, {y:.4g}."


def tie_notes(
    groups: list[list[int]],
    names: list[str],
    pts: Sequence[tuple[float, float]],
    what: str | Sequence[str],
) -> list[str]:
    """A line per exact tie (same x and y), up to MAX_TIE_NOTES; points that only lie too
    close to tell apart (also set side by side) are counted, not listed."""
    exact = [g for g in groups if len({pts[i] for i in g}) == 1]
    lines = [_tie_note([names[i] for i in g], *pts[g[0]], what) for g in exact[:MAX_TIE_NOTES]]
    if len(exact) > MAX_TIE_NOTES:
        lines.append(f"... and {len(exact) - MAX_TIE_NOTES} more ties.")
    close = len(groups) - len(exact)
    if close:
        lines.append(
            f"{close} group(s) of points too close to tell apart are also drawn side "
            "by side (their values differ)."
        )
    return lines


def params_points(study: StudyResults) -> list[tuple[str, Trial, float, float, str]]:
    """(stage title, trial, params M, best val score, data set) of every trial with both."""
    from analysis.summary import trial_stats  # beside best_row; kept local to the one user

    titles = {stage.name: stage.title or stage.name for stage in study.stages}
    points = []
    for t in study.all_trials():
        best = trial_stats(t, study).val_best
        if t.params is not None and best is not None:
            data = str(t.config.get("dataset") or study.data.get("dataset") or "")
            points.append((titles[t.stage], t, t.params / 1e6, best, data))
    return points


def params_vs_score(study: StudyResults, path: Path) -> bool:
    """Scatter of parameters (M) against best val score, every trial; one panel per data set.

    Scores of different data sets (MNIST and CIFAR-10 accuracy) do not share an axis. Tied
    points are drawn side by side with one label naming them all. Labels are placed where they
    overlap neither another label nor a point (see _place_labels); a label with no free spot is
    listed under the plot instead of being drawn over another.
    """
    points = params_points(study)
    if len(points) < 2:
        return False
    tm = task_metrics(study)
    stages = list(dict.fromkeys(p[0] for p in points))
    stage_colour = dict(zip(stages, colours(len(stages)), strict=True))
    datasets = list(dict.fromkeys(p[4] for p in points))
    fig, axes = plt.subplots(
        1,
        len(datasets),
        figsize=(9 if len(datasets) == 1 else 6.5 * len(datasets), 5),
        squeeze=False,
    )
    notes, left = [], []
    for ax, data in zip(axes[0], datasets, strict=True):
        pts = [p for p in points if p[4] == data]
        ax.scatter([p[2] for p in pts], [p[3] for p in pts], alpha=0)  # scale to the points
        ax.margins(0.12)  # room for labels at the edges
        moved, ties = spread_ties(ax, [(p[2], p[3]) for p in pts], MARKER_PX)
        for stage in stages:
            idx = [i for i, p in enumerate(pts) if p[0] == stage]
            if idx:
                ax.scatter(
                    [moved[i][0] for i in idx],
                    [moved[i][1] for i in idx],
                    color=stage_colour[stage],
                    label=stage,
                    s=36,
                    zorder=3,
                    gid=POINT_GID,
                )
        ax.set_xlabel("parameters (M)")
        ax.set_ylabel(f"{METRIC_TITLES[tm.val_key]} (best)")
        ax.set_title(
            f"{data}" if len(datasets) > 1 else "Parameters vs. validation score, every trial",
            fontsize=10,
        )
        ax.grid(alpha=0.3)
        grouped = {i for g in ties for i in g}
        labels = [(*moved[i], pts[i][1].name) for i in range(len(pts)) if i not in grouped]
        for g in ties:
            cx = float(np.mean([moved[i][0] for i in g]))
            same = len({(pts[i][2], pts[i][3]) for i in g}) == 1
            labels.append(
                (cx, moved[g[0]][1], (" = " if same else " / ").join(pts[i][1].name for i in g))
            )
        notes += tie_notes(ties, [p[1].name for p in pts], [(p[2], p[3]) for p in pts], "params")
        left += _place_labels(ax, labels, [moved[i] for i in range(len(pts))])
    if len(datasets) > 1:
        fig.suptitle(
            "Parameters vs. validation score, every trial, one panel per data set", fontsize=11
        )
    # Outside the axes, so the legend never covers a point or a label.
    handles, names = [], []
    for ax in axes[0]:
        for h, n in zip(*ax.get_legend_handles_labels(), strict=True):
            if n not in names:
                handles.append(h)
                names.append(n)
    axes[0][-1].legend(
        handles, names, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False
    )
    if left:
        notes.append("Not labelled (no free space): " + "; ".join(left))
    budget = study_budget(study)
    if len(datasets) > 1:  # which budget belongs to which panel
        per = [
            f"{data}: "
            + trials_budget(study, [p[1] for p in points if p[4] == data]).partition("; ")[2]
            for data in datasets
        ]
        budget = budget.partition("; ")[0] + "; " + " | ".join(per)
    return save(fig, path, budget=budget, notes=notes)


# Label offsets in points, nearest first: right/left/above/below, then further out.
_LABEL_OFFSETS = [
    (dx * r, dy * r)
    for r in (1.0, 2.2, 3.6)
    for dx, dy in ((4, 3), (4, -3), (-4, 3), (-4, -3), (0, 6), (0, -6), (6, 0), (-6, 0))
]


def _place_labels(
    ax: plt.Axes,
    pts: list[tuple[float, float, str]],
    markers: Sequence[tuple[float, float]] | None = None,
) -> list[str]:
    """Annotate each point at the first offset whose text box is free; returns those left out.

    `markers` (default: the points themselves) are the drawn markers no label may cover.

    Greedy in the order given, which is enough for a report's few dozen points; a box must lie
    inside the axes and overlap no marker and no label placed before it.
    """
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    r = 4.0 * fig.dpi / 72  # marker radius in pixels (s=36 is a 6 pt marker)
    taken = []
    for x, y in markers if markers is not None else [(p[0], p[1]) for p in pts]:
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


def confusion_matrix(ev: Evaluation, path: Path, title: str | None = None, *, budget: str) -> bool:
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
    return save(fig, path, budget=budget)


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
        ax.text(
            0.5,
            0.5,
            text,
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=9,
            color="#c03030",
            bbox={"facecolor": "white", "edgecolor": "#c03030"},
        )


def sample_predictions(
    ev: Evaluation, path: Path, title: str | None = None, *, budget: str
) -> bool:
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
    return save(fig, path, budget=budget)


def _binary(mask: np.ndarray) -> np.ndarray:
    m = mask[..., 0] if mask.ndim == 3 else mask
    return m > (127 if m.max() > 1 else 0)  # masks may be {0,1} or {0,255}


def segmentation_triptych(
    ev: Evaluation, path: Path, max_rows: int = 5, title: str | None = None, *, budget: str
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
    return save(fig, path, budget=budget)


def encoder_frozen(config: dict[str, Any], epoch: int | None) -> bool:
    """Whether the trial's encoder was frozen in `epoch` (trainables/optim.is_frozen, which the
    report may not import): "frozen" always, "unfreeze_at" before unfreeze_epoch."""
    schedule = config.get("freeze_schedule", "none")
    if schedule == "frozen":
        return True
    if schedule == "unfreeze_at" and epoch is not None:
        return epoch < int(config.get("unfreeze_epoch") or 0)
    return False


FROZEN_NOTE = (
    "Grey bars: the encoder was frozen in training (requires_grad off), so training never "
    "computed or applied these gradients; the evaluation's one backward pass on a test batch "
    "turns gradients on for every layer to show what would flow there."
)


def gradient_flow(
    ev: Evaluation, path: Path, title: str | None = None, *, budget: str, frozen: bool = False
) -> bool:
    """Per-layer gradient norm, input to output, log scale (vanishing shows as a falling bar).

    `frozen`: the evaluated checkpoint's encoder was frozen in training; its layers (named
    encoder.*) are drawn grey with a note, since the evaluation's backward pass measures
    gradients that training never had.
    """
    pts = [(str(g.get("layer")), float(g.get("norm", np.nan))) for g in ev.grad_norms]
    pts = [(n, v) for n, v in pts if np.isfinite(v)]
    if not pts:
        return False
    names, norms = zip(*pts, strict=True)
    grey = [frozen and n.startswith("encoder.") for n in names]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(pts) + 2), 4.2))
    ax.bar(range(len(pts)), norms, color=["#b0b0b0" if g else "#4c72b0" for g in grey])
    if min(norms) > 0:
        ax.set_yscale("log")
    ax.set_xticks(range(len(pts)), names, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("gradient L2 norm")
    ax.set_title(
        f"Gradient flow per layer ({title or ev.stage}), input → output"
        + ("\nencoder frozen in training (grey)" if any(grey) else "")
    )
    ax.grid(axis="y", alpha=0.3)
    return save(fig, path, budget=budget, notes=[FROZEN_NOTE] if any(grey) else [])
