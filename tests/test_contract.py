"""The run-to-report contract (trainables/contract.py), held by a real run.

The contract test runs a tiny real study through the orchestrator (Ray, trials, evaluation),
then the report, and fails when a field the report renders has no producer: the wave-1
gradient-flow figure was drawn from a field only a test fixture wrote, and the suite stayed
green. Unit tests of the records and comparisons follow.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
from data_fixtures import tiny_study_run
from test_report_sections import assert_figure_has_data

from trainables.contract import (
    EVALUATION_ARRAYS,
    FORMAT,
    PROBES_JSON,
    PROBES_KEYS,
    PROBES_NPZ,
    EvaluationRecord,
    RecordError,
    StageRecord,
    StudyRecord,
    TrialRecord,
    best_of,
    epoch_metric_names,
    is_better,
    rendered_fields,
    worst_value,
)

STUDY = """
from ray import tune
from orchestrator.study import Stage, Study
study = Study(
    name="contract", trainable="classification",
    base={"dataset": "tiny_imagenet", "classes": 3, "epochs": 2, "batch_size": 16,
          "max_batches": 2, "model": "resnet", "channels": (8, 16), "blocks": (1, 1),
          "stem": "cifar"},
    constraints={"max_params": 20_000},
    description="The contract test's tiny study.",
    stages=[Stage("widths", label="1.1", title="Widths", scheduler="fifo", evaluate=True,
                  space={"channels": tune.grid_search([(8, 16), (64, 128)])})],
)
"""


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory, ray_session) -> Path:
    """A finished tiny study (one trained point, one infeasible point) and its report."""
    return tiny_study_run(tmp_path_factory.mktemp("contract"), "contract", STUDY)


def _filled(value: object) -> bool:
    return value not in (None, "", [], {}) and not (isinstance(value, float) and math.isnan(value))


def _assert_produced(records: list, cls: type, task: str, where: str) -> None:
    for f in rendered_fields(cls):
        when = f.metadata.get("when")
        if when in ("classification", "segmentation") and when != task:
            continue
        values = [getattr(r, f.name) for r in records]
        assert any(_filled(v) for v in values), (
            f"{cls.__name__}.{f.name} is rendered by the report but no record of a real run "
            f"({where}) has it: the field has lost its producer"
        )


def test_every_rendered_field_has_a_producer(real_run: Path) -> None:
    raw = json.loads((real_run / "study.json").read_text())
    assert raw["format"] == FORMAT
    record = StudyRecord.from_dict(raw)
    stages = record.stages
    trials = [t for s in stages for t in s.trials]
    assert {t.status for t in trials} == {"completed", "infeasible"}
    _assert_produced([record], StudyRecord, record.trainable, "study.json")
    _assert_produced(stages, StageRecord, record.trainable, "study.json stages")
    _assert_produced(trials, TrialRecord, record.trainable, "study.json trials")
    evaluations = [
        EvaluationRecord.from_dict(json.loads((real_run / path).read_text()))
        for path in record.evaluations.values()
    ]
    assert evaluations, "the evaluated stage wrote no evaluation"
    _assert_produced(evaluations, EvaluationRecord, record.trainable, "evaluation/*.json")


def test_every_epoch_metric_and_evaluation_array_is_written(real_run: Path) -> None:
    import numpy as np

    record = StudyRecord.from_dict(json.loads((real_run / "study.json").read_text()))
    trained = [t for s in record.stages for t in s.trials if t.status == "completed"]
    rows = [
        json.loads(line)
        for line in (real_run / trained[0].trial_dir / "result.json").read_text().splitlines()
    ]
    missing = set(epoch_metric_names(record.trainable)) - set(rows[-1])
    assert not missing, f"per-epoch metrics named by the contract but not reported: {missing}"
    with np.load(real_run / "evaluation" / "widths.npz") as arrays:
        assert set(EVALUATION_ARRAYS[record.trainable]) <= set(arrays.files)
    # Each trained trial's own probes: every key the report reads is written, non-empty.
    probes = json.loads((real_run / trained[0].trial_dir / PROBES_JSON).read_text())
    assert all(probes.get(key) for key in PROBES_KEYS), probes.keys()
    with np.load(real_run / trained[0].trial_dir / PROBES_NPZ) as maps:
        assert len(maps.files) == len(probes["feature_layers"]) + 1  # + the input image


def test_report_draws_what_the_run_produced(real_run: Path) -> None:
    figures = {p.name for p in (real_run / "report" / "figures").glob("*.png")}
    for name in (
        "curves_widths.png",
        "gradflow_widths.png",
        "confusion_widths.png",
        "samples_widths.png",
        "gradflow_trials_widths.png",
        "maps_first_widths.png",
        "maps_depth_widths.png",
    ):
        assert name in figures, f"{name} missing from the report of a real run: {sorted(figures)}"
    for png in (real_run / "report" / "figures").glob("*.png"):
        assert_figure_has_data(png)  # drawn from real values, not an empty frame
    assert (real_run / "report" / "tables" / "receptive_fields_widths.csv").is_file()
    md = (real_run / "report" / "report.md").read_text()
    assert "The contract test's tiny study." in md
    assert "infeasible" in md


# --- records ---------------------------------------------------------------------------------


def test_study_record_round_trips_through_json() -> None:
    trial = TrialRecord(
        trial_id="t1",
        label="1.1-A",
        config={"lr": 1e-3},
        params=10,
        status="completed",
        epochs_run=2,
        best={"val_acc": 0.5},
    )
    study = StudyRecord(
        study="s",
        trainable="classification",
        metric="val_acc",
        stages=[StageRecord(name="a", trials=[trial])],
    )
    again = StudyRecord.from_dict(json.loads(study.dumps()))
    assert again == study


def test_format_1_reads_and_future_format_is_refused() -> None:
    old = {
        "schema_version": 1,
        "study": "s",
        "trainable": "classification",
        "stages": [{"name": "a", "status": "finished", "trials": []}],
    }
    assert StudyRecord.from_dict(old).metric == "val_acc"
    with pytest.raises(RecordError, match="format 3"):
        StudyRecord.from_dict({**old, "format": 3})


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"stages": {"a": 1}}, "stages must be list"),
        ({"trainable": "detection"}, "trainable='detection'"),
        ({"stages": [{"name": "a", "trials": [{"status": "done"}]}]}, "status='done'"),
        (
            {"stages": [{"name": "a", "trials": [{"status": "completed", "config": [1]}]}]},
            "config must be dict",
        ),
        ({"stages": [{"name": "a", "best": {"label": "x"}}]}, "lacks trial_id"),
    ],
)
def test_wrong_types_are_named(patch: dict, fragment: str) -> None:
    base = {"format": 2, "study": "s", "trainable": "classification", "stages": []}
    with pytest.raises(RecordError, match=fragment.replace("(", r"\(")):
        StudyRecord.from_dict({**base, **patch})


def test_is_better_and_best_of() -> None:
    assert is_better("max", 0.6, 0.5) and not is_better("max", 0.5, 0.6)
    assert is_better("min", 0.4, 0.5) and not is_better("min", 0.6, 0.5)
    assert is_better("max", 0.1, None) and is_better("min", 3.0, float("nan"))
    assert not is_better("max", float("nan"), 0.1) and not is_better("max", None, None)
    assert not is_better("max", float("inf"), 0.1)  # a diverged value never wins
    assert best_of([3, 1, 2], lambda v: v, "min") == 1
    assert best_of([], lambda v: v, "max") is None
    assert worst_value("max") == -math.inf and worst_value("min") == math.inf
    with pytest.raises(ValueError, match="'maximum'"):
        is_better("maximum", 1, 2)


def test_rendered_fields_are_marked() -> None:
    names = {f.name for f in rendered_fields(EvaluationRecord)}
    assert "grad_norms" in names and "confusion" in names
    assert all(
        f.metadata["rendered"]
        for f in dataclasses.fields(TrialRecord)
        if f.name in {"label", "status"}
    )
