"""The shipped study files: each loads, every stage plans (keys valid, constraints as the course
says), and the README's main job runs for real on the shared Tiny ImageNet subset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.plan import plan_stage, stage_base
from orchestrator.run import main
from orchestrator.study import load_study

REPO = Path(__file__).resolve().parents[1]
STUDY_FILES = sorted(
    p for p in (REPO / "search_spaces").glob("*.py") if p.name not in ("__init__.py", "common.py")
)
TINY_IMAGENET_10 = {"num_classes": 10, "in_channels": 3, "image_size": 64}


@pytest.mark.parametrize("path", STUDY_FILES, ids=lambda p: p.stem)
def test_study_file_plans_every_stage(path: Path) -> None:
    study = load_study(path)
    for stage in study.stages:
        # Later stages inherit a trained config at run time; the base config stands in here.
        plan = plan_stage(study, stage, stage_base(study, stage, {}, {}), TINY_IMAGENET_10)
        assert plan.points, f"{path.name}: stage {stage.name} plans no configuration"


def planned(path: str, stage: str) -> dict[str, tuple[bool, int | None]]:
    study = load_study(REPO / "search_spaces" / path)
    (s,) = [s for s in study.stages if s.name == stage]
    plan = plan_stage(study, s, stage_base(study, s, {}, {}), TINY_IMAGENET_10)
    return {p.label: (p.feasible, p.params) for p in plan.points}


def test_course_constraints_decide_feasibility() -> None:
    # Variant 1 trains ResNet-18 without its 4th stage; the 4-stage one (11.2M parameters) breaks
    # the 5M budget and is recorded beside it, not trained.
    assert planned("resnet_tiny_imagenet.py", "baseline") == {
        "A.1-A": (True, 2_777_674),
        "A.1-B": (False, 11_173_962),
    }
    channels = planned("resnet_tiny_imagenet.py", "channels")
    assert channels["A.2-A"][0] and channels["A.2-B"][0]
    # Strict variant: the 512-channel scheme breaks "no layer above 256 channels".
    strict = planned("resnet_strict.py", "channels")
    assert [label for label, (ok, _) in strict.items() if not ok] == ["A2.2-D"]
    # dropout.py trains the p = 0 reference; the strict variant's own range starts at 0.1.
    assert planned("dropout.py", "reference") == {"A2.3-ref": (True, 2_703_690)}
    assert all(ok for ok, _ in planned("resnet_strict.py", "dropout").values())


def test_readme_main_job_smoke_and_report(
    tmp_path: Path, shared_data: Path, ray_session: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Quickstart's study on the real subset (--smoke), then its report."""
    monkeypatch.setenv("ARCHSWEEP_CACHE", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    code = main(
        [
            str(REPO / "search_spaces" / "activations.py"),
            "--smoke",
            "--data-root",
            str(shared_data),
            "--storage",
            str(runs),
        ]
    )
    assert code == 0
    record = json.loads((runs / "activations" / "study.json").read_text())
    assert record["data"]["train"] == 4500 and record["data"]["test"] == 500
    assert record["data"]["class_names"][0] == "Egyptian cat"  # words.txt, first wnid
    (stage,) = record["stages"]
    assert [t["label"] for t in stage["trials"]] == ["A.4-A", "A.4-B", "A.4-C", "A.4-D"]
    assert [t["config"]["activation"] for t in stage["trials"]] == [
        "relu",
        "leaky_relu",
        "elu",
        "gelu",
    ]
    assert all(t["status"] == "completed" for t in stage["trials"])

    from analysis.report import main as report_main

    assert report_main([str(runs / "activations")]) == 0
    report = (runs / "activations" / "report" / "report.md").read_text()
    assert "A.4-D" in report and "Egyptian cat" in report
