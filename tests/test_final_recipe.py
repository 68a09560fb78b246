"""search_spaces/final_recipe.py: the recipe study plans within the course's limits, runs at
--smoke, exports its best recipe, and variant 1's A.5 takes that recipe only when asked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.plan import plan_stage, stage_base
from orchestrator.study import load_study
from search_spaces.common import FINAL_TRAINING

REPO = Path(__file__).resolve().parents[1]
TINY_IMAGENET_10 = {"num_classes": 10, "in_channels": 3, "image_size": 64}


def test_recipe_study_searches_with_optuna_and_asha_within_the_limits() -> None:
    study = load_study(REPO / "search_spaces" / "final_recipe.py")
    (stage,) = study.stages
    assert (stage.search, stage.scheduler) == ("optuna", "asha")
    assert not stage.evaluate  # the test split is left to variant 1's A.5
    assert {
        "lr",
        "weight_decay",
        "label_smoothing",
        "mixup_alpha",
        "cutmix_alpha",
        "ema_decay",
        "epoch_fraction",
    } <= set(stage.space)
    assert study.base["epochs"] == 100
    plan = plan_stage(study, stage, stage_base(study, stage, {}, {}), TINY_IMAGENET_10)
    (point,) = plan.points
    assert point.feasible and point.params == 2_777_674  # variant 1's winner: 2.78M < 5M


def test_a5_keeps_its_recipe_unless_a_recipe_file_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = REPO / "search_spaces" / "resnet_tiny_imagenet.py"
    monkeypatch.delenv("ARCHSWEEP_A5_RECIPE", raising=False)
    default = load_study(path).stages[-1]
    assert default.config == FINAL_TRAINING and default.title == "A.5 Final model"
    recipe = {
        "source": "study final_recipe (runs), best trial R-7",
        "config": {"lr": 0.002, "mixup_alpha": 0.2, "ema_decay": 0.998, "epochs": 80},
    }
    (tmp_path / "a5.json").write_text(json.dumps(recipe))
    monkeypatch.setenv("ARCHSWEEP_A5_RECIPE", str(tmp_path / "a5.json"))
    a5 = load_study(path).stages[-1]
    assert a5.config == {**FINAL_TRAINING, **recipe["config"], "tta": True}
    assert a5.title == "A.5 Final model (recipe from study final_recipe (runs), best trial R-7)"


@pytest.mark.slow  # 20 one-epoch trials through Ray: a few minutes on the 2-core machine
def test_recipe_study_smoke_run_exports_a_recipe(
    tmp_path: Path, ray_session: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.run import main
    from search_spaces.final_recipe import RECIPE_KEYS
    from search_spaces.final_recipe import main as export
    from trainables.data import write_tiny_imagenet

    data = tmp_path / "data"
    write_tiny_imagenet(
        data / "tiny-imagenet-200", n_classes=3, train_per_class=20, val_per_class=4
    )
    monkeypatch.setenv("ARCHSWEEP_CACHE", str(tmp_path / "cache"))
    code = main(
        [
            str(REPO / "search_spaces" / "final_recipe.py"),
            "--smoke",
            "--data-root",
            str(data),
            "--storage",
            str(tmp_path / "runs"),
            "--set",
            "classes=3",
            "--set",
            "image_size=16",
        ]
    )
    assert code == 0
    record = json.loads((tmp_path / "runs" / "final_recipe" / "study.json").read_text())
    (stage,) = record["stages"]
    assert len(stage["trials"]) == 20
    assert all(t["epochs_run"] == 1 for t in stage["trials"])  # --smoke: one epoch each
    assert not (tmp_path / "runs" / "final_recipe" / "evaluation").exists()
    out = tmp_path / "a5.json"
    assert export(["--export", str(tmp_path / "runs" / "final_recipe"), str(out)]) == 0
    recipe = json.loads(out.read_text())
    assert set(recipe["config"]) == {*RECIPE_KEYS, "epochs"}
    assert recipe["config"]["epochs"] == 1
    assert recipe["config"]["lr"] == stage["best"]["config"]["lr"]
    assert "best trial" in recipe["source"]
