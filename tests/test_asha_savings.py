"""analysis/asha_savings.py on a real tiny ASHA run (Optuna-free grid with ASHA, mixup and EMA
on, run lengths from epoch_fraction), and its section in the report."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_fixtures import tiny_study_run

from analysis.asha_savings import savings_lines, stage_savings
from analysis.rundir import load_study
from trainables.contract import planned_epochs

# lr 1e-6 barely trains: ASHA has something to stop. Trials plan 2 or 4 epochs.
STUDY = """
from ray import tune
from orchestrator.study import Stage, Study
study = Study(
    name="savings", trainable="classification",
    base={"dataset": "tiny_imagenet", "classes": 3, "epochs": 4, "batch_size": 16,
          "max_batches": 2, "image_size": 16, "model": "resnet", "channels": (8, 16),
          "blocks": (1, 1), "stem": "cifar", "mixup_alpha": 0.2, "ema_decay": 0.9,
          "optimizer": "adamw", "scheduler": "cosine"},
    asha={"grace_period": 1, "reduction_factor": 2},
    stages=[Stage("search", label="S", title="Search", scheduler="asha",
                  space={"lr": tune.grid_search([1e-6, 3e-3, 1e-2]),
                         "epoch_fraction": tune.grid_search([0.5, 1.0])})],
)
"""


@pytest.mark.slow  # six trials through Ray and the report: ~1 min on the 2-core machine
def test_asha_savings_of_a_real_run(tmp_path: Path, ray_session: object) -> None:
    run_dir = tiny_study_run(tmp_path, "savings", STUDY)
    study = load_study(run_dir)
    (stage,) = study.stages
    savings = stage_savings(stage, study)
    assert len(savings.rows) == 6
    for row in savings.rows:
        assert row.planned == planned_epochs(row.trial.config) in (2, 4)
        assert row.trained == len(row.trial.curve) <= row.planned
        if row.trial.status == "completed":
            assert row.trained == row.planned
    assert savings.fifo_epochs == 3 * (2 + 4)
    assert savings.asha_epochs == sum(len(t.curve) for t in stage.trials)
    assert savings.winner is not None and savings.winner.trial_id == stage.best.trial_id
    assert savings.common_epoch == min(len(t.curve) for t in stage.trials)
    lines = savings_lines(savings)
    ratio = savings.asha_epochs / savings.fifo_epochs
    assert f"{savings.asha_epochs} under ASHA against 18 for FIFO" in lines[0]
    assert f"{ratio:.2f}x" in lines[0]
    assert any(line.startswith("Winner under FIFO") for line in lines)
    report = (run_dir / "report" / "report.md").read_text()
    assert "ASHA savings (Search)" in report and lines[0] in report
    assert (run_dir / "report" / "tables" / "asha_savings_search.csv").is_file()


def test_stopped_trial_ahead_of_the_winner_makes_the_fifo_winner_uncertain(
    tmp_path: Path,
) -> None:
    """Synthetic curves: A was ahead of the winner W when ASHA stopped it, B behind."""
    from report_fixtures import _stage, _trial, curve
    from test_report_sections import _write_study

    cfg = {"dataset": "tiny_imagenet", "model": "resnet", "epochs": 6}
    trials = [
        _trial("s", "w", "W", cfg, 1000, "completed", curve(6, peak=0.6), root=tmp_path),
        _trial("s", "a", "A", cfg, 1000, "asha_stopped", curve(2, peak=0.9), root=tmp_path),
        _trial(
            "s",
            "b",
            "B",
            cfg | {"epoch_fraction": 0.5},
            1000,
            "asha_stopped",
            curve(2, peak=0.3),
            root=tmp_path,
        ),
    ]
    _write_study(tmp_path, [_stage("s", "Search", ["lr"], trials, epochs=6)], {})
    study = load_study(tmp_path)
    savings = stage_savings(study.stages[0], study)
    assert savings.winner.name == "W"
    assert [r.planned for r in savings.rows] == [6, 6, 3]
    assert (savings.asha_epochs, savings.fifo_epochs) == (10, 15)
    assert savings.common_epoch == 2 and savings.leader_at_common.name == "A"
    assert [r.trial.name for r in savings.ahead] == ["A"]
    lines = savings_lines(savings)
    assert "0.67x, 5 epochs saved" in lines[0]
    assert any("A led, not the winner W" in line for line in lines)
    assert any(line.startswith("Winner under FIFO: uncertain. 1 stopped") for line in lines)
