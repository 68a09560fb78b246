"""Each report section's tables and figures exist and show something (issue 12's "done when").

A figure counts as non-empty when its data area (the inside of each axes, whose pixel box the
report stores in the PNG, see analysis.figures.save) holds more than one distinct colour, the
white background and light grid lines counting as one. Also: the issue-12 fixes (per-stage data
in the header, % summary, budget on every score table, stage titles on evaluations, fixed mask
scale, integer epoch ticks, labels that do not overlap), stability numbers, written conclusions
and the Optuna figures, on fixture run directories built from the contract records.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from analysis import figures
from analysis.conclusions import stage_conclusions
from analysis.optuna_figures import infer_distribution, rebuild_study
from analysis.report import main
from analysis.rundir import load_study
from analysis.summary import last_epochs_std
from trainables.contract import EvaluationRecord, StudyRecord

try:  # tests/ is a rootdir-relative folder, not a package, unless someone adds __init__.py
    from tests.report_fixtures import (
        BASE,
        _stage,
        _trial,
        _write_record,
        curve,
        write_classification_run,
        write_segmentation_run,
    )
except ImportError:
    from report_fixtures import (
        BASE,
        _stage,
        _trial,
        _write_record,
        curve,
        write_classification_run,
        write_segmentation_run,
    )


# --- the non-empty-figure check ---------------------------------------------------------------


def _is_background(rgb: np.ndarray) -> np.ndarray:
    """White and the light grey of grid lines and their crossings (achromatic, >= 200)."""
    return (rgb.min(axis=-1) >= 200) & (np.ptp(rgb, axis=-1) <= 12)


def data_area_colours(path: Path) -> list[int]:
    """Distinct colours (quantized to 32 levels) inside each data area of a report PNG."""
    with Image.open(path) as im:
        boxes = json.loads(im.text[figures.AXES_KEY])
        rgb = np.asarray(im.convert("RGB")).astype(int)
    counts = []
    for left, top, right, bottom in boxes:
        inner = rgb[top + 3 : bottom - 2, left + 3 : right - 2]  # inside the spines
        assert inner.size, f"{path.name}: empty axes box {left, top, right, bottom}"
        px = inner.reshape(-1, 3)
        bg = _is_background(px)
        colours = {tuple(c) for c in (px[~bg] // 8).tolist()}
        counts.append(len(colours) + int(bg.any()))
    return counts


def assert_figure_has_data(path: Path) -> None:
    """Every data area of the figure holds more than one distinct colour."""
    counts = data_area_colours(path)
    assert counts, f"{path.name} records no data area"
    assert all(n > 1 for n in counts), f"{path.name}: data areas with one colour: {counts}"


def test_blank_axes_fail_the_check(tmp_path: Path) -> None:
    """The check can fail: an axes with only a frame and grid lines is empty."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.grid(alpha=0.3)
    ax.set_xlim(0, 10)
    figures.save(fig, tmp_path / "blank.png", budget="Budget: none")
    with pytest.raises(AssertionError, match="one colour"):
        assert_figure_has_data(tmp_path / "blank.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.grid(alpha=0.3)
    ax.plot([1, 2, 3], [1, 3, 2], "o-")
    figures.save(fig, tmp_path / "line.png", budget="Budget: none")
    assert_figure_has_data(tmp_path / "line.png")


# --- fixtures ----------------------------------------------------------------------------------


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def cls_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = write_classification_run(tmp_path_factory.mktemp("cls") / "resnet_tiny")
    assert main([str(run)]) == 0
    return run / "report"


@pytest.fixture(scope="module")
def seg_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = write_segmentation_run(tmp_path_factory.mktemp("seg") / "unet_moon")
    assert main([str(run)]) == 0
    return run / "report"


def _write_study(root: Path, stages: list, data: dict, **kw: object) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    study = StudyRecord(
        study=root.name,
        trainable=kw.pop("trainable", "classification"),  # type: ignore[arg-type]
        metric=kw.pop("metric", "val_acc"),  # type: ignore[arg-type]
        mode="max",
        status="finished",
        data=data,
        stages=stages,
        **kw,  # type: ignore[arg-type]
    )
    _write_record(root / "study.json", study)
    return root


def write_seeded_run(root: Path) -> Path:
    """Three MNIST trials (one configuration, seeds 0-2) and a CIFAR stage after them."""
    mnist = BASE | {"dataset": "mnist", "classes": 10, "image_size": 28, "model": "fc", "epochs": 6}
    seeded = [
        _trial(
            "fc",
            f"s{i}",
            f"C.1-A s{i}",
            mnist | {"seed": i, "width": 512},
            567_434,
            "completed",
            curve(6, peak=0.90 + 0.004 * i),
            root=root,
        )
        for i in range(3)
    ] + [
        _trial(
            "fc",
            f"w{i}",
            f"C.1-B s{i}",
            mnist | {"seed": i, "width": 64},
            52_650,
            "completed",
            curve(6, peak=0.86 + 0.004 * i),
            root=root,
        )
        for i in range(3)
    ]
    cifar = BASE | {
        "dataset": "cifar10",
        "classes": 10,
        "image_size": 32,
        "max_batches": 5,
        "epochs": 4,
    }
    cnn = [_trial("cnn", "k1", "C.2-A", cifar, 120_000, "completed", curve(4, peak=0.5), root=root)]
    return _write_study(
        root,
        [
            _stage("fc", "C.1 FC net on MNIST", ["width"], seeded, epochs=6),
            _stage("cnn", "C.2 CNN on CIFAR-10", [], cnn, epochs=4),
        ],
        {
            "dataset": "cifar10",
            "folder": "cifar-10-batches-py",
            "targets": "10 classes",
            "train": 45000,
            "val": 5000,
            "test": 10000,
            "image_size": 32,
        },
        run_settings={"set": {"max_batches": 5}, "smoke": True},
    )


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = write_seeded_run(tmp_path_factory.mktemp("seeded") / "cnn_vs_fc")
    assert main([str(run)]) == 0
    return run


def write_optuna_run(root: Path) -> Path:
    rng = np.random.default_rng(3)
    trials = []
    for i in range(8):
        lr = float(10 ** rng.uniform(-4, -1))
        drop = float(rng.uniform(0.0, 0.5))
        peak = 0.6 - 0.08 * abs(math.log10(lr) + 2.5) - 0.05 * drop
        status = "asha_stopped" if i == 5 else "completed"
        trials.append(
            _trial(
                "tune",
                f"o{i}",
                f"T-{i}",
                BASE | {"lr": lr, "dropout": drop},
                1_000_000,
                status,
                curve(2 if status == "asha_stopped" else 6, peak=peak),
                root=root,
            )
        )
    stage = _stage("tune", "Optuna over lr and dropout", ["lr", "dropout"], trials, epochs=6)
    stage.search = "optuna"
    return _write_study(root, [stage], {"dataset": "tiny_imagenet", "train": 4000})


# --- header, summary, budget --------------------------------------------------------------------


def test_header_names_each_stages_own_data(seeded: Path) -> None:
    md = (seeded / "report" / "report.md").read_text()
    header = md.split("## Summary", 1)[0]
    fc = next(ln for ln in header.splitlines() if ln.startswith("- C.1 FC net on MNIST:"))
    cnn = next(ln for ln in header.splitlines() if ln.startswith("- C.2 CNN on CIFAR-10:"))
    assert "data set mnist" in fc and "28px" in fc and "cifar" not in fc
    assert "data set cifar10" in cnn and "45000 train" in cnn and "32px" in cnn
    assert "smoke run (--smoke)" in header and "--set max_batches=5" in header


def test_mars_tiles_are_not_called_one_class(tmp_path: Path) -> None:
    run = write_segmentation_run(tmp_path / "unet_mars")
    study = json.loads((run / "study.json").read_text())
    study["data"] = {
        "dataset": "lunar",
        "folder": "MARS_ROCKS_BINARY",
        "class_names": ["rock"],
        "targets": "binary masks",
        "train": 700,
        "val": 100,
        "test": 200,
    }
    for st in study["stages"]:
        for t in st["trials"]:
            t["config"] |= {"dataset": "lunar", "data_dir": "/data/MARS_ROCKS_BINARY"}
    (run / "study.json").write_text(json.dumps(study))
    assert main([str(run)]) == 0
    header = (run / "report" / "report.md").read_text().split("## Summary", 1)[0]
    assert "1 classes" not in header and "1 class" not in header
    assert "folder MARS_ROCKS_BINARY" in header and "binary masks" in header


def test_summary_in_percent_with_shared_settings_once(cls_report: Path) -> None:
    md = (cls_report / "report.md").read_text()
    summary = md.split("## Summary", 1)[1].split("\n## ", 1)[0]
    assert "Same in every row: " in summary
    same = summary.split("Same in every row: ", 1)[1].split("\n", 1)[0]
    assert "optimizer=adam" in same and "batch_size=128" in same
    rows = [ln for ln in summary.splitlines() if ln.startswith("| ") and "3.1-A" in ln]
    assert rows and "optimizer" not in rows[0]
    csv_rows = _read_csv(cls_report / "tables" / "summary.csv")
    raw = float(csv_rows[1]["val_acc_best"])  # the CSV keeps the fraction
    assert 0 < raw < 1
    assert f"**{100 * raw:.1f}%**" in rows[0]  # the page shows it as a percentage


def test_every_score_table_states_the_budget(cls_report: Path, seg_report: Path) -> None:
    for report in (cls_report, seg_report):
        for path in (report / "tables").glob("*.csv"):
            rows = _read_csv(path)
            scored = any(k.startswith(("val_", "test_")) for k in (rows[0] if rows else {}))
            if scored:
                assert "budget" in rows[0], f"{path.name} shows scores without a budget"
    rows = _read_csv(cls_report / "tables" / "summary.csv")
    assert rows[0]["budget"] == "8 ep, 64px, 10 classes, full train set"
    final = _read_csv(cls_report / "tables" / "test_metrics_final.csv")
    assert final[0]["budget"] == "12 ep, 64px, 10 classes, full train set"


def test_smoke_budget_shows_the_data_share(seeded: Path) -> None:
    rows = {r["trial"]: r for r in _read_csv(seeded / "report" / "tables" / "stage_cnn.csv")}
    # 5 batches of 128 images of 45000 training images
    assert rows["C.2-A"]["budget"] == "4 ep, 32px, 10 classes, 5 batches/ep (1.4% of train)"
    md = (seeded / "report" / "report.md").read_text()
    assert "smoke run (--smoke): every number below" in md


def test_evaluation_headings_use_stage_titles(cls_report: Path, seg_report: Path) -> None:
    md = (cls_report / "report.md").read_text()
    assert "## Test evaluation: Final model" in md
    assert "## Test evaluation: final" not in md
    seg = (seg_report / "report.md").read_text()
    assert "## Test evaluation: U-Net with classifier encoder" in seg
    assert "### Architecture (Base U-Net)" in seg


# --- every section's tables and figures ---------------------------------------------------------


def test_each_section_has_non_empty_tables_and_figures(cls_report: Path, seg_report: Path) -> None:
    expect = {
        cls_report: {
            "tables": [
                "summary",
                "best_per_stage",
                "all_trials",
                "stage_baseline",
                "stage_channels",
                "stage_depth",
                "stage_final",
                "test_metrics_final",
                "per_class_final",
                "most_confused_final",
            ],
            "figures": [
                "params_vs_score",
                "curves_baseline",
                "curves_channels",
                "curves_depth",
                "curves_final",
                "compare_channels",
                "compare_depth",
                "confusion_final",
                "samples_final",
                "gradflow_final",
            ],
        },
        seg_report: {
            "tables": [
                "summary",
                "stage_unet",
                "stage_backbone",
                "test_metrics_unet",
                "test_metrics_backbone",
                "test_metrics",
            ],
            "figures": [
                "curves_unet",
                "curves_backbone",
                "compare_backbone",
                "triptych_unet",
                "triptych_backbone",
                "params_vs_score",
            ],
        },
    }
    for report, want in expect.items():
        md = (report / "report.md").read_text()
        for name in want["tables"]:
            rows = _read_csv(report / "tables" / f"{name}.csv")
            assert rows, f"{name}.csv has no rows"
            assert any(v not in ("", None) for r in rows for v in r.values())
        for name in want["figures"]:
            path = report / "figures" / f"{name}.png"
            assert_figure_has_data(path)
            assert f"figures/{name}.png" in md, f"{name} not on the page"


def test_stage_section_has_table_conclusions_and_figures_in_order(cls_report: Path) -> None:
    md = (cls_report / "report.md").read_text()
    section = md.split("## Stage: 3.2 Depth", 1)[1].split("\n## ", 1)[0]
    table = section.index("| trial | configuration |")
    conclusions = section.index("### Conclusions (3.2 Depth)")
    curves = section.index("figures/curves_depth.png")
    assert table < conclusions < curves


# --- stability (E.2) ---------------------------------------------------------------------------


def test_stability_columns(seeded: Path) -> None:
    rows = {r["trial"]: r for r in _read_csv(seeded / "report" / "tables" / "stage_fc.csv")}
    study = load_study(seeded)
    trial = study.stages[0].trials[0]
    last = [r["val_acc"] for r in trial.curve[-3:]]
    assert float(rows["C.1-A s0"]["val_acc_std_last3"]) == pytest.approx(np.std(last))
    assert last_epochs_std(trial, "val_acc") == pytest.approx(np.std(last))
    bests = [t.best["val_acc"] for t in study.stages[0].trials[:3]]
    assert float(rows["C.1-A s1"]["seed_std"]) == pytest.approx(np.std(bests, ddof=1))
    assert rows["C.1-A s1"]["seeds"] == "3"
    cnn = _read_csv(seeded / "report" / "tables" / "stage_cnn.csv")
    assert cnn[0]["seed_std"] == ""  # one seed: no spread
    md = (seeded / "report" / "report.md").read_text()
    assert "stability: std of val acc over last 3 epochs" in md


def test_last_epochs_std_needs_three_epochs(seeded: Path) -> None:
    trial = load_study(seeded).stages[0].trials[0]
    trial.curve = trial.curve[:2]
    assert last_epochs_std(trial, "val_acc") is None


# --- written conclusions -----------------------------------------------------------------------


def _stage_of(root: Path, trials: list, compare: list[str], epochs: int = 6) -> tuple:
    _write_study(
        root, [_stage("s", "Stage S", compare, trials, epochs=epochs)], {"dataset": "tiny_imagenet"}
    )
    study = load_study(root)
    return study.stages[0], study


def test_conclusion_names_winner_with_unknown_noise(tmp_path: Path) -> None:
    trials = [
        _trial(
            "s",
            "a",
            "A",
            BASE | {"activation": "relu"},
            1_000_000,
            "completed",
            curve(8, peak=0.60),
            root=tmp_path / "r",
        ),
        _trial(
            "s",
            "b",
            "B",
            BASE | {"activation": "gelu"},
            1_100_000,
            "completed",
            curve(8, peak=0.55, overfit=0.6),
            root=tmp_path / "r",
        ),
    ]
    stage, study = _stage_of(tmp_path / "r", trials, ["activation"], epochs=8)
    text = " ".join(stage_conclusions(stage, study))
    assert text.startswith("A (activation=relu) has the best val acc")
    assert "Neither the val-set size nor a seed spread is known" in text
    assert "points ahead of B (activation=gelu)" in text
    assert "Overfitting: B (yes" in text  # the big gap and rising val loss of the overfit curve
    assert "0.10M (9%) fewer than B" in text


def test_conclusion_tie_is_no_clear_winner(tmp_path: Path) -> None:
    trials = [
        _trial(
            "s",
            "a",
            "A",
            BASE | {"activation": "relu"},
            1_000_000,
            "completed",
            curve(6, peak=0.600),
            root=tmp_path / "r",
        ),
        _trial(
            "s",
            "b",
            "B",
            BASE | {"activation": "gelu"},
            1_000_000,
            "completed",
            curve(6, peak=0.603),
            root=tmp_path / "r",
        ),
    ]
    stage, study = _stage_of(tmp_path / "r", trials, ["activation"])
    lines = stage_conclusions(stage, study)
    assert lines[0].startswith("No clear winner")
    assert not any("has the best" in ln for ln in lines)


def test_conclusion_weighs_the_margin_against_seed_noise(seeded: Path) -> None:
    study = load_study(seeded)
    text = " ".join(stage_conclusions(study.stages[0], study))
    # widths 512 vs 64, 3 seeds each: 0.04 apart, seed std ~0.004 -> a clear winner
    assert "C.1-A s0/C.1-A s1/C.1-A s2 (width=512) has the best val acc" in text
    assert "± " in text and "(3 seeds)" in text
    assert "more than 2× the seed-to-seed std" in text and "a clear winner" in text
    assert "has 0.57M parameters, 10.8× as many as C.1-B" in text


def test_conclusion_margin_inside_noise(tmp_path: Path) -> None:
    trials = [
        _trial(
            "s",
            f"{v}{i}",
            f"{v}{i}",
            BASE | {"activation": v, "seed": i},
            1_000_000,
            "completed",
            curve(6, peak=p),
            root=tmp_path / "r",
        )
        for v, peaks in (("relu", (0.60, 0.64)), ("gelu", (0.61, 0.57)))
        for i, p in enumerate(peaks)
    ]
    stage, study = _stage_of(tmp_path / "r", trials, ["activation"])
    first = stage_conclusions(stage, study)[0]
    assert first.startswith("No clear winner (a tie in best val acc)")
    assert "2× the seed-to-seed std" in first and "within noise" in first


def test_conclusion_convergence_and_early_stops(cls_report: Path, tmp_path: Path) -> None:
    study = load_study(cls_report.parent)
    channels = study.stages[1]
    text = " ".join(stage_conclusions(channels, study))
    assert "Stopped early, so scored on a shorter training: 3.1-B after epoch 2 of 8" in text
    depth = study.stages[2]
    conv = next(s for s in stage_conclusions(depth, study) if "best val acc at epoch" in s)
    assert conv.startswith("Every completed trial reached its best val acc at epoch 8")
    assert "3.2-C" not in conv  # diverged: not a convergence speed
    root = tmp_path / "r"
    trials = [
        _trial(
            "s",
            "a",
            "A",
            BASE | {"activation": "relu"},
            10,
            "completed",
            curve(8, peak=0.6, overfit=0.5),
            root=root,
        ),  # peaks at epoch 4, then falls
        _trial(
            "s",
            "b",
            "B",
            BASE | {"activation": "gelu"},
            10,
            "completed",
            curve(8, peak=0.6),
            root=root,
        ),
    ]
    stage, study = _stage_of(root, trials, ["activation"], epochs=8)
    conv = next(s for s in stage_conclusions(stage, study) if "best val acc at epoch" in s)
    assert conv.startswith("Fastest to converge: A (best val acc at epoch ")
    assert "slowest: B (epoch 8)" in conv and "B peaked at the last epoch" in conv


# --- Optuna --------------------------------------------------------------------------------------


def test_optuna_stage_has_history_and_importances(tmp_path: Path) -> None:
    run = write_optuna_run(tmp_path / "optuna_run")
    assert main([str(run)]) == 0
    figs = run / "report" / "figures"
    for name in ("optuna_history_tune.png", "optuna_importances_tune.png"):
        assert_figure_has_data(figs / name)
    md = (run / "report" / "report.md").read_text()
    assert "### Optuna search (Optuna over lr and dropout)" in md
    study = load_study(run)
    ostudy = rebuild_study(study.stages[0], study)
    assert len(ostudy.trials) == 8
    states = [t.state.name for t in ostudy.trials]
    assert states.count("PRUNED") == 1 and states.count("COMPLETE") == 7
    dist = ostudy.trials[0].distributions["lr"]
    lowest = min(t.config["lr"] for t in study.stages[0].trials)
    assert dist.log and dist.low == pytest.approx(lowest)


def test_non_optuna_stage_has_no_optuna_figures(cls_report: Path) -> None:
    assert not list((cls_report / "figures").glob("optuna_*"))


def test_distribution_inference() -> None:
    assert infer_distribution([1, 1]) is None
    d = infer_distribution([16, 32, 64])
    assert type(d).__name__ == "IntDistribution" and (d.low, d.high) == (16, 64)
    d = infer_distribution([0.1, 0.3])
    assert type(d).__name__ == "FloatDistribution" and not d.log
    d = infer_distribution([[1, 2], [2, 2], "relu"])
    assert type(d).__name__ == "CategoricalDistribution"
    assert d.choices == ("[1, 2]", "[2, 2]", "relu")


# --- figures that misled -----------------------------------------------------------------------


def _panel(path: Path, index: int) -> np.ndarray:
    with Image.open(path) as im:
        left, top, right, bottom = json.loads(im.text[figures.AXES_KEY])[index]
        return np.asarray(im.convert("L"))[top + 3 : bottom - 2, left + 3 : right - 2]


def test_all_rock_prediction_is_white_not_black(tmp_path: Path) -> None:
    run = write_segmentation_run(tmp_path / "seg")
    npz = run / "evaluation" / "unet.npz"
    with np.load(npz) as f:
        arrays = dict(f)
    arrays["sample_masks_pred"] = np.ones_like(arrays["sample_masks_pred"])  # all rock
    arrays["sample_masks_true"][1] = 0  # no rock at all in the second sample
    np.savez(npz, **arrays)
    assert main([str(run)]) == 0
    path = run / "report" / "figures" / "triptych_unet.png"
    # Row 0's predicted mask is white, row 1's ground truth black (the label box in the middle
    # aside: the medians), and each constant panel says what it shows.
    assert np.median(_panel(path, 1)) > 250 and np.median(_panel(path, 5)) < 5
    for index in (1, 5):
        assert len(np.unique(_panel(path, index))) > 2, "a constant mask panel has no label"


def test_epoch_ticks_are_integers_and_one_epoch_draws_a_point(tmp_path: Path) -> None:
    fig, ax = plt.subplots()
    ax.plot([1], [0.5], "o-")
    figures.epoch_axis(ax)
    fig.canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    plt.close(fig)
    trials = [
        _trial(
            "s",
            "a",
            "A",
            BASE | {"epochs": 1},
            10,
            "completed",
            curve(1, peak=0.5),
            root=tmp_path / "r",
        )
    ]
    stage, study = _stage_of(tmp_path / "r", trials, [], epochs=1)
    assert figures.learning_curves(stage, study, tmp_path / "one.png")
    assert_figure_has_data(tmp_path / "one.png")


def test_params_vs_score_labels_do_not_overlap() -> None:
    rng = np.random.default_rng(0)
    pts = [
        (float(x), float(y), f"3.{i // 4}-{'ABCD'[i % 4]}")
        for i, (x, y) in enumerate(
            zip(rng.normal(1.2, 0.05, 24), rng.normal(0.5, 0.01, 24), strict=True)
        )
    ]
    fig, ax = plt.subplots(figsize=(9, 5))
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=36)
    ax.margins(0.12)
    left = figures._place_labels(ax, pts)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) + len(left) == len(pts)
    assert len(boxes) >= len(pts) // 2  # most labels find a spot
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)
    plt.close(fig)


def test_evaluation_figures_titled_by_stage_title(tmp_path: Path) -> None:
    run = write_classification_run(tmp_path / "run")
    ev = json.loads((run / "evaluation" / "final.json").read_text())
    EvaluationRecord.from_dict(ev)  # still a valid record
    assert main([str(run)]) == 0
    md = (run / "report" / "report.md").read_text()
    assert "### Per-class precision, recall and F1 (Final model)" in md


def test_infeasible_rows_do_not_make_defaults_look_varied() -> None:
    """A trained trial's record holds its effective config (every default); an infeasible
    point's only the study's keys. The summary must not list every default on every row."""
    from analysis.rundir import Trial
    from analysis.tables import varying_keys

    trained = [
        Trial(status="completed", config={"channels": [8, 16], "optimizer": "adam", "seed": 0}),
        Trial(status="completed", config={"channels": [4, 8], "optimizer": "adam", "seed": 0}),
    ]
    infeasible = Trial(status="infeasible", config={"channels": [8, 16, 32, 64]})
    assert varying_keys([*trained, infeasible]) == ["channels"]
    assert varying_keys([infeasible, Trial(status="infeasible", config={"channels": [1]})]) == [
        "channels"
    ]
