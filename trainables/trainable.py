"""The trainable Ray Tune runs: a plain function, config -> per-epoch reports.

One function serves both tasks; `setup.task` picks the loss and metrics (trainables.tasks).
"""

from __future__ import annotations

from typing import Any

from trainables.data import DataBundle
from trainables.loop import TrialSetup, run_trial


def train(config: dict[str, Any], *, bundle: DataBundle, setup: TrialSetup) -> None:
    """One trial: classification (ResNets, small CNNs, FC nets) or segmentation (U-Nets).

    `config` stays a dict for Ray (it samples and records it); run_trial builds the trial's
    TrialConfig from it, once."""
    run_trial(config, bundle, setup)
