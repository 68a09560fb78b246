"""Each trial's own probes (trainables/trial_probes.py): gradient flow, feature maps and
receptive fields, drawn per stage (course C.2, D.1, D.2).

Reads `probes.json` / `probes.npz` from the trial folders; a trial without them (an older run,
an infeasible point) is left out of the figures, and `missing_maps` says why each trial has no
feature maps, for the report to print.

Gradient flow is drawn per named block (a ResNet's `stages.1.0`, a U-Net's `encoder.levels.2`),
aligned by name across trials, so a 2-block and a 3-block model are compared at the same block
and not at the same layer number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from analysis.figures import (
    POINT_GID,
    colours,
    encoder_frozen,
    legend_name,
    save,
    spread_ties,
    tie_notes,
)
from analysis.rundir import StageResults, StudyResults, Trial, resolve
from analysis.tables import Column, Table
from trainables.contract import PROBES_JSON, PROBES_NPZ

MAX_TRIALS = 8  # rows of the feature-map figure
MAX_DEPTHS = 8  # layers shown in the depth figure
MAX_RF_LAYERS = 16  # a trial with more conv/pool layers gets a one-line receptive field


@dataclass
class Probes:
    trial: Trial
    grad_norms: dict[str, list[dict[str, Any]]]
    receptive_fields: list[dict[str, Any]]
    layers: list[str] = field(default_factory=list)
    maps: list[np.ndarray] = field(default_factory=list)
    image: np.ndarray | None = None
    # Each layer's own output (height, width) before the maps were pooled; None for a run
    # recorded before probes kept it (then only the pooled size is known).
    sizes: list[tuple[int, int]] | None = None
    raw: dict[str, Any] = field(default_factory=dict)  # probes.json as read

    def last_gradients(self) -> list[dict[str, Any]]:
        if not self.grad_norms:
            return []
        return self.grad_norms[max(self.grad_norms, key=int)]


def load_probes(root: Path, trial: Trial) -> Probes | None:
    if not trial.trial_dir or trial.status == "infeasible":
        return None
    folder = resolve(root, trial.trial_dir, trial.stage)
    try:
        raw = json.loads((folder / PROBES_JSON).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    probes = Probes(
        trial, dict(raw.get("grad_norms") or {}), list(raw.get("receptive_fields") or []), raw=raw
    )
    names = list(raw.get("feature_layers") or [])
    if not names:
        return probes
    try:
        with np.load(folder / PROBES_NPZ) as data:
            probes.maps = [data[f"map_{i:03d}"].astype(np.float32) for i in range(len(names))]
            probes.image = data["image"] if "image" in data.files else None
            probes.layers = names
    except (OSError, ValueError, KeyError, EOFError):
        return probes  # gradient flow and receptive fields still draw
    sizes = raw.get("feature_sizes")
    if isinstance(sizes, list) and len(sizes) == len(names):
        probes.sizes = [(int(h), int(w)) for h, w in sizes]
    return probes


def stage_probes(study: StudyResults, stage: StageResults) -> list[Probes]:
    found = [load_probes(study.root, t) for t in stage.trials]
    return [p for p in found if p is not None]


# Side branches left out of a block's gradient: the main path is what depth and residuals act on
# (as receptive_field leaves them out). Squeeze-excitation's two 1x1 convs are "fc1"/"fc2"
# (torchvision's SqueezeExcitation), under "attn" in a ResNet block or bare in a Sequential.
SIDE_BRANCHES = ("shortcut", "downsample", "attn")
SE_LEAVES = ("fc1", "fc2")


def block_of(layer: str) -> str | None:
    """The named block a layer belongs to: its path up to the last index before the layer
    (`stages.1.0.conv2` -> `stages.1.0`, `encoder.levels.2.block.conv1.conv` ->
    `encoder.levels.2`, `features.0.gate` -> `features.0`); a layer outside any indexed
    container is its own block (`stem.conv`, `head.fc`). None for a side branch (shortcut,
    squeeze-excitation)."""
    parts = layer.split(".")
    if any(p in SIDE_BRANCHES for p in parts) or (len(parts) > 1 and parts[-1] in SE_LEAVES):
        return None
    parent = parts[:-1]
    numeric = [i for i, p in enumerate(parent) if p.isdigit()]
    return ".".join(parent[: numeric[-1] + 1]) if numeric else layer


def block_norms(grads: list[dict[str, Any]]) -> dict[str, float]:
    """Block -> mean gradient norm of its main-path layers, input side first."""
    sums: dict[str, list[float]] = {}
    for g in grads:
        block = block_of(str(g["layer"]))
        norm = float(g["norm"])
        if block is not None and np.isfinite(norm) and norm > 0:
            sums.setdefault(block, []).append(norm)
    return {b: float(np.mean(v)) for b, v in sums.items()}


def merged_order(sequences: list[list[str]]) -> list[str]:
    """One order holding every name, each trial's own order kept: a name missing so far is
    placed right after the name that precedes it in its trial (a 3-block stage's
    `stages.0.2` after `stages.0.1`)."""
    order: list[str] = []
    for seq in sequences:
        prev = None
        for name in seq:
            if name not in order:
                order.insert(order.index(prev) + 1 if prev is not None else 0, name)
            prev = name
    return order


def gradient_flow(
    probes: list[Probes], title: str, path: Path, *, budget: str, stage: StageResults | None = None
) -> bool:
    """Last epoch's gradient norm per named block, one line per trial (log scale: vanishing
    gradients fall towards the input side on the left, exploding ones rise).

    The x axis names the blocks, aligned by name across trials, so trials of different depth
    meet at the same block; a block a trial lacks is skipped by its line.
    """
    lines = [(p, block_norms(p.last_gradients())) for p in probes]
    lines = [(p, b) for p, b in lines if b]
    if not lines:
        return False
    order = merged_order([list(b) for _, b in lines])
    x_of = {name: i for i, name in enumerate(order)}
    fig, ax = plt.subplots(figsize=(max(7.5, 0.45 * len(order) + 3), 4.2))
    notes = []
    flat = [(float(x_of[b]), v) for _, blocks in lines for b, v in blocks.items()]
    ax.plot([p[0] for p in flat], [p[1] for p in flat], alpha=0)  # scale to every point
    ax.set_yscale("log")
    ax.set_xlim(-0.5, len(order) - 0.5)
    # Near-equal trials (ReLU and LeakyReLU) drew one line over the other: set them apart.
    moved, ties = spread_ties(ax, flat, 3.0)
    k = 0
    for (p, blocks), colour in zip(lines, colours(len(lines)), strict=True):
        pts = moved[k : k + len(blocks)]
        k += len(blocks)
        label = legend_name(p.trial, stage) if stage is not None else p.trial.name
        if encoder_frozen(p.trial.config, max(map(int, p.grad_norms), default=None)):
            label += " (encoder frozen: no gradient there)"
            notes.append(
                f"{p.trial.name}: the encoder was frozen in its last epoch, so training "
                "computed no gradient for its blocks; they are missing from its line."
            )
        ax.plot(
            [q[0] for q in pts],
            [q[1] for q in pts],
            "-",
            marker="o",
            ms=4,
            color=colour,
            label=label,
            gid=POINT_GID,
        )
    notes += tie_notes(ties, [p.trial.name for p, b in lines for _ in b], flat, order)
    ax.set_xticks(range(len(order)), order, rotation=60, ha="right", fontsize=7)
    ax.set_xlabel("block (input side first; shortcuts and squeeze-excitation left out)")
    ax.set_ylabel(
        "gradient norm, mean over the block's layers\n(mean of first batches)", fontsize=9
    )
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    return save(fig, path, budget=budget, notes=notes)


def first_layer_maps(probes: list[Probes], title: str, path: Path, *, budget: str) -> bool:
    """Per trial: the input image and its first conv layer's channels (course D.1)."""
    rows = [p for p in probes if p.maps][:MAX_TRIALS]
    if not rows:
        return False
    cols = 1 + max(p.maps[0].shape[0] for p in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.3 * cols, 1.5 * len(rows)), squeeze=False)
    for r, p in enumerate(rows):
        _show_image(axes[r][0], p.image)
        axes[r][0].set_ylabel(p.trial.name, fontsize=7)
        for c in range(1, cols):
            _show_map(axes[r][c], p.maps[0][c - 1] if c - 1 < len(p.maps[0]) else None)
        axes[r][1].set_title(f"{p.layers[0]} ({size_text(p, 0)})", fontsize=6, loc="left")
    fig.suptitle(title, fontsize=9)
    return save(fig, path, budget=budget)


