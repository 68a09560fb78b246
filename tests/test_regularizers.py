"""Regularizers and evaluation for small data, each checked for what it does: mixup/cutmix
(trainables/mixing.py), the weight EMA (trainables/ema.py), flip TTA (trainables/evaluate.py),
stochastic depth (trainables/models/resnet.py) and the optimizer presets (trainables/optim.py)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainables.config import ConfigError, validate_config
from trainables.ema import ModelEma, eval_weights, warmup_decay
from trainables.evaluate import flip_tta
from trainables.mixing import Mixer, make_mixer
from trainables.models import build_model
from trainables.models.resnet import DropPath, ResidualBlock
from trainables.optim import apply_preset, build_optimizer, build_scheduler


def labelled_batch(n: int = 6, classes: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Image i is the constant i + 1 (every pixel says which image it came from)."""
    x = torch.arange(1, n + 1, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, 8, 8)
    return x.contiguous(), torch.arange(n) % classes


# --- mixup / cutmix ---------------------------------------------------------------------------


def test_mixup_mixes_images_and_labels_by_the_same_lambda() -> None:
    x, y = labelled_batch()
    torch.manual_seed(0)
    mixed, soft, dominant = Mixer(num_classes=4, mixup_alpha=0.4)(x, y)
    torch.manual_seed(0)
    lam = float(torch.distributions.Beta(torch.tensor(0.4), torch.tensor(0.4)).sample())
    assert torch.allclose(mixed, lam * x + (1 - lam) * x.flip(0))
    expected = lam * F.one_hot(y, 4).float() + (1 - lam) * F.one_hot(y.flip(0), 4).float()
    assert torch.allclose(soft, expected)
    assert torch.equal(dominant, y if lam >= 0.5 else y.flip(0))
    # The soft-target loss is the lambda-weighted loss of the two labels, with smoothing too.
    logits = torch.randn(6, 4)
    for eps in (0.0, 0.1):
        mixed_loss = F.cross_entropy(logits, soft, label_smoothing=eps)
        weighted = lam * F.cross_entropy(logits, y, label_smoothing=eps) + (
            1 - lam
        ) * F.cross_entropy(logits, y.flip(0), label_smoothing=eps)
        assert float(mixed_loss) == pytest.approx(float(weighted), rel=1e-6)


def test_cutmix_lambda_is_the_area_kept() -> None:
    x, y = labelled_batch()
    for seed in range(20):
        torch.manual_seed(seed)
        mixed, soft, dominant = Mixer(num_classes=4, cutmix_alpha=1.0)(x, y)
        pasted = (mixed != x).float()[:, 0].mean(dim=(1, 2))  # fraction from the partner
        lam = soft[0, y[0]] if y[0] != y.flip(0)[0] else None
        # Every image has the partner's pixels in the same box: 1 - lambda of its area.
        assert torch.allclose(pasted, pasted[0].expand(6))
        if lam is not None:
            assert float(lam) == pytest.approx(1 - float(pasted[0]), abs=1e-6)
        assert torch.equal(dominant, y if float(pasted[0]) <= 0.5 else y.flip(0))


def test_both_alphas_switch_between_mixup_and_cutmix() -> None:
    torch.manual_seed(1)
    mixer = Mixer(num_classes=4, mixup_alpha=0.2, cutmix_alpha=1.0)
    methods = [mixer.choose()[0] for _ in range(400)]
    assert 150 < methods.count("cutmix") < 250  # switch probability 0.5
    assert make_mixer({"mixup_alpha": 0, "cutmix_alpha": 0}, "classification", 4) is None
    assert make_mixer({"mixup_alpha": 0.2, "cutmix_alpha": 0}, "segmentation", None) is None


# --- EMA --------------------------------------------------------------------------------------


def test_ema_decays_as_configured() -> None:
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = ModelEma(model, decay=0.9)
    expected = 0.0
    for step in range(30):
        with torch.no_grad():
            model.weight.fill_(float(step + 1))
        d = min(0.9, (1 + step) / (10 + step))
        expected = d * expected + (1 - d) * (step + 1)
        ema.update(model)
        assert float(ema.module.weight[0, 0]) == pytest.approx(expected, rel=1e-6)
    # After the warm-up, the decay is the configured one.
    assert warmup_decay(0.9, 100) == 0.9 and warmup_decay(0.999, 0) == pytest.approx(0.1)
    saved = ema.state_dict()
    assert eval_weights({"model": model.state_dict(), "ema": saved}) is saved["model"]
    assert eval_weights({"model": model.state_dict(), "ema": None}) is not saved["model"]


