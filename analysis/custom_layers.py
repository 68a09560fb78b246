"""Course E.1 in the report: the custom layers of a stage's trained trials, checked and measured.

A stage whose trials use a custom layer (GatedConv2d, L2Pool2d, squeeze-and-excitation, Swish)
gets a table of `trainables.models.layer_checks` run on each such trial's best checkpoint: the
layers as the study trained them, each against its reference computation, its standard analogue
and its parameter count, with the measured value and pass/fail.

Unlike the rest of the report this needs torch and the model code: they are imported only here,
only for such a stage, and a machine without them gets a note instead of the table (the rest of
the report still reads the run directory alone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.rundir import StageResults, StudyResults, Trial, resolve
from trainables.run_dir import CHECKPOINT_FILE

# Config values that put a custom layer into a model (trainables/models/small.py, resnet.py).
CUSTOM_LAYER_KEYS = {
    "conv": ("gated", "GatedConv2d"),
    "pool": ("l2", "L2Pool2d"),
    "attention": ("se", "squeeze-and-excitation"),
    "activation": ("swish", "Swish"),
}


@dataclass
class LayerChecks:
    """The checks of one stage: rows {"trial", "layer", "instances", "check", "measured",
    "passed"}, and notes on trials that could not be checked."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(1 for r in self.rows if r["passed"])


def custom_layers(config: dict[str, Any]) -> list[str]:
    """The custom layers a trial config asks for, by name."""
    return [name for key, (value, name) in CUSTOM_LAYER_KEYS.items() if config.get(key) == value]


def uses_custom_layers(stage: StageResults) -> bool:
    return any(custom_layers(t.config) for t in stage.trials)


def stage_layer_checks(study: StudyResults, stage: StageResults) -> LayerChecks:
    """Run the layer checks on every trial of `stage` whose config uses a custom layer."""
    out = LayerChecks()
    try:
        import torch

        from trainables.models import build_model
        from trainables.models.layer_checks import check_model_layers
    except ImportError as exc:
        out.notes.append(
            f"layer checks not run: they need torch and archsweep's model code ({exc})"
        )
        return out
    for trial in stage.trials:
        if not custom_layers(trial.config):
            continue
        path = _checkpoint_file(study, trial)
        if path is None:
            out.notes.append(f"{trial.name}: no checkpoint in the run directory; not checked")
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
            model = build_model(state["model_config"])
            model.load_state_dict(state["model"])
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            out.notes.append(f"{trial.name}: checkpoint {path.name} unreadable ({exc})")
            continue
        for row in check_model_layers(model):
            out.rows.append({"trial": trial.name, "epoch": state.get("epoch"), **row})
    return out


def _checkpoint_file(study: StudyResults, trial: Trial) -> Path | None:
    if not trial.best_checkpoint:
        return None
    path = resolve(study.root, trial.best_checkpoint, trial.stage) / CHECKPOINT_FILE
    return path if path.is_file() else None
