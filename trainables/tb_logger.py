"""TensorBoard output of one trial: scalars, one HParams record, a few image summaries.

Ray's own TBX logger is switched off by the orchestrator (it would write a second, differently
named stream of the same scalars); this writer is the only one, in the trial's folder, so
`tensorboard --logdir runs/<study>` shows every trial of every stage.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from trainables.contract import SELECTABLE_METRICS


def hparam_value(value: Any) -> int | float | str | bool:
    """HParams accept only scalars and strings; lists and dicts are shown as compact JSON."""
    if isinstance(value, bool | int | float | str):
        return value
    if value is None:
        return "none"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class TrialLogger:
    def __init__(self, log_dir: Path, config: Mapping[str, Any], task: str) -> None:
        self.writer = SummaryWriter(log_dir=str(log_dir))
        # Written into this writer's own file (add_hparams would open a sub-run per call), so
        # the HParams row and the scalars belong to the same run in TensorBoard.
        exp, ssi, sei = hparams(
            {k: hparam_value(v) for k, v in sorted(config.items())},
            {m: 0.0 for m in SELECTABLE_METRICS[task]},
        )
        for summary in (exp, ssi, sei):
            self.writer.file_writer.add_summary(summary)

    def scalars(self, metrics: Mapping[str, float], epoch: int) -> None:
        for key, value in metrics.items():
            if key != "epoch" and isinstance(value, int | float):
                self.writer.add_scalar(key, value, epoch)

    def images(self, tag: str, images: Tensor, epoch: int) -> None:
        """`images`: float (N, C, H, W) in [0, 1]."""
        self.writer.add_images(tag, images.clamp(0, 1).float().cpu(), epoch, dataformats="NCHW")

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


def denormalize(x: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return (x.float() * s + m).clamp(0, 1)
