"""Plan-level facts of the shipped study files, checked without training (issue 12).

- Comparison stages train every variant to the end (fifo); ASHA only where a stage searches wide.
- A.1 trains ResNet-18 without its 4th stage and shows the 4-stage 11.17M model beside it as the
  infeasible reference; the next stage inherits the trained one.
- dropout.py trains a p = 0 reference that is not a variant-2 candidate and that nothing inherits.
- B.3 evaluates three models on test: base U-Net, frozen encoder, encoder unfrozen later.
- Stage labels follow EXPERIMENTS.md's numbering, are unique per file and mean the same in every
  file ("A.3" is depth everywhere, "A2.3" dropout everywhere).
"""

from __future__ import annotations

import dataclasses
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from orchestrator.plan import StagePlan, plan_stage, stage_base
from orchestrator.records import infeasible_record, pick_best
from orchestrator.study import Stage, Study, load_study
from trainables.contract import TrialRecord

REPO = Path(__file__).resolve().parents[1]
SPACES = REPO / "search_spaces"
STUDY_FILES = sorted(
    p.name for p in SPACES.glob("*.py") if p.name not in ("__init__.py", "common.py")
)
# The files issue 12's study-label work covers (the C and E files have their own owner).
NUMBERED_FILES = [
    "activations.py",
    "architecture_analysis.py",
    "blocks.py",
    "channels.py",
    "classifier128.py",
    "dropout.py",
    "resnet_strict.py",
    "resnet_tiny_imagenet.py",
    "unet_backbone.py",
    "unet_rocks.py",
]
DATA_INFO = {"num_classes": 10, "in_channels": 3, "image_size": 64}
# What each numbered step of the assignment varies, whichever file runs it.
STEP_VARIES = {
    "A.2": ["channels"],
    "A.3": ["blocks"],
    "A.4": ["activation"],
    "A2.3": ["dropout"],
    "A2.4": ["activation"],
    "B.2.1": ["down"],
    "B.2.2": ["loss"],
    "D.1": ["kernel"],
}
# "A.2", "A2.3", "B.2.1", optionally with a suffix: "A2.3-ref", "B.3-base", "B.3-A".
LABEL = re.compile(r"^(A|A2|B|C|D|E|F)\.\d(\.\d)?(-[A-Za-z]+)?$")


@cache
def study(name: str) -> Study:
    return load_study(SPACES / name)


def stage_of(s: Study, name: str) -> Stage:
    (stage,) = [st for st in s.stages if st.name == name]
    return stage


def plan(s: Study, stage: Stage, inherited: dict[str, Any] | None = None) -> StagePlan:
    return plan_stage(s, stage, stage_base(s, stage, inherited or {}, {}), DATA_INFO)


def source_of(s: Study, index: int) -> str | None:
    """The stage that stage `index` inherits its configuration from (None: the base)."""
    stage = s.stages[index]
    if stage.inherit == "base" or index == 0:
        return None
    return s.stages[index - 1].name if stage.inherit == "previous" else stage.inherit


def trained(point_config: dict[str, Any], score: float) -> TrialRecord:
    """A finished trial's record, as the driver writes it after training."""
    return TrialRecord(
        trial_id=f"t{score}",
        label=point_config["label"],
        config=point_config,
        status="completed",
        epochs_run=2,
        best_epoch=2,
        best={"val_acc": score},
    )


def inherited(config: dict[str, Any]) -> dict[str, Any]:
    # What orchestrator.stages.inherited_config passes on from a stage's best trial.
    return {k: v for k, v in config.items() if k not in ("label", "max_batches")}


# --- schedulers -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", STUDY_FILES)
def test_comparison_stages_train_every_variant_to_the_end(name: str) -> None:
    """A grid stage compares its variants on the same budget, so none may be stopped early."""
    for stage in study(name).stages:
        if stage.search == "grid":
            assert stage.scheduler == "fifo", f"{name}: stage {stage.name!r} uses {stage.scheduler}"


# --- A.1 baseline ---------------------------------------------------------------------------


