"""Course B.1 and E.1 in the report, produced by a real tiny run and read back (issue 12).

B.1 (classifier at 128 px, here 32 px): the stage states its preprocessing from the trials'
configuration, the evaluation records val accuracy and val macro F1 of the best checkpoint on the
whole val split and the best model's architecture by part, and the report shows all three. E.1
(custom layers): the report runs trainables/models/layer_checks.py on each trained trial's
checkpoint and shows every check with its measured value and pass/fail.

One tiny study runs both real stages (search_spaces/classifier128.py's B.1 stage and
search_spaces/blocks_and_layers.py's E.1 stage, reduced to one point that has all four
custom layers) on a
synthetic Tiny ImageNet: 3 classes, 32 px, 1 epoch of 2 batches; B.1 trains its study's own
base configuration only.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from data_fixtures import tiny_study_run

from trainables.contract import EvaluationRecord, StudyRecord
from trainables.models import build_model
from trainables.models.layer_checks import CHECKS, check_model_layers
from trainables.models.layers import GatedConv2d

STUDY = """
import dataclasses
from ray import tune
from orchestrator.study import Study
from search_spaces.blocks_and_layers import layers_stage
from search_spaces.classifier128 import study as b1

# B.1 at its first grid point only (the study's own base configuration); E.1 at its point
# with every custom layer at once.
b1_stage = dataclasses.replace(b1.stages[0], space={})
e1 = dataclasses.replace(layers_stage(), space={
    ("conv", "pool", "attention", "activation"): tune.grid_search([
        ("gated", "l2", "se", "swish"),
    ])
})
study = Study(
    name="course_b1_e1",
    trainable="classification",
    description="B.1 and E.1 of the course, tiny.",
    base={**b1.base, "classes": 3, "image_size": 32, "epochs": 1, "batch_size": 16,
          "max_batches": 2},
    constraints=b1.constraints,
    stages=[b1_stage, e1],
)
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, ray_session) -> Path:
    return tiny_study_run(tmp_path_factory.mktemp("course"), "course_b1_e1", STUDY)


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _section(md: str, heading: str) -> str:
    return md.split(heading, 1)[1].split("\n## ", 1)[0]


def test_b1_evaluation_records_val_f1_architecture_and_preprocessing(run: Path) -> None:
    record = StudyRecord.from_dict(json.loads((run / "study.json").read_text()))
    stage = record.stage("architecture")
    path = run / record.evaluations["architecture"]
    ev = EvaluationRecord.from_dict(json.loads(path.read_text()))
    best = next(t for t in stage.trials if t.trial_id == ev.trial_id)
    # val metrics of the best checkpoint on the whole val split (7 images < 2 batches of 16, so
    # the trial's own validation saw the same images: the accuracies agree)
    assert ev.val_size == record.data["val"]
    assert set(ev.val_metrics) == {"val_acc", "val_macro_f1", "val_loss"}
    assert 0.0 <= ev.val_metrics["val_macro_f1"] <= 1.0
    assert ev.val_metrics["val_acc"] == pytest.approx(best.best["val_acc"], abs=1e-6)
    assert ev.val_metrics["val_loss"] == pytest.approx(best.best["val_loss"], rel=1e-2)
    # the architecture of the model the checkpoint holds, by part
    parts = {r["part"]: r for r in ev.architecture}
    channels, blocks = best.config["channels"], best.config["blocks"]
    blocks = [blocks] * len(channels) if isinstance(blocks, int) else blocks
    for i, (c, n) in enumerate(zip(channels, blocks, strict=True)):
        assert parts[f"stages.{i}"]["out_shape"][0] == c
        assert parts[f"stages.{i}"]["blocks"] == n
    assert parts["input"]["out_shape"] == [3, 32, 32]
    assert parts["stem"]["out_shape"][1:] == [16, 16]  # imagenet stem: conv 7x7/2
    assert parts["stem_pool"]["out_shape"][1:] == [8, 8]  # + max-pool 3x3/2
    assert parts["head"]["out_shape"] == [3]  # output size = classes
    assert [d["layer"] for d in parts["stages.1"]["downsamples_at"]] == ["stages.1.0.conv1"]
    assert ev.preprocessing["source_size"] == 64 and ev.preprocessing["image_size"] == [32, 32]


