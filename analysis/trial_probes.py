"""Each trial's own probes (trainables/trial_probes.py): gradient flow, feature maps and
receptive fields, drawn per stage (course C.2, D.1, D.2).

Reads `probes.json` / `probes.npz` from the trial folders; a trial without them (an older run,
an infeasible point) is simply left out.
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

from analysis.figures import save
from analysis.rundir import Stage, Study, Trial, resolve
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
    probes = Probes(trial, dict(raw.get("grad_norms") or {}),
                    list(raw.get("receptive_fields") or []))
    names = list(raw.get("feature_layers") or [])
    try:
        with np.load(folder / PROBES_NPZ) as data:
            probes.maps = [data[f"map_{i:03d}"].astype(np.float32) for i in range(len(names))]
            probes.image = data["image"] if "image" in data.files else None
            probes.layers = names
    except (OSError, ValueError, KeyError, EOFError):
        pass  # gradient flow and receptive fields still draw
    return probes


def stage_probes(study: Study, stage: Stage) -> list[Probes]:
    found = [load_probes(study.root, t) for t in stage.trials]
    return [p for p in found if p is not None]


def gradient_flow(probes: list[Probes], title: str, path: Path) -> bool:
    """Last epoch's per-layer gradient norm, input side left, one line per trial (log scale:
    vanishing gradients fall to the left, exploding ones rise)."""
    lines = [(p.trial.name, p.last_gradients()) for p in probes if p.last_gradients()]
    if not lines:
        return False
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for name, grads in lines:
        norms = np.array([g["norm"] for g in grads], dtype=float)
        ax.plot(np.arange(1, len(norms) + 1), np.where(norms > 0, norms, np.nan), marker="o",
                markersize=3, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("layer (input side first)")
    ax.set_ylabel("gradient norm (mean of first batches)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return save(fig, path)


def first_layer_maps(probes: list[Probes], title: str, path: Path) -> bool:
    """Per trial: the input image and its first conv layer's channels (course D.1)."""
    rows = [p for p in probes if p.maps][:MAX_TRIALS]
    if not rows:
        return False
    cols = 1 + max(p.maps[0].shape[0] for p in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.3 * cols, 1.4 * len(rows)),
                             squeeze=False)
    for r, p in enumerate(rows):
        _show_image(axes[r][0], p.image)
        axes[r][0].set_ylabel(p.trial.name, fontsize=7)
        for c in range(1, cols):
            _show_map(axes[r][c], p.maps[0][c - 1] if c - 1 < len(p.maps[0]) else None)
        axes[r][1].set_title(p.layers[0], fontsize=6, loc="left")
    fig.suptitle(title, fontsize=9)
    return save(fig, path)


def depth_maps(probe: Probes, title: str, path: Path) -> bool:
    """One trial's feature maps at each depth: rows are conv layers, input side first."""
    if not probe.maps:
        return False
    picks = np.unique(np.linspace(0, len(probe.maps) - 1, min(MAX_DEPTHS, len(probe.maps)))
                      .round().astype(int))
    cols = max(probe.maps[i].shape[0] for i in picks)
    fig, axes = plt.subplots(len(picks), cols, figsize=(1.2 * cols, 1.3 * len(picks)),
                             squeeze=False)
    for r, i in enumerate(picks):
        fm = probe.maps[i]
        for c in range(cols):
            _show_map(axes[r][c], fm[c] if c < len(fm) else None)
        axes[r][0].set_ylabel(f"{probe.layers[i]}\n{fm.shape[1]}x{fm.shape[2]}", fontsize=6)
    fig.suptitle(title, fontsize=9)
    return save(fig, path)


def receptive_field_table(probes: list[Probes], stage: Stage) -> Table | None:
    """A row per layer for small models (D.1's kernel variants); one row with the final
    receptive field for deep ones (a ResNet-18 has 20 conv/pool layers)."""
    rows: list[list[Any]] = []
    for p in probes:
        layers = p.receptive_fields
        if not layers:
            continue
        if len(layers) > MAX_RF_LAYERS:
            last = layers[-1]
            rows.append([p.trial.name, f"(all {len(layers)} layers) … {last['layer']}",
                         last["kind"], last["kernel"], last["stride"], last["rf"]])
            continue
        rows += [[p.trial.name, r["layer"], r["kind"], r["kernel"], r["stride"], r["rf"]]
                 for r in layers]
    if not rows:
        return None
    columns = [Column("trial", "trial"), Column("layer", "layer"), Column("kind", "kind"),
               Column("kernel", "kernel"), Column("stride", "stride"),
               Column("rf", "receptive field (px)")]
    return Table(f"receptive_fields_{stage.name}", columns, rows)


def _show_image(ax: plt.Axes, image: np.ndarray | None) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    if image is None:
        ax.axis("off")
        return
    ax.imshow(image[..., 0] if image.shape[-1] == 1 else image,
              cmap="gray" if image.shape[-1] == 1 else None)


def _show_map(ax: plt.Axes, fm: np.ndarray | None) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    if fm is None:
        ax.axis("off")
        return
    ax.imshow(fm, cmap="viridis")