def size_text(probe: Probes, i: int) -> str:
    """The layer's own output size; a run that did not record it says the pooled size."""
    if probe.sizes is not None:
        h, w = probe.sizes[i]
        return f"{h}x{w}"
    fm = probe.maps[i]
    return f"pooled to {fm.shape[1]}x{fm.shape[2]}; own size not recorded"


def _row_label(name: str, width: int = 18) -> str:
    """A layer name broken at its dots into lines of about `width` characters."""
    lines, cur = [], ""
    for part in name.split("."):
        piece = part if not cur else f"{cur}.{part}"
        if cur and len(piece) > width:
            lines.append(cur + ".")
            cur = part
        else:
            cur = piece
    return "\n".join([*lines, cur])


def depth_maps(probe: Probes, title: str, path: Path, *, budget: str) -> bool:
    """One trial's feature maps at each depth: rows are conv layers, input side first, each
    labelled with the layer's own output size (the maps are shown pooled to at most 32 px)."""
    if not probe.maps:
        return False
    picks = np.unique(
        np.linspace(0, len(probe.maps) - 1, min(MAX_DEPTHS, len(probe.maps))).round().astype(int)
    )
    cols = max(probe.maps[i].shape[0] for i in picks)
    fig, axes = plt.subplots(
        len(picks), cols, figsize=(1.2 * cols + 1.2, 1.3 * len(picks)), squeeze=False
    )
    for r, i in enumerate(picks):
        fm = probe.maps[i]
        for c in range(cols):
            _show_map(axes[r][c], fm[c] if c < len(fm) else None)
        # Horizontal, left of the row: rotated long names (U-Net) ran into the next row's.
        axes[r][0].set_ylabel(
            f"{_row_label(probe.layers[i])}\n{size_text(probe, i)}",
            fontsize=6,
            rotation=0,
            ha="right",
            va="center",
            labelpad=4,
        )
    fig.subplots_adjust(top=1 - 0.45 / (1.3 * len(picks)))  # title close above the first row
    fig.suptitle(title, fontsize=9)
    notes = (
        [
            "Row labels: the layer's own output size (height x width); the maps are drawn "
            "average-pooled to at most 32 px."
        ]
        if probe.sizes is not None
        else [
            "This run did not record the layers' own sizes (recorded before issue 20): the "
            "rows give the size after pooling to at most 32 px."
        ]
    )
    return save(fig, path, budget=budget, notes=notes)