def test_ema_updates_after_each_optimizer_step() -> None:
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    from trainables.ema import make_ema

    ema = make_ema(model, opt, 0.5)
    assert make_ema(model, opt, 0.0) is None
    for _ in range(3):
        opt.zero_grad()
        model(torch.ones(1, 2)).sum().backward()
        opt.step()
    assert ema.updates == 3


# --- TTA --------------------------------------------------------------------------------------


class LeftRight(nn.Module):
    """Logits from the left and right halves: a flip swaps them."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.shape[-1]
        return torch.stack([x[..., : w // 2].mean((1, 2, 3)), x[..., w // 2 :].mean((1, 2, 3))], 1)


def test_tta_averages_the_softmax_of_image_and_flip() -> None:
    x = torch.randn(5, 3, 4, 6)
    model = LeftRight()
    out = flip_tta(model, x, "classification")
    expected = (model(x).softmax(1) + model(x.flip(-1)).softmax(1)) / 2
    assert torch.allclose(out.exp(), expected, atol=1e-6)
    # This model's flip swaps the two logits: the average is exactly uniform.
    assert torch.allclose(out.exp(), torch.full_like(out, 0.5), atol=1e-6)
    seg = nn.Conv2d(3, 1, 3, padding=1)
    mask = flip_tta(seg, x, "segmentation")
    want = (torch.sigmoid(seg(x)) + torch.sigmoid(seg(x.flip(-1))).flip(-1)) / 2
    assert torch.allclose(torch.sigmoid(mask), want, atol=1e-5)


# --- stochastic depth -------------------------------------------------------------------------


TINY = {"model": "resnet", "channels": (8, 16), "blocks": (2, 2), "stem": "cifar", "num_classes": 3}


def test_drop_path_rises_linearly_and_is_off_in_eval() -> None:
    model = build_model({**TINY, "drop_path": 0.3})
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    rates = [getattr(b.drop_path, "p", 0.0) for b in blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3])
    plain = build_model(TINY)
    plain.load_state_dict(model.state_dict())  # same parameters: stochastic depth adds none
    x = torch.randn(4, 3, 8, 8)
    model.eval(), plain.eval()
    assert torch.equal(model(x), plain(x))
    with pytest.raises(ValueError, match="drop_path"):
        build_model({**TINY, "drop_path": 1.0})


def test_drop_path_drops_whole_residual_branches_in_training() -> None:
    torch.manual_seed(0)
    drop = DropPath(0.5).train()
    branch = torch.randn(64, 4, 3, 3)
    out = drop(branch)
    dropped = (out == 0).flatten(1).all(1)
    kept = torch.isclose(out, branch * 2).flatten(1).all(1)
    assert bool((dropped | kept).all())  # each sample: all of the branch, or none of it
    assert 10 < int(dropped.sum()) < 54
    # In a block: a dropped sample's output is act(shortcut(x)) alone.
    model = build_model({**TINY, "drop_path": 0.9}).train()
    block = model.stages[1][1]
    x = torch.randn(32, 16, 4, 4)
    torch.manual_seed(1)
    y = block(x)
    identity = block.act2(block.shortcut(x))
    assert 0 < int(torch.isclose(y, identity).flatten(1).all(1).sum()) < 32


# --- optimizer presets ------------------------------------------------------------------------


def test_sgd_nesterov_onecycle_preset_and_its_lr_shape() -> None:
    trainer = apply_preset(
        {
            "optim_preset": "sgd_nesterov_onecycle",
            "optimizer": "adam",
            "scheduler": "none",
            "lr": 0.1,
            "weight_decay": 5e-4,
            "momentum": 0.0,
            "epochs": 10,
        }
    )
    assert (trainer["optimizer"], trainer["scheduler"], trainer["momentum"]) == (
        "sgd",
        "onecycle",
        0.9,
    )
    opt = build_optimizer(nn.Linear(2, 2), trainer)
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["nesterov"]
    sched, per_batch = build_scheduler(opt, trainer, steps_per_epoch=10)
    assert per_batch
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    peak = int(np.argmax(lrs))
    assert lrs[0] == pytest.approx(0.1 / 25)  # warm-up starts at lr / div_factor
    assert max(lrs) == pytest.approx(0.1, rel=1e-3) and 28 <= peak <= 31  # 30% of the steps
    assert all(a <= b for a, b in itertools.pairwise(lrs[: peak + 1]))
    assert all(a >= b for a, b in itertools.pairwise(lrs[peak:]))
    assert lrs[-1] < 0.1 / 25 / 100  # annealed far below the start
    adamw = apply_preset({"optim_preset": "adamw_cosine", "optimizer": "sgd", "scheduler": "none"})
    assert (adamw["optimizer"], adamw["scheduler"]) == ("adamw", "cosine")


# --- config validation ------------------------------------------------------------------------


BASE = {"dataset": "tiny_imagenet", **{k: v for k, v in TINY.items() if k != "num_classes"}}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("mixup_alpha", -0.2, r"mixup_alpha=-0.2 must be a number >= 0"),
        ("cutmix_alpha", "yes", r"cutmix_alpha='yes'"),
        ("ema_decay", 1.0, r"ema_decay=1.0 must be a number in \[0, 1\)"),
        ("tta", 1, r"tta=1 must be True or False"),
        ("epoch_fraction", 0, r"epoch_fraction=0 must be a number in \(0, 1\]"),
        ("optim_preset", "lion", r"optim_preset='lion'.*sgd_nesterov_onecycle"),
    ],
)
def test_bad_regularizer_values_name_the_valid_ones(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config({**BASE, key: value}, "classification")


def test_epoch_fraction_shortens_the_run_and_smoke_still_wins() -> None:
    from trainables.contract import planned_epochs

    assert planned_epochs({"epochs": 100, "epoch_fraction": 0.6}) == 60
    assert planned_epochs({"epochs": 100}) == 100
    assert planned_epochs({"epochs": 1, "epoch_fraction": 0.4}) == 1  # --smoke: one epoch


def test_mixing_is_refused_for_segmentation() -> None:
    unet = {"dataset": "lunar", "model": "unet"}
    with pytest.raises(ConfigError, match=r"mixup_alpha=0\.2: mixing images needs class labels"):
        validate_config({**unet, "mixup_alpha": 0.2}, "segmentation")
    validate_config(
        {
            **BASE,
            "mixup_alpha": 0.2,
            "cutmix_alpha": 1.0,
            "ema_decay": 0.99,
            "tta": True,
            "drop_path": 0.1,
        },
        "classification",
    )


# --- in the loop: mixing, EMA val, resume with EMA ------------------------------------------


@pytest.mark.slow  # ~10-20 s on the shared 2-core machine: three short trials and two evaluations
def test_trial_with_every_regularizer_resumes_exactly(tmp_path: Path) -> None:
    """Mixup + CutMix + EMA + drop path + the SGD preset through the real loop; stopped after
    epoch 1 and resumed, the trial ends where an uninterrupted one does (EMA included), and
    the evaluation uses the EMA weights with TTA."""
    from tests.test_loop import base_config, run_local
    from trainables.data import DataSpec, load_bundle, write_tiny_imagenet
    from trainables.evaluate import evaluate_state
    from trainables.ray_io import load_state

    root = write_tiny_imagenet(
        tmp_path / "tiny-imagenet-200", n_classes=3, train_per_class=8, val_per_class=4
    )
    spec = DataSpec("tiny_imagenet", path=root, image_size=16)  # 16 px: seconds, not tens
    bundle = load_bundle(spec, cache_dir=tmp_path / "cache")
    config = base_config(
        epochs=2,
        image_size=16,
        mixup_alpha=0.4,
        cutmix_alpha=1.0,
        ema_decay=0.9,
        drop_path=0.2,
        optim_preset="sgd_nesterov_onecycle",
        tta=True,
        precision="fp32",
    )  # "auto"'s first probe draws from torch's RNG
    straight = run_local(config, bundle, tmp_path / "straight")
    first = run_local(config, bundle, tmp_path / "resumed")
    first.reports = first.reports[:1]
    first.checkpoint_dir = tmp_path / "resumed" / "checkpoint_000000"
    resumed = run_local(config, bundle, tmp_path / "resumed", session=first)
    assert [r["epoch"] for r in resumed.reports] == [1, 2]
    for a, b in zip(straight.reports, resumed.reports, strict=True):
        for key in ("train_loss", "val_loss", "val_loss_raw", "lr"):
            assert a[key] == pytest.approx(b[key], rel=1e-5), key
    last = straight.reports[-1]
    assert last["val_loss"] != last["val_loss_raw"]  # val is of the EMA weights
    state = load_state(straight.checkpoint_dir)
    assert state["ema"]["updates"] == 2 * 2  # 24 images in batches of 16, two epochs
    plain = {**state, "config": {**state["config"], "tta": False}}
    record, _ = evaluate_state(plain, bundle, "classification", "final", None)
    assert record.val_metrics["val_loss"] == pytest.approx(last["val_loss"], rel=1e-4)
    with_tta, _ = evaluate_state(state, bundle, "classification", "final", None)
    assert with_tta.val_metrics["val_loss"] != record.val_metrics["val_loss"]
