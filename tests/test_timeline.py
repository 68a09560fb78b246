"""Trials packed side by side, and the run's timeline from the trials to the report.

The shape of the GPU run on the CPU: the suite's Ray has 2 CPUs and these trials ask for 1, so
two of them must train at the same time (on one H200 eight trials once ran strictly one after
another, because Tune starts one trial at a time with a searcher of its own unless told how many
run together).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_fixtures import tiny_study_run
from test_report_sections import assert_figure_has_data

from orchestrator.tuner import Resources, slots_for
from trainables.contract import StudyRecord, run_timeline, stage_timeline, union_length

STUDY = """
from ray import tune
from orchestrator.study import Stage, Study
study = Study(
    name="packed", trainable="classification",
    base={"dataset": "tiny_imagenet", "classes": 3, "epochs": 2, "batch_size": 16,
          "max_batches": 2, "model": "resnet", "channels": (8, 16), "blocks": (1, 1),
          "stem": "cifar"},
    stages=[Stage("lr", label="P", scheduler="fifo",
                  space={"lr": tune.grid_search([1e-3, 2e-3, 3e-3, 4e-3])})],
)
"""


@pytest.fixture(scope="module")
def packed_run(tmp_path_factory: pytest.TempPathFactory, ray_session) -> Path:
    return tiny_study_run(tmp_path_factory.mktemp("packed"), "packed", STUDY)


def test_trials_of_a_stage_run_side_by_side(packed_run: Path) -> None:
    record = StudyRecord.from_dict(json.loads((packed_run / "study.json").read_text()))
    (stage,) = record.stages
    assert stage.timeline["slots"] == 2  # 2 CPUs / 1 CPU per trial
    spans = {t.label: t.timeline["spans"] for t in stage.trials}
    assert sorted(spans) == ["P-A", "P-B", "P-C", "P-D"]
    first = sorted((s[0]["start"], s[0]["end"]) for s in spans.values())
    overlap = min(first[0][1], first[1][1]) - max(first[0][0], first[1][0])
    assert overlap > 0, f"the first two trials ran one after another: {first}"
    summary = stage_timeline(stage.name, stage.timeline, [t.timeline for t in stage.trials])
    assert summary.at_once is not None and summary.at_once > 1.3, summary
    # Ray reused the finished trials' processes for the next two: no second process start.
    starts = sorted(s[0]["actor_start_s"] for s in spans.values())
    assert starts[:2] == [0.0, 0.0], starts
    # Each attempt measured its own costs.
    for attempts in spans.values():
        (a,) = attempts
        assert a["epochs"] == 2 and a["train_s"] > 0 and a["checkpoint_s"] > 0
        assert a["setup_s"] >= 0 and a["probe_s"] > 0 and a["end"] > a["start"]


def test_report_and_tensorboard_show_the_timeline(packed_run: Path) -> None:
    text = (packed_run / "report" / "report.md").read_text()
    section = text.split("## Timeline", 1)[1]
    assert "trials trained" in section.lower() and "trials at once on average" in section
    assert_figure_has_data(packed_run / "report" / "figures" / "timeline.png")
    rows = (packed_run / "report" / "tables" / "timeline.csv").read_text().splitlines()
    assert rows[0].startswith("stage,wall_s,trials,slots") and rows[1].startswith("lr,")

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = (packed_run / "timeline").glob("events.out.tfevents.*")
    acc = EventAccumulator(str(events))
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    assert {
        "timeline/training_fraction",
        "timeline/trials_at_once",
        "timeline/running_trials",
    } <= scalars
    assert max(e.value for e in acc.Scalars("timeline/running_trials")) == 2


def test_slots_follow_resources_and_max_concurrent() -> None:
    assert slots_for({"CPU": 2}, Resources(1, 0), trials=4) == 2
    assert slots_for({"CPU": 16, "GPU": 1}, Resources(2, 0.25), trials=8) == 4
    assert slots_for({"CPU": 16, "GPU": 1}, Resources(2, 0.1), trials=20) == 8  # CPU-bound
    assert slots_for({"CPU": 16, "GPU": 1}, Resources(1, 0.25, max_concurrent=1), 8) == 1
    assert slots_for({"CPU": 8}, Resources(1, 0), trials=3) == 3
    # A joined cluster without a GPU yet (it may scale up): no cap that would serialize trials.
    assert slots_for({"CPU": 8}, Resources(1, 0.5), trials=6) == 6


def span(start: float, end: float, setup: float = 0.0, actor: float = 0.0) -> dict:
    return {"start": start, "end": end, "setup_s": setup, "actor_start_s": actor}


def test_timeline_arithmetic_on_recorded_spans() -> None:
    assert union_length([(0, 2), (1, 3), (5, 6)]) == 4
    # 4 trials, 2 slots: two pairs back to back, each trial 1 s of set-up then 9 s training.
    trials = [{"spans": [span(s, s + 10, setup=1)]} for s in (0, 0, 10, 10)]
    stage = {"spans": [[-5, 25]], "slots": 2, "evaluation_s": 5}
    run = run_timeline([("s", stage, trials)])
    assert run.wall_s == 30 and run.training_s == 18
    (st,) = run.stages
    # Had >= 2 trials left to run until the third trial ended (t = 20): 2 running throughout.
    assert st.busy_s == 20 and st.at_once == pytest.approx(2.0)
    assert run.line() == (
        "trials trained 60% of the wall time (30 s); 2.0 trials at once on average while a "
        "stage had >= 2 to run"
    )
    # The same trials one after another: 1 at once, whatever the slots.
    serial = [{"spans": [span(10 * i, 10 * i + 10)]} for i in range(4)]
    (st,) = run_timeline([("s", {"spans": [[0, 40]], "slots": 2}, serial)]).stages
    assert st.at_once == pytest.approx(1.0)