def missing_maps(stage: StageResults, probes: list[Probes]) -> list[str]:
    """ "trial: why it has no feature maps", for each trial of the stage without maps."""
    found = {id(p.trial): p for p in probes}
    out = []
    for t in stage.trials:
        p = found.get(id(t))
        if p is not None and p.maps:
            continue
        out.append(f"{t.name}: {_no_maps_reason(t, p)}")
    return out


def _no_maps_reason(t: Trial, p: Probes | None) -> str:
    if t.status == "infeasible":
        return "infeasible, never trained"
    if p is None:
        if t.status == "error":
            return "ended in an error before it recorded probes"
        return "no probes.json in its folder (a run from before the probes, or not synced)"
    if "feature_layers" not in p.raw:
        if t.status in ("asha_stopped", "stopped", "diverged", "error"):
            return (
                f"{t.status} after epoch {t.epochs_run}; maps are taken at a trial's last "
                "epoch, which it never reached"
            )
        return "its probes.json lists no feature layers (the maps were not written)"
    if not p.raw["feature_layers"]:
        convs = [r for r in p.receptive_fields if "Conv" in str(r.get("kind", ""))]
        if convs:
            kinds = ", ".join(sorted({str(r["kind"]) for r in convs}))
            return (
                f"its conv layers ({kinds}) were not recognised by the probe of this run "
                "(before issue 20 only nn.Conv2d layers were recorded); run it again for "
                "maps"
            )
        return "the model has no conv layer (a fully connected model has no feature maps)"
    return "probes.npz is missing or unreadable"


def receptive_field_table(probes: list[Probes], stage: StageResults) -> Table | None:
    """A row per layer for small models (D.1's kernel variants); one row with the final
    receptive field for deep ones (a ResNet-18 has 20 conv/pool layers)."""
    rows: list[list[Any]] = []
    for p in probes:
        layers = p.receptive_fields
        if not layers:
            continue
        if len(layers) > MAX_RF_LAYERS:
            last = layers[-1]
            rows.append(
                [
                    p.trial.name,
                    f"(all {len(layers)} layers) … {last['layer']}",
                    last["kind"],
                    last["kernel"],
                    last["stride"],
                    last["rf"],
                ]
            )
            continue
        rows += [
            [p.trial.name, r["layer"], r["kind"], r["kernel"], r["stride"], r["rf"]] for r in layers
        ]
    if not rows:
        return None
    columns = [
        Column("trial", "trial"),
        Column("layer", "layer"),
        Column("kind", "kind"),
        Column("kernel", "kernel"),
        Column("stride", "stride"),
        Column("rf", "receptive field (px)"),
    ]
    return Table(f"receptive_fields_{stage.name}", columns, rows)


def _show_image(ax: plt.Axes, image: np.ndarray | None) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    if image is None:
        ax.axis("off")
        return
    ax.imshow(
        image[..., 0] if image.shape[-1] == 1 else image,
        cmap="gray" if image.shape[-1] == 1 else None,
    )


def _show_map(ax: plt.Axes, fm: np.ndarray | None) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    if fm is None:
        ax.axis("off")
        return
    ax.imshow(fm, cmap="viridis")
