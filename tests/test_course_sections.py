"""Each section A-F of the course, for real: its shipped study file at the smoke budget, then its
report, answering the section's questions in the order EXPERIMENTS.md asks them.

One test per section. Each runs the section's real study file(s) on the shared data sets (with
generated lunar tiles for B), writes the report, and checks that every table the section needs
has rows and every figure has data (more than one distinct colour in each data area, the check
of tests/test_report_sections.py). Slow (about 15 minutes for all six on 2 cores): the CI suite
skips them; `pytest tests/test_course_sections.py` runs them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from analysis.report import main as report_main
from orchestrator.run import main as run_main

try:  # tests/ is a rootdir-relative folder, not a package, unless someone adds __init__.py
    from tests.test_report_sections import assert_figure_has_data
except ImportError:
    from test_report_sections import assert_figure_has_data

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_root(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared data sets plus generated lunar tiles (the MOON set is not public)."""
    from trainables.data import write_lunar

    root = tmp_path_factory.mktemp("course_data")
    for entry in shared_data.iterdir():
        if entry.is_dir():
            (root / entry.name).symlink_to(entry)
    write_lunar(root / "MOON_SEGMENTATION_BINARY", n=40, size=128)
    return root


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ARCHSWEEP_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def run_and_report(study: str, data_root: Path, runs: Path, *extra: str) -> Path:
    """The study file at --smoke (or the budget `extra` sets), then its report; the report
    folder."""
    budget = list(extra) if "--set" in extra else ["--smoke", *extra]
    code = run_main(
        [
            str(REPO / "search_spaces" / f"{study}.py"),
            "--data-root",
            str(data_root),
            "--storage",
            str(runs),
            *budget,
        ]
    )
    assert code == 0, f"{study}: exit code {code}"
    assert report_main([str(runs / study)]) == 0
    return runs / study / "report"


