"""Issue 20's figure rules, on run folders built from the contract records (no training).

Every figure states its budget; tied points are drawn side by side (none hides another); each
loss function and each data set gets its own axis; titles, row labels and legends cover nothing;
gradient flow is plotted against named blocks aligned across trials of different depth; feature
map rows give the layer's own size; frozen encoder gradients are marked; a trial without maps is
named with its reason. The same rules on a real tiny run: tests/test_report_course_b1_e1.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from PIL import Image

from analysis import figures, probe_figures
from analysis.evaluation import Evaluation
from analysis.probe_figures import Probes
from analysis.rundir import Trial, load_study
from trainables.contract import PROBES_JSON, StudyRecord

try:  # tests/ is a rootdir-relative folder, not a package, unless someone adds __init__.py
    from tests.report_fixtures import BASE, _stage, _trial, _write_record, curve
except ImportError:
    from report_fixtures import BASE, _stage, _trial, _write_record, curve


def _study(root: Path, stages: list, data: dict, trainable: str = "classification") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    metric = "val_iou" if trainable == "segmentation" else "val_acc"
    rec = StudyRecord(
        study=root.name,
        trainable=trainable,
        metric=metric,
        mode="max",
        status="finished",
        data=data,
        stages=stages,
        run_settings={"smoke": True},
    )
    _write_record(root / "study.json", rec)
    return root


def _png_text(path: Path, key: str) -> str:
    with Image.open(path) as im:
        return im.text[key]


def _points_apart(path: Path, min_px: float) -> None:
    """No two data points of one axes closer than min_px (pixel centres in the PNG)."""
    per_axes = json.loads(_png_text(path, figures.POINTS_KEY))
    assert per_axes, f"{path.name} records no points"
    for pts in per_axes:
        xy = np.asarray(pts)
        for i in range(len(xy)):
            for j in range(i + 1, len(xy)):
                d = float(np.hypot(*(xy[i] - xy[j])))
                assert d >= min_px, f"{path.name}: points {xy[i]} and {xy[j]} {d:.1f} px apart"


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[plt.Figure]:
    """The figures handed to save(), drawn and kept open for a look at their layout."""
    kept: list[plt.Figure] = []
    original = figures.save

    def keep(fig: plt.Figure, path: Path, **kw: object) -> bool:
        kept.append(fig)
        return original(fig, path, **kw)

    monkeypatch.setattr(plt, "close", lambda *a, **k: None)  # keep them open for the test
    monkeypatch.setattr(figures, "save", keep)
    monkeypatch.setattr(probe_figures, "save", keep)
    return kept


def _tied_run(root: Path) -> Path:
    """A stage whose three trials end on the same val accuracy with the same parameters
    (two identical curves: a reused configuration), across MNIST and CIFAR-10 stages."""
    mnist = BASE | {"dataset": "mnist", "image_size": 28, "epochs": 2, "max_batches": 2}
    cifar = BASE | {"dataset": "cifar10", "image_size": 32, "epochs": 2, "max_batches": 2}
    same = curve(2, peak=0.5)
    a = [
        _trial("fc", "a1", "C.1-A", mnist | {"width": 64}, 100_000, "completed", same, root=root),
        _trial(
            "fc",
            "a2",
            "C.1-B",
            mnist | {"width": 64, "seed": 1},
            100_000,
            "completed",
            same,
            root=root,
        ),
        _trial(
            "fc",
            "a3",
            "C.1-C",
            mnist | {"width": 128},
            200_000,
            "completed",
            curve(2, peak=0.6),
            root=root,
        ),
    ]
    b = [
        _trial("cnn", "b1", "C.2-A", cifar, 100_000, "completed", same, root=root),
        _trial("cnn", "b2", "C.2-B", cifar | {"seed": 1}, 100_000, "completed", same, root=root),
    ]
    return _study(
        root,
        [
            _stage("fc", "C.1 FC on MNIST", ["width"], a, epochs=2),
            _stage("cnn", "C.2 CNN on CIFAR-10", ["seed"], b, epochs=2),
        ],
        {"dataset": "cifar10", "train": 400},
    )


def test_tied_points_are_side_by_side_and_named(tmp_path: Path) -> None:
    study = load_study(_tied_run(tmp_path / "run"))
    path = tmp_path / "compare.png"
    assert figures.comparison(study.stages[0], study, path)
    _points_apart(path, 2 * figures.MARKER_PX)
    caption = " ".join(json.loads(_png_text(path, figures.CAPTION_KEY)))
    assert "Tied (drawn side by side): C.1-A = C.1-B at epoch 1" in caption
    assert figures.params_vs_score(study, tmp_path / "params.png")
    _points_apart(tmp_path / "params.png", 2 * figures.MARKER_PX)
    assert figures.learning_curves(study.stages[0], study, tmp_path / "curves.png")
    _points_apart(tmp_path / "curves.png", 6)  # train and val of A and B, both epochs


def test_params_vs_score_has_one_panel_per_data_set(tmp_path: Path) -> None:
    study = load_study(_tied_run(tmp_path / "run"))
    path = tmp_path / "params.png"
    assert figures.params_vs_score(study, path)
    assert len(json.loads(_png_text(path, figures.AXES_KEY))) == 2  # mnist, cifar10
    points = json.loads(_png_text(path, figures.POINTS_KEY))
    assert sorted(map(len, points)) == [2, 3]  # every trial drawn, none hidden


def test_every_figure_states_its_budget(tmp_path: Path) -> None:
    from analysis.report import main

    run = _tied_run(tmp_path / "run")
    assert main([str(run)]) == 0
    pngs = sorted((run / "report" / "figures").glob("*.png"))
    assert len(pngs) >= 5
    for png in pngs:
        budget = _png_text(png, figures.BUDGET_KEY)
        assert budget.startswith("Budget: smoke run (--smoke); "), (png.name, budget)
        assert "2 ep, 28px" in budget or "2 ep, 32px" in budget, (png.name, budget)
        assert "batches/ep" in budget, (png.name, budget)
    with pytest.raises(ValueError, match="budget"):
        figures.save(plt.figure(), tmp_path / "x.png", budget=" ")


def test_losses_get_their_own_axes_and_titles_do_not_overlap(
    tmp_path: Path, captured: list[plt.Figure]
) -> None:
    seg = BASE | {"model": "unet", "dataset": "lunar", "image_size": 64, "epochs": 3}
    trials = [
        _trial(
            "loss",
            f"l{i}",
            f"B.2.2-{'ABC'[i]}",
            seg | {"loss": loss},
            10,
            "completed",
            curve(3, peak=0.4 + i / 10, seg=True),
            metric="val_iou",
            root=tmp_path / "r",
        )
        for i, loss in enumerate(("bce", "dice", "bce_dice"))
    ]
    stage = _stage(
        "loss",
        "B.2.2 Loss: a long stage title that ran into the next panel's one",
        ["loss"],
        trials,
        epochs=3,
        metric="val_iou",
    )
    study = load_study(_study(tmp_path / "r", [stage], {"dataset": "lunar"}, "segmentation"))
    path = tmp_path / "curves.png"
    assert figures.learning_curves(study.stages[0], study, path)
    assert len(json.loads(_png_text(path, figures.AXES_KEY))) == 4  # IoU + one per loss
    fig = captured[-1]
    titles = [ax.title for ax in fig.axes if ax.get_title()] + [fig._suptitle]
    assert [ax.get_ylabel() for ax in fig.axes[1:]] == [
        "loss (BCE)",
        "loss (Dice loss)",
        "loss (0.5 BCE + 0.5 Dice)",
    ]
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in titles]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)


def test_comparison_legend_is_outside_the_data_area(
    tmp_path: Path, captured: list[plt.Figure]
) -> None:
    study = load_study(_tied_run(tmp_path / "run"))
    assert figures.comparison(study.stages[0], study, tmp_path / "c.png")
    fig = captured[-1]
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    assert not ax.get_legend().get_window_extent(renderer).overlaps(ax.get_window_extent())


def _probe(
    name: str,
    layers: list[str],
    norms: list[float],
    config: dict | None = None,
    sizes: list[tuple[int, int]] | None = None,
    maps: int = 0,
) -> Probes:
    trial = Trial(label=name, status="completed", config=config or {}, epochs_run=1)
    grads = {"1": [{"layer": n, "norm": v} for n, v in zip(layers, norms, strict=True)]}
    rng = np.random.default_rng(0)
    return Probes(
        trial,
        grads,
        [],
        layers=layers[:maps],
        maps=[rng.random((4, 32, 32)).astype(np.float32) for _ in range(maps)],
        image=np.zeros((64, 64, 3), np.uint8) if maps else None,
        sizes=sizes,
    )


RESNET_1 = [
    "stem.conv",
    "stages.0.0.conv1",
    "stages.0.0.conv2",
    "stages.1.0.conv1",
    "stages.1.0.conv2",
    "stages.1.0.shortcut.0",
    "head.fc",
]
RESNET_2 = [
    "stem.conv",
    "stages.0.0.conv1",
    "stages.0.0.conv2",
    "stages.0.1.conv1",
    "stages.0.1.conv2",
    "stages.1.0.conv1",
    "stages.1.0.conv2",
    "stages.1.0.attn.fc1",
    "stages.1.1.conv1",
    "stages.1.1.conv2",
    "head.fc",
]


def test_gradient_flow_is_plotted_against_blocks_aligned_by_name(tmp_path: Path) -> None:
    probes = [
        _probe("A", RESNET_1, [1.0] * len(RESNET_1)),
        _probe("B", RESNET_2, [2.0] * len(RESNET_2)),
    ]
    path = tmp_path / "g.png"
    assert probe_figures.gradient_flow(probes, "depth", path, budget="Budget: test")
    ticks = json.loads(_png_text(path, figures.XTICKS_KEY))[0]
    assert ticks == ["stem.conv", "stages.0.0", "stages.0.1", "stages.1.0", "stages.1.1", "head.fc"]
    # The same block sits at the same x in both lines: A's points at 0, 1, 3, 5 share their
    # pixel columns with B's.
    a, b = (
        np.asarray(p)
        for p in np.split(np.asarray(json.loads(_png_text(path, figures.POINTS_KEY))[0]), [4])
    )
    assert set(np.round(a[:, 0], 1)) <= set(np.round(b[:, 0], 1))
    assert probe_figures.block_of("encoder.levels.2.block.conv1.conv") == "encoder.levels.2"
    assert probe_figures.block_of("features.10.gate") == "features.10"
    assert probe_figures.block_of("features.3.fc1") is None  # squeeze-excitation
    assert probe_figures.block_of("layers.5") == "layers.5"


def test_depth_maps_rows_give_the_layers_own_size(
    tmp_path: Path, captured: list[plt.Figure]
) -> None:
    names = [
        "encoder.levels.0.conv1.conv",
        "encoder.levels.0.conv2.conv",
        "encoder.levels.1.block.conv1.conv",
        "encoder.levels.1.block.conv2.conv",
    ]
    probe = _probe(
        "U", names, [1.0] * 4, sizes=[(128, 128), (128, 128), (64, 64), (64, 64)], maps=4
    )
    assert probe_figures.depth_maps(
        probe, "U-Net by depth", tmp_path / "d.png", budget="Budget: test"
    )
    fig = captured[-1]
    labels = [ax.yaxis.label for ax in fig.axes if ax.get_ylabel()]
    assert [lb.get_text().split("\n")[-1] for lb in labels] == [
        "128x128",
        "128x128",
        "64x64",
        "64x64",
    ]
    renderer = fig.canvas.get_renderer()
    boxes = [lb.get_window_extent(renderer) for lb in labels]
    for i, a in enumerate(boxes):  # long U-Net names no longer run into each other
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)
    old = _probe("U", names, [1.0] * 4, maps=4)  # a run recorded before the sizes were kept
    assert probe_figures.size_text(old, 0) == "pooled to 32x32; own size not recorded"


def test_frozen_encoder_gradients_are_marked(tmp_path: Path) -> None:
    assert figures.encoder_frozen({"freeze_schedule": "frozen"}, 1)
    assert figures.encoder_frozen({"freeze_schedule": "unfreeze_at", "unfreeze_epoch": 10}, 1)
    assert not figures.encoder_frozen({"freeze_schedule": "unfreeze_at", "unfreeze_epoch": 2}, 3)
    ev = Evaluation(
        stage="frozen",
        trial_id="t",
        task="segmentation",
        grad_norms=[
            {"layer": "encoder.stem.conv", "norm": 0.5},
            {"layer": "decoder.head", "norm": 1.0},
        ],
    )
    for frozen in (True, False):
        path = tmp_path / f"g{frozen}.png"
        assert figures.gradient_flow(ev, path, budget="Budget: test", frozen=frozen)
        caption = json.loads(_png_text(path, figures.CAPTION_KEY))
        assert (figures.FROZEN_NOTE in caption) is frozen


def test_trials_without_maps_are_named_with_the_reason(tmp_path: Path) -> None:
    rows = curve(1, peak=0.3)
    trials = [
        _trial("s", f"t{i}", f"S-{'ABCDE'[i]}", BASE, 10, status, rows, root=tmp_path / "r")
        for i, status in enumerate(["completed", "asha_stopped", "completed", "completed"])
    ]
    trials.append(_trial("s", "t9", "S-E", BASE, 10, "infeasible", None))
    probes_json = [
        {"grad_norms": {}, "receptive_fields": [], "feature_layers": []},
        {"grad_norms": {}, "receptive_fields": []},
        {
            "grad_norms": {},
            "receptive_fields": [
                {"layer": "features.0", "kind": "GatedConv2d", "kernel": 3, "stride": 1, "rf": 3}
            ],
            "feature_layers": [],
        },
    ]
    for t, raw in zip(trials, probes_json, strict=False):
        (tmp_path / "r" / t.trial_dir / PROBES_JSON).write_text(json.dumps(raw))
    study = load_study(
        _study(
            tmp_path / "r", [_stage("s", "S", [], trials, epochs=1)], {"dataset": "tiny_imagenet"}
        )
    )
    stage = study.stages[0]
    missing = probe_figures.missing_maps(stage, probe_figures.stage_probes(study, stage))
    assert missing == [
        "S-A: the model has no conv layer (a fully connected model has no feature maps)",
        "S-B: asha_stopped after epoch 1; maps are taken at a trial's last epoch, which it "
        "never reached",
        "S-C: its conv layers (GatedConv2d) were not recognised by the probe of this run "
        "(before issue 20 only nn.Conv2d layers were recorded); run it again for maps",
        "S-D: no probes.json in its folder (a run from before the probes, or not synced)",
        "S-E: infeasible, never trained",
    ]


def test_probe_records_gated_conv_maps_and_each_layers_own_size() -> None:
    from trainables.models import build_model
    from trainables.trial_probes import feature_maps

    torch.manual_seed(0)
    gated = build_model(
        {
            "model": "simple_cnn",
            "channels": (8, 16),
            "conv": "gated",
            "num_classes": 3,
            "in_channels": 3,
        }
    )
    maps = feature_maps(gated, torch.randn(1, 3, 64, 64))
    assert list(maps) == ["features.0", "features.5"]  # every GatedConv2d, none left out
    assert maps["features.0"].shape[-2:] == (32, 32)  # pooled for the file...
    assert maps.sizes["features.0"] == (64, 64)  # ...but its own size is kept
