"""Noise-aware winners and never-happened schedules (issue 20), on real tiny runs.

A val accuracy on n images moves by 1/n per image: two trials one val image apart are a tie, and
the report must say "within noise" instead of starring a winner. The run is real (the A.4
activation stage of search_spaces/activations.py, two activations, on 3 generated Tiny ImageNet
classes); its second trial's recorded val accuracy is then set to exactly one val image below
the first, which a 1-epoch run on 18 val images cannot be made to produce on demand.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from data_fixtures import tiny_study_run

from analysis import noise
from analysis.conclusions import stage_conclusions
from analysis.report import main as report_main
from analysis.rundir import load_study

STUDY = """
import dataclasses
from ray import tune
from search_spaces.activations import study as a4

stage = dataclasses.replace(a4.stages[0], evaluate=False,
                            space={"activation": tune.grid_search(["relu", "gelu"])})
study = dataclasses.replace(
    a4, name="noise_a4", stages=[stage],
    base={**a4.base, "classes": 3, "image_size": 32, "epochs": 1, "batch_size": 16,
          "max_batches": 2, "channels": [8, 16], "blocks": 1},
)
"""


def test_wilson_interval_matches_the_formula() -> None:
    lo, hi = noise.wilson(0.5, 64)
    # Wilson: centre 0.5, half-width 1.96 sqrt(0.25/64 + 1.96^2/(4*64^2)) / (1 + 1.96^2/64)
    half = 1.96 * math.sqrt(0.25 / 64 + 1.96**2 / (4 * 64**2)) / (1 + 1.96**2 / 64)
    assert (lo, hi) == pytest.approx((0.5 - half, 0.5 + half))
    assert noise.wilson(0.0, 10)[0] == 0.0 and noise.wilson(1.0, 10)[1] == 1.0
    with pytest.raises(ValueError, match="n=0 val images"):
        noise.wilson(0.5, 0)


def test_one_image_on_64_is_noise_and_a_large_margin_is_not() -> None:
    one = noise.judge(11 / 64, 10 / 64, 64, None)
    assert one.within_noise and one.images() == "1 val image of 64"
    big = noise.judge(0.9, 0.2, 500, None)
    assert not big.within_noise
    seeds = noise.judge(0.60, 0.59, None, 0.02)  # val size unknown; 2 x seed std = 0.04
    assert seeds.within_noise and seeds.noise == pytest.approx(0.04)


@pytest.fixture(scope="module")
def one_image_apart(tmp_path_factory: pytest.TempPathFactory, ray_session) -> Path:
    run = tiny_study_run(tmp_path_factory.mktemp("noise"), "noise_a4", STUDY, report=False)
    study = load_study(run)
    first, second = study.stages[0].trials
    n = noise.val_images(first, study)
    assert n == 18  # 3 classes x 6 val images, under the cap of 2 batches x 16
    _set_val_acc(run, second.name, first.best["val_acc"] - 1 / n)
    assert report_main([str(run)]) == 0
    return run


def _set_val_acc(run: Path, label: str, value: float) -> None:
    """Rewrite one trial's recorded val accuracy (study.json and its result.json rows)."""
    path = run / "study.json"
    record = json.loads(path.read_text())
    (trial,) = [t for t in record["stages"][0]["trials"] if t["label"] == label]
    for block in ("best", "final"):
        trial[block]["val_acc"] = value
    path.write_text(json.dumps(record))
    rows = run / trial["trial_dir"] / "result.json"
    lines = [json.loads(x) for x in rows.read_text().splitlines() if x.strip()]
    rows.write_text("".join(json.dumps({**r, "val_acc": value}) + "\n" for r in lines))


def test_one_val_image_apart_is_a_tie_within_noise(one_image_apart: Path) -> None:
    study = load_study(one_image_apart)
    lines = stage_conclusions(study.stages[0], study)
    assert lines[0].startswith("No clear winner (a tie in best val acc)")
    assert "95% CI" in lines[0] and "n = 18" in lines[0]
    assert "At this budget the difference is within noise" in lines[0]
    # The rule that passes the winner on, and that this pick was its tie-break.
    passed = next(ln for ln in lines if ln.startswith("Rule for the stage's best"))
    assert "exactly equal values go to the trial listed first" in passed
    assert "by that tie-break, not by a measured difference" in passed
    # A.4's own answer: the pair one image apart, within noise; gradient flow read per trial.
    which = next(ln for ln in lines if ln.startswith("Which activation"))
    assert "(1 val image of 18)" in which and "within noise" in which
    assert any(ln.startswith("Gradient flow, first body block over last") for ln in lines)
    rows = list(csv.DictReader((one_image_apart / "report" / "tables" / "summary.csv").open()))
    assert [r["winner"] for r in rows if r["best_in_stage"] == "True"] == [
        "tie within noise (tie-break)"
    ]
    md = (one_image_apart / "report" / "report.md").read_text()
    assert "Noise: each val score comes from 18 val images" in md