def test_b1_report_states_preprocessing_architecture_and_val_f1(run: Path) -> None:
    record = StudyRecord.from_dict(json.loads((run / "study.json").read_text()))
    config = record.stage("architecture").trials[0].config
    md = (run / "report" / "report.md").read_text()
    stage_md = _section(md, "## Stage: B.1 Classifier architecture (128x128)")
    # preprocessing, from the configuration the trials ran with
    lo, hi = config["augment"]["random_resized_crop"]
    jitter = config["augment"]["color_jitter"]
    assert "Resize: from 64×64 (tiny_imagenet's own size) to 32×32 (image_size=32)" in stage_md
    assert f"random resized crop of {100 * lo:.0f}–{100 * hi:.0f}% of the image area" in stage_md
    assert "horizontal flip with probability 0.5" in stage_md
    assert f"colour jitter {jitter:g}" in stage_md
    assert f"[{1 - jitter:.2f}, {1 + jitter:.2f}]" in stage_md
    assert "vertical flip" not in stage_md
    # val accuracy and val macro F1 side by side, the numbers of the evaluation
    ev = json.loads((run / record.evaluations["architecture"]).read_text())
    rows = _csv(run / "report" / "tables" / "val_test_architecture.csv")
    val = rows[0]
    assert val["split"].startswith("val, whole split")
    assert float(val["acc"]) == pytest.approx(ev["val_metrics"]["val_acc"])
    assert float(val["macro_f1"]) == pytest.approx(ev["val_metrics"]["val_macro_f1"])
    assert int(val["images"]) == ev["val_size"]
    assert float(rows[-1]["macro_f1"]) == pytest.approx(ev["metrics"]["test_macro_f1"])
    eval_md = _section(md, "## Test evaluation: B.1 Classifier architecture (128x128)")
    assert "### Validation and test" in eval_md and "| macro F1 |" in eval_md
    # the architecture summary: blocks, channels, where it downsamples, output sizes
    arch = _csv(run / "report" / "tables" / "architecture_architecture.csv")
    assert [r["part"] for r in arch][:3] == ["input", "stem", "stem_pool"]
    channels, blocks = config["channels"], config["blocks"]
    blocks = [blocks] * len(channels) if isinstance(blocks, int) else blocks
    assert (
        f"blocks per stage {'-'.join(map(str, blocks))}, channels per stage "
        f"{'-'.join(map(str, channels))}"
    ) in eval_md
    assert "Downsamples at: stem.conv (Conv2d 7x7/2): 32→16" in eval_md
    assert "head 3 outputs (one per class)" in eval_md


def test_e1_report_shows_each_custom_layer_checked(run: Path) -> None:
    md = (run / "report" / "report.md").read_text()
    section = _section(md, "## Stage: E.1 Custom layers")
    assert "### Custom layer checks (E.1 Custom layers)" in section
    rows = _csv(run / "report" / "tables" / "layer_checks_layers.csv")
    record = StudyRecord.from_dict(json.loads((run / "study.json").read_text()))
    custom = next(t for t in record.stage("layers").trials if t.config["conv"] == "gated")
    assert {r["trial"] for r in rows} == {custom.label}
    want = {"GatedConv2d", "L2Pool2d", "SqueezeExcite", "Swish"}
    assert {r["layer"] for r in rows} == want
    assert len(rows) == sum(len(CHECKS[c]) for c in CHECKS)
    assert all(r["result"] == "pass" for r in rows), [r for r in rows if r["result"] != "pass"]
    ref = next(r for r in rows if r["layer"] == "GatedConv2d" and "(reference)" in r["check"])
    assert ref["measured"].startswith("max |error| ") and ref["instances"].startswith("3 (")
    assert f"{len(rows)} of {len(rows)} checks pass." in section


