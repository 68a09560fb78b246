"""One trial's configuration, built (and validated) once from the study's flat dict.

The flat dict is what Ray Tune samples, what the checkpoint keeps and what study.json records;
a `TrialConfig` is what the code reads. It fills in the data and trainer defaults
(trainables/config.py holds them, nothing else applies them), splits the data, trainer and model
parts once, and is read-only: the values a device decides (precision "auto", channels_last,
the epochs `epoch_fraction` leaves) are resolved once, by `on_device`, into a new TrialConfig.

Where each value is read:
- the driver (orchestrator/plan.py, stages.py, references.py, reuse.py, records.py): the model
  part (`model_config`), the full config (`as_dict`);
- the loop (trainables/loop.py): `on_device(...)` at the start of a trial, its `trainer` part;
- evaluation (trainables/evaluate.py): the trainer part of a checkpoint's config.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import torch

from trainables.config import (
    DATA_KEYS,
    TRAINER_KEYS,
    model_config,
    model_keys,
    validate_config,
    with_defaults,
)
from trainables.contract import planned_epochs
from trainables.memory_format import uses_channels_last
from trainables.optim import apply_preset
from trainables.precision import resolve_precision

# Keys whose value the trial's device decides and the trial reports with every epoch, so that
# study.json records what ran (orchestrator/records.py) and a point that still asks for "auto"
# finds a trial that ran (orchestrator/reuse.py).
REPORTED_KEYS = ("precision",)


@dataclasses.dataclass(frozen=True)
class TrialConfig:
    """A trial's full flat config (every data and trainer key present), read-only.

    Build it with `from_dict`; `given` is the dict as the study gave it (the checkpoint keeps
    it, so a replay plans its epochs as the study did).
    """

    values: Mapping[str, Any]
    given: Mapping[str, Any]

    @classmethod
    def from_dict(
        cls, config: TrialConfig | Mapping[str, Any], task: str | None = None
    ) -> TrialConfig:
        """The config with its defaults; validated for `task` ("classification" or
        "segmentation") when given (ConfigError names the key and the valid values). Records
        read back from a run are not validated again: they were when the run planned them."""
        if isinstance(config, TrialConfig):
            return config
        if task is not None:
            validate_config(config, task)
        return cls(MappingProxyType(with_defaults(config)), MappingProxyType(dict(config)))

    def __reduce__(self) -> tuple[Any, ...]:  # mapping proxies do not pickle; plain dicts do
        return (_rebuild, (dict(self.values), dict(self.given)))

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def as_dict(self) -> dict[str, Any]:
        """Every key, defaults included: what HParams and study.json show."""
        return dict(self.values)

    @functools.cached_property
    def data(self) -> Mapping[str, Any]:
        return MappingProxyType({k: self.values[k] for k in DATA_KEYS})

    @functools.cached_property
    def trainer(self) -> Mapping[str, Any]:
        return MappingProxyType({k: self.values[k] for k in TRAINER_KEYS})

    @property
    def family(self) -> str:
        return str(self.values["model"])

    @property
    def label(self) -> str | None:
        return self.values.get("label")

    def model_keys(self) -> frozenset[str]:
        return model_keys(self.values)

    def model_config(self, data_info: Mapping[str, Any]) -> dict[str, Any]:
        """The model part, with the data's facts (num_classes, in_channels, image_size) filled
        in: what the model family's builder takes (trainables.config.model_config)."""
        return model_config(self.values, data_info)

    def reported(self) -> dict[str, Any]:
        """The device-decided values a trial reports with each epoch (REPORTED_KEYS)."""
        return {k: self.values[k] for k in REPORTED_KEYS}

    def with_reported(self, reported: Mapping[str, Any]) -> TrialConfig:
        """This config with what a trial reported it ran (precision "auto" -> "bf16"), for the
        record; values of the wrong type (a result row without them) are left out."""
        ran = {k: reported[k] for k in REPORTED_KEYS if isinstance(reported.get(k), str)}
        return dataclasses.replace(self, values=MappingProxyType({**self.values, **ran}))

    def on_device(self, device: torch.device) -> TrialConfig:
        """What trains on `device`: precision and channels_last resolved (trainables/precision.py,
        trainables/memory_format.py), the optimizer preset's keys set, and `epochs` the epochs
        this trial trains (epochs x epoch_fraction; its LR schedule spans them)."""
        effective = dict(self.values)
        effective["epochs"] = planned_epochs(effective)
        effective["precision"] = resolve_precision(effective["precision"], device)
        effective["channels_last"] = uses_channels_last(effective["channels_last"], device)
        apply_preset(effective)
        return dataclasses.replace(self, values=MappingProxyType(effective))


def _rebuild(values: dict[str, Any], given: dict[str, Any]) -> TrialConfig:
    return TrialConfig(MappingProxyType(values), MappingProxyType(given))