def test_baseline_trains_three_stage_resnet18_beside_the_infeasible_four_stage_one() -> None:
    s = study("resnet_tiny_imagenet.py")
    points = plan(s, stage_of(s, "baseline")).points
    shown = {
        p.label: (p.config["channels"], p.config["blocks"], p.feasible, p.params) for p in points
    }
    assert shown == {
        "A.1-A": ((64, 128, 256), 2, True, 2_777_674),
        "A.1-B": ((64, 128, 256, 512), 2, False, 11_173_962),
    }
    (reason,) = points[1].violations
    assert "5,000,000" in reason and "11,173,962" in reason


def test_the_stage_after_the_baseline_inherits_the_trained_model() -> None:
    s = study("resnet_tiny_imagenet.py")
    baseline, channels = s.stages[0], s.stages[1]
    ok, reference = plan(s, baseline).points
    # The driver records the infeasible point next to the trained trial, then picks the best.
    best = pick_best([infeasible_record(reference), trained(ok.config, 0.4)], "val_acc", "max")
    assert best is not None and best.label == "A.1-A"
    assert source_of(s, 1) == "baseline"
    nxt = plan(s, channels, inherited(best.config))
    assert nxt.base["channels"] != (64, 128, 256, 512)
    assert all(p.feasible for p in nxt.points)


@pytest.mark.parametrize("name", ["resnet_tiny_imagenet.py", "resnet_strict.py"])
def test_every_stage_of_the_chain_has_something_to_train(name: str) -> None:
    """Walk the stages as a run does, each inheriting a trained (feasible) point of its source."""
    s = study(name)
    chosen: dict[str, dict[str, Any]] = {}
    for index, stage in enumerate(s.stages):
        source = source_of(s, index)
        p = plan(s, stage, chosen[source] if source else None)
        assert p.feasible, f"{name}: stage {stage.name!r} has no feasible configuration"
        chosen[stage.name] = inherited(p.feasible[-1].config)
    assert s.stages[-1].evaluate and s.stages[-1].name == "final"


# --- dropout reference ----------------------------------------------------------------------


def test_dropout_reference_is_trained_but_is_no_variant2_candidate() -> None:
    from search_spaces.resnet_strict import STRICT_RULES

    s = study("dropout.py")
    strict = dataclasses.replace(s, constraints=STRICT_RULES)
    (ref,) = plan(s, stage_of(s, "reference")).points
    assert ref.config["dropout"] == 0.0 and ref.feasible  # trained in this study
    (as_candidate,) = plan(strict, stage_of(s, "reference")).points
    assert not as_candidate.feasible and "dropout" in as_candidate.violations[0]
    # The dropout stage's points are variant-2 candidates, under every strict rule.
    points = plan(strict, stage_of(s, "dropout")).points
    assert [p.config["dropout"] for p in points] == [0.1, 0.2, 0.3]
    assert all(p.feasible for p in points)
    # The study checks every strict rule but the one the reference breaks on purpose.
    assert s.constraints == {k: v for k, v in STRICT_RULES.items() if k != "dropout_range"}


@pytest.mark.parametrize("name", ["dropout.py", "resnet_strict.py"])
def test_no_stage_inherits_from_the_dropout_reference(name: str) -> None:
    s = study(name)
    refs = {st.name for st in s.stages if st.label and st.label.endswith("-ref")}
    for index, stage in enumerate(s.stages):
        assert source_of(s, index) not in refs, f"{name}: {stage.name!r} inherits the reference"
        if stage.label and stage.label.startswith("A2.") and stage.name not in refs:
            for p in plan(s, stage).points:
                assert p.config["dropout"] >= 0.1, f"{name}: {p.label} has no dropout"


def test_strict_variant_keeps_its_dropout_rule() -> None:
    s = study("resnet_strict.py")
    assert s.constraints["dropout_range"] == [0.1, 0.3]
    dropout = plan(s, stage_of(s, "dropout")).points
    assert [(p.label, p.config["dropout"], p.feasible) for p in dropout] == [
        ("A2.3-A", 0.1, True),
        ("A2.3-B", 0.2, True),
        ("A2.3-C", 0.3, True),
    ]