def test_layer_checks_catch_a_broken_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = {
        "model": "simple_cnn",
        "channels": (8, 16),
        "conv": "gated",
        "pool": "l2",
        "attention": "se",
        "activation": "swish",
        "num_classes": 3,
        "in_channels": 3,
        "image_size": 32,
    }
    model = build_model(cfg)
    assert all(r["passed"] for r in check_model_layers(model))
    monkeypatch.setattr(GatedConv2d, "forward", lambda self, x: self.conv(x) * self.gate(x))
    failed = {r["check"] for r in check_model_layers(model) if not r["passed"]}
    assert "output = conv(x)·σ(gate(x)) (reference)" in failed
    assert torch.is_grad_enabled()  # the checks leave autograd as they found it


# --- issue 20's figure rules on this real run ---------------------------------------------------


def _png_text(path: Path, key: str) -> str:
    from PIL import Image

    with Image.open(path) as im:
        return im.text[key]


def test_every_figure_of_the_real_run_states_its_budget(run: Path) -> None:
    from analysis.figures import BUDGET_KEY

    pngs = sorted((run / "report" / "figures").glob("*.png"))
    assert len(pngs) >= 8
    for png in pngs:
        budget = _png_text(png, BUDGET_KEY)
        assert budget.startswith(
            "Budget: the study's own budget; 1 ep, 32px, 3 classes, 2 batches/ep"
        ), (png.name, budget)


def test_gated_conv_trial_has_maps_with_the_layers_own_sizes(run: Path) -> None:
    from trainables.contract import PROBES_JSON

    record = StudyRecord.from_dict(json.loads((run / "study.json").read_text()))
    gated = next(t for t in record.stage("layers").trials if t.config["conv"] == "gated")
    probes = json.loads((run / gated.trial_dir / PROBES_JSON).read_text())
    assert probes["feature_layers"], "an all-GatedConv2d model recorded no feature maps"
    assert len(probes["feature_sizes"]) == len(probes["feature_layers"])
    assert probes["feature_sizes"][0] == [32, 32]  # features.0: 3x3 stride 1 on 32 px
    figures_dir = run / "report" / "figures"
    assert (figures_dir / "maps_first_layers.png").is_file()
    assert (figures_dir / "maps_depth_layers.png").is_file()
    assert "no feature maps for" not in (run / "report" / "report.md").read_text()
    # B.1's ResNet: stem.conv's own size is the architecture table's stem output (16x16 here)
    b1 = record.stage("architecture").trials[0]
    b1_probes = json.loads((run / b1.trial_dir / PROBES_JSON).read_text())
    ev = EvaluationRecord.from_dict(
        json.loads((run / record.evaluations["architecture"]).read_text())
    )
    stem = next(r for r in ev.architecture if r["part"] == "stem")
    i = b1_probes["feature_layers"].index("stem.conv")
    assert b1_probes["feature_sizes"][i] == stem["out_shape"][1:]


def test_gradient_flow_x_labels_name_the_recorded_blocks(run: Path) -> None:
    from analysis.figures import XTICKS_KEY
    from trainables.contract import PROBES_JSON

    record = StudyRecord.from_dict(json.loads((run / "study.json").read_text()))
    for stage in ("architecture", "layers"):
        trial = record.stage(stage).trials[0]
        grads = json.loads((run / trial.trial_dir / PROBES_JSON).read_text())["grad_norms"]
        layers = [g["layer"] for g in grads[max(grads, key=int)]]
        ticks = json.loads(
            _png_text(run / "report" / "figures" / f"gradflow_trials_{stage}.png", XTICKS_KEY)
        )[0]
        assert ticks and len(ticks) <= len(layers)
        for tick in ticks:
            assert any(n == tick or n.startswith(tick + ".") for n in layers), (tick, layers)
