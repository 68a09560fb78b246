"""What a trial records about its own layers, for the course's analysis questions.

- Gradient flow (C.2, D.2): per-layer weight-gradient norms, the mean over the first
  `GRAD_BATCHES` training batches of every epoch (cheap: a few norms per step).
- Receptive fields (D.1): every conv/pool layer's kernel, stride and receptive field.
- Feature maps (D.1, D.2): every conv layer's first channels for one fixed validation image,
  at the trial's last epoch, with each layer's own output size (the stored maps are pooled).

They go to `probes.json` and `probes.npz` in the trial's folder (synced to run storage from
any node, like the TensorBoard events); the report draws them (analysis/probe_figures.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trainables.contract import PROBES_JSON, PROBES_NPZ
from trainables.models.init_gradients import layer_grad_norms
from trainables.models.layers import GatedConv2d
from trainables.models.receptive_field import receptive_field, rf_layers

GRAD_BATCHES = 4  # batches per epoch whose gradients are measured
MAP_CHANNELS = 8  # channels kept per layer
MAP_SIDE = 32  # maps are average-pooled down to at most this side


class GradientRecorder:
    """Called after `loss.backward()`: averages per-layer gradient norms over the epoch's first
    `GRAD_BATCHES` batches; `history` maps epoch -> [{"layer", "norm"}]."""

    def __init__(self, model: nn.Module, history: dict[str, list] | None = None) -> None:
        self.model = model
        self.history: dict[str, list[dict[str, Any]]] = dict(history or {})
        self._sums: dict[str, float] = {}
        self._order: list[str] = []
        self._seen = 0

    def start_epoch(self) -> None:
        self._sums, self._order, self._seen = {}, [], 0

    def __call__(self) -> None:
        if self._seen >= GRAD_BATCHES:
            return
        self._seen += 1
        for name, norm in layer_grad_norms(self.model):
            if name not in self._sums:
                self._order.append(name)
                self._sums[name] = 0.0
            self._sums[name] += norm

    def end_epoch(self, epoch: int) -> None:
        if self._seen:
            self.history[str(epoch)] = [
                {"layer": name, "norm": self._sums[name] / self._seen} for name in self._order
            ]


def receptive_fields(model: nn.Module) -> list[dict[str, Any]]:
    return [
        {"layer": r.name, "kind": r.kind, "kernel": r.kernel, "stride": r.stride, "rf": r.rf}
        for r in receptive_field(model)
    ]


# Layers whose output is a feature map: a GatedConv2d (conv * sigmoid(gate)) is one conv layer
# to rf_layers, and is not an nn.Conv2d; leaving it out gave an all-gated model no maps at all.
MAP_LAYERS = (nn.Conv2d, GatedConv2d)


class FeatureMaps(dict):
    """Layer name -> its first MAP_CHANNELS channels, pooled to at most MAP_SIDE (float16);
    `sizes` keeps each layer's own output (height, width) before the pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: dict[str, tuple[int, int]] = {}


@torch.no_grad()
def feature_maps(model: nn.Module, x: torch.Tensor) -> FeatureMaps:
    """Each main-path conv layer's output for one input (batch of 1): the first MAP_CHANNELS
    channels, pooled to at most MAP_SIDE, as float16 (keys: layer names)."""
    convs = [(n, m) for n, m in rf_layers(model) if isinstance(m, MAP_LAYERS)]
    maps = FeatureMaps()
    hooks = []
    for name, module in convs:

        def keep(_m: nn.Module, _inp: Any, out: torch.Tensor, name: str = name) -> None:
            fm = out[0, :MAP_CHANNELS].float()
            maps.sizes[name] = (int(fm.shape[-2]), int(fm.shape[-1]))
            if fm.shape[-1] > MAP_SIDE:
                fm = F.adaptive_avg_pool2d(fm, MAP_SIDE)
            maps[name] = fm.cpu().numpy().astype(np.float16)

        hooks.append(module.register_forward_hook(keep))
    was_training = model.training
    model.eval()
    try:
        model(x[:1])
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return maps


def write_probes(
    trial_dir: Path,
    gradients: GradientRecorder,
    rf: list[dict[str, Any]],
    maps: dict[str, np.ndarray] | None = None,
    image: np.ndarray | None = None,
) -> None:
    """probes.json every epoch; probes.npz (maps + the input image) when maps are given.

    probes.json's "feature_sizes" holds each map's layer output [height, width] before pooling
    (absent in runs recorded before issue 20; the report then says the size is the pooled one).
    """
    trial_dir.mkdir(parents=True, exist_ok=True)
    record = {"grad_norms": gradients.history, "receptive_fields": rf, "grad_batches": GRAD_BATCHES}
    if maps is not None:
        record["feature_layers"] = list(maps)
        sizes = getattr(maps, "sizes", {})
        if all(name in sizes for name in maps):
            record["feature_sizes"] = [list(sizes[name]) for name in maps]
        arrays: dict[str, Any] = {f"map_{i:03d}": m for i, m in enumerate(maps.values())}
        if image is not None:
            arrays["image"] = image
        tmp = trial_dir / f".{PROBES_NPZ}.tmp.npz"
        np.savez_compressed(tmp, **arrays)
        tmp.replace(trial_dir / PROBES_NPZ)
    elif (trial_dir / PROBES_JSON).is_file():  # keep the names of maps an earlier epoch wrote
        old = json.loads((trial_dir / PROBES_JSON).read_text())
        for key in ("feature_layers", "feature_sizes"):
            if key in old:
                record[key] = old[key]
    tmp_json = trial_dir / f".{PROBES_JSON}.tmp"
    tmp_json.write_text(json.dumps(record))
    tmp_json.replace(trial_dir / PROBES_JSON)
