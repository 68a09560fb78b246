"""The shared epoch loop without Ray: exact resume, divergence, freeze schedule, optimizers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainables import ray_io
from trainables.config import ConfigError, validate_config
from trainables.data import DataSpec, load_bundle, write_tiny_imagenet
from trainables.loop import TrialSetup, run_trial
from trainables.optim import build_scheduler, is_frozen

TINY = {"model": "resnet", "channels": (8, 16), "blocks": (1, 1), "stem": "cifar"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory):
    root = write_tiny_imagenet(
        tmp_path_factory.mktemp("tin") / "tiny-imagenet-200",
        n_classes=3,
        train_per_class=20,
        val_per_class=4,
    )
    return load_bundle(DataSpec("tiny_imagenet", path=root), cache_dir=root.parent / "cache")


def run_local(
    config: dict,
    bundle,
    trial_dir: Path,
    setup: TrialSetup | None = None,
    session: ray_io.LocalSession | None = None,
) -> ray_io.LocalSession:
    session = session or ray_io.LocalSession(trial_dir)
    ray_io.use_local_session(session)
    try:
        run_trial(config, bundle, setup or TrialSetup(task="classification"))
    finally:
        ray_io.use_local_session(None)
    return session


def base_config(**extra) -> dict:
    return {
        "dataset": "tiny_imagenet",
        "epochs": 4,
        "batch_size": 16,
        "optimizer": "sgd",
        "lr": 0.05,
        "scheduler": "cosine",
        "augment": {"hflip": True, "crop_padding": 4},
        **TINY,
        **extra,
    }


def test_resume_from_checkpoint_continues_exactly(bundle, tmp_path: Path) -> None:
    """Stopped after epoch 2 and resumed, a trial ends where an uninterrupted one does."""
    straight = run_local(base_config(), bundle, tmp_path / "straight")
    interrupted = run_local(base_config(epochs=4), bundle, tmp_path / "resumed")
    # Simulate ASHA pausing after epoch 2: keep only the epoch-2 checkpoint and resume from it.
    interrupted.reports = interrupted.reports[:2]
    interrupted.checkpoint_dir = tmp_path / "resumed" / "checkpoint_000001"
    resumed = run_local(base_config(), bundle, tmp_path / "resumed", session=interrupted)
    assert [r["epoch"] for r in resumed.reports] == [1, 2, 3, 4]
    for a, b in zip(straight.reports, resumed.reports, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_acc"] == pytest.approx(b["val_acc"])
        assert a["lr"] == pytest.approx(b["lr"])


def test_nan_loss_ends_trial_as_diverged(bundle, tmp_path: Path) -> None:
    session = run_local(base_config(lr=1e12, scheduler="none", augment={}), bundle, tmp_path)
    last = session.reports[-1]
    assert last["diverged"] == 1
    assert "non-finite loss" in last["reason"]
    assert len(session.reports) < 4


def test_sampled_config_breaking_a_constraint_is_reported_infeasible(
    bundle, tmp_path: Path
) -> None:
    setup = TrialSetup(task="classification", constraints={"max_channels": 8})
    session = run_local(base_config(), bundle, tmp_path, setup)
    (only,) = session.reports
    assert only["infeasible"] == 1 and "16" in only["reason"]


def test_freeze_schedule() -> None:
    assert not is_frozen(1, "none", 0)
    assert is_frozen(9, "frozen", 0)
    assert [is_frozen(e, "unfreeze_at", 3) for e in (1, 2, 3, 4)] == [True, True, False, False]
    with pytest.raises(ValueError, match="freeze_schedule='later'"):
        is_frozen(1, "later", 0)


def test_onecycle_steps_per_batch_and_cosine_per_epoch() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched, per_batch = build_scheduler(opt, {"scheduler": "onecycle", "epochs": 2}, 5)
    assert per_batch and sched.total_steps == 10
    _, per_batch = build_scheduler(opt, {"scheduler": "cosine", "epochs": 2}, 5)
    assert not per_batch


def test_config_validation_names_bad_values() -> None:
    with pytest.raises(ConfigError, match=r"optimizer='rmsprop'.*sgd"):
        validate_config({**base_config(), "optimizer": "rmsprop"}, "classification")
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['dropuot'\]"):
        validate_config({**base_config(), "dropuot": 0.1}, "classification")
    with pytest.raises(ConfigError, match="model='vit'"):
        validate_config({**base_config(), "model": "vit"}, "classification")


def test_pretrained_encoder_keeps_its_own_input_normalization() -> None:
    """Course B.3: a frozen classifier encoder expects the classifier's mean/std."""
    from types import SimpleNamespace

    from trainables.loop import encoder_normalization

    bundle = SimpleNamespace(mean=(0.3, 0.3, 0.3), std=(0.2, 0.2, 0.2))
    encoder = {"mean": [0.48, 0.45, 0.40], "std": [0.27, 0.26, 0.28]}
    assert encoder_normalization(encoder, bundle) == ((0.48, 0.45, 0.40), (0.27, 0.26, 0.28))
    gray = {"mean": [0.13], "std": [0.31]}  # another channel count: the data's own
    assert encoder_normalization(gray, bundle) == (bundle.mean, bundle.std)
    assert encoder_normalization({}, bundle) == (bundle.mean, bundle.std)


def test_early_stopping_ends_a_trial_without_improvement(bundle, tmp_path: Path) -> None:
    """With lr ~ 0 the weights stay put (only BatchNorm statistics move): val accuracy soon
    stops improving, and patience 2 ends the trial two epochs after its best one."""
    config = base_config(epochs=8, lr=1e-12, scheduler="none", augment={}, early_stop_patience=2)
    session = run_local(config, bundle, tmp_path)
    epochs = [r["epoch"] for r in session.reports]
    vals = [r["val_acc"] for r in session.reports]
    best_epoch = epochs[vals.index(max(vals))]
    assert epochs[-1] == best_epoch + 2 < 8
    assert [r["early_stopped"] for r in session.reports] == [0] * (len(epochs) - 1) + [1]
    full = run_local({**config, "early_stop_patience": 0}, bundle, tmp_path / "off")
    assert len(full.reports) == 8 and not any(r["early_stopped"] for r in full.reports)
    with pytest.raises(ConfigError, match="early_stop_patience=-1"):
        validate_config({**config, "early_stop_patience": -1}, "classification")