def check_report(report: Path, headings: list[str], tables: list[str], figures: list[str]) -> str:
    """Headings in this order, tables with rows, figures with data and on the page."""
    md = (report / "report.md").read_text()
    at = -1
    for heading in headings:
        found = md.find(heading, at + 1)
        assert found > at, f"{report.parent.name}: {heading!r} missing or out of order"
        at = found
    for name in tables:
        with (report / "tables" / f"{name}.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        assert rows, f"{report.parent.name}: {name}.csv has no rows"
        assert any(v not in ("", None) for r in rows for v in r.values()), name
    for name in figures:
        assert_figure_has_data(report / "figures" / f"{name}.png")
        assert f"figures/{name}.png" in md, f"{report.parent.name}: {name} not on the page"
    return md


def test_section_a_resnet18_stage_by_stage(
    data_root: Path, tmp_path: Path, ray_session: object
) -> None:
    report = run_and_report(
        "resnet_tiny_imagenet", data_root, tmp_path / "runs", "--smoke", "--set", "image_size=32"
    )
    md = check_report(
        report,
        headings=[
            "## Summary",  # A.6: every stage, params, val and train accuracy, overfitting
            "## Stage: A.1 Baseline",
            "### Conclusions (A.1",
            "print(model)",
            "## Stage: A.2 Channels",
            "### Conclusions (A.2",
            "## Stage: A.3 Depth",
            "### Conclusions (A.3",
            "## Stage: A.4 Activations",
            "### Conclusions (A.4",
            "## Stage: A.5 Final model",
            "## Test evaluation: A.5 Final model",
            "### Per-class precision, recall and F1",
            "### Most confused class pairs",
        ],
        tables=[
            "summary",
            "infeasible",
            "stage_baseline",
            "stage_channels",
            "stage_blocks",
            "stage_activations",
            "stage_final",
            "per_class_final",
            "most_confused_final",
            "test_metrics_final",
        ],
        figures=[
            "curves_baseline",
            "compare_channels",
            "compare_blocks",
            "compare_activations",
            "curves_final",
            "confusion_final",
            "samples_final",
            "params_vs_score",
        ],
    )
    # A.1: the 4-stage reference is shown over budget beside the trained 3-stage baseline.
    assert "11.17M" in md
    # A.3-B is A.2's winner itself: reused, not trained twice.
    assert "reused: " in md
    # Issue 20: each winner against the noise of 64 val images, and the pass-on rule stated.
    assert "Noise: each val score comes from 64 val images" in md
    assert md.count("Rule for the stage's best") >= 3  # A.2, A.3, A.4
    conclusions_a4 = md[md.index("### Conclusions (A.4") :]
    assert "Convergence per epoch (val accuracy)" in conclusions_a4
    assert "Gradient flow, gradient norm of the first main-path layer" in conclusions_a4


def test_section_b_classifier_unet_and_backbone(
    data_root: Path, tmp_path: Path, ray_session: object
) -> None:
    runs = tmp_path / "runs"
    b1 = check_report(
        run_and_report("classifier128", data_root, runs),
        headings=[
            "## Stage: B.1",
            "Preprocessing",
            "## Test evaluation: B.1",
            "### Validation and test",
            "### Architecture",
        ],
        tables=[
            "stage_architecture",
            "val_test_architecture",
            "architecture_architecture",
            "per_class_architecture",
            "test_metrics_architecture",
        ],
        figures=["curves_architecture", "confusion_architecture", "samples_architecture"],
    )
    assert "macro F1" in b1 or "macro_f1" in b1
    check_report(
        run_and_report("unet_rocks", data_root, runs),
        headings=[
            "## Stage: B.2.1 Downsampling",
            "## Stage: B.2.2 Loss",
            "## Test evaluation: B.2.2 Loss",
            "### Validation and test",
        ],
        tables=["stage_downsampling", "stage_loss", "test_metrics_loss", "val_test_loss"],
        figures=["curves_downsampling", "curves_loss", "triptych_loss"],
    )
    b3 = check_report(
        run_and_report("unet_backbone", data_root, runs),
        headings=[
            "## Stage: B.3 Base U-Net",
            "## Stage: B.3 Variant A: encoder frozen",
            "## Stage: B.3 Variant B",
            "## Test metrics across evaluations",
        ],
        tables=["test_metrics", "stage_base_unet", "stage_frozen", "stage_unfrozen_later"],
        figures=["triptych_base_unet", "triptych_frozen", "triptych_unfrozen_later"],
    )
    # B.3: which encoder feature map feeds which skip, at which scale.
    assert "-> skip of decoder step" in b3
    # Issue 20: 'unfreeze at epoch 10' never happens in a 1-epoch smoke run, and is flagged;
    # frozen vs unfrozen is compared across stages; the encoder's normalization is named.
    assert "schedule that never happened: B.3-B was to unfreeze its encoder at epoch 10" in b3
    assert "never unfroze its encoder" in b3[b3.index("## Across stages") :]
    assert "pretrained encoder's training mean and std" in b3
    assert "val IoU, Dice and pixel accuracy" in b3 and "val macro F1" not in b3


def test_section_c_cnn_versus_fully_connected(
    data_root: Path, tmp_path: Path, ray_session: object
) -> None:
    md = check_report(
        run_and_report("cnn_vs_fc_small", data_root, tmp_path / "runs"),
        headings=[
            "## Summary",
            "## Stage: MNIST FC",
            "## Stage: MNIST CNN",
            "## Stage: MNIST ResCNN",  # C.1
            "## Stage: CIFAR FC",
            "## Stage: CIFAR ResCNN",
            "## Stage: CIFAR ResCNN+reg",  # C.2
            "## Test metrics across evaluations",
        ],
        tables=[
            "summary",
            "test_metrics",
            "stage_mnist_fc",
            "stage_mnist_cnn",
            "stage_mnist_residual",
            "stage_cifar_fc",
            "stage_cifar_residual",
            "stage_cifar_regularized",
            "per_class_cifar_regularized",
        ],
        figures=[
            "curves_mnist_fc",
            "curves_mnist_cnn",
            "curves_mnist_residual",
            "confusion_cifar_fc",
            "confusion_cifar_residual",
            "confusion_cifar_regularized",
            "gradflow_cifar_fc",
            "gradflow_cifar_residual",
            "gradflow_cifar_regularized",
        ],
    )
    # C.1: training and inference time next to test accuracy; C.2: the train-test gap.
    header = tmp_path / "runs" / "cnn_vs_fc_small" / "report" / "tables" / "test_metrics.csv"
    columns = header.read_text().splitlines()[0]
    assert {"inference_ms_per_image", "wall_time_s", "train_acc_final"} <= set(columns.split(","))
    assert "train−val gap" in md
    # Issue 20: C.1 and C.2 answered between stages, on shared axes.
    across = md[md.index("## Across stages") :]
    assert "mnist, best model:" in across and "cifar10, best model:" in across
    assert "Regularized vs not (CIFAR ResCNN+reg, small vs CIFAR ResCNN, small)" in across
    assert_figure_has_data(
        tmp_path / "runs" / "cnn_vs_fc_small" / "report" / "figures" / "across_stages.png"
    )


def test_section_d_architecture_analysis(
    data_root: Path, tmp_path: Path, ray_session: object
) -> None:
    md = check_report(
        run_and_report("architecture_analysis", data_root, tmp_path / "runs"),
        headings=[
            "## All trials",  # accuracy and training time of every variant
            "## Stage: D.1 Kernel size",
            "### Layers (D.1",
            "Receptive field of every",
            "## Stage: D.2 Depth",
            "### Layers (D.2",
        ],
        tables=[
            "all_trials",
            "stage_kernels",
            "receptive_fields_kernels",
            "stage_depth",
            "receptive_fields_depth",
        ],
        figures=[
            "curves_kernels",
            "maps_first_kernels",
            "curves_depth",
            "gradflow_trials_depth",
            "maps_depth_depth",
        ],
    )
    # D.1: the kernel variants are at equal parameters, so the parameter count is on the page.
    assert "params (M)" in md and "train time" in md
    # Issue 20: D.1 in time and receptive field; D.2 depth and residual by gradient flow.
    assert "Kernel sizes at about equal parameters (accuracy, time, receptive field)" in md
    assert "Receptive field: " in md
    assert "Depth: without residuals the first/last gradient ratio" in md
    assert "Residual connection at 6 conv: ratio" in md


def test_section_e_custom_layers_and_block_types(
    data_root: Path, tmp_path: Path, ray_session: object
) -> None:
    # Three epochs: E.2's stability is the spread of val accuracy over the last 3 epochs.
    report = run_and_report(
        "blocks_and_layers_small",
        data_root,
        tmp_path / "runs",
        "--set",
        "epochs=3",
        "--set",
        "max_batches=1",
        "--set",
        "batch_size=32",
        "--set",
        "image_size=32",
    )
    md = check_report(
        report,
        headings=[
            "## Stage: E.1 Custom layers",
            "### Custom layer checks (E.1",
            "## Stage: E.2 Block types",
            "Stability: std of val acc",
        ],
        tables=["stage_layers", "layer_checks_layers", "stage_block_types"],
        figures=["curves_layers", "compare_layers", "curves_block_types", "compare_block_types"],
    )
    with (report / "tables" / "layer_checks_layers.csv").open(newline="") as f:
        checks = list(csv.DictReader(f))
    # Every custom layer, each checked against its reference computation, all passing.
    assert {"GatedConv2d", "L2Pool2d", "SqueezeExcite", "Swish"} <= {c["layer"] for c in checks}
    assert all(c["result"] == "pass" for c in checks), [c for c in checks if c["result"] != "pass"]
    with (report / "tables" / "stage_block_types.csv").open(newline="") as f:
        blocks = list(csv.DictReader(f))
    assert [b["configuration"] for b in blocks] == ["block=basic", "block=bottleneck", "block=wide"]
    assert all(b["val_acc_std_last3"] not in ("", None) for b in blocks)
    # Issue 20: E.1 against the standard layer, E.2 in time and stability.
    for custom, standard in (
        ("GatedConv2d", "Conv2d"),
        ("L2Pool2d", "MaxPool2d"),
        ("Swish", "ReLU"),
    ):
        assert f"{custom} against {standard} (E1-A)" in md
    assert "Block types (accuracy, time, parameters, stability)" in md
    assert "Stability: " in md and "varies least over its last 3 epochs" in md


def test_section_f_initialization_and_gradient_probes(tmp_path: Path) -> None:
    from analysis.untrained import main as probes_main

    assert probes_main(["--out", str(tmp_path / "probes")]) == 0
    md = (tmp_path / "probes" / "probes.md").read_text()
    assert md.index("## F.1 Weight variance control") < md.index("## F.2 Gradients through depth")
    for name in ("weight_variance", "gradient_depth"):
        assert_figure_has_data(tmp_path / "probes" / "figures" / f"{name}.png")
        assert f"figures/{name}.png" in md
    # Issue 20: F.2's explanation quotes its own ratio and conv1's weight count.
    assert "1,728 weights against 36,864" in md and "from conv2 to conv1" in md
