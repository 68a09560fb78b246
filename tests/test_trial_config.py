"""TrialConfig: built once from the study's dict, read-only, device values resolved once."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
import torch

from trainables import ray_io
from trainables.config import DATA_DEFAULTS, TRAINER_DEFAULTS, ConfigError
from trainables.data import DataSpec, load_bundle, write_tiny_imagenet
from trainables.loop import TrialSetup, run_trial
from trainables.precision import resolve_precision
from trainables.trial_config import REPORTED_KEYS, TrialConfig

CPU = torch.device("cpu")
TINY = {"model": "resnet", "channels": (8, 16), "blocks": (1, 1), "stem": "cifar"}


def test_defaults_filled_once_and_the_given_dict_kept() -> None:
    given = {**TINY, "lr": 0.05, "label": "3.1-A"}
    config = TrialConfig.from_dict(given)
    assert config.as_dict() == {**DATA_DEFAULTS, **TRAINER_DEFAULTS, **given}
    assert dict(config.given) == given
    assert set(config.data) == set(DATA_DEFAULTS) and set(config.trainer) == set(TRAINER_DEFAULTS)
    assert config.trainer["lr"] == 0.05 and config.family == "resnet"
    assert config.label == "3.1-A"
    assert config.model_config({"num_classes": 7})["num_classes"] == 7
    assert TrialConfig.from_dict(config) is config


def test_read_only() -> None:
    config = TrialConfig.from_dict(TINY)
    with pytest.raises(TypeError):
        config.values["lr"] = 1.0  # type: ignore[index]
    with pytest.raises(TypeError):
        config.trainer["lr"] = 1.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        config.values = {}  # type: ignore[misc]


def test_validated_for_the_task_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['lr_typo'\]"):
        TrialConfig.from_dict({**TINY, "lr_typo": 1}, "classification")
    with pytest.raises(ConfigError, match="precision='fp16'"):
        TrialConfig.from_dict({**TINY, "precision": "fp16"}, "classification")
    TrialConfig.from_dict({**TINY, "lr_typo": 1})  # a record read back is not validated again


def test_on_device_resolves_the_device_values_into_a_new_config() -> None:
    config = TrialConfig.from_dict(
        {
            **TINY,
            "epochs": 10,
            "epoch_fraction": 0.5,
            "optim_preset": "adamw_cosine",
            "channels_last": False,
        }
    )
    run = config.on_device(CPU)
    assert run.trainer["epochs"] == 5  # epochs x epoch_fraction: what the LR schedule spans
    assert run.trainer["precision"] == resolve_precision("auto", CPU) in ("bf16", "fp32")
    assert run.trainer["channels_last"] is False
    assert (run.trainer["optimizer"], run.trainer["scheduler"]) == ("adamw", "cosine")
    # The config it came from is unchanged, and both keep the study's dict.
    assert config.trainer["epochs"] == 10 and config.trainer["precision"] == "auto"
    assert config.trainer["optimizer"] == TRAINER_DEFAULTS["optimizer"]
    assert run.given == config.given
    asked_bf16 = TrialConfig.from_dict({**TINY, "precision": "bf16"})
    assert asked_bf16.on_device(CPU)["precision"] == "bf16"  # asked for: honoured anywhere


def test_reported_values_go_into_the_record() -> None:
    run = TrialConfig.from_dict({**TINY, "precision": "fp32"})
    assert run.reported() == {"precision": "fp32"} and set(run.reported()) == set(REPORTED_KEYS)
    asked = TrialConfig.from_dict(TINY)
    assert asked.with_reported({"precision": "bf16", "val_acc": 0.5})["precision"] == "bf16"
    assert asked.with_reported({"val_acc": 0.5})["precision"] == "auto"  # no report: as asked


def test_pickles_and_copies_as_ray_and_the_driver_do() -> None:
    config = TrialConfig.from_dict({**TINY, "augment": {"hflip": True}}).on_device(CPU)
    for again in (pickle.loads(pickle.dumps(config)), copy.deepcopy(config)):
        assert again.as_dict() == config.as_dict() and dict(again.given) == dict(config.given)


def test_the_loop_leaves_the_dict_as_given_and_checkpoints_it(tmp_path: Path) -> None:
    root = write_tiny_imagenet(
        tmp_path / "tiny-imagenet-200", n_classes=2, train_per_class=10, val_per_class=2
    )
    bundle = load_bundle(DataSpec("tiny_imagenet", path=root), cache_dir=tmp_path / "cache")
    given = {**TINY, "dataset": "tiny_imagenet", "epochs": 1, "batch_size": 4, "max_batches": 1}
    before = copy.deepcopy(given)
    session = ray_io.LocalSession(tmp_path / "trial")
    ray_io.use_local_session(session)
    try:
        run_trial(given, bundle, TrialSetup(task="classification"))
    finally:
        ray_io.use_local_session(None)
    assert given == before
    saved = ray_io.load_state(session.checkpoint_dir)
    assert saved["config"] == before  # a replay plans from what the study gave
    assert session.reports[-1]["precision"] in ("bf16", "fp32")