# --- B.3 table ------------------------------------------------------------------------------


def test_backbone_study_evaluates_base_frozen_and_unfrozen_later_on_test() -> None:
    s = study("unet_backbone.py")
    evaluated = [st for st in s.stages if st.evaluate]
    configs = [stage_base(s, st, {}, {}) for st in evaluated]
    rows = [
        (c["model"], c.get("freeze_schedule", "none"), c.get("unfreeze_epoch", 0)) for c in configs
    ]
    assert rows == [
        ("unet", "none", 0),
        ("unet_backbone", "frozen", 0),
        ("unet_backbone", "unfreeze_at", 10),
    ]
    assert all(st.scheduler == "fifo" and st.inherit == "base" for st in evaluated)
    # The three rows differ only in the model: same data, loss, epochs and schedule.
    shared = ("dataset", "loss", "epochs", "lr", "scheduler", "batch_size", "augment")
    assert len({tuple(repr(c[k]) for k in shared) for c in configs}) == 1
    assert 0 < configs[2]["unfreeze_epoch"] < configs[2]["epochs"]
    base_unet = plan(s, evaluated[0]).points
    assert len(base_unet) == 1 and base_unet[0].feasible


# --- labels ---------------------------------------------------------------------------------


@cache
def labelled_points(name: str) -> list[tuple[Stage, str, dict[str, Any]]]:
    """(stage, point label, values of the stage's varied keys) for every planned point."""
    s = study(name)
    out = []
    for stage in s.stages:
        p = plan(s, stage)
        for point in p.points:
            varied = {k: point.config.get(k) for k in p.varied_keys}
            out.append((stage, point.label, varied))
    return out


@pytest.mark.parametrize("name", STUDY_FILES)
def test_labels_are_unique_within_a_file(name: str) -> None:
    stage_labels = [st.label for st in study(name).stages]
    assert None not in stage_labels and len(set(stage_labels)) == len(stage_labels), stage_labels
    points = [label for _, label, _ in labelled_points(name)]
    assert len(set(points)) == len(points), points


@pytest.mark.parametrize("name", NUMBERED_FILES)
def test_labels_follow_the_assignment_numbering(name: str) -> None:
    for stage in study(name).stages:
        assert stage.label and LABEL.match(stage.label), f"{name}: label {stage.label!r}"
        step = stage.label.split("-")[0]
        assert stage.title and stage.title.startswith(step + " "), (
            f"{name}: title {stage.title!r} should start with its step {step!r}"
        )
        if step in STEP_VARIES and not stage.label.endswith("-ref"):
            assert plan(study(name), stage).varied_keys == STEP_VARIES[step], (
                f"{name}: {stage.label} varies {plan(study(name), stage).varied_keys}, but {step} "
                f"is {STEP_VARIES[step]} in the assignment"
            )


def test_a_label_means_the_same_configuration_in_every_file() -> None:
    """Label "A.2-B" is 64-128-256 in resnet_tiny_imagenet.py and channels.py alike, and so on."""
    meaning: dict[str, tuple[str, dict[str, Any]]] = {}
    shared = 0
    for name in STUDY_FILES:
        for _, label, varied in labelled_points(name):
            if label in meaning:
                first, values = meaning[label]
                assert varied == values, f"{label}: {values} in {first}, {varied} in {name}"
                shared += 1
            else:
                meaning[label] = (name, varied)
    assert shared >= 10  # the single-dimension files repeat steps of the main studies


def test_a_step_has_one_title_in_every_file() -> None:
    titles: dict[str, tuple[str, str]] = {}
    for name in NUMBERED_FILES:
        for stage in study(name).stages:
            first, title = titles.setdefault(stage.label, (name, stage.title))
            assert stage.title == title, (
                f"{stage.label}: {title!r} in {first}, {stage.title!r} in {name}"
            )
